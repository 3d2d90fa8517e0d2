"""Attempts on a real multi-node Ray cluster (``ray.cluster_utils.Cluster``): the same
plan, the same gates, the same results as a local run, and nothing a worker returns
merged before the head checked it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from director_tui.engine.cluster import packs
from director_tui.engine.cluster.wire import AttemptTicket, WorkerReply
from director_tui.engine.events import (
    AgentStarted,
    ClusterStatus,
    GateResult,
    NodeMerged,
    Notice,
    parse_event,
)
from director_tui.engine.models import RunState
from director_tui.engine.run import AttemptSink, RunOutcome, run_job
from director_tui.engine.store import Store, read_jsonl
from tests import cluster_fixture
from tests.cli import director_here_on
from tests.gitrepo import run_git
from tests.run_fixture import (
    JOB_ID,
    Recorder,
    build_job,
    context,
    job_file,
    run,
    sample_nodes,
    solve,
    write_script,
)

ray = pytest.importorskip("ray")
from director_tui.engine.cluster.ray_backend import RayAttemptExecutor, work_root  # noqa: E402
from director_tui.engine.cluster.worker import job_dir  # noqa: E402

ray_cluster = cluster_fixture.ray_cluster  # the module's cluster (a fixture)
pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.usefixtures("ray_cluster")]

RAY_CONFIG = '\n[cluster]\nengine = "ray"\nmax_in_flight = 3\n'


def test_a_plan_runs_to_green_with_attempts_spread_over_the_workers(tmp_path: Path) -> None:
    nodes = sample_nodes()
    store = build_job(tmp_path, nodes, config=RAY_CONFIG)
    # Each attempt takes a while, so add and mul (independent) run at once: on two nodes.
    write_script(store, [solve(n, steps=[{"sleep": 1.5}, *solve(n)["steps"]]) for n in nodes])
    recorder = Recorder()
    outcome = run(store, recorder, parallel=3)
    assert outcome.success, outcome.message
    for spec in nodes:
        assert job_file(store, spec.impl_path) == spec.solution
    started = recorder.of(AgentStarted)
    assert {s.node_id for s in started} == {"add", "mul", "power"}
    workers = {s.worker for s in started}
    assert "" not in workers and len(workers) >= 2, workers
    assert all(g.passed for g in recorder.of(GateResult))
    assert sorted(m.node_id for m in recorder.of(NodeMerged)) == ["add", "mul", "power"]
    assert recorder.of(ClusterStatus)[0].workers == 4  # the head and three workers
    # The cost of each worker's call reached the head's ledger and the run's total.
    ledger = store.costs.read_text().splitlines()
    assert len(ledger) == 3
    finished = [e for e in recorder.events if e.type == "run_finished"]
    assert round(finished[-1].cost_usd, 4) == 0.03  # type: ignore[attr-defined]


def run_with_sinks(store: Store, sinks: list[Any], **kw: Any) -> RunOutcome:
    ctx = context(store)
    for sink in sinks:
        ctx.bus.subscribe(sink)
    return asyncio.run(run_job(ctx, **kw))


class TamperingWorker(RayAttemptExecutor):
    """A hostile worker, for the test: its first attempt's commit (honestly gated on the
    worker) is swapped on the way back for one that does what ``mode`` says."""

    mode = "test_file"

    async def _execute(self, ticket: AttemptTicket, sink: AttemptSink) -> Any:
        reply, pack = await super()._execute(ticket, sink)
        if not isinstance(reply, WorkerReply) or reply.report.commit is None:
            return reply, pack
        if ticket.spec.attempt > 1:
            return reply, pack
        base = ticket.spec.base_commit
        scratch = Path(tempfile.mkdtemp(prefix="hostile-"))
        repo = self.core.store.repo
        run_git(scratch, "clone", "-q", "--shared", "--no-checkout", str(repo), "w")
        work = scratch / "w"
        packs.apply_pack(work, pack)
        run_git(work, "checkout", "-q", "--detach", reply.report.commit)
        node = ticket.spec.node
        if self.mode == "test_file":
            (work / node.tests[0]).write_text("print('tests? what tests')\n")
        else:  # outside the allowlist, and a second commit below it for "history"
            (work / "README.md").write_text("# owned by the worker\n")
        run_git(work, "add", "-A")
        run_git(work, "commit", "-q", "-m", "tampered")
        commit = run_git(work, "rev-parse", "HEAD")
        if self.mode != "history":
            commit = packs.squash_onto(work, commit, base, "looks honest")
        reply.report.commit = commit
        return reply, packs.make_pack(work, commit, [base])


def tampering(mode: str) -> Any:
    def factory(core: Any, windows: Any) -> TamperingWorker:
        from director_tui.engine.cluster.ray_backend import RaySession

        cluster = core.config.cluster
        executor = TamperingWorker(core, windows, RaySession(cluster, core))
        executor.mode = mode
        return executor

    return factory


@pytest.mark.parametrize(
    ("mode", "check", "verify_tests"),
    [
        ("test_file", "hashes", True),
        ("test_file", "hashes", False),  # the structural checks need no test run
        ("outside", "allowlist", True),
        ("outside", "allowlist", False),
        ("history", "history", True),
    ],
)
def test_the_head_refuses_a_worker_commit_that_breaks_the_rules(
    tmp_path: Path, mode: str, check: str, verify_tests: bool
) -> None:
    add = sample_nodes()[0]
    config = RAY_CONFIG + f"verify_tests = {str(verify_tests).lower()}\n"
    store = build_job(tmp_path, [add], config=config)
    frozen = job_file(store, add.test_path)
    recorder = Recorder()
    outcome = run(store, recorder, parallel=1, executor=tampering(mode))
    assert outcome.success, outcome.message  # the second, honest attempt merged
    gates = recorder.of(GateResult)
    refused = [g for g in gates if g.attempt == 1]
    assert refused and not refused[0].passed and refused[0].check == check, gates
    assert "the head refused the worker's commit" in refused[0].message
    assert [g.passed for g in gates if g.attempt == 2] == [True]
    # Nothing of the tampered commit reached the job branch.
    assert job_file(store, add.test_path) == frozen
    assert job_file(store, "README.md") == "# calc\n"
    assert job_file(store, add.impl_path) == add.solution
    assert len(recorder.of(NodeMerged)) == 1


def test_a_worker_node_killed_mid_attempt_is_retried_elsewhere_uncharged_and_merged_once(
    tmp_path: Path, ray_cluster: Any
) -> None:
    add = sample_nodes()[0]
    store = build_job(tmp_path, [add], config=RAY_CONFIG)
    # The attempt sleeps first: long enough for its worker node to be killed under it.
    write_script(store, [solve(add, steps=[{"sleep": 4}, *solve(add)["steps"]])])
    killed: list[str] = []

    def kill_its_node(event: Any) -> None:
        if not isinstance(event, AgentStarted) or killed or not event.worker:
            return
        prefix = event.worker.split("/")[-1]
        node = next(n for n in ray_cluster.worker_nodes if n.node_id.startswith(prefix))
        killed.append(event.worker)
        # SIGKILL of the node's processes (raylet, its workers), from another thread.
        threading.Thread(target=ray_cluster.remove_node, args=(node, False)).start()

    recorder = Recorder()
    try:
        outcome = run_with_sinks(store, [recorder, kill_its_node], parallel=1)
    finally:
        ray_cluster.add_node(num_cpus=1)  # the next test has three workers again
        ray_cluster.wait_for_nodes()
    assert outcome.success, outcome.message
    started = recorder.of(AgentStarted)
    assert len(started) == 2 and started[1].worker not in ("", killed[0]), started
    assert any("lost mid-attempt" in n.message for n in recorder.of(Notice))
    assert [m.node_id for m in recorder.of(NodeMerged)] == ["add"]
    state = store.read_model(store.state, RunState)
    assert state is not None and state.nodes["add"].attempts == 1  # the lost one not counted
    assert job_file(store, add.impl_path) == add.solution


def test_director_run_cluster_ray_and_cluster_status(tmp_path: Path, ray_cluster: Any) -> None:
    store = build_job(tmp_path, sample_nodes()[:1])  # [cluster] engine stays "local"
    address = ray_cluster.address
    ran = director_here_on(store.repo, "run", "--no-tui", "--cluster", "ray", "--address", address)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "add: executor on worker " in ran.stdout  # the headless progress says where
    events = [parse_event(r) for r in read_jsonl(store.events)]
    started = [e for e in events if isinstance(e, AgentStarted)]
    assert started and started[0].worker, "the flag sent the attempt to the cluster"
    shown = director_here_on(store.repo, "cluster", "status", "--address", address, "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert sum(n["alive"] for n in report["nodes"]) == 4
    assert report["in_flight"] == []
    text = director_here_on(store.repo, "cluster", "status", "--address", address)
    assert "4 node(s) alive" in text.stdout and "attempts in flight: 0" in text.stdout


def test_a_cancelled_attempt_is_cancelled_on_ray_and_its_agent_processes_killed_there(
    tmp_path: Path,
) -> None:
    add = sample_nodes()[0]
    store = build_job(tmp_path, [add], config=RAY_CONFIG)
    write_script(store, [solve(add, steps=[{"run": "sleep 987"}, *solve(add)["steps"]])])

    def agent_sleep() -> psutil.Process | None:
        for proc in psutil.process_iter(["cmdline"]):
            if proc.info["cmdline"] == ["sleep", "987"]:
                return proc
        return None

    async def cancel_while_the_agent_runs() -> psutil.Process:
        running = asyncio.create_task(run_job(context(store), parallel=1))
        while (found := agent_sleep()) is None:
            assert not running.done(), "the run ended before its agent started"
            await asyncio.sleep(0.2)
        running.cancel()  # as Ctrl-C does: the node's attempt is cancelled
        with pytest.raises(asyncio.CancelledError):
            await running
        return found

    sleeper = asyncio.run(cancel_while_the_agent_runs())
    # run_job ended the session, which waited for the reap on the worker's node.
    assert not sleeper.is_running() or sleeper.status() == psutil.STATUS_ZOMBIE
    attempts = job_dir(work_root(), JOB_ID) / "attempts"
    assert not list(attempts.glob("add--*")), "the attempt's folder was reaped"
    state = store.read_model(store.state, RunState)
    assert state is not None and state.nodes["add"].status == "pending"  # resumable


def test_a_head_killed_mid_attempt_resumes_and_submits_the_attempt_again(
    tmp_path: Path, ray_cluster: Any
) -> None:
    add = sample_nodes()[0]
    store = build_job(tmp_path, [add], config=RAY_CONFIG)
    write_script(store, [solve(add, steps=[{"sleep": 3}, *solve(add)["steps"]])])
    argv = [sys.executable, "-m", "director_tui", "run", "--no-tui", "--repo", str(store.repo)]
    argv += ["--address", ray_cluster.address]
    head = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        placed = False
        while not placed:  # until the attempt's agent started on a worker
            assert head.poll() is None, "the run ended before its attempt started"
            time.sleep(0.2)
            records = read_jsonl(store.events) if store.events.is_file() else []
            placed = any(r.get("type") == "agent_started" and r.get("worker") for r in records)
    finally:
        head.kill()  # SIGKILL: no clean-up of any kind
        head.wait()
    again = director_here_on(store.repo, "run", "--no-tui", "--address", ray_cluster.address)
    assert again.returncode == 0, again.stdout + again.stderr
    assert job_file(store, add.impl_path) == add.solution
    events = [parse_event(r) for r in read_jsonl(store.events)]
    assert [e.node_id for e in events if isinstance(e, NodeMerged)] == ["add"]
    assert any(isinstance(e, Notice) and e.message.startswith("recovered") for e in events)
    assert len([e for e in events if isinstance(e, AgentStarted)]) == 2
    state = store.read_model(store.state, RunState)
    assert state is not None and state.nodes["add"].attempts == 1  # the killed one uncounted


def test_a_drain_cut_short_as_the_run_ends_still_reaps_the_stopped_attempt(
    tmp_path: Path,
) -> None:
    """The channel hands its progress over once. The poller's drain, cancelled as the run
    ends while the channel's answer travels, must not lose a stopped attempt's 'placed'
    items: close() applies them and reaps the attempt's folder on its node (a clean-clone
    run left the folder of test_a_cancelled_attempt... so, on a quiet machine)."""
    from types import SimpleNamespace

    from director_tui.engine.cluster.ray_backend import RaySession, _Listener

    store = build_job(tmp_path, sample_nodes()[:1], config=RAY_CONFIG)
    cluster = context(store).config.cluster
    folder = tmp_path / "an-attempt"
    folder.mkdir()
    (folder / "left.txt").write_text("by the agent\n")
    worker = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU"))

    async def stop_mid_drain() -> None:
        core: Any = SimpleNamespace(store=store)
        session = RaySession(cluster, core)
        session.unplaced["token"] = _Listener(core, Recorder())  # type: ignore[arg-type]
        placed = [
            {"token": "token", "kind": "placed", "data": {"node_id": worker}},
            {"token": "token", "kind": "placed", "data": {"attempt_dir": str(folder)}},
        ]
        ray.get(session.channel.push.remote(placed))
        drain = asyncio.ensure_future(session.drain())
        await asyncio.sleep(0)  # the drain has asked the channel; its answer is on the way
        drain.cancel()
        with pytest.raises(asyncio.CancelledError):
            await drain
        session.close()

    asyncio.run(stop_mid_drain())
    assert not folder.exists(), "the stopped attempt's folder was reaped"
