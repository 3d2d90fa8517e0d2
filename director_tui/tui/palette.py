"""The command palette's entries: one per binding of the current screen and of the app."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import partial
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen


def binding_commands(screen: Screen[Any], app: App[Any]) -> Iterator[SystemCommand]:
    """Each described binding that applies now once (the screen's first), quit left to the
    app's own entry. A binding its owner's ``check_action`` turns off is not offered: it
    would do nothing (Pause while paused; Resume is offered then)."""
    seen: set[str] = set()
    for owner in (screen, app):
        for binding in getattr(owner, "BINDINGS", []):
            if not isinstance(binding, Binding) or not binding.description:
                continue
            if binding.action in seen or binding.action == "quit":
                continue
            if not applies(owner, binding.action):
                continue
            seen.add(binding.action)
            key = binding.key.split(",")[0]
            yield SystemCommand(
                binding.description,
                f"{binding.tooltip or binding.description} ({key})",
                partial(owner.run_action, binding.action),
            )


def applies(owner: Screen[Any] | App[Any], action: str) -> bool:
    """Whether ``owner`` would run ``action`` now (its check_action is not False)."""
    name, _, args = action.partition("(")
    parameters: tuple[object, ...] = ()
    if args:
        try:
            parsed = ast.literal_eval(f"({args.rstrip(')')},)")
        except (ValueError, SyntaxError):
            parsed = ()
        parameters = tuple(parsed)
    return owner.check_action(name, parameters) is not False
