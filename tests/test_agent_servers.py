"""Which calls go to a persistent OpenCode server (``agent_servers.py``), how long servers
live, how a test author's files move between its slot and its node's worktree, and the
model listing remembered per process. No OpenCode runs here (servers are registered, not
started): the real binary is in tests/e2e/test_auto_servers_e2e.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import psutil
import pytest

from director_tui.engine import git, jobs
from director_tui.engine.agents import model_check
from director_tui.engine.agents.base import ExitReason
from director_tui.engine.agents.model_check import ModelListing, check_tiers
from director_tui.engine.agents.opencode_session import OpenCodeServerProvider
from director_tui.engine.config import ROLES, Config
from director_tui.engine.context import EngineContext
from director_tui.engine.events import Notice
from director_tui.engine.models import Node, Plan
from director_tui.engine.plan import author_slots
from director_tui.engine.plan.test_worktrees import copy_existing_tests
from director_tui.engine.proc import process_tree
from director_tui.engine.run import AttemptReport, AttemptSpec, Runner
from director_tui.engine.run.core import RunCore
from director_tui.engine.store import Store
from tests.run_fixture import SANDBOX_OFF, build_job, sample_nodes
from tests.run_fixture import context as run_context


def context(
    repo: Path, *, server: bool = True, tiers: dict[str, str] | None = None
) -> EngineContext:
    config = Config.model_validate(
        {
            "tiers": dict.fromkeys(ROLES, "opencode/fake/m") | (tiers or {}),
            "opencode": {"server": server},
        }
    )
    return EngineContext.open(Store(repo), config)


def test_a_call_goes_to_the_server_of_its_directory_only_when_its_role_may_run_there(
    git_repo: Path, tmp_path: Path
) -> None:
    ctx = context(git_repo)
    servers = ctx.servers
    reader_dir, slot_dir, other = tmp_path / "job", tmp_path / "slot", tmp_path / "other"
    reader = servers.server(reader_dir, writable=False, roles=("planner",), name="r")
    slot = servers.server(slot_dir, writable=True, roles=("test_author",), name="s")

    def served_by(role: str, cwd: Path, tier: str = "opencode/fake/m") -> object:
        provider = servers.provider(role, tier, cwd)
        return provider.server if isinstance(provider, OpenCodeServerProvider) else provider

    assert served_by("planner", reader_dir) is reader
    assert served_by("explorer", slot_dir) is slot  # a reader may run where writers do
    assert served_by("test_author", slot_dir) is slot
    # A writer never runs on a read-only server: its own per-call CLI instead.
    assert served_by("test_author", reader_dir) is None
    assert served_by("executor", other) is None  # no server serves that directory
    assert served_by("planner", reader_dir, "claude-code/sonnet") is None
    # The same directory asked again: the same server (not a second one).
    assert servers.server(slot_dir, writable=True, roles=(), name="x") is slot


def test_with_servers_off_every_call_is_a_per_call_cli(git_repo: Path, tmp_path: Path) -> None:
    ctx = context(git_repo, server=False)
    ctx.servers.server(tmp_path, writable=True, roles=("executor",), name="s")
    assert not ctx.servers.wanted("executor")
    assert ctx.servers.provider("executor", "opencode/fake/m", tmp_path) is None


def test_servers_live_until_the_outermost_session_ends(git_repo: Path, tmp_path: Path) -> None:
    ctx = context(git_repo)
    servers = ctx.servers

    async def nested() -> tuple[bool, bool]:
        async with servers.session():
            async with servers.session():  # a planning pass inside `director auto`
                servers.server(tmp_path, writable=True, roles=("executor",), name="s")
            kept = servers.get(tmp_path) is not None
        return kept, servers.get(tmp_path) is not None

    assert asyncio.run(nested()) == (True, False)


def test_a_test_authors_files_go_between_slot_and_node_worktree_both_ways(
    tmp_path: Path,
) -> None:
    node = Node(
        id="n",
        title="t",
        spec="s",
        files=["a.py"],
        test_cmd="true",
        tests=["tests/test_a.py", "tests/test_b.py"],
    )
    own, slot = tmp_path / "own", tmp_path / "slot"
    (own / "tests").mkdir(parents=True)
    (own / "tests" / "test_a.py").write_text("seeded\n")
    (slot / "tests").mkdir(parents=True)
    (slot / "tests" / "test_b.py").write_text("left from the slot's last node\n")

    copy_existing_tests(node, own, slot)
    assert (slot / "tests" / "test_a.py").read_text() == "seeded\n"
    assert not (slot / "tests" / "test_b.py").exists()  # what the node's worktree lacks

    (slot / "tests" / "test_b.py").write_text("written by the author\n")
    os.chmod(slot / "tests" / "test_b.py", 0o755)
    (slot / "tests" / "test_a.py").unlink()
    copy_existing_tests(node, slot, own)
    assert (own / "tests" / "test_b.py").read_text() == "written by the author\n"
    assert os.access(own / "tests" / "test_b.py", os.X_OK)  # git records the mode
    assert not (own / "tests" / "test_a.py").exists()  # the author deleted it


def test_a_served_listing_is_used_and_remembered_for_the_process(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    binary = tmp_path / "opencode"
    binary.write_text("#!/bin/sh\nexit 1\n")  # a cold `opencode models` would list nothing
    binary.chmod(0o755)
    monkeypatch.setenv("DIRECTOR_OPENCODE_BIN", str(binary))
    monkeypatch.setattr(model_check, "_LISTED", {})
    monkeypatch.setattr(model_check, "_PASSED", set())
    asked: list[int] = []

    async def lister() -> ModelListing:
        asked.append(1)
        return ModelListing(frozenset({"fake/m", "fake/other"}))

    config = context(
        git_repo, tiers={"executor": "opencode/fake/other", "reviewer": "opencode/fake/gone"}
    ).config
    first = asyncio.run(check_tiers(config, git_repo, ["planner"], lister=lister))
    assert [c.status.value for c in first] == ["ok"]
    # The run's tiers (`director auto`): checked against the plan's listing, not asked again.
    second = asyncio.run(check_tiers(config, git_repo, ["executor"], lister=lister))
    assert [c.status.value for c in second] == ["ok"]
    assert asked == [1]
    # Without a lister too: the remembered listing, not the cold CLI (which lists nothing).
    third = asyncio.run(check_tiers(config, git_repo, ["reviewer"]))
    assert [c.status.value for c in third] == ["missing"]


def test_a_3_node_plan_at_parallel_4_starts_3_slot_servers_the_first_2_early(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Each early server takes seconds of CPU from the planner's sessions: before the DAG
    # is known only the first two slots' start (most plans have 2 nodes or more); with
    # no session timed yet (nothing says waiting for a warm slot ends sooner) the tests
    # stage starts one per node it authors at once, min(parallel, nodes), never a
    # server for a slot nobody takes.
    binary = tmp_path / "opencode"
    binary.write_text("#!/bin/sh\nexit 1\n")  # a start that fails at once (no OpenCode)
    binary.chmod(0o755)
    monkeypatch.setenv("DIRECTOR_OPENCODE_BIN", str(binary))
    ctx = context(git_repo)
    ctx.config.limits.parallel = 4
    base = git.rev(git_repo)
    nodes = [
        Node(id=n, title=n, spec=n, files=[f"{n}.py"], test_cmd="true", tests=[f"t_{n}.py"])
        for n in ("a", "b", "c")
    ]

    async def plan_pass() -> tuple[list[int], list[int], list[str]]:
        async with ctx.servers.session():
            await author_slots.warm_slots(ctx, "j", base)  # recon/spec/decompose still to come
            await ctx.servers.prepared()
            early = _served_slots(ctx)
            places = author_slots.TestPlaces(ctx, "j", base, git_repo)
            all_in = asyncio.Barrier(len(nodes))  # the 3 test authors at work together
            used: list[str] = []

            async def author(node: Node) -> None:
                async with places.open(node) as slot:
                    used.append(slot.name)
                    await all_in.wait()

            await asyncio.gather(*(author(node) for node in nodes))
            during = _served_slots(ctx)
            await places.close(keep_for_run=False)
            return early, during, used

    early, during, used = asyncio.run(plan_pass())
    assert early == [0, 1]
    assert during == [0, 1, 2]
    assert sorted(used) == [f"{jobs.SLOT_PREFIX}{k}" for k in range(3)]
    assert not jobs.slot_worktree(ctx.store, 3).exists()


@pytest.mark.parametrize(
    ("session_secs", "slot_servers"),
    [(0.2, [0, 1]), (30.0, [0, 1, 2])],
    ids=["sessions-faster-than-a-start", "sessions-slower"],
)
def test_a_third_test_author_waits_for_a_warm_slot_when_sessions_end_faster_than_a_start(
    git_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    session_secs: float,
    slot_servers: list[int],
) -> None:
    # A server start costs seconds of CPU that slow every session meanwhile: with a model
    # that answers faster than a server starts, the third node of a 3-node plan waits for
    # one of the two warm slots instead of starting a third server; with a slow model it
    # starts one, as before. The servers listen late enough that all three authors ask
    # for a slot before any is ready, however slowly their own worktrees are made.
    monkeypatch.setenv("DIRECTOR_OPENCODE_BIN", str(_listening_after(1.5, tmp_path)))
    ctx = _unsandboxed(git_repo)
    ctx.config.limits.parallel = 4
    base = git.rev(git_repo)
    nodes = [
        Node(id=n, title=n, spec=n, files=[f"{n}.py"], test_cmd="true", tests=[f"t_{n}.py"])
        for n in ("a", "b", "c")
    ]

    async def tests_stage() -> tuple[list[int], list[str]]:
        async with ctx.servers.session():
            # What the planning calls measured: the planner's server took 2 s to start,
            # its three sessions `session_secs` each.
            reader = ctx.servers.server(
                tmp_path / "job", writable=False, roles=("planner",), name="planner"
            )
            reader.start_secs.append(2.0)
            reader.session_secs.extend([session_secs] * 3)
            await author_slots.warm_slots(ctx, "j", base)
            places = author_slots.TestPlaces(ctx, "j", base, git_repo)
            used: list[str] = []

            async def author(node: Node) -> None:
                async with places.open(node) as slot:
                    used.append(slot.name)
                    await asyncio.sleep(0.3)  # the session

            await asyncio.gather(*(author(node) for node in nodes))
            during = _served_slots(ctx)
            await places.close(keep_for_run=False)
            return during, used

    during, used = asyncio.run(tests_stage())
    assert during == slot_servers
    # Which warm slot each author gets depends on which server listens first and when
    # a session ends; that each worked in a slot with a server does not.
    assert len(used) == 3
    assert set(used) <= {f"{jobs.SLOT_PREFIX}{k}" for k in slot_servers}


@pytest.mark.parametrize(
    ("server", "tiers", "warmed"),
    [
        (True, {"executor": "opencode/fake/m"}, [0, 1]),
        (False, {"executor": "opencode/fake/m"}, []),  # `[opencode] server = false`
        (True, {"escalation": "opencode/fake/m"}, []),  # the first attempts call no server
    ],
)
def test_a_2_node_run_at_parallel_4_starts_its_2_first_slot_servers_before_any_attempt(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: bool,
    tiers: dict[str, str],
    warmed: list[int],
) -> None:
    # A plain `director run`: the slots the first wave takes (min(parallel, ready nodes))
    # get their servers right after recovery, in a worktree scrubbed first, so the first
    # executors do not pay the start themselves; no server for a slot nobody takes.
    binary = tmp_path / "opencode"
    binary.write_text("#!/bin/sh\nexit 1\n")  # a start that fails at once (no OpenCode)
    binary.chmod(0o755)
    monkeypatch.setenv("DIRECTOR_OPENCODE_BIN", str(binary))
    store = build_job(tmp_path, sample_nodes()[:2])  # add and mul: both ready at once
    ctx = run_context(store)
    ctx.config.opencode.server = server
    for role, tier in tiers.items():
        setattr(ctx.config.tiers, role, tier)
    plan = store.read_model(store.plan, Plan)
    assert plan is not None
    job_head = git.rev(store.repo, plan.job_branch)
    slots = [jobs.slot_worktree(store, k) for k in range(4)]
    # What an agent of an earlier run left in a kept slot: not what a server starts on.
    git.git(["worktree", "add", "-q", "--detach", str(slots[0]), job_head], store.repo)
    (slots[0] / "opencode.json").write_text('{"permission": "allow"}\n')
    at_first_attempt: dict[str, object] = {}

    class FirstWave:
        """Looks at the slots as the first attempt starts (the attempt itself fails)."""

        def __init__(self, core: RunCore, _windows: object) -> None:
            self.core = core

        async def run(self, spec: AttemptSpec, _sink: object) -> AttemptReport:
            if not at_first_attempt:
                registered = [k for k, wt in enumerate(slots) if ctx.servers.get(wt)]
                at_first_attempt["registered"] = registered
                at_first_attempt["writable"] = [
                    served.writable for wt in slots if (served := ctx.servers.get(wt))
                ]
                at_first_attempt["heads"] = [git.rev(slots[k], "HEAD") for k in registered]
                at_first_attempt["leftover"] = (slots[0] / "opencode.json").exists()
            return AttemptReport(exit_reason=ExitReason.crashed, message="no agent here")

    runner = Runner(ctx, plan, parallel=4, max_attempts=1, executor=FirstWave)
    asyncio.run(runner.run())
    assert at_first_attempt["registered"] == warmed
    assert at_first_attempt["writable"] == [True] * len(warmed)  # each its slot's, writable
    assert at_first_attempt["heads"] == [job_head] * len(warmed)
    assert at_first_attempt["leftover"] is not bool(warmed)  # scrubbed before its start
    assert not slots[2].exists() and not slots[3].exists()
    assert all(ctx.servers.get(wt) is None for wt in slots)  # stopped with the run


def test_one_more_server_pays_for_slow_sessions_or_one_under_way_longer_than_a_start(
    git_repo: Path,
) -> None:
    # Fast sessions: work waits for a warm server — but not behind a session that has
    # been under way longer than a server takes to start (hung, or a long one): it could
    # keep its slot until its timeout.
    servers = context(git_repo).servers
    assert servers.another_server_pays()  # nothing timed yet
    slot = servers.server(git_repo / "slot", writable=True, roles=("executor",), name="s")
    slot.start_secs.append(2.0)
    slot.session_secs.extend([0.3, 0.4, 0.2])
    assert not servers.another_server_pays()
    slot.sessions_since.append(time.monotonic() - 0.5)  # under way for 0.5 s
    assert not servers.another_server_pays()
    slot.sessions_since.append(time.monotonic() - 5.0)  # under way for 5 s
    assert servers.another_server_pays()
    slot.sessions_since.clear()
    slot.session_secs.extend([8.0] * 4)  # slow sessions: median 8 s
    assert servers.another_server_pays()


@pytest.mark.parametrize(
    ("first_session_secs", "early"),
    [(0.2, [0]), (30.0, [0, 1]), (None, [0, 1])],
    ids=["faster-than-a-start", "slower", "none-before-the-tests-stage"],
)
def test_the_second_early_slot_server_starts_only_once_the_planners_first_session_outlasts_a_start(
    git_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    first_session_secs: float | None,
    early: list[int],
) -> None:
    # Slot 0's server starts at once; slot 1's waits for the planner's first session:
    # faster than the planner's server took to start, none (test authors take turns in
    # slot 0); slower, it starts. A pass that reaches the tests stage with no session
    # yet (`prepared()`: the slots are wanted now) starts it, as before.
    monkeypatch.setenv("DIRECTOR_OPENCODE_BIN", str(_listening_after(0.2, tmp_path)))
    ctx = _unsandboxed(git_repo)
    ctx.config.limits.parallel = 4
    base = git.rev(git_repo)

    async def planning() -> tuple[list[int], list[int]]:
        async with ctx.servers.session():
            reader = ctx.servers.server(
                tmp_path / "job", writable=False, roles=("planner",), name="planner"
            )
            reader.start_secs.append(2.0)
            ctx.servers.prepare_soon(author_slots.warm_slots(ctx, "j", base, reader))
            # The explorer's session is under way: slot 0's worktree is made (a while
            # under load) and its server started; slot 1's would be made right after.
            for _ in range(200):
                if _served_slots(ctx):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            before = _served_slots(ctx)
            if first_session_secs is not None:
                reader.session_secs.append(first_session_secs)
            await ctx.servers.prepared()  # the tests stage wants the slots
            return before, _served_slots(ctx)

    before, after = asyncio.run(planning())
    assert before == [0]
    assert after == early


@pytest.mark.parametrize(
    ("session_secs", "slots_used", "slot_servers", "told"),
    [(0.2, [0], [0], 1), (30.0, [0, 1], [0, 1], 0)],
    ids=["sessions-faster-than-a-start", "sessions-slower"],
)
def test_a_run_whose_sessions_end_faster_than_a_start_waits_for_the_running_slot_server(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    session_secs: float,
    slots_used: list[int],
    slot_servers: list[int],
    told: int,
) -> None:
    # As `director auto` hands the run its test authors' slot servers: slot 0's is
    # running, and its sessions took `session_secs` each. Two nodes are ready at once:
    # with sessions faster than a server's start, the second waits for slot 0 instead of
    # starting slot 1's server (and the user is told why, once); with slow ones it
    # starts it, as before.
    monkeypatch.setenv("DIRECTOR_OPENCODE_BIN", str(_listening_after(0.5, tmp_path)))
    store = build_job(tmp_path, sample_nodes()[:2], config=SANDBOX_OFF)  # both ready
    ctx = run_context(store)
    ctx.config.tiers.executor = "opencode/fake/m"
    plan = store.read_model(store.plan, Plan)
    assert plan is not None
    used: list[int] = []
    registered: set[int] = set()

    class OnSlot:
        """Notes the slot its attempt holds and which slots have a server, then fails."""

        def __init__(self, core: RunCore, _windows: object) -> None:
            self.core = core

        async def run(self, spec: AttemptSpec, _sink: object) -> AttemptReport:
            assert self.core.slots is not None
            slot = self.core.slots.held_by(spec.node.id)
            assert slot is not None
            used.append(slot.index)
            for k in range(4):
                if ctx.servers.get(jobs.slot_worktree(store, k)) is not None:
                    registered.add(k)
            await asyncio.sleep(0.3)  # the session
            return AttemptReport(exit_reason=ExitReason.crashed, message="no agent here")

    async def auto_run() -> None:
        async with ctx.servers.session():
            slot0 = jobs.slot_worktree(store, 0)
            server = ctx.servers.server(slot0, writable=True, roles=("executor",), name="s0")
            git.git(["worktree", "add", "-q", "--detach", str(slot0), plan.job_branch], store.repo)
            await server.ensure_running()
            server.start_secs[:] = [2.0]
            server.session_secs.extend([session_secs] * 3)
            runner = Runner(ctx, plan, parallel=4, max_attempts=1, executor=OnSlot)
            await runner.run()

    notices: list[str] = []
    ctx.bus.subscribe(lambda e: notices.append(e.message) if isinstance(e, Notice) else None)
    asyncio.run(auto_run())
    assert sorted(set(used)) == slots_used  # (a crash is retried: attempts of both nodes)
    assert sorted(registered) == slot_servers
    waits = [m for m in notices if "waits for a slot whose OpenCode server is running" in m]
    assert len(waits) == told, notices


def test_clearing_a_slot_waits_for_its_server_starting_in_the_background(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A slot warmed right after recovery is still starting when its first attempt clears
    # it: the server's own processes are known only once it listens, and clearing before
    # would kill them as an agent's leftovers.
    binary = tmp_path / "opencode"
    binary.write_text(
        "#!/bin/sh\nsleep 60 &\nsleep 2\necho 'listening on http://127.0.0.1:9'\nwait\n"
    )
    binary.chmod(0o755)
    monkeypatch.setenv("DIRECTOR_OPENCODE_BIN", str(binary))
    config = Config.model_validate(
        {"tiers": dict.fromkeys(ROLES, "opencode/fake/m"), "sandbox": {"mode": "off"}}
    )
    ctx = EngineContext.open(Store(git_repo), config)
    slot = tmp_path / "slot"
    slot.mkdir()

    async def clear_while_starting() -> tuple[list[str], bool, bool]:
        async with ctx.servers.session():
            server = ctx.servers.server(slot, writable=True, roles=("executor",), name="s")
            ctx.servers.start_soon(server)
            for _ in range(100):  # until its own child runs (it listens 2 s later)
                await asyncio.sleep(0.05)
                if server.pid is not None and len(process_tree(server.pid)) > 1:
                    break
            assert server.endpoint is None  # starting, not listening yet
            stopped = await ctx.servers.clear(slot, since=0)
            return stopped, server.alive, len(process_tree(server.pid or 0)) > 1

    stopped, alive, child_alive = asyncio.run(clear_while_starting())
    assert stopped == []
    assert alive and child_alive


@pytest.mark.parametrize("how", ["clear", "stop"])
def test_a_daemon_a_tool_left_outside_the_worktree_and_the_servers_tree_is_stopped(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str
) -> None:
    # Without the OS sandbox's PID namespace, a tool's `setsid sh -c 'cd /; sleep 14;
    # echo late > $W/late.txt' &` is neither below the server nor working in the slot:
    # seen in a run, its late write landed in the slot's next attempt. What marks it as
    # this server's tools' is the environment it inherited.
    pidfile = tmp_path / "daemon.pid"
    binary = tmp_path / "opencode"
    binary.write_text(
        "#!/bin/sh\necho 'listening on http://127.0.0.1:9'\nsleep 0.5\n"
        f"(cd / && setsid sh -c 'echo $$ > {pidfile}; exec sleep 6003' >/dev/null 2>&1 &)\n"
        "exec sleep 60\n"
    )
    binary.chmod(0o755)
    monkeypatch.setenv("DIRECTOR_OPENCODE_BIN", str(binary))
    config = Config.model_validate(
        {"tiers": dict.fromkeys(ROLES, "opencode/fake/m"), "sandbox": {"mode": "off"}}
    )
    ctx = EngineContext.open(Store(git_repo), config)
    slot = tmp_path / "slot"
    slot.mkdir()
    other = psutil.Popen(["sleep", "60"], cwd="/")  # another server's tool, say: unmarked

    async def leave_a_daemon() -> tuple[int, bool]:
        async with ctx.servers.session():
            server = ctx.servers.server(slot, writable=True, roles=("executor",), name="s")
            await server.ensure_running()
            for _ in range(100):
                await asyncio.sleep(0.05)
                if pidfile.exists() and pidfile.read_text().strip():
                    break
            daemon = int(pidfile.read_text())
            assert psutil.Process(daemon).cwd() == "/"
            assert daemon not in process_tree(server.pid or 0)
            if how == "clear":
                await ctx.servers.clear(slot, since=0)
            else:
                await ctx.servers.stop(slot)
            return daemon, server.alive

    try:
        daemon, server_alive = asyncio.run(leave_a_daemon())
        assert gone(daemon)
        assert server_alive == (how == "clear")  # clearing never takes the server
        assert other.is_running()
    finally:
        other.kill()
        if pidfile.exists() and pidfile.read_text().strip():
            with contextlib.suppress(psutil.Error):
                psutil.Process(int(pidfile.read_text())).kill()


def gone(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _never_listening(tmp_path: Path) -> Path:
    """An `opencode` whose `serve` boots forever, with a child of its own (as a sandboxed
    server has its sandbox's init and the server below it)."""
    binary = tmp_path / "opencode"
    binary.write_text("#!/bin/sh\nsleep 300 &\nwait\n")
    binary.chmod(0o755)
    return binary


def _listening_after(secs: float, tmp_path: Path) -> Path:
    """An `opencode` whose `serve` says it listens after ``secs`` (nothing answers there:
    its priming fails, as a start may) and then stays up."""
    binary = tmp_path / "opencode"
    binary.write_text(
        f"#!/bin/sh\nsleep {secs}\necho 'opencode server listening on http://127.0.0.1:9'\n"
        "exec sleep 60\n"
    )
    binary.chmod(0o755)
    return binary


def _served_slots(ctx: EngineContext) -> list[int]:
    """Which of the first four slots have a server registered."""
    return [k for k in range(4) if ctx.servers.get(jobs.slot_worktree(ctx.store, k))]


def _unsandboxed(repo: Path) -> EngineContext:
    config = Config.model_validate(
        {"tiers": dict.fromkeys(ROLES, "opencode/fake/m"), "sandbox": {"mode": "off"}}
    )
    return EngineContext.open(Store(repo), config)


def _gone(pids: list[int]) -> bool:
    return not any(os.path.exists(f"/proc/{pid}") and _not_zombie(pid) for pid in pids)


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def test_a_start_cancelled_while_the_server_boots_leaves_no_process(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Ctrl-C while a server boots cancels its start: the process it spawned was left
    # running (in its sandbox's PID namespace it then outlived director).
    monkeypatch.setenv("DIRECTOR_OPENCODE_BIN", str(_never_listening(tmp_path)))
    ctx = _unsandboxed(git_repo)
    slot = tmp_path / "slot"
    slot.mkdir()

    async def cancel_mid_start() -> list[int]:
        server = ctx.servers.server(slot, writable=True, roles=("executor",), name="s")
        start = asyncio.ensure_future(server.ensure_running())
        for _ in range(100):
            await asyncio.sleep(0.05)
            if server.pid is not None and len(process_tree(server.pid)) > 1:
                break
        tree = list(process_tree(server.pid or 0))
        assert len(tree) > 1, "the fake server never started its child"
        start.cancel()
        with pytest.raises(asyncio.CancelledError):
            await start
        return tree

    tree = asyncio.run(cancel_mid_start())
    assert _gone(tree), tree


def test_a_server_stopped_by_the_registry_never_starts_again(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A background warm-up (the planning pass's) held the planner's server and started it
    # after the pass had stopped it as Ctrl-C ended the pass: a server nobody stopped.
    from director_tui.engine.agents.opencode_server import ServerStartError

    monkeypatch.setenv("DIRECTOR_OPENCODE_BIN", str(_never_listening(tmp_path)))
    ctx = _unsandboxed(git_repo)
    job = tmp_path / "job"
    job.mkdir()

    async def start_after_stop() -> tuple[int | None, int]:
        server = ctx.servers.server(job, writable=False, roles=("planner",), name="r")
        await ctx.servers.stop(job)
        with pytest.raises(ServerStartError, match="stopped for good"):
            await server.ensure_running()
        return server.pid, server.starts

    assert asyncio.run(start_after_stop()) == (None, 0)


def test_a_server_that_never_listens_fails_its_start_in_time_and_leaves_nothing(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The start-up timeout stopped the server with stop(), which waits for the lock the
    # start itself holds: the start hung for good instead of failing.
    from director_tui.engine.agents.opencode_server import ServerStartError

    monkeypatch.setenv("DIRECTOR_OPENCODE_BIN", str(_never_listening(tmp_path)))
    ctx = _unsandboxed(git_repo)
    slot = tmp_path / "slot"
    slot.mkdir()

    async def start() -> list[int]:
        server = ctx.servers.server(slot, writable=True, roles=("executor",), name="s")
        server.startup_timeout_secs = 1.0
        seen: list[int] = []

        async def watch() -> None:
            while True:
                seen[:] = sorted(set(seen) | set(process_tree(server.pid or 0)))
                await asyncio.sleep(0.05)

        watcher = asyncio.ensure_future(watch())
        try:
            async with asyncio.timeout(30):
                with pytest.raises(ServerStartError, match="did not listen within 1s"):
                    await server.ensure_running()
        finally:
            watcher.cancel()
        return seen

    tree = asyncio.run(start())
    assert tree and _gone(tree), tree
