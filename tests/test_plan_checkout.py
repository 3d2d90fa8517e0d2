"""`director init`'s .gitignore lines do not make the checkout "dirty" for planning;
any other uncommitted change still does."""

from __future__ import annotations

from pathlib import Path

import pytest

from director_tui.engine import git
from director_tui.engine.errors import UsageError
from director_tui.engine.plan import check_checkout
from director_tui.engine.store import RUNTIME_IGNORES
from tests.gitrepo import make_repo


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
