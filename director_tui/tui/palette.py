"""The command palette's entries: one per binding of the current screen and of the app."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen


def binding_commands(screen: Screen[Any], app: App[Any]) -> Iterator[SystemCommand]:
    """Each described binding once (the screen's first), quit left to the app's own entry."""
    seen: set[str] = set()
    for owner in (screen, app):
        for binding in getattr(owner, "BINDINGS", []):
            if not isinstance(binding, Binding) or not binding.description:
                continue
            if binding.action in seen or binding.action == "quit":
                continue
            seen.add(binding.action)
            key = binding.key.split(",")[0]
            yield SystemCommand(
                binding.description,
                f"{binding.tooltip or binding.description} ({key})",
                partial(owner.run_action, binding.action),
            )
