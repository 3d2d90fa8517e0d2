"""Gate 2: the DAG as a graph, a node table, the selected node's contract, live validation."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Header, Static

from director_tui.engine import dag
from director_tui.engine.errors import DirectorError
from director_tui.engine.models import Node, Plan, Stage
from director_tui.tui.engine_bridge import EngineTask
from director_tui.tui.messages import EngineJobFinished
from director_tui.tui.screens.base import DirectorScreen, ScreenHost
from director_tui.tui.widgets.dag_view import DagView
from director_tui.tui.widgets.fitting_footer import FittingFooter
from director_tui.tui.widgets.modals import ConfirmModal, NodeEditModal
from director_tui.tui.widgets.node_contract import node_contract


def _invalid_nodes(plan: Plan, errors: list[str]) -> set[str]:
    """Nodes named in the validation messages, to colour them in the graph and table."""
    marked: set[str] = set()
    for node_id in plan.ids:
        needle = f"'{node_id}'"
        if any(needle in e for e in errors):
            marked.add(node_id)
    return marked


def _plan_text(director: ScreenHost) -> str:
    try:
        return director.bridge.store.plan.read_text(encoding="utf-8")
    except OSError:
        return ""


class PlanReviewScreen(DirectorScreen):
    SUB_TITLE = "Gate 2 — plan review"
    CSS_PATH = "../plan_review.tcss"
    AUTO_FOCUS = "#nodes"  # the arrows move the table's cursor until d gives them to the graph
    BINDINGS = [
        Binding("e", "edit_node", "Edit node", id="gate2.edit", tooltip="Edit the selected node"),
        Binding("a", "approve", "Approve", id="gate2.approve", tooltip="Approve Gate 2"),
        Binding(
            "k",
            "critique",
            "Critique",
            id="gate2.critique",
            tooltip="The critic revises the plan (yours, when you edited it)",
        ),
        Binding(
            "u",
            "restore_edit",
            "Restore mine",
            id="gate2.restore",
            tooltip="Put back your edited plan, kept in plan.edited.json",
        ),
        Binding(
            "d",
            "focus_graph",
            "Graph",
            id="gate2.graph",
            tooltip="The DAG graph: arrows move along edges, n shows a node's neighbourhood",
        ),
        Binding("t", "focus_table", "Nodes", id="gate2.table", tooltip="The node table"),
        Binding(
            "v",
            "view_tests",
            "Tests",
            id="gate2.tests",
            show=False,
            tooltip="The selected node's frozen tests as a diff (read-only)",
        ),
        Binding("ctrl+r", "reload", "Reload", id="gate2.reload", tooltip="Re-read plan.json"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.plan: Plan | None = None
        self.errors: list[str] = []
        self.selected: str | None = None
        self.load_error = ""  # why plan.json could not be read, shown until it can be
        self.restorable = False  # a kept plan of the user's that is not plan.json now

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(id="gate2-status", classes="status-line")
        with Horizontal():
            with Vertical(id="gate2-left"):
                yield DagView(id="dag")
                yield DataTable(id="nodes", cursor_type="row", zebra_stripes=True)
                yield Static(id="validation", classes="validation")
            with VerticalScroll(id="node-detail", classes="panel"):
                yield Static(id="node-info")
        yield FittingFooter()

    def on_mount(self) -> None:
        table = self.query_one("#nodes", DataTable)
        table.add_column("node", key="node")
        table.add_column("difficulty", key="difficulty")
        table.add_column("deps", key="deps")
        table.add_column("files", key="files")
        table.add_column("title", key="title")
        self.reload()
        self.ready = True

    def reload(self) -> None:
        try:
            self.plan = self.director.bridge.plan()
            self.load_error = ""
            # u undoes the critic's replacement: only while plan.json is the critic's (an
            # edit made since would be lost to it)
            kept = self.director.bridge.kept_plan()
            self.restorable = (
                bool(kept.strip())
                and self.plan is not None
                and kept != _plan_text(self.director)
                and not self.director.bridge.plan_is_edited()
            )
        except (DirectorError, OSError) as exc:
            # The modal says it once per session; the screen says it for as long as it
            # lasts, instead of "no plan yet · valid" over a file that is there but broken.
            self.plan = None
            self.load_error = str(exc)
            self.director.show_error("Cannot read plan.json", exc)
        self.refresh_plan()
        self.refresh_bindings()

    def action_reload(self) -> None:
        self.reload()
        self.notify("plan.json re-read")

    def refresh_plan(self) -> None:
        plan = self.plan
        table = self.query_one("#nodes", DataTable)
        cursor = table.cursor_row
        table.clear()
        if plan is None:
            self.errors = []
            self.query_one("#dag", DagView).show(None)
            validation = self.query_one("#validation", Static)
            if self.load_error:
                self.query_one("#node-info", Static).update(
                    Text(f"plan.json cannot be read:\n{self.load_error}", style="red")
                )
                validation.update(
                    Text("plan.json is broken: fix it, then ctrl+r to re-read it", style="red")
                )
                validation.add_class("has-errors")
            else:
                self.query_one("#node-info", Static).update(
                    "No plan.json yet: approve Gate 1 first."
                )
                validation.update("")
                validation.remove_class("has-errors")
            self.update_status()
            return
        self.errors = dag.validate(plan)
        invalid = _invalid_nodes(plan, self.errors)
        tests_column = self.ensure_tests_column()
        for node in plan.nodes:
            marker = Text("! ", style="bold red") if node.id in invalid else Text("  ")
            table.add_row(
                marker + Text(node.id),
                node.estimated_difficulty,
                ", ".join(node.depends_on),
                ", ".join(node.files),
                node.title,
                *([self.tests_cell(node)] if tests_column else []),
                key=node.id,
            )
        if plan.nodes:
            table.move_cursor(row=min(max(cursor, 0), len(plan.nodes) - 1))
            self.selected = plan.nodes[table.cursor_row].id
        states = {
            nid: row.status
            for nid, row in self.director.board.rows.items()
            if row.status != "pending"
        }
        self.query_one("#dag", DagView).show(
            plan, states=states, selected=self.selected, invalid=invalid
        )
        validation = self.query_one("#validation", Static)
        if self.errors:
            validation.update(
                Text(
                    f"{len(self.errors)} problem(s) block approval:\n"
                    + "\n".join(f"• {e}" for e in self.errors),
                    style="red",
                )
            )
            validation.add_class("has-errors")
        else:
            validation.update(Text("✔ plan is valid", style="green"))
            validation.remove_class("has-errors")
        self.show_node()
        self.update_status()

    def update_status(self) -> None:
        stage = self.director.guard("Cannot read plan_stage.json", self.director.bridge.plan_stage)
        parts = [f"stage {stage.stage.value}" if stage else "no job"]
        if self.plan is not None:
            parts.append(self.authorship(stage.plan_by if stage else "planner"))
            parts.append(f"{len(self.plan.nodes)} nodes")
            try:
                parts.append(f"{len(dag.layers(self.plan))} layers")
            except Exception:  # a cycle: validation already says so
                pass
        count = len(self.errors)
        if self.load_error:
            parts.append("plan.json unreadable")
        elif self.plan is None:
            parts.append("no plan yet")
        else:
            parts.append(f"{count} problem{'s' if count != 1 else ''}" if count else "valid")
        if self.restorable:
            parts.append("your version kept in plan.edited.json (u restores it)")
        if self.director.engine_busy:
            progress = self.director.board.plan_progress
            parts.append(
                f"engine: {self.director.engine_busy}…" + (f" {progress}" if progress else "")
            )
        self.query_one("#gate2-status", Static).update(" · ".join(parts))

    def refresh_from_board(self) -> None:
        self.update_status()
        if self.plan is None or not self.director.board.tests_phase:
            return
        table = self.query_one("#nodes", DataTable)
        if "tests" not in table.columns:
            self.refresh_plan()  # adds the column and its cells
            return
        for node in self.plan.nodes:  # the tests stage's progress per node, live
            if node.id in table.rows:
                table.update_cell(node.id, "tests", self.tests_cell(node))

    def ensure_tests_column(self) -> bool:
        """The tests column, once the tests stage reported progress (this session)."""
        table = self.query_one("#nodes", DataTable)
        if "tests" not in table.columns and self.director.board.tests_phase:
            table.add_column("tests", key="tests")
        return "tests" in table.columns

    def tests_cell(self, node: Node) -> Text:
        """What the tests stage last said of the node, else frozen when plan.json has its
        hashes."""
        phase = self.director.board.tests_phase.get(node.id, "")
        if not phase and node.test_hashes and set(node.test_hashes) == set(node.tests):
            phase = "frozen"
        style = {"frozen": "green", "failed": "red", "red": "yellow"}.get(phase.split(" ")[0], "")
        return Text(phase or "—", style=style or "dim")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is None or self.plan is None:
            return
        self.selected = str(event.row_key.value)
        self.query_one("#dag", DagView).select(self.selected)
        self.show_node()

    def on_dag_view_selected(self, event: DagView.Selected) -> None:
        """The focus moved in the graph: the table's cursor (and so the contract) follows."""
        if self.plan is not None and event.node_id in self.plan.ids:
            self.query_one("#nodes", DataTable).move_cursor(row=self.plan.ids.index(event.node_id))

    def show_node(self) -> None:
        info = self.query_one("#node-info", Static)
        if self.plan is None or self.selected is None:
            info.update("")
            return
        try:
            node = self.plan.node(self.selected)
        except KeyError:
            info.update("")
            return
        info.update(node_contract(node, self.errors, self.director.bridge.store, self.plan))

    def authorship(self, plan_by: str) -> str:
        """Edited by the user, revised by the critic, or as the planner wrote it."""
        edited = self.director.guard("Cannot read plan.json", self.director.bridge.plan_is_edited)
        if edited:
            return "edited by you"
        return "revised by the critic" if plan_by == "critic" else "as generated"

    # -- actions ------------------------------------------------------------------------
    def _at_gate2(self) -> bool:
        stage = self.director.guard("Cannot read plan_stage.json", self.director.bridge.plan_stage)
        if stage is None or stage.stage != Stage.gate2:
            where = stage.stage.value if stage else "no job"
            self.notify(f"Gate 2 is not open (stage: {where}).", severity="warning")
            return False
        return True

    def action_critique(self) -> None:
        """The critic revises plan.json as the user left it. When that is their edit, say
        first what will happen and how to get their version back, and ask."""
        if not self._at_gate2():
            return
        if not self.director.guard("Cannot read plan.json", self.director.bridge.plan_is_edited):
            self.ask_the_critic()
            return

        def decided(go: bool | None) -> None:
            if go:
                self.ask_the_critic()

        self.app.push_screen(
            ConfirmModal(
                "The critic will revise your edited plan.\n\n"
                "Your version is kept as .director/plan.edited.json — restore it with u "
                "(palette: Restore mine, or `director plan --restore-edit`).",
                yes="Ask the critic",
                no="Cancel",
            ),
            decided,
        )

    def ask_the_critic(self) -> None:
        job = self.director.guard("Cannot ask for a critique", self.director.bridge.critique_plan)
        self.start_engine_job(job, "The critic is re-reading the plan against the spec…")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # u is in the footer only while there is a version of the user's to put back.
        if action == "restore_edit":
            return self.restorable
        return True

    def action_restore_edit(self) -> None:
        """Put the user's kept plan back as plan.json; approving re-checks it as an edit."""
        if not self._at_gate2():
            return
        if not self.restorable:
            self.notify(
                "Nothing to restore: no edited plan of yours was replaced.", severity="warning"
            )
            return
        if self.director.engine_busy:
            self.notify(f"Wait: the engine is {self.director.engine_busy}.", severity="warning")
            return
        message = self.director.guard("Cannot restore your plan", self.director.bridge.restore_edit)
        if message:
            self.reload()
            self.notify(message[0].upper() + message[1:] + ".")

    def action_focus_graph(self) -> None:
        self.query_one("#dag", DagView).focus()

    def action_focus_table(self) -> None:
        self.query_one("#nodes", DataTable).focus()

    def action_view_tests(self) -> None:
        if self.selected is None:
            self.notify("No node selected.", severity="warning")
            return
        from director_tui.tui.screens.diff_review import DiffReviewScreen

        self.app.push_screen(DiffReviewScreen(self.selected, tests=True))

    def action_edit_node(self) -> None:
        if self.plan is None or self.selected is None:
            self.notify("No node selected.", severity="warning")
            return
        node = self.plan.node(self.selected)

        def edited(values: dict[str, object] | None) -> None:
            if values is None or self.plan is None:
                return
            self.apply_edit(node.id, values)

        self.app.push_screen(NodeEditModal(node), edited)

    def apply_edit(self, node_id: str, values: dict[str, object]) -> None:
        """Apply a node edit, save plan.json, and re-validate at once."""
        if self.plan is None:
            return
        updated = self.plan.node(node_id).model_copy(update=values)
        node = type(updated).model_validate(updated.model_dump())
        self.plan.nodes = [node if n.id == node_id else n for n in self.plan.nodes]
        plan = self.plan
        self.director.guard("Cannot save plan.json", lambda: self.director.bridge.save_plan(plan))
        self.restorable = False  # the user's plan now: u would lose this edit
        self.refresh_plan()
        self.refresh_bindings()
        if self.errors:
            self.notify(
                f"Saved, but the plan has {len(self.errors)} problem(s): approval is blocked.",
                severity="error",
            )
        else:
            self.notify(f"Node {node_id} saved; the plan is valid.")

    def action_approve(self) -> None:
        if self.plan is None:
            if self.load_error:
                self.notify(f"Cannot approve: {self.load_error}", severity="error", timeout=8)
            else:
                self.notify("There is no plan to approve.", severity="warning")
            return
        self.errors = dag.validate(self.plan)
        if self.errors:
            self.refresh_plan()
            self.notify(
                f"Approval blocked: {len(self.errors)} problem(s). First: {self.errors[0]}",
                severity="error",
                timeout=8,
            )
            return
        if not self._at_gate2():
            return
        job = self.director.guard("Cannot approve", self.director.bridge.approve_gate2)
        self.start_engine_job(job, "")

    @on(EngineJobFinished)
    def approved(self, message: EngineJobFinished) -> None:
        if message.task != EngineTask.APPROVE_GATE2:
            return
        self.update_status()
        if not message.ok:
            return

        def decided(start: bool | None) -> None:
            if start:
                self.start_run()

        self.app.push_screen(
            ConfirmModal("Plan approved and frozen. Start the run now?", yes="Run", no="Later"),
            decided,
        )
