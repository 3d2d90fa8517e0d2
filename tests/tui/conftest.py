"""Fixtures for the TUI tests: sample repositories at each stage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.gitrepo import make_repo
from tests.support.sample_job import write_sample


@pytest.fixture
def sample_repo(tmp_path: Path) -> Callable[[str], Path]:
    def build(stage: str) -> Path:
        repo = make_repo(tmp_path / f"repo-{stage}")
        write_sample(repo, stage)  # type: ignore[arg-type]
        return repo

    return build
