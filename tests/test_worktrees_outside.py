"""Director's worktrees live outside the user's checkout (engine/worktree_home.py): the
user's own tools (`node --test` here) see only the user's files, worktrees an older
version left in `.director/worktrees/` are moved out without losing uncommitted work, and
`director clean` removes only worktrees whose work is safe elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from director_tui.engine import git, jobs, worktree_home, worktree_moves
from director_tui.engine.events import Notice
from director_tui.engine.models import NodeState, NodeStatus, RunState
from director_tui.engine.store import Store
from tests.cli import director_here_on, director_on
from tests.conftest import make_repo, run_git
from tests.plan_helpers import entry, make_sample, write_test
from tests.run_fixture import JOB_ID, Recorder, build_job, run, sample_nodes, solve, write_script


# -- where ---------------------------------------------------------------------------------
def test_the_worktree_base_follows_the_override_then_xdg_then_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(worktree_home.ROOT_ENV, str(tmp_path / "override"))
    assert worktree_home.base() == tmp_path / "override"
    monkeypatch.delenv(worktree_home.ROOT_ENV)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert worktree_home.base() == tmp_path / "state" / "director" / "worktrees"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")  # the XDG spec: ignore it
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".local" / "state" / "director" / "worktrees"
    assert worktree_home.base() == expected


def test_each_repository_and_each_store_has_its_own_folder_outside_the_checkout(
    tmp_path: Path,
) -> None:
    one, two = make_repo(tmp_path / "a" / "app"), make_repo(tmp_path / "b" / "app")
    first, second = Store(one).worktrees, Store(two).worktrees
    assert first != second and first.name.startswith("app-") and second.name.startswith("app-")
    assert first.parent == second.parent == worktree_home.base()
    assert not first.is_relative_to(one)
    bench = Store(one, root=one / ".director" / "bench" / "b1" / "runs" / "p-1")
    assert bench.worktrees == first / "_stores" / "bench" / "b1" / "runs" / "p-1"
    Store(one).ensure()
    assert (one / ".director" / "worktree-root").read_text().strip() == str(first)
    assert (first / worktree_home.REPO_MARKER).read_text().strip() == str(one.resolve())


def test_directors_git_trusts_the_repo_marker_only_when_it_hashes_to_the_folder(
    tmp_path: Path,
) -> None:
    repo, other = make_repo(tmp_path / "repo"), make_repo(tmp_path / "other")
    store = Store(repo)
    store.ensure()
    worktree = store.worktrees / "n"
    git.add_worktree(repo, worktree, "director/n", start="HEAD")
    assert git.out(["rev-parse", "--show-toplevel"], worktree) == str(worktree.resolve())
    marker = store.worktrees / worktree_home.REPO_MARKER
    marker.write_text(f"{other}\n")  # a rewritten marker naming another repository
    # This process opened the repository: its worktrees stay known, whatever the marker.
    assert git.git(["status"], worktree, check=False).returncode == 0
    # A process that did not open it goes by the marker, and fails closed.
    status = "from director_tui.engine import git; import sys; "
    status += f"sys.exit(git.git(['status'], __import__('pathlib').Path({str(worktree)!r}), check=False).returncode)"
    assert subprocess.run([sys.executable, "-c", status], check=False).returncode != 0
    marker.write_text(f"{repo}\n")
    assert subprocess.run([sys.executable, "-c", status], check=False).returncode == 0
    stray = store.worktrees / "stray"  # a folder git's records do not know
    stray.mkdir()
    assert git.git(["status"], stray, check=False).returncode != 0


# -- a real Node.js repository ---------------------------------------------------------------
MUL_TEST = (
    "const test = require('node:test');\nconst assert = require('node:assert');\n"
    "const { mul } = require('../src/mul.js');\n"
    "test('mul multiplies', () => { assert.strictEqual(mul(2, 3), 6); });\n"
    "test('mul by zero', () => { assert.strictEqual(mul(5, 0), 0); });\n"
    "test('mul negative', () => { assert.strictEqual(mul(-2, 3), -6); });\n"
)
NODE_FILES = {
    "package.json": json.dumps({"name": "app", "scripts": {"test": "node --test"}}) + "\n",
    "src/sum.js": "exports.sum = (a, b) => a + b;\n",
    "src/mul.js": "exports.mul = () => NaN;\n",
    "test/sum.test.js": (
        "const test = require('node:test');\nconst assert = require('node:assert');\n"
        "const { sum } = require('../src/sum.js');\n"
        "test('sum adds', () => { assert.strictEqual(sum(2, 3), 5); });\n"
    ),
}
NODE_SPEC = """# Multiply

