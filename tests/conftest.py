"""Shared fixtures: real git repositories in temp folders, never the user's config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gitrepo import make_repo, run_git

__all__ = ["make_repo", "run_git"]  # other test modules import them from here


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
