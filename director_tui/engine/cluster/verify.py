"""The head's check of what a worker returned: nothing a worker says is trusted.

The returned commit's objects are stored here (``packs.apply_pack`` hashes every one),
and the commit must be exactly one commit on the spec's base. It is then checked out
clean in the head's own node worktree, where the structural checks of a local gate run
again — frozen test hashes, allowlist (no ignore glob exempts anything: an honest
worker's commit never carries an ignored file), symlinks — and, unless
``[cluster] verify_tests = false``, the node's ``test_cmd``, inside a watched window
like a local gate's tests. Only then is the commit what the merge queue may merge."""

from __future__ import annotations

from pathlib import Path

from director_tui.engine import gates, git, jobs
from director_tui.engine.cluster import packs
from director_tui.engine.cluster.wire import WorkerReply
from director_tui.engine.errors import GitError
from director_tui.engine.run.core import RunCore
from director_tui.engine.run.executor import (
    AttemptReport,
    AttemptSink,
    AttemptSpec,
    GateVerdict,
)
from director_tui.engine.run.windows import WatchedWindows

REFUSED = "worker"  # the gate check of a commit the head refused before any test


def _refuse(report: AttemptReport, check: str, message: str) -> AttemptReport:
    report.commit = None
    report.gate = GateVerdict(
        passed=False, check=check, message=f"the head refused the worker's commit: {message}"
    )
    return report


def _store_transcript(core: RunCore, reply: WorkerReply) -> Path | None:
    usage = reply.report.usage
    if not reply.transcript or usage is None:
        return None
    core.store.logs.mkdir(parents=True, exist_ok=True)
    path = core.store.logs / f"{usage.call_id}.jsonl"
    path.write_text(reply.transcript, encoding="utf-8")
    return path


async def adopt(
    core: RunCore,
    windows: WatchedWindows,
    spec: AttemptSpec,
    reply: WorkerReply,
    pack: bytes,
    sink: AttemptSink,
    *,
    verify_tests: bool,
) -> AttemptReport:
    """The worker's report, its commit re-checked here (refused: a failed gate verdict
    saying why, and no commit)."""
    report = reply.report.model_copy(deep=True)
    report.transcript_path = await core.io(_store_transcript, core, reply)
    gate = report.gate
    if report.commit is None:
        if gate is not None and gate.passed:
            return _refuse(report, REFUSED, "its gate passed but it names no commit")
        return report  # the agent did not finish, or the worker's gate failed it
    if gate is None or not gate.passed:
        return _refuse(report, REFUSED, "it names a commit its gate did not pass")
    problem = await core.io(_adopt_commit, core, spec, report.commit, pack)
    if problem is not None:
        return _refuse(report, *problem)
    node, nid = spec.node, spec.node.id
    worktree = jobs.node_worktree(core.store, nid)
    sink.gating()
    if verify_tests:
        # The tests run here: inside a watched window, as a local gate's.
        await windows.open(nid)
        try:
            outcome = await gates.node_gate(
                node,
                worktree,
                spec.base_commit,
                ignore_globs=[],
                flake_runs=1,
                timeout=spec.limits.gate_timeout_secs,
                on_line=sink.test_line,
                sandbox=core.ctx.sandbox_spec(worktree),  # the head's own sandbox
            )
        finally:
            report.outside = [*report.outside, *await windows.close(nid)]
    else:
        # No command runs here: the commit's own diff, no scan of the worktree.
        changes = await core.io(git.changes_between, worktree, spec.base_commit, report.commit)
        outcome = await core.io(
            gates.structural_check,
            node,
            worktree,
            spec.base_commit,
            [],
            changes,
            commit=report.commit,  # the tests judged on its blobs: what merges
        )
    if not outcome.passed:
        verdict = GateVerdict.of(outcome)
        verdict.message = f"the head refused the worker's commit: {verdict.message}"
        report.commit, report.gate = None, verdict
        return report
    gate.changed_files = outcome.changed_files
    gate.test_secs += outcome.test_secs
    return report


def _adopt_commit(
    core: RunCore, spec: AttemptSpec, commit: str, pack: bytes
) -> tuple[str, str] | None:
    """The commit stored here and checked out clean on the node branch; (check, why) not."""
    repo, base = core.store.repo, spec.base_commit
    try:
        packs.apply_pack(repo, pack)
    except GitError as exc:
        return REFUSED, f"its objects do not load: {exc}"
    parents = packs.parents(repo, commit)
    if parents is None:
        return REFUSED, f"the commit {commit[:12]} is not in what it sent"
    if parents != [base]:
        return (
            "history",
            f"the commit {commit[:12]} is not one commit on the base {base[:12]} "
            f"(its parents: {', '.join(p[:12] for p in parents) or 'none'})",
        )
    # The node branch at the commit, checked out clean: what is checked is what merges.
    worktree = jobs.node_worktree(core.store, spec.node.id)
    jobs.prepare_node_worktree(core.store, worktree, spec.branch, commit)
    return None
