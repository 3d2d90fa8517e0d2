"""`director land` and `director clean` as a user runs them (real processes, real git):
the finished job merges into the user's branch only after the repository's gates pass on
the result; an unfinished job, a dirty checkout, a conflict or a red gate is refused with
the user's branch and files as they were; clean removes only merged director branches."""

from __future__ import annotations

from pathlib import Path

import pytest

from director_tui.engine import jobs
from director_tui.engine.store import Store
from tests.cli import director_on
from tests.conftest import run_git
from tests.run_fixture import JOB_ID, build_job, run, sample_nodes

JOB = jobs.job_branch(JOB_ID)


def finished_job(tmp_path: Path, gates: dict[str, str] | None = None) -> Store:
    store = build_job(tmp_path, sample_nodes()[:1], gates=gates)
    assert run(store).success
    return store


def head(repo: Path) -> str:
    return run_git(repo, "rev-parse", "HEAD")


def test_an_unfinished_job_or_a_dirty_checkout_is_refused_touching_nothing(
    tmp_path: Path,
) -> None:
    store = build_job(tmp_path, sample_nodes()[:1])
    repo, before = store.repo, head(store.repo)
    unrun = director_on(repo, "land")
    assert unrun.returncode == 2, unrun.stdout + unrun.stderr
    assert f"nothing to land: job {JOB_ID} has not run yet (`director run`)" in unrun.stderr
    assert run(store).success
    (repo / "README.md").write_text("my unsaved edit\n")
    dirty = director_on(repo, "land")
    assert dirty.returncode == 2
    assert "your checkout has uncommitted changes (README.md)" in dirty.stderr
    assert "git stash" in dirty.stderr
    assert (repo / "README.md").read_text() == "my unsaved edit\n"
    assert head(repo) == before and "Traceback" not in dirty.stderr


def test_land_fast_forwards_then_clean_removes_only_merged_branches(tmp_path: Path) -> None:
    store = finished_job(tmp_path)
    repo = store.repo
    landed = director_on(repo, "land")
    assert landed.returncode == 0, landed.stdout + landed.stderr
    assert f"landed {JOB} on main (fast-forward" in landed.stdout
    assert head(repo) == run_git(repo, "rev-parse", JOB)
    assert "return a + b" in (repo / "calc" / "add.py").read_text()
    again = director_on(repo, "land")
    assert again.returncode == 0 and "already in main: nothing to land" in again.stdout

    # a director branch with a commit found nowhere else is never removed
    run_git(repo, "branch", "director/job-other--lost", "HEAD")
    wt = tmp_path / "other"
    run_git(repo, "worktree", "add", "-q", str(wt), "director/job-other--lost")
    (wt / "only-here.txt").write_text("unmerged work\n")
    run_git(wt, "add", "-A")
    run_git(wt, "commit", "-q", "-m", "unmerged")
    run_git(repo, "worktree", "remove", str(wt))
    node_branch = jobs.node_branch(JOB_ID, "add")
    assert node_branch in run_git(repo, "branch", "--list", "director/*")

    cleaned = director_on(repo, "clean")
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"removed {node_branch} (merged into" in cleaned.stdout
    assert "kept    director/job-other--lost: has work not merged anywhere else" in cleaned.stdout
    # The job is landed: its worktree (nothing uncommitted) goes, then its branch.
    job_wt = jobs.job_worktree(store)
    assert f"removed worktree {job_wt} ({JOB} is merged into main)" in cleaned.stdout
    assert f"removed {JOB} (merged into main)" in cleaned.stdout
    assert not job_wt.exists() and not store.worktrees.exists()  # the repo's folder too
    left = run_git(repo, "branch", "--list", "director/*")
    assert node_branch not in left and "director/job-other--lost" in left and JOB not in left


def test_land_makes_a_merge_commit_when_the_user_moved_on(tmp_path: Path) -> None:
    store = finished_job(tmp_path)
    repo = store.repo
    (repo / "NOTES.md").write_text("mine\n")
    run_git(repo, "add", "NOTES.md")
    run_git(repo, "commit", "-q", "-m", "my own work")
    mine = head(repo)
    landed = director_on(repo, "land")
    assert landed.returncode == 0, landed.stdout + landed.stderr
    assert "(merge commit" in landed.stdout
    assert run_git(repo, "rev-parse", "HEAD^1") == mine
    assert run_git(repo, "rev-parse", "HEAD^2") == run_git(repo, "rev-parse", JOB)
    assert (repo / "NOTES.md").read_text() == "mine\n"
    assert "return a + b" in (repo / "calc" / "add.py").read_text()


