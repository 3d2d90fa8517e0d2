"""A worktree base inside the user's checkout is refused (found by outside-in QA):
``DIRECTOR_WORKTREE_ROOT=wt`` run from the checkout (a relative path is taken from where
director runs) put the worktrees back in the user's tree — ``plan`` then stopped on its
own marker file as "uncommitted changes", after writing it, and ``doctor`` said the
folder was "outside the checkout". The same holds for ``~/.local/state`` when the
repository is the home folder (dotfiles)."""

from __future__ import annotations

from pathlib import Path

from director_tui.engine import worktree_home
from tests.cli import director
from tests.run_fixture import build_job, sample_nodes


def test_a_relative_worktree_root_run_from_the_checkout_is_refused_before_anything(
    tmp_path: Path,
) -> None:
    store = build_job(tmp_path, sample_nodes()[:1])
    repo = store.repo
    inside = {worktree_home.ROOT_ENV: "wt"}
    ran = director("run", "--no-tui", cwd=repo, env=inside)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert f"would be inside the repository {repo}" in ran.stderr, ran.stderr
    assert worktree_home.ROOT_ENV in ran.stderr and "Traceback" not in ran.stderr
    assert not (repo / "wt").exists()
    doctor = director("doctor", cwd=repo, env=inside)
    assert doctor.returncode == 1
    assert f"FIX  worktrees: {repo / 'wt'}" in doctor.stdout, doctor.stdout
    assert "is inside the checkout" in doctor.stdout
    assert "outside the checkout;" not in doctor.stdout
    assert not (repo / "wt").exists()
    # The same relative path from the folder above is outside: it works.
    beside = director("status", "--repo", "repo", cwd=tmp_path, env=inside)
    assert beside.returncode == 0, beside.stderr
