"""The user's own linked worktrees are never director's to move or remove (found by
outside-in QA): ``.director/worktree-root`` is a plain file an agent with the sandbox off
(or anything else) can rewrite, and the next ``plan``, ``run`` or ``clean`` moved every
linked worktree below the folder it named into director's folder — then ``clean`` removed
the user's one ("feature is merged into feature"). The worktree folder's
``.director-repo`` marker, rewritten by such an agent, made director's own git fail
closed on every command of the run ("not a git repository")."""

from __future__ import annotations

from pathlib import Path

from director_tui.engine import worktree_home, worktree_moves
from director_tui.engine.events import Notice
from tests.cli import director_on
from tests.conftest import run_git
from tests.run_fixture import SANDBOX_OFF, build_job, sample_nodes
from tests.test_outside_worktree import _first_attempt_rejected


def _registered(repo: Path) -> list[Path]:
    return [t.path for t in worktree_moves.registered(repo)]


def test_a_marker_naming_the_users_folder_moves_and_removes_none_of_their_worktrees(
    tmp_path: Path,
) -> None:
    store = build_job(tmp_path, sample_nodes()[:1])
    repo = store.repo
    mine = tmp_path / "feature-work"  # beside the checkout, as people keep them
    run_git(repo, "worktree", "add", "-q", "-b", "feature", str(mine))
    (store.root / worktree_home.LOCATION_MARKER).write_text(f"{tmp_path}\n")

    cleaned = director_on(repo, "clean")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert str(mine) not in cleaned.stdout, cleaned.stdout
    assert mine in _registered(repo) and (mine / "calc").is_dir()
    marker = (store.root / worktree_home.LOCATION_MARKER).read_text().strip()
    assert marker == str(store.worktrees)  # the current place, written back
    # A folder director made (named <repo>-<hash>, the repository's name then) counts.
    earlier = tmp_path / "old-base" / "repo-0123456789ab"
    (store.root / worktree_home.LOCATION_MARKER).write_text(f"{earlier}\n")
    assert worktree_home.recorded_location(store.root) == earlier
    (store.root / worktree_home.LOCATION_MARKER).write_text(f"{earlier / '_stores' / 'b'}\n")
    assert worktree_home.recorded_location(store.root) == earlier / "_stores" / "b"
    (store.root / worktree_home.LOCATION_MARKER).write_text(f"{earlier / 'feature'}\n")
    assert worktree_home.recorded_location(store.root) is None


def test_clean_leaves_a_worktree_on_the_users_branch_even_in_directors_folder(
    tmp_path: Path,
) -> None:
    store = build_job(tmp_path, sample_nodes()[:1])
    repo = store.repo
    mine = store.worktrees / "mine"
    run_git(repo, "worktree", "add", "-q", "-b", "feature", str(mine))  # merged: main's head
    cleaned = director_on(repo, "clean")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert str(mine) not in cleaned.stdout, cleaned.stdout
    assert mine in _registered(repo) and (mine / "calc").is_dir()


def test_an_executor_that_rewrites_the_worktree_marker_is_rejected_and_it_is_put_back(
    tmp_path: Path,
) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, config=SANDBOX_OFF)
    marker = store.root / worktree_home.LOCATION_MARKER
    before = marker.read_bytes()
    rec, rejected = _first_attempt_rejected(store, nodes[0], f"echo / > {marker}")
    assert ".director/worktree-root" in rejected.message, rejected.message
    assert any("restored .director/worktree-root" in n.message for n in rec.of(Notice))
    assert marker.read_bytes() == before


def test_an_executor_that_rewrites_the_repo_marker_fails_alone_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, config=SANDBOX_OFF)
    marker = store.worktrees / worktree_home.REPO_MARKER
    before = marker.read_bytes()
    rec, rejected = _first_attempt_rejected(store, nodes[0], f"echo w > {marker}")
    assert str(marker) in rejected.message, rejected.message
    assert any(f"restored {marker}" in n.message for n in rec.of(Notice))
    assert marker.read_bytes() == before
