"""The attempt executor seam: the scheduler and the merge queue work from the attempt's
serialised inputs and outputs only, whatever ran it."""

from __future__ import annotations

from pathlib import Path

from director_tui.engine import git, jobs
from director_tui.engine.run import (
    AttemptReport,
    AttemptSink,
    AttemptSpec,
    LocalAttemptExecutor,
)
from director_tui.engine.run.core import RunCore
from director_tui.engine.run.windows import WatchedWindows
from tests.run_fixture import build_job, job_file, run, sample_nodes


class OverTheWire:
    """An executor elsewhere: every spec and report crosses as JSON."""

    specs: list[AttemptSpec] = []
    reports: list[AttemptReport] = []

    def __init__(self, core: RunCore, windows: WatchedWindows) -> None:
        self.local = LocalAttemptExecutor(core, windows)

    async def run(self, spec: AttemptSpec, sink: AttemptSink) -> AttemptReport:
        received = AttemptSpec.model_validate_json(spec.model_dump_json())
        assert received == spec
        self.specs.append(received)
        report = await self.local.run(received, sink)
        return self._send(report)

    async def regate(self, spec: AttemptSpec, sink: AttemptSink) -> AttemptReport:
        received = AttemptSpec.model_validate_json(spec.model_dump_json())
        return self._send(await self.local.regate(received, sink))

    def _send(self, report: AttemptReport) -> AttemptReport:
        sent = AttemptReport.model_validate_json(report.model_dump_json())
        assert sent == report
        self.reports.append(sent)
        return sent


def test_a_run_through_an_executor_that_only_sees_json_merges_every_node(tmp_path: Path) -> None:
    store = build_job(tmp_path)
    OverTheWire.specs, OverTheWire.reports = [], []
    outcome = run(store, parallel=2, executor=OverTheWire)
    assert outcome.success, outcome.message
    assert sorted(s.node.id for s in OverTheWire.specs) == ["add", "mul", "power"]
    power = next(s for s in OverTheWire.specs if s.node.id == "power")
    # power ran on the job head that holds mul's merge, with its frozen test hashes.
    assert job_file(store, "calc/mul.py") == sample_nodes()[1].solution
    assert power.node.test_hashes and power.tier == "scripted/cheap" and power.attempt == 1
    job_head = git.rev(store.repo, jobs.job_branch(power.job_id))
    for report in OverTheWire.reports:
        assert report.gate is not None and report.gate.passed
        assert report.usage is not None and report.usage.cost_usd == 0.01
        assert report.commit is not None
        assert (
            git.git(
                ["merge-base", "--is-ancestor", report.commit, job_head], store.repo, check=False
            ).returncode
            == 0
        )
