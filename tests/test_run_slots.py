"""Slot worktrees and their clearing (engine/run/slots.py, jobs.point_slot_worktree,
proc.kill_below, SiblingWatch.place), on real git and real processes. The servers
themselves are exercised with the real OpenCode in tests/e2e/test_run_slots_e2e.py."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from gitrepo import make_repo, run_git

from director_tui.engine import git, jobs
from director_tui.engine.events import AgentStarted
from director_tui.engine.models import NodeStatus, RunState
from director_tui.engine.proc import kill_below, kill_orphans, process_tree
from director_tui.engine.run import scheduler
from director_tui.engine.sibling_watch import SiblingWatch
from director_tui.engine.store import Store
from tests.run_fixture import (
    Recorder,
    build_job,
    job_file,
    run,
    run_with_a_commit_after_the_gate,
    sample_nodes,
)


def _repo(tmp_path: Path) -> tuple[Store, str, str]:
    repo = make_repo(tmp_path / "repo", {"README.md": "# r\n", ".gitignore": "*.log\n"})
    store = Store(repo)
    store.ensure()
    base = run_git(repo, "rev-parse", "HEAD")
    (repo / "b.txt").write_text("b\n")
    run_git(repo, "add", "b.txt")
    run_git(repo, "commit", "-q", "-m", "b")
    later = run_git(repo, "rev-parse", "HEAD")
    return store, base, later


def test_a_slot_is_re_pointed_to_the_next_nodes_branch_with_nothing_left_over(
    tmp_path: Path,
) -> None:
    store, base, later = _repo(tmp_path)
    slot = jobs.slot_worktree(store, 0)
    jobs.point_slot_worktree(store, slot, "director/job-x--a", later)
    # What a rejected attempt leaves: a changed tracked file, untracked and ignored
    # files, a nested repository, a commit on its branch.
    (slot / "README.md").write_text("changed\n")
    (slot / "stray.txt").write_text("stray\n")
    (slot / "debug.log").write_text("ignored\n")
    (slot / "sub").mkdir()
    run_git(slot / "sub", "init", "-q")
    (slot / "sub" / "x").write_text("x\n")
    run_git(slot, "add", "README.md")
    run_git(slot, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "-m", "wip")
    folder_inode = slot.stat().st_ino

    jobs.release_slot_worktree(store, slot)
    jobs.point_slot_worktree(store, slot, "director/job-x--b", base)

    assert slot.stat().st_ino == folder_inode  # the same folder: the server's instance stays
    assert git.out(["rev-parse", "--abbrev-ref", "HEAD"], slot) == "director/job-x--b"
    assert git.out(["rev-parse", "HEAD"], slot) == base
    assert sorted(p.name for p in slot.iterdir()) == [".git", ".gitignore", "README.md"]
    assert (slot / "README.md").read_text() == "# r\n"
    # The first node's branch keeps its commit (it is what would merge), and is free.
    assert git.out(["log", "-1", "--format=%s", "director/job-x--a"], store.repo) == "wip"
    assert "director/job-x--a" not in git.worktree_branches(store.repo)


def test_a_slot_takes_its_node_branch_back_from_the_nodes_own_worktree(tmp_path: Path) -> None:
    """After a conflict's rebase the node's branch is checked out in its own worktree; its
    next attempt in a slot takes it from there (director's own worktree, removed)."""
    store, base, _later = _repo(tmp_path)
    own = jobs.node_worktree(store, "a")
    git.add_worktree(store.repo, own, "director/job-x--a", start=base)
    slot = jobs.slot_worktree(store, 1)
    jobs.point_slot_worktree(store, slot, "director/job-x--a", base)
    assert git.worktree_branches(store.repo)["director/job-x--a"].resolve() == slot.resolve()
    assert not own.exists()


def test_a_slot_whose_git_link_was_broken_is_made_anew(tmp_path: Path) -> None:
    store, base, later = _repo(tmp_path)
    slot = jobs.slot_worktree(store, 0)
    jobs.point_slot_worktree(store, slot, "director/job-x--a", base)
    (slot / ".git").unlink()
    (slot / "left.txt").write_text("x\n")
    jobs.point_slot_worktree(store, slot, "director/job-x--b", later)
    assert git.worktree_intact(store.repo, slot)
    assert not (slot / "left.txt").exists()
    assert git.out(["rev-parse", "HEAD"], slot) == later
    assert run_git(store.repo, "status", "--porcelain") == ""  # the user's checkout untouched


def _spawn(code: str, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], cwd=cwd, start_new_session=True)