def test_squash_lands_one_commit_with_the_jobs_tree(tmp_path: Path) -> None:
    store = finished_job(tmp_path)
    repo, before = store.repo, head(store.repo)
    landed = director_on(repo, "land", "--squash")
    assert landed.returncode == 0, landed.stdout + landed.stderr
    assert "(squash commit" in landed.stdout
    assert run_git(repo, "rev-list", "--parents", "-n", "1", "HEAD").split()[1:] == [before]
    assert run_git(repo, "rev-parse", "HEAD^{tree}") == run_git(
        repo, "rev-parse", f"{JOB}^{{tree}}"
    )


def test_a_result_that_fails_the_gates_is_not_landed(tmp_path: Path) -> None:
    store = finished_job(tmp_path, gates={"sane": "test ! -e BROKEN"})
    repo = store.repo
    (repo / "BROKEN").write_text("the user's branch now breaks the gate\n")
    run_git(repo, "add", "BROKEN")
    run_git(repo, "commit", "-q", "-m", "break it")
    before = head(repo)
    refused = director_on(repo, "land")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "the result fails your gates, so it was not landed" in refused.stderr
    assert "integration gate 'sane' failed: `test ! -e BROKEN`" in refused.stderr
    assert head(repo) == before and not (repo / "calc" / "add.py").read_text().count("a + b")
    assert "_land" not in run_git(repo, "worktree", "list")
    assert "Traceback" not in refused.stderr


def test_a_conflict_is_refused_with_the_files_and_the_branch_untouched(tmp_path: Path) -> None:
    store = finished_job(tmp_path)
    repo = store.repo
    (repo / "calc" / "add.py").write_text("def add(a, b):\n    return b + a  # mine\n")
    run_git(repo, "commit", "-q", "-am", "my own add")
    before = head(repo)
    refused = director_on(repo, "land")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"{JOB} does not merge cleanly into your branch (conflicts in calc/add.py)" in (
        refused.stderr
    )
    assert head(repo) == before and "# mine" in (repo / "calc" / "add.py").read_text()
    assert run_git(repo, "status", "--porcelain", "--untracked-files=no") == ""


def _author_and_committer(repo: Path) -> str:
    return run_git(repo, "log", "-1", "--format=%an <%ae> / %cn <%ce>")


def test_a_merge_commit_on_the_users_branch_is_made_as_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = finished_job(tmp_path)
    repo = store.repo
    for key in ("NAME", "EMAIL"):  # the identity git takes is the repository's config
        monkeypatch.delenv(f"GIT_AUTHOR_{key}")
        monkeypatch.delenv(f"GIT_COMMITTER_{key}")
    run_git(repo, "config", "user.name", "Ada Lovelace")
    run_git(repo, "config", "user.email", "ada@example.org")
    (repo / "NOTES.md").write_text("mine\n")
    run_git(repo, "add", "NOTES.md")
    run_git(repo, "commit", "-q", "-m", "my own work")
    landed = director_on(repo, "land")
    assert landed.returncode == 0, landed.stdout + landed.stderr
    assert "(merge commit" in landed.stdout and "note:" not in landed.stdout
    assert _author_and_committer(repo) == (
        "Ada Lovelace <ada@example.org> / Ada Lovelace <ada@example.org>"
    )


def test_without_a_git_identity_the_squash_commit_is_directors_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = finished_job(tmp_path)
    repo = store.repo
    for key in ("NAME", "EMAIL"):
        monkeypatch.delenv(f"GIT_AUTHOR_{key}")
        monkeypatch.delenv(f"GIT_COMMITTER_{key}")
    run_git(repo, "config", "--unset", "user.name")
    run_git(repo, "config", "--unset", "user.email")
    home = tmp_path / "empty-home"  # no ~/.gitconfig, no system config
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    landed = director_on(repo, "land", "--squash")
    assert landed.returncode == 0, landed.stdout + landed.stderr
    assert "note: your git config has no user.name/user.email" in landed.stdout
    assert "squash commit on main was made as director" in landed.stdout
    assert _author_and_committer(repo) == (
        "director <director@localhost> / director <director@localhost>"
    )
