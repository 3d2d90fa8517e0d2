"""Typed modals: each resolves to a value through ``dismiss`` and a push_screen callback."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from director_tui.engine.models import Node


class ConfirmModal(ModalScreen[bool | None]):
    """A yes/no question; y/enter answer yes, n answers no.

    Without ``cancel`` escape answers no. With it there is a third way out — escape (or
    its button) resolves to None, "do neither" — for questions whose "no" throws work
    away, so the key people press to back out of a dialog never discards anything.
    """

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n", "answer(False)", "No", id="confirm.no"),
        Binding("escape", "back_out", "Back", id="confirm.back"),
    ]

    def __init__(
        self, question: str, *, yes: str = "Yes", no: str = "No", cancel: str | None = None
    ) -> None:
        super().__init__(classes="modal")
        self.question = question
        self.yes, self.no, self.cancel = yes, no, cancel

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="primary")
                yield Button(f"{self.no} (n)", id="no")
                if self.cancel is not None:
                    yield Button(f"{self.cancel} (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        else:
            self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    def action_back_out(self) -> None:
        self.dismiss(None if self.cancel is not None else False)


class ErrorModal(ModalScreen[None]):
    """What went wrong and what to do next — instead of a traceback."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close", id="error.close")]

    def __init__(self, title: str, message: str, hint: str = "") -> None:
        super().__init__(classes="modal")
        self.title_text, self.message, self.hint = title, message, hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error"):
            yield Label(self.title_text, classes="title")
            with VerticalScroll(classes="body"):
                yield Static(self.message, markup=False)
                if self.hint:
                    yield Static(f"→ {self.hint}", classes="hint", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Close (esc)", id="close", variant="error")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class TextPromptModal(ModalScreen[str | None]):
    """Ask for a block of text (a task, a rejection comment); ctrl+s sends, escape cancels."""

    BINDINGS = [
        Binding("ctrl+s", "submit", "Send", id="prompt.submit", priority=True),
        Binding("escape", "cancel", "Cancel", id="prompt.cancel"),
    ]

    def __init__(self, title: str, placeholder: str = "", *, initial: str = "") -> None:
        super().__init__(classes="modal")
        self.title_text, self.placeholder, self.initial = title, placeholder, initial

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="title")
            area = TextArea(self.initial, id="prompt-text", soft_wrap=True)
            area.placeholder = self.placeholder
            yield area
            yield Static("", id="prompt-error", classes="field-error")
            with Horizontal(classes="buttons"):
                yield Button("Send (ctrl+s)", id="send", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "send":
            self.action_submit()
        else:
            self.dismiss(None)

    def action_submit(self) -> None:
        text = self.query_one(TextArea).text.strip()
        if not text:
            self.query_one("#prompt-error", Static).update("Write something first (or esc).")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


class NodeEditModal(ModalScreen[dict[str, Any] | None]):
    """Edit one node's fields; resolves to the changed fields (validated by the caller)."""

    AUTO_FOCUS = "#edit-title"  # typing starts in the first field, not on a button
    BINDINGS = [
        Binding("ctrl+s", "submit", "Apply", id="edit.apply", priority=True),
        Binding("escape", "cancel", "Cancel", id="edit.cancel"),
    ]

    def __init__(self, node: Node) -> None:
        super().__init__(classes="modal")
        self.node = node

    def compose(self) -> ComposeResult:
        node = self.node
        with Vertical(classes="dialog wide"):
            yield Label(f"Edit node {node.id}", classes="title")
            with VerticalScroll(classes="form"):
                yield Label("Title")
                yield Input(node.title, id="edit-title")
                yield Label("Allowlist (files it may change; comma or one per line)")
                yield Input(", ".join(node.files), id="edit-files")
                yield Label("Depends on (node ids)")
                yield Input(", ".join(node.depends_on), id="edit-deps")
                yield Label("Test command")
                yield Input(node.test_cmd, id="edit-test-cmd")
                yield Label("Difficulty")
                yield Select(
                    [(d, d) for d in ("easy", "medium", "hard")],
                    value=node.estimated_difficulty,
                    allow_blank=False,
                    id="edit-difficulty",
                )
                yield Label("Spec")
                yield TextArea(node.spec, id="edit-spec", soft_wrap=True)
            with Horizontal(classes="buttons"):
                yield Button("Apply (ctrl+s)", id="apply", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "apply":
            self.action_submit()
        else:
            self.dismiss(None)

    def action_submit(self) -> None:
        difficulty = self.query_one("#edit-difficulty", Select).value
        self.dismiss(
            {
                "title": self.query_one("#edit-title", Input).value.strip(),
                "files": _split(self.query_one("#edit-files", Input).value),
                "depends_on": _split(self.query_one("#edit-deps", Input).value),
                "test_cmd": self.query_one("#edit-test-cmd", Input).value.strip(),
                "estimated_difficulty": difficulty
                if isinstance(difficulty, str)
                else self.node.estimated_difficulty,
                "spec": self.query_one("#edit-spec", TextArea).text,
            }
        )

    def action_cancel(self) -> None:
        self.dismiss(None)


class QuitDuringRunModal(ModalScreen[str | None]):
    """Quitting while this app runs the engine: detach (keep it going), stop, or stay.

    Resolves to ``"detach"``, ``"stop"`` or None (stay); escape stays, so backing out of the
    dialog never stops anything.
    """

    BINDINGS = [
        Binding("d", "choose('detach')", "Detach", id="quit.detach"),
        Binding("s", "choose('stop')", "Stop", id="quit.stop"),
        Binding("escape", "choose('')", "Stay", id="quit.stay"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__(classes="modal")
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="question", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Detach (d)", id="detach", variant="primary")
                yield Button("Stop and quit (s)", id="stop", variant="error")
                yield Button("Stay (esc)", id="stay")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_choose(event.button.id or "")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice if choice in ("detach", "stop") else None)