def test_kill_below_stops_what_runs_under_a_server_but_not_its_own_processes(
    tmp_path: Path,
) -> None:
    """A stand-in server: a parent whose own helper child exists when it 'listens' (its
    machinery), then a tool's process started later under it, in the same group."""
    ready = tmp_path / "ready"
    tool = tmp_path / "tool"
    server = _spawn(
        "import subprocess, sys, time, pathlib\n"
        "helper = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"pathlib.Path({str(ready)!r}).write_text('ok')\n"
        f"while not pathlib.Path({str(tool)!r}).exists(): time.sleep(0.05)\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "time.sleep(60)\n",
        tmp_path,
    )
    try:
        while not ready.exists():
            time.sleep(0.05)
        time.sleep(0.2)
        machinery = frozenset(process_tree(server.pid))
        assert len(machinery) == 2  # the server and its helper
        tool.write_text("go")
        deadline = time.monotonic() + 20
        while len(process_tree(server.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        below = set(process_tree(server.pid)) - machinery
        assert len(below) == 1
        stopped = kill_below(server.pid, machinery)
        assert len(stopped) == 1 and str(next(iter(below))) in stopped[0]
        assert all(psutil.pid_exists(pid) for pid in machinery)
        assert set(process_tree(server.pid)) == machinery
    finally:
        for pid in process_tree(server.pid)[::-1]:
            psutil.Process(pid).kill()
        server.wait()


def test_kill_orphans_spares_a_server_working_in_the_same_folder(tmp_path: Path) -> None:
    """A sandboxed server's working directory is its slot's worktree: clearing the
    worktree's leftovers must not take it, nor its process group."""
    started = time.time() - 1.5
    server = _spawn("import time; time.sleep(60)", tmp_path)
    leftover = _spawn("import time; time.sleep(60)", tmp_path)
    try:
        time.sleep(0.3)
        stopped = kill_orphans([tmp_path], started_after=started, spare={server.pid})
        assert any(str(leftover.pid) in s for s in stopped), stopped
        leftover.wait(10)
        assert server.poll() is None
    finally:
        server.kill()
        leftover.kill()
        server.wait()


def test_a_write_into_a_slot_is_pinned_on_the_node_holding_it(tmp_path: Path) -> None:
    worktrees = tmp_path / "worktrees"
    watch = SiblingWatch(worktrees, ["add", "mul", "power"])
    watch.place("add", "_slot-0")
    watch.place("mul", "_slot-1")
    watch.note("add", "write", str(worktrees / "_slot-1" / "calc" / "mul.py"))
    watch.note("add", "bash", "echo x > ../power/calc/power.py")  # relative to _slot-0
    watch.note("add", "write", str(worktrees / "_slot-0" / "calc" / "add.py"))  # its own
    assert watch.writers_into("mul") == ["add"]
    assert watch.writers_into("power") == ["add"]
    assert watch.take_offences("add") == [
        f"node mul's {worktrees}/_slot-1/calc/mul.py (write)",
        "node power's ../power/calc/power.py (bash)",
    ]
    # Once mul let its slot go, the slot is no one's: add's own writes there are its own
    # only when it holds it.
    watch.place("mul", None)
    watch.place("add", None)
    watch.place("add", "_slot-1")
    watch.note("add", "write", str(worktrees / "_slot-1" / "calc" / "add.py"))
    assert watch.take_offences("add") == []


@pytest.fixture
def slots_for_every_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs take slots whatever the provider (only OpenCode tiers get a server): so the
    slot lease, re-pointing and the merge queue's own-worktree path run on the scripted
    provider, fast."""
    monkeypatch.setattr(scheduler, "uses_slots", lambda _core: True)


@pytest.mark.usefixtures("slots_for_every_provider")
def test_a_scripted_run_in_two_slots_merges_every_node_and_leaves_no_worktree(
    tmp_path: Path,
) -> None:
    store = build_job(tmp_path, gates={"all": "python tests/check_power.py"})
    rec = Recorder()
    outcome = run(store, rec, parallel=2)
    assert outcome.success, outcome.message
    for spec in sample_nodes():
        assert job_file(store, spec.impl_path) == spec.solution
    # Each node worked in a slot; the state names the node, the worktree was a slot's.
    started = [e for e in rec.of(AgentStarted) if e.role == "executor"]
    assert {e.node_id for e in started} == {"add", "mul", "power"}
    assert not list(store.worktrees.glob("_slot-*"))
    assert not any(jobs.node_worktree(store, s.id).exists() for s in sample_nodes())


@pytest.mark.usefixtures("slots_for_every_provider")
def test_a_merge_conflict_in_a_slot_reruns_the_node_from_a_clean_slot(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes)
    add = nodes[0]
    outcome, _ = run_with_a_commit_after_the_gate(store, add)
    assert outcome.success, outcome.message
    state = store.read_model(store.state, RunState)
    assert state is not None
    assert state.nodes["add"].conflicts == 1 and state.nodes["add"].status == NodeStatus.done
    assert job_file(store, add.impl_path) == add.solution
    assert not jobs.node_worktree(store, "add").exists()
