"""The CLI as a user meets it: help, clear errors with exit code 2, init, status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from director_tui.engine import config as cfg
from tests.cli import director


def test_help_teaches_the_flow(tmp_path: Path) -> None:
    out = director("--help", cwd=tmp_path)
    assert out.returncode == 0
    for word in (
        "plan",
        "run",
        "status",
        "bench",
        "init",
        "sync-agents",
        "tui",
        "demo",
        "exit codes",
    ):
        assert word in out.stdout


def test_plain_director_off_a_terminal_prints_help_and_exits_2(tmp_path: Path) -> None:
    out = director(cwd=tmp_path)
    assert out.returncode == 2 and "usage" in out.stdout


def test_not_a_git_repo_is_a_clear_usage_error(tmp_path: Path) -> None:
    out = director("status", "--repo", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 2
    assert "not inside a git repository" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / ".director").exists()


def test_repo_pointing_at_a_file_is_a_clear_usage_error(git_repo: Path) -> None:
    out = director("status", "--repo", str(git_repo / "README.md"), cwd=git_repo)
    assert out.returncode == 2, out.stderr
    assert "is a file, not a folder" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_git_is_a_clear_usage_error(git_repo: Path, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(sys.executable, bindir / "python")
    out = director("status", cwd=git_repo, env={"PATH": str(bindir)})
    assert out.returncode == 2 and "git is not installed" in out.stderr
    assert "Traceback" not in out.stderr


def test_broken_config_is_exit_2_with_location(git_repo: Path) -> None:
    (git_repo / ".director").mkdir()
    (git_repo / ".director/config.toml").write_text("[limits\nparallel = 2\n")
    out = director("init", "--executor", "scripted/x", cwd=git_repo)
    assert out.returncode == 2
    assert "config.toml" in out.stderr and "line 1" in out.stderr
    assert "Traceback" not in out.stderr
    assert (git_repo / ".director/config.toml").read_text() == "[limits\nparallel = 2\n"


def test_init_with_flags_writes_a_commented_valid_config(git_repo: Path) -> None:
    out = director(
        "init",
        "--executor",
        "scripted/cheap",
        "--gate",
        "test=pytest -q",
        "--gate",
        "lint=ruff check .",
        cwd=git_repo,
    )
    assert out.returncode == 0, out.stderr
    text = (git_repo / ".director/config.toml").read_text()
    assert "# Switching a model is an edit here" in text
    config = cfg.load_config(git_repo)
    assert config.tiers.executor == "scripted/cheap"
    assert config.gate_commands() == [("test", "pytest -q"), ("lint", "ruff check .")]
    assert ".director/*" in (git_repo / ".gitignore").read_text()
    # running it again changes nothing and says so
    again = director("init", cwd=git_repo)
    assert again.returncode == 0 and "already exists" in again.stdout


def test_init_rejects_an_unknown_provider_and_writes_nothing(git_repo: Path) -> None:
    out = director("init", "--executor", "llamafile/x", cwd=git_repo)
    assert out.returncode == 2
    assert "unknown provider 'llamafile'" in out.stderr
    assert not (git_repo / ".director/config.toml").exists()


def test_status_json_on_a_fresh_repo(git_repo: Path) -> None:
    out = director("status", "--json", cwd=git_repo)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["job"] is None and data["nodes"] == [] and data["cost"]["calls"] == 0


@pytest.mark.parametrize("module", ["director_tui.cli", "director_tui.engine.context"])
def test_headless_paths_never_import_textual(module: str, git_repo: Path) -> None:
    code = (
        f"import sys, importlib; importlib.import_module({module!r});"
        "from director_tui.cli import main;"
        "import contextlib, io;"
        "buf = io.StringIO();"
        "ctx = contextlib.redirect_stdout(buf);"
        "ctx.__enter__();"
        f"rc = main(['status', '--repo', {str(git_repo)!r}]);"
        "\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "ctx.__exit__(None, None, None);"
        "print(sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
