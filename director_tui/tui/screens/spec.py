"""Gate 1: the task and recon beside an editable spec.md, with a rendered preview."""

from __future__ import annotations

import difflib
import os
import shlex
import subprocess

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import ContentSwitcher, Header, Markdown, Static, TextArea

from director_tui.engine.models import Stage
from director_tui.tui.screens.base import DirectorScreen
from director_tui.tui.widgets.fitting_footer import FittingFooter
from director_tui.tui.widgets.modals import ConfirmModal, TextPromptModal


def lines_changed(before: str, after: str) -> int:
    """Lines edited, added or removed: a line replaced by another counts once (a diff's
    "-old" and "+new" read as "2 lines changed" for a one-line edit)."""
    matcher = difflib.SequenceMatcher(None, before.splitlines(), after.splitlines(), autojunk=False)
    return sum(
        max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"
    )


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _read(path: os.PathLike[str] | str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return ""


class SpecScreen(DirectorScreen):
    SUB_TITLE = "Gate 1 — the spec"
    CSS_PATH = "../spec.tcss"
    # Letters act while the editor is not focused (escape leaves it, i or enter goes in);
    # while typing only ctrl+s and the F-keys act, so no editor key is taken away.
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="gate1.save", priority=True, tooltip="Write spec.md"),
        Binding(
            "escape", "leave_editor", "Stop editing", id="gate1.leave", show=False, priority=True
        ),
        Binding("i,enter", "edit", "Edit", id="gate1.edit", tooltip="Edit spec.md here"),
        Binding("a", "approve", "Approve", id="gate1.approve", tooltip="Approve Gate 1"),
        Binding("x", "reject", "Reject", id="gate1.reject", tooltip="Reject with a comment"),
        Binding(
            "k",
            "critique",
            "Critic",
            id="gate1.critique",
            tooltip="The critic revises the spec (yours, when you edited it)",
        ),
        Binding(
            "u",
            "restore_edit",
            "Restore mine",
            id="gate1.restore",
            tooltip="Put back your edited spec, kept in spec.edited.md",
        ),
        # Out of the footer (the palette and o still work), so ^q quit shows at 80 columns.
        Binding(
            "o",
            "external_editor",
            "$EDITOR",
            id="gate1.editor",
            show=False,
            tooltip="Edit in $EDITOR",
        ),
        Binding("v", "toggle_preview", "Preview", id="gate1.preview", tooltip="Rendered preview"),
        Binding(
            "d",
            "toggle_diff",
            "Diff",
            id="gate1.diff",
            tooltip="Your edits vs the generated spec",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.saved_text = ""
        self.generated_text = ""
        self.kept_text = ""  # the user's version kept when an agent replaced it
        self.spec_by = "brainstorm"  # who wrote spec.generated.md: brainstorm or critic

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(id="gate1-status", classes="status-line")
        with Horizontal():
            with VerticalScroll(id="context", classes="panel"):
                yield Static("Task", classes="panel-title")
                yield Static(id="task-text", markup=False)
                yield Static("Recon", classes="panel-title")
                yield Markdown(id="recon")
            with (
                Vertical(id="spec-pane", classes="panel"),
                ContentSwitcher(initial="spec-editor", id="spec-switcher"),
            ):
                yield TextArea.code_editor(
                    "",
                    language="markdown",
                    id="spec-editor",
                    soft_wrap=True,
                    show_line_numbers=False,
                )
                with VerticalScroll(id="spec-preview"):
                    yield Markdown(id="spec-markdown")
                with VerticalScroll(id="spec-diff"):
                    yield Static(id="spec-diff-text")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.query_one("#spec-editor", TextArea).cursor_blink = False
        self.load_files()
        self.query_one("#context", VerticalScroll).focus()  # read first; i to edit
        self.ready = True

    def load_files(self) -> None:
        store = self.director.bridge.store
        self.generated_text = _read(store.spec_generated)
        self.saved_text = _read(store.spec)
        self.kept_text = self.director.bridge.kept_spec()
        self.query_one("#task-text", Static).update(_read(store.task).strip() or "(no task yet)")
        self.query_one("#recon", Markdown).update(_read(store.recon) or "_no recon yet_")
        editor = self.query_one("#spec-editor", TextArea)
        editor.load_text(self.saved_text)
        # The view shown follows the file: a preview or a diff of the old text would lie.
        current = self.query_one("#spec-switcher", ContentSwitcher).current
        if current == "spec-preview":
            self.render_preview()
        elif current == "spec-diff":
            self.render_diff()
        self.update_status()
        self.refresh_bindings()

    def reload(self) -> None:
        if not self.dirty:
            self.load_files()
        else:
            self.update_status()

    @property
    def text(self) -> str:
        return self.query_one("#spec-editor", TextArea).text

    @property
    def dirty(self) -> bool:
        return self.is_mounted and self.text != self.saved_text

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self.update_status()

    @property
    def restorable(self) -> bool:
        """A kept version of the user's spec to undo the agent's replacement with: only
        while spec.md is the agent's (an edit saved since would be lost to it)."""
        return (
            bool(self.kept_text.strip())
            and self.kept_text != self.saved_text
            and self.saved_text == self.generated_text
        )

    def update_status(self) -> None:
        stage = self.director.guard("Cannot read plan_stage.json", self.director.bridge.plan_stage)
        parts = [f"stage {stage.stage.value}" if stage else "no job"]
        self.spec_by = stage.spec_by if stage else "brainstorm"
        by_critic = self.spec_by == "critic"
        if self.generated_text:
            changed = lines_changed(self.generated_text, self.text)
            base = "the critic's spec" if by_critic else "the generated spec"
            unchanged = "revised by the critic" if by_critic else "as generated"
            parts.append(
                f"edited: {plural(changed, 'line')} changed vs {base}" if changed else unchanged
            )
        if self.restorable:
            parts.append("your version kept in spec.edited.md (u restores it)")
        if self.dirty:
            parts.append("unsaved changes (ctrl+s)")
        if self.director.engine_busy:
            progress = self.director.board.plan_progress
            parts.append(
                f"engine: {self.director.engine_busy}…" + (f" {progress}" if progress else "")
            )
        self.query_one("#gate1-status", Static).update(" · ".join(parts))

    def refresh_from_board(self) -> None:
        self.update_status()

    # -- actions ------------------------------------------------------------------------
    def action_save(self) -> bool:
        text = self.text

        def write() -> bool:
            self.director.bridge.save_spec(text)
            return True

        # guard() answers None when the write failed (and shows why)
        if self.director.guard("Cannot save spec.md", write):
            self.saved_text = text
            self.notify("spec.md saved")
            self.update_status()
            self.refresh_bindings()
            return True
        return False

    def _at_gate1(self) -> bool:
        stage = self.director.guard("Cannot read plan_stage.json", self.director.bridge.plan_stage)
        if stage is None or stage.stage != Stage.gate1:
            where = stage.stage.value if stage else "no job"
            self.notify(f"Gate 1 is not open (stage: {where}).", severity="warning")
            return False
        return True

    def action_approve(self) -> None:
        if not self._at_gate1():
            return
        if self.dirty and not self.action_save():
            return
        job = self.director.guard("Cannot approve", self.director.bridge.approve_spec)
        self.start_engine_job(job, "Gate 1 approved: decomposing into a DAG and writing red tests…")

    def action_reject(self) -> None:
        if not self._at_gate1():
            return

        def submitted(comment: str | None) -> None:
            if not comment:
                return
            job = self.director.guard(
                "Cannot reject", lambda: self.director.bridge.reject_spec(comment)
            )
            self.start_engine_job(job, "Sent back to the brainstorm agent with your comment.")

        self.app.push_screen(
            TextPromptModal("Reject the spec: what should change?", "Your comment"), submitted
        )

    def action_critique(self) -> None:
        """The critic revises the spec as the user left it. When that is their edit, say
        first what will happen and how to get their version back, and ask."""
        if not self._at_gate1():
            return
        edited = self.dirty or self.director.guard(
            "Cannot read spec.md", self.director.bridge.spec_is_edited
        )
        if not edited:
            self.ask_the_critic()
            return

        def decided(go: bool | None) -> None:
            if go:
                self.ask_the_critic()

        unsaved = " (your unsaved changes are saved first)" if self.dirty else ""
        self.app.push_screen(
            ConfirmModal(
                f"The critic will revise your edited spec{unsaved}.\n\n"
                "Your version is kept as .director/spec.edited.md — restore it with u "
                "(palette: Restore mine, or `director plan --restore-edit`).",
                yes="Ask the critic",
                no="Cancel",
            ),
            decided,
        )

    def ask_the_critic(self) -> None:
        if self.dirty and not self.action_save():
            return
        job = self.director.guard("Cannot ask for a critique", self.director.bridge.critique)
        self.start_engine_job(job, "The critic is re-reading the spec against the task…")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # u is in the footer only while there is a version of the user's to put back.
        if action == "restore_edit" and self.is_mounted:
            return self.restorable
        return True

    def action_restore_edit(self) -> None:
        """Put the user's kept version back as spec.md (the critic's stays the diff's base)."""
        if not self._at_gate1():
            return
        if not self.restorable:
            self.notify(
                "Nothing to restore: no edited spec of yours was replaced.", severity="warning"
            )
            return
        if self.director.engine_busy:
            self.notify(f"Wait: the engine is {self.director.engine_busy}.", severity="warning")
            return
        if self.dirty:
            self.notify(
                "spec.md has unsaved changes: save them (ctrl+s) or undo them first.",
                severity="warning",
            )
            return
        message = self.director.guard("Cannot restore your spec", self.director.bridge.restore_edit)
        if message:
            self.load_files()
            self.notify(message[0].upper() + message[1:] + ".")

    def action_edit(self) -> None:
        switcher = self.query_one("#spec-switcher", ContentSwitcher)
        switcher.current = "spec-editor"
        self.query_one("#spec-editor", TextArea).focus()

    def action_leave_editor(self) -> None:
        self.query_one("#context", VerticalScroll).focus()

    def show_editor_view(self) -> None:
        """Back from the preview or the diff to the spec, still reading: the next letter is
        a key (a approves, x rejects…), not text typed into spec.md; i or enter edits."""
        self.query_one("#spec-switcher", ContentSwitcher).current = "spec-editor"
        self.query_one("#context", VerticalScroll).focus()

    def action_toggle_preview(self) -> None:
        switcher = self.query_one("#spec-switcher", ContentSwitcher)
        if switcher.current == "spec-preview":
            self.show_editor_view()
            return
        self.render_preview()
        switcher.current = "spec-preview"

    def render_preview(self) -> None:
        self.query_one("#spec-markdown", Markdown).update(self.text)

    def action_toggle_diff(self) -> None:
        """What the human changed relative to the spec the agent wrote."""
        switcher = self.query_one("#spec-switcher", ContentSwitcher)
        if switcher.current == "spec-diff":
            self.show_editor_view()
            return
        self.render_diff()
        switcher.current = "spec-diff"

    def render_diff(self) -> None:
        by_critic = self.spec_by == "critic"
        diff = "\n".join(
            difflib.unified_diff(
                self.generated_text.splitlines(),
                self.text.splitlines(),
                "spec.generated.md (the critic's)"
                if by_critic
                else "spec.generated.md (the agent's)",
                "spec.md (yours)",
                lineterm="",
            )
        )
        same = "revised by the critic" if by_critic else "as generated"
        widget = self.query_one("#spec-diff-text", Static)
        widget.update(
            Syntax(diff, "diff", word_wrap=True) if diff else f"No changes: the spec is {same}."
        )

    def action_external_editor(self) -> None:
        if self.dirty and not self.action_save():
            return
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        path = self.director.bridge.store.spec
        try:
            with self.app.suspend():
                subprocess.run([*shlex.split(editor), str(path)], check=False)
        except Exception as exc:  # SuspendNotSupported, missing editor: show, do not crash
            self.notify(f"Cannot open {editor}: {exc}", severity="error")
            return
        self.load_files()
        self.notify("Reloaded spec.md from the editor")

    def check_leave(self, then: str) -> None:
        """Unsaved-changes guard before switching away."""
        if not self.dirty:
            super().check_leave(then)
            return

        def decided(save: bool | None) -> None:
            if save is None:
                return  # escape: stay here with the edits as they are
            if save:
                if not self.action_save():
                    return  # the error is on screen; the edits stay in the editor
            else:
                self.query_one("#spec-editor", TextArea).load_text(self.saved_text)
            self.app.call_later(self.director.action_open, then)

        self.app.push_screen(
            ConfirmModal(
                "spec.md has unsaved changes. Save them?",
                yes="Save",
                no="Discard",
                cancel="Stay",
            ),
            decided,
        )
