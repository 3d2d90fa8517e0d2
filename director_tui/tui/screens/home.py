"""Home: the repository, its config, its jobs, and where to go next."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Header, Static

from director_tui.engine import git, jobs
from director_tui.engine.errors import DirectorError
from director_tui.engine.jobs import list_jobs
from director_tui.engine.land import where_the_work_is
from director_tui.engine.models import Stage
from director_tui.tui.engine_bridge import EngineTask
from director_tui.tui.messages import EngineJobFinished
from director_tui.tui.screens.base import DirectorScreen
from director_tui.tui.widgets.fitting_footer import FittingFooter
from director_tui.tui.widgets.modals import TextPromptModal

STAGE_SCREEN = {
    Stage.gate1: "gate1",
    Stage.gate2: "gate2",
    Stage.approved: "run",
}


class HomeScreen(DirectorScreen):
    SUB_TITLE = "Home"
    CSS_PATH = "../home.tcss"
    BINDINGS = [
        Binding("n", "new_plan", "New plan", id="home.new_plan", tooltip="Plan a new task"),
        Binding("g", "open_gate", "Open gate", id="home.open_gate", tooltip="The current gate"),
        Binding("r", "open_run", "Run", id="home.run", tooltip="Run the approved plan"),
        Binding(
            "l", "land", "Land", id="home.land", tooltip="Merge the finished job into your branch"
        ),
        Binding("b", "app.open('bench')", "Bench", id="home.bench", tooltip="Bench results"),
        Binding("ctrl+r", "reload", "Reload", id="home.reload", tooltip="Re-read .director/"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.draft_task = ""  # the task typed for a plan that has not run yet

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="home-top"):
            yield Static(id="repo-panel", classes="panel")
            yield Static(id="config-panel", classes="panel")
        with Vertical(id="jobs-panel", classes="panel"):
            yield Static("Jobs", classes="panel-title")
            yield DataTable(id="jobs", cursor_type="row", zebra_stripes=True)
        yield Static(id="home-hint")
        yield FittingFooter()

    def on_mount(self) -> None:
        table = self.query_one("#jobs", DataTable)
        table.add_columns("job", "stage", "run", "task")
        self.reload()
        self.ready = True

    def reload(self) -> None:
        bridge = self.director.bridge
        repo = bridge.repo
        branch = "?"
        try:
            branch = git.current_branch(repo) or "(detached HEAD)"
        except DirectorError:
            pass
        stage = None
        try:
            stage = bridge.plan_stage()
        except DirectorError as exc:
            self.director.show_error("Cannot read plan_stage.json", exc)
        repo_text = Text()
        repo_text.append("Repository\n", style="bold")
        repo_text.append(f"{repo}\n")
        repo_text.append("branch ", style="dim")
        repo_text.append(f"{branch}\n")
        holder = bridge.running_elsewhere()
        if holder:
            repo_text.append(
                f"● a headless run is live (pid {holder.get('pid')}) — press r to watch it\n",
                style="bold yellow",
            )
        if stage is not None:
            repo_text.append("current job ", style="dim")
            repo_text.append(f"{stage.job_id}\n")
            work = where_the_work_is(bridge.store)
            repo_text.append("stage ", style="dim")
            repo_text.append(f"{work.state if work else stage.stage.value}\n", style="bold")
            repo_text.append("job branch ", style="dim")
            repo_text.append(f"{stage.job_branch}\n")
            if work is not None:
                hint = " — press l to land it" if work.state == "finished" else ""
                repo_text.append(work.line() + hint + "\n", style="green")
        else:
            repo_text.append("no job yet — press n to plan a task\n", style="italic")
        self.query_one("#repo-panel", Static).update(repo_text)
        self.query_one("#config-panel", Static).update(self._config_table())
        table = self.query_one("#jobs", DataTable)
        table.clear()
        try:
            jobs = list_jobs(bridge.store)
        except DirectorError:
            jobs = []
        for job in jobs:
            table.add_row(
                job.job_id + (" (archived)" if job.archived else ""),
                job.stage,
                job.run,
                job.task,
                key=job.path,
            )
        self.refresh_from_board()

    def refresh_from_board(self) -> None:
        """The hint line doubles as the engine's progress while a plan job runs."""
        hint = "n new plan · g open the current gate · r run board · b bench · ctrl+p commands"
        if self.director.engine_busy:
            hint = f"engine: {self.director.engine_busy}… {self.director.board.plan_progress}"
        self.query_one("#home-hint", Static).update(hint)

    def _config_table(self) -> Table | Text:
        try:
            config = self.director.bridge.reload_config()
        except DirectorError as exc:
            return Text(f"config: {exc}", style="red")
        table = Table(title="Roles → tiers", box=None, show_header=False, expand=True)
        table.add_column("role", style="dim")
        table.add_column("tier")
        for role, tier in config.tier_map().items():
            table.add_row(role, tier)
        limits = config.limits
        table.add_row("", "")
        table.add_row("parallel", str(limits.parallel))
        table.add_row("ceiling", f"${limits.cost_ceiling_usd:.2f} ({limits.on_ceiling})")
        table.add_row("attempts", str(limits.max_attempts))
        if "scripted" in config.providers_used():
            table.add_row("", Text("scripted agents — no model calls", style="bold magenta"))
        return table

    def action_reload(self) -> None:
        self.reload()

    def action_new_plan(self) -> None:
        def submitted(task: str | None) -> None:
            if not task:
                return
            # Kept until planning has run: a broken config refuses the job, and the user
            # fixes it and presses n again without typing the task a second time.
            self.draft_task = task
            job = self.director.guard(
                "Cannot start planning", lambda: self.director.bridge.start_plan(task)
            )
            self.start_engine_job(job, "Planning started: recon, then the spec (Gate 1).")

        title = "New plan: describe the task"
        current = self.director.guard(
            "Cannot read the current job", lambda: jobs.unfinished_job(self.director.bridge.store)
        )
        if current is not None:
            # Planning archives it: say so before the user types a task (the CLI refuses
            # without --force; here the prompt is the confirmation).
            title += f" — the unfinished job {current.job_id} is archived first (esc keeps it)"
        prompt = TextPromptModal(title, "What should the agents build?", initial=self.draft_task)
        self.app.push_screen(prompt, submitted)

    @on(EngineJobFinished)
    def planned(self, message: EngineJobFinished) -> None:
        if message.task == EngineTask.PLAN and message.ok:
            self.draft_task = ""

    async def action_open_gate(self) -> None:
        stage = self.director.guard("Cannot read plan_stage.json", self.director.bridge.plan_stage)
        if stage is None:
            self.notify("No job yet: press n to plan a task.", severity="warning")
            return
        target = STAGE_SCREEN.get(stage.stage)
        if target is None:
            self.notify(f"The pipeline is working ({stage.stage.value}); no gate is open yet.")
            return
        await self.director.action_open(target)

    async def action_open_run(self) -> None:
        await self.director.action_open("run")