## Goal
Add `mul(a, b)` to src/mul.js.

## Assumptions
- numbers only

## Design
`src/mul.js` exports `mul`.

## Out of scope
Nothing else.

## Acceptance criteria
1. `mul(2, 3) === 6`

## Open questions
None.
"""
NODE_PLAN = {
    "nodes": [
        {
            "id": "mul",
            "title": "implement mul",
            "spec": "Implement mul in src/mul.js.",
            "files": ["src/mul.js"],
            "depends_on": [],
            "test_cmd": "node --test test/mul.test.js",
            "tests": ["test/mul.test.js"],
            "estimated_difficulty": "easy",
        }
    ]
}


def _node_test(where: Path) -> tuple[int, int]:
    """`node --test` in ``where`` as the user runs it: (tests run, tests failed)."""
    done = subprocess.run(
        ["node", "--test"], cwd=where, capture_output=True, text=True, timeout=120, check=False
    )
    counts = {
        line.split()[1]: int(line.split()[2])
        for line in done.stdout.splitlines()
        if line.startswith("# ") and len(line.split()) == 3 and line.split()[2].isdigit()
    }
    return counts["tests"], counts["fail"]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_node_test_in_the_users_checkout_runs_only_the_users_tests(tmp_path: Path) -> None:
    calls = [
        entry("explorer", "## Layout\nsrc/sum.js, tests under test/ (node --test).\n"),
        entry("brainstorm", "```markdown\n" + NODE_SPEC + "```"),
        entry("planner", json.dumps(NODE_PLAN)),
        write_test("mul", "test/mul.test.js", MUL_TEST),
        entry(
            "executor",
            "done",
            node="mul",
            steps=[
                {"run": "node --test test/mul.test.js"},
                {"write": "src/mul.js", "content": "exports.mul = (a, b) => a * b;\n"},
            ],
        ),
    ]
    repo, _ = make_sample(tmp_path, calls, extra_files=NODE_FILES)
    assert _node_test(repo) == (1, 0)

    for step in (["plan", "add mul", "--no-tui"], ["plan", "--continue", "--no-tui"]):
        out = director_on(repo, *step)
        assert out.returncode == 3, out.stdout + out.stderr  # Gate 1, then Gate 2
    assert "Gate 2" in out.stdout
    job_wt = jobs.job_worktree(Store(repo))
    assert str(job_wt) in out.stdout  # the next step says where the job's branch is
    # The job's red tests exist (three of them failing there) — outside the checkout.
    assert not job_wt.is_relative_to(repo) and (job_wt / "test" / "mul.test.js").is_file()
    assert _node_test(job_wt) == (4, 3)
    assert _node_test(repo) == (1, 0)

    approved = director_on(repo, "plan", "--continue", "--no-tui")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    ran = director_on(repo, "run", "--no-tui")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert _node_test(job_wt) == (4, 0)  # the job's work, where it belongs
    assert _node_test(repo) == (1, 0)
    status = run_git(repo, "status", "--porcelain", "--ignored").splitlines()
    assert status and all(line[3:].startswith(".director/") for line in status), status


# -- worktrees an older version left inside the checkout ------------------------------------
def _old_layout(store: Store) -> dict[str, Path]:
    """Worktrees made where an older director made them, as its interrupted run left
    them: the job's, a node's (with an uncommitted edit), a slot's and the test author's;
    no ``worktree-root`` marker (it did not write one)."""
    repo, old = store.repo, store.legacy_worktrees
    job = jobs.job_branch(JOB_ID)
    places = {name: old / name for name in ("_job", "add", "_slot-0", "_tests/mul")}
    run_git(repo, "worktree", "add", "-q", str(places["_job"]), job)
    run_git(repo, "worktree", "add", "-q", "-b", jobs.node_branch(JOB_ID, "add"),
            str(places["add"]), job)  # fmt: skip
    run_git(repo, "worktree", "add", "-q", "--detach", str(places["_slot-0"]), job)
    run_git(repo, "worktree", "add", "-q", "-b", f"director/tests-{JOB_ID}--mul",
            str(places["_tests/mul"]), job)  # fmt: skip
    (places["add"] / "calc" / "add.py").write_text("# half an attempt\n")
    (places["add"] / "notes.txt").write_text("untracked\n")
    (store.root / worktree_home.LOCATION_MARKER).unlink()
    return places


def _registered(repo: Path) -> list[Path]:
    return [t.path for t in worktree_moves.registered(repo)]


def test_a_job_left_in_the_old_layout_is_moved_out_and_runs(tmp_path: Path) -> None:
    """An older version's run killed mid-attempt: its node worktree (and a process its
    agent left running there) in .director/worktrees/, state.json naming that place."""
    nodes = sample_nodes()[:2]
    store = build_job(tmp_path, nodes)
    places = _old_layout(store)
    started = time.time() - 5
    orphan = subprocess.Popen(["sleep", "300"], cwd=places["add"])
    interrupted = NodeState(status=NodeStatus.running, attempts=1, worktree=str(places["add"]))
    state = RunState(job_id=JOB_ID, job_branch=jobs.job_branch(JOB_ID), started_at=started,
                     owner_pid=orphan.pid + 10**6, owner_create_time=started,
                     nodes={"add": interrupted, "mul": NodeState()})  # fmt: skip
    store.write_model(store.state, state)
    rec = Recorder()
    try:
        outcome = run(store, rec)
        assert orphan.wait(timeout=10) is not None
    finally:
        orphan.kill()
    assert outcome.success, outcome.message
    # Recovery found it where its folder moved (state.json named the old place).
    notes = [n.message for n in rec.of(Notice)]
    assert any("killed processes the interrupted run left behind" in n for n in notes), notes
    moved = [n.message for n in rec.of(Notice) if n.message.startswith("moved the worktree")]
    assert len(moved) == 4, moved
    assert not store.legacy_worktrees.exists()
    assert not [p for p in _registered(store.repo) if p.is_relative_to(store.repo)]
    assert jobs.job_worktree(store) in _registered(store.repo)
    assert all(not p.exists() for p in places.values())
    assert (store.root / "worktree-root").read_text().strip() == str(store.worktrees)


def test_moving_keeps_uncommitted_work_and_a_move_that_fails_leaves_it(tmp_path: Path) -> None:
    store = build_job(tmp_path, sample_nodes()[:2])
    places = _old_layout(store)
    doctor = director_here_on(store.repo, "doctor")
    legacy = store.legacy_worktrees
    assert f"FIX  worktrees: 4 left inside the checkout in {legacy}" in doctor.stdout
    notes = worktree_moves.relocate(store)
    doctor = director_here_on(store.repo, "doctor")
    assert f"note worktrees: {store.worktrees} (outside the checkout" in doctor.stdout
    assert "left inside the checkout" not in doctor.stdout
    node_wt = jobs.node_worktree(store, "add")
    assert f"moved the worktree {places['add']} to {node_wt}" in notes
    assert (node_wt / "calc" / "add.py").read_text() == "# half an attempt\n"
    assert (node_wt / "notes.txt").read_text() == "untracked\n"
    assert worktree_moves.relocate(store) == []  # all in place: nothing to say


@pytest.fixture
def other_filesystem(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A worktree base on another filesystem than the checkout (/dev/shm, a tmpfs):
    ``git worktree move`` only renames, so it fails there."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a filesystem of its own")
    base = Path(tempfile.mkdtemp(prefix="director-wt-", dir=shm))
    monkeypatch.setenv(worktree_home.ROOT_ENV, str(base))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_across_filesystems_clean_worktrees_are_made_again_dirty_ones_left(
    tmp_path: Path, other_filesystem: Path
) -> None:
    store = build_job(tmp_path, sample_nodes()[:2])
    places = _old_layout(store)
    notes = worktree_moves.relocate(store)
    left = [n for n in notes if n.startswith(f"left the worktree {places['add']}")]
    assert left and "could not be moved" in left[0], notes
    assert (places["add"] / "calc" / "add.py").read_text() == "# half an attempt\n"
    assert (places["add"] / "notes.txt").read_text() == "untracked\n"
    assert places["add"] in _registered(store.repo)  # git still knows it where it is
    assert jobs.job_worktree(store) in _registered(store.repo)  # clean: made again
    assert (jobs.job_worktree(store) / "calc" / "add.py").exists()
    assert not places["_slot-0"].exists() and not places["_job"].exists()
    assert any("removed the scratch worktree" in n for n in notes)
    assert (store.worktrees / "_tests" / "mul") in _registered(store.repo)
    assert store.worktrees.is_relative_to(other_filesystem)


# -- clean ------------------------------------------------------------------------------------
def test_clean_keeps_unmerged_and_uncommitted_work_and_removes_the_rest(tmp_path: Path) -> None:
    nodes = sample_nodes()[:2]
    store = build_job(tmp_path, nodes, limits={"max_attempts": 1})
    broken = {"role": "executor", "node": "mul", "steps": []}  # mul fails: nothing written
    write_script(store, [solve(nodes[0]), broken])
    assert not run(store).success
    repo = store.repo
    # Unmerged: the job branch (not landed) and a node branch with a commit of its own.
    mine = store.worktrees / "extra"
    git.add_worktree(repo, mine, jobs.node_branch(JOB_ID, "extra"), start="HEAD")
    (mine / "calc" / "extra.py").write_text("X = 1\n")
    git.commit_all(mine, "work of mine")
    # Uncommitted: an edit in a worktree whose commit is merged.
    scratch = store.worktrees / "_slot-0"
    run_git(repo, "worktree", "add", "-q", "--detach", str(scratch), "main")
    (scratch / "README.md").write_text("uncommitted\n")
    merged = store.worktrees / "_slot-1"
    run_git(repo, "worktree", "add", "-q", "--detach", str(merged), "main")

    cleaned = director_on(repo, "clean")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    job_wt = jobs.job_worktree(store)
    assert f"kept    {job_wt}: its branch {jobs.job_branch(JOB_ID)} has work" in cleaned.stdout
    assert f"kept    {mine}: its branch" in cleaned.stdout
    assert f"kept    {scratch}: has uncommitted changes" in cleaned.stdout
    assert f"removed worktree {merged} (detached at a commit a branch holds)" in cleaned.stdout
    assert (mine / "calc" / "extra.py").exists() and (scratch / "README.md").exists()
    assert job_wt.exists() and not merged.exists()


def test_a_new_job_keeps_the_previous_jobs_worktree_with_unsaved_edits(tmp_path: Path) -> None:
    """A new task while the last job's worktree holds the user's edits (its tests edited
    at Gate 2): that worktree is moved beside, never removed."""
    store = build_job(tmp_path, sample_nodes()[:1])
    old = jobs.ensure_job_worktree(store, jobs.job_branch(JOB_ID))
    (old / "calc" / "add.py").write_text("# my edit, not committed\n")
    run_git(store.repo, "branch", "director/job-next", "main")
    new = jobs.ensure_job_worktree(store, "director/job-next")
    assert new == old and run_git(new, "branch", "--show-current") == "director/job-next"
    [aside] = [t.path for t in worktree_moves.registered(store.repo) if ".unsaved-" in t.path.name]
    assert (aside / "calc" / "add.py").read_text() == "# my edit, not committed\n"
    cleaned = director_on(store.repo, "clean")
    assert f"kept    {aside}: has uncommitted changes" in cleaned.stdout


def test_an_unwritable_worktree_base_is_said_with_the_fix(tmp_path: Path) -> None:
    store = build_job(tmp_path, sample_nodes()[:1])
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    out = director_here_on(
        store.repo, "run", "--no-tui", env={worktree_home.ROOT_ENV: str(blocker / "wt")}
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"cannot make director's worktree folder {blocker / 'wt'}" in out.stderr
    assert worktree_home.ROOT_ENV in out.stderr and "Traceback" not in out.stderr
    doctor = director_here_on(store.repo, "doctor", env={worktree_home.ROOT_ENV: str(blocker)})
    assert f"FIX  worktrees: {blocker} is not a writable folder" in doctor.stdout
