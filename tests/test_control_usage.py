"""The usage line of a control command says which need a node: retry, escalate and skip
cannot go without one (it was shown as optional, `[node]`)."""

from __future__ import annotations

import pytest

from tests.cli import director


@pytest.mark.parametrize("action", ["retry", "escalate", "skip", "accept", "reject"])
def test_a_node_that_is_required_is_shown_as_required(action: str) -> None:
    out = director(action, "--help")
    assert out.returncode == 0
    usage = out.stdout.splitlines()[0]
    # retry and reject send review comments to the next attempt
    comment = " [--comment TEXT ...]" if action in ("retry", "reject") else ""
    assert usage == f"usage: director {action} [-h] [--repo PATH] [--no-wait]{comment} <node>"
    assert "[node]" not in out.stdout


def test_cancel_keeps_its_node_optional() -> None:
    assert "[node]" in director("cancel", "--help").stdout.splitlines()[0]
