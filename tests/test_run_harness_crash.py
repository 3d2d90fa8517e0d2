"""An attempt whose agent CLI crashed on its own machinery (OpenCode's database at its
first start) is not charged to the node: with one attempt allowed, the node still runs
again and merges. A stand-in `opencode` (a shell script, a real process) replays the
stderr of the OpenCode that lost the first-start race, then does the work."""

from __future__ import annotations

from pathlib import Path

import pytest

from director_tui.engine.models import NodeState, NodeStatus, RunState
from director_tui.engine.store import Store
from tests.run_fixture import SANDBOX_OFF, build_job, job_file, run, sample_nodes

RACED_THEN_WORKS = """#!/bin/sh
[ "$1" = --version ] && echo 1.18.33 && exit 0
[ "$1" = models ] && exit 0
if [ ! -e "$FAKE_OPENCODE_MARK" ]; then
  touch "$FAKE_OPENCODE_MARK"
  printf 'Error: Unexpected error\\n\\nFailed query: \\n  CREATE TABLE `workspace` (\\n  );\\n' >&2
  exit 1
fi
while [ $# -gt 0 ]; do [ "$1" = --dir ] && dir=$2; shift; done
printf 'def add(a, b):\\n    return a + b\\n' > "$dir/calc/add.py"
echo '{"type":"text","part":{"text":"done"}}'
"""

ALWAYS_RACED = """#!/bin/sh
[ "$1" = --version ] && echo 1.18.33 && exit 0
[ "$1" = models ] && exit 0
printf 'Failed query: CREATE TABLE `workspace`\\n' >&2
exit 1
"""


# The stand-in is a per-call CLI: it does not serve (a slot's `opencode serve` has its own
# crash path, tested in tests/e2e/test_opencode_server.py).
PER_CALL_CLI = "[opencode]\nserver = false\n"


def _node(store: Store) -> NodeState:
    state = store.read_model(store.state, RunState)
    assert state is not None
    return state.nodes["add"]


def _job_on_fake_opencode(tmp_path: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    store = build_job(
        tmp_path, [sample_nodes()[0]], config=SANDBOX_OFF + PER_CALL_CLI, limits={"max_attempts": 1}
    )
    config = store.config.read_text()
    for role in ("executor", "escalation"):
        config = config.replace(f'{role} = "scripted/', f'{role} = "opencode/fake/{role}-')
    store.config.write_text(config)
    fake = tmp_path / "opencode"
    fake.write_text(script)
    fake.chmod(0o755)
    monkeypatch.setenv("DIRECTOR_OPENCODE_BIN", str(fake))
    monkeypatch.setenv("FAKE_OPENCODE_MARK", str(tmp_path / "raced-once"))
    return store.repo


def test_a_harness_crash_is_not_charged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _job_on_fake_opencode(tmp_path, RACED_THEN_WORKS, monkeypatch)
    store = Store(repo)
    run(store)
    st = _node(store)
    assert st.status == NodeStatus.done, st.last_error
    assert st.attempts == 1 and not st.escalated  # the crashed one was given back
    assert job_file(store, "calc/add.py") == "def add(a, b):\n    return a + b\n"
    events = (store.root / "events.jsonl").read_text()
    assert "the agent CLI's own failure: this attempt is not charged" in events


def test_a_cli_that_always_crashes_so_still_runs_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(_job_on_fake_opencode(tmp_path, ALWAYS_RACED, monkeypatch))
    run(store)
    st = _node(store)
    assert st.status == NodeStatus.failed
    # Two crashes given back, then the executor attempt and the escalation are charged.
    assert st.attempts == 2 and st.escalated
