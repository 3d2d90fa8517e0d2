"""Shared fixtures: real git repositories in temp folders, never the user's config."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from gitrepo import make_repo, run_git

__all__ = ["make_repo", "run_git"]  # other test modules import them from here


def _share_compiled_bytecode() -> None:
    """Every Python the suite starts (``director`` subprocesses, the gates' pytest, tmux
    apps, Ray workers, the xdist workers themselves) reads and writes its bytecode in one
    folder in the venv. With PYTHONDONTWRITEBYTECODE set (as on this CI's machines) each of
    those processes compiled director_tui from source, and each inner pytest re-rewrote
    the asserts of its plugins' 140 modules (hypothesis among them): ~8 s a pytest start
    on a loaded 2-core machine, paid by every pytest gate. The folder keeps the tests'
    repositories free of __pycache__ (the reason to set that variable); it sits outside
    /tmp and ~, so a sandboxed gate sees it (read-only) too. Bytecode is checked against
    its source's mtime and size, so a stale entry is recompiled, never run."""
    if "PYTHONPYCACHEPREFIX" in os.environ or not os.access(sys.prefix, os.W_OK):
        return
    prefix = Path(sys.prefix) / "pycache-tests"
    os.environ["PYTHONPYCACHEPREFIX"] = str(prefix)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.pycache_prefix = str(prefix)
    sys.dont_write_bytecode = False


_share_compiled_bytecode()  # at import: before xdist starts its workers with this env


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads or writes the developer's ~/.director, nor (through an agent CLI,
    real or fake) their home."""
    home = tmp_path_factory.mktemp("director-home")
    monkeypatch.setenv("DIRECTOR_HOME", str(home))
    monkeypatch.setenv("DIRECTOR_AGENT_HOME", str(tmp_path_factory.mktemp("agent-home")))
    # Director's worktrees (outside the checkout) never go to the developer's state dir.
    monkeypatch.setenv("DIRECTOR_WORKTREE_ROOT", str(tmp_path_factory.mktemp("worktrees")))
    # Nor the model checks that passed: each test asks its (fake) OpenCode afresh.
    monkeypatch.setenv(
        "DIRECTOR_MODEL_CHECK_CACHE", str(tmp_path_factory.mktemp("state") / "model-checks.json")
    )
    monkeypatch.setenv("GIT_AUTHOR_NAME", "test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.com")


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    return env
