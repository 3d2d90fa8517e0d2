"""`director init`'s .gitignore lines do not make the checkout "dirty" for planning;
any other uncommitted change still does."""

from __future__ import annotations

from pathlib import Path

import pytest

from director_tui.engine import git
from director_tui.engine.errors import UsageError
from director_tui.engine.plan import check_checkout
from director_tui.engine.store import RUNTIME_IGNORES
from tests.gitrepo import make_repo, run_git


def test_init_lines_added_to_a_committed_gitignore_are_allowed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {".gitignore": "build/\n", "a.py": "x = 1\n"})
    assert git.ensure_gitignore(repo, RUNTIME_IGNORES)
    branch, _commit = check_checkout(repo)
    assert branch


def test_a_new_gitignore_holding_only_our_lines_is_allowed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.py": "x = 1\n"})
    assert git.ensure_gitignore(repo, RUNTIME_IGNORES)
    check_checkout(repo)


def test_a_users_own_gitignore_edit_is_still_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {".gitignore": "build/\n", "a.py": "x = 1\n"})
    git.ensure_gitignore(repo, RUNTIME_IGNORES)
    with (repo / ".gitignore").open("a", encoding="utf-8") as fh:
        fh.write("secrets.env\n")
    with pytest.raises(UsageError, match=r"\.gitignore"):
        check_checkout(repo)


def test_a_removed_gitignore_line_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {".gitignore": "build/\n", "a.py": "x = 1\n"})
    (repo / ".gitignore").write_text("")
    git.ensure_gitignore(repo, RUNTIME_IGNORES)
    with pytest.raises(UsageError, match="uncommitted changes"):
        check_checkout(repo)


def test_a_merge_with_its_conflicts_resolved_but_not_committed_is_refused(
    tmp_path: Path,
) -> None:
    """The tree is clean once the conflict is staged, but planning would branch from the
    commit before the merge: refused, with how to finish it (found by outside-in QA)."""
    repo = make_repo(tmp_path / "r", {"f.txt": "base\n"})
    run_git(repo, "checkout", "-q", "-b", "theirs")
    (repo / "f.txt").write_text("theirs\n")
    run_git(repo, "commit", "-qam", "theirs")
    run_git(repo, "checkout", "-q", "-")
    (repo / "f.txt").write_text("ours\n")
    run_git(repo, "commit", "-qam", "ours")
    git.git(["merge", "-q", "theirs"], repo, check=False)  # conflicts
    (repo / "f.txt").write_text("ours\n")  # resolved as ours: nothing left to commit but the merge
    run_git(repo, "add", "f.txt")
    assert git.dirty_files(repo) == []
    with pytest.raises(UsageError, match="a merge is in progress") as refused:
        check_checkout(repo)
    assert "git merge --abort" in (refused.value.hint or "")


def test_a_branch_named_director_is_refused_with_the_way_out(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.py": "x = 1\n"})
    run_git(repo, "branch", "director")
    with pytest.raises(UsageError, match="a branch named 'director' exists") as refused:
        check_checkout(repo)
    assert "git branch -m director" in (refused.value.hint or "")


def test_committed_runtime_files_are_refused_but_config_and_profiles_are_fine(
    tmp_path: Path,
) -> None:
    """A director-cli user who committed .director/plan.json: planning would rewrite a
    tracked file in their checkout (found by outside-in QA)."""
    files = {".director/config.toml": "", ".director/profiles/a.toml": "", "a.py": "x = 1\n"}
    repo = make_repo(tmp_path / "r", files)
    check_checkout(repo)
    (repo / ".director" / "plan.json").write_text("{}\n")
    run_git(repo, "add", "-f", ".director/plan.json")
    run_git(repo, "commit", "-qm", "director-cli state")
    with pytest.raises(UsageError, match=r"runtime files are committed.*\.director/plan\.json"):
        check_checkout(repo)
