"""The embedded demo repository: real, red before the work, green with the solutions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from director_tui import demo
from director_tui.engine import dag
from director_tui.engine.agents.scripted import Script
from director_tui.engine.config import load_config, load_profile
from director_tui.engine.models import Plan


def pytest_run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest as the demo's gates run it: without this venv's plugins (demo.PYTEST), which
    cost ~0.75 s of CPU a start and none of which the sample's tests use."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )


def test_demo_repo_is_a_clean_git_repo_with_valid_config(tmp_path: Path) -> None:
    repo = demo.create_demo_repo(tmp_path / "demo")
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert status.stdout == ""
    config = load_config(repo)
    assert config.providers_used() == {"scripted"}
    assert load_profile(repo, "all-frontier").tiers.executor == "scripted/frontier"
    assert load_profile(repo, "cheap-cloud").tiers.executor == "scripted/cheap"
    Script.model_validate_json((repo / ".director/script.json").read_text())
    with pytest.raises(FileExistsError):
        demo.create_demo_repo(repo)


def test_the_scripted_plan_is_valid_and_has_parallel_layers() -> None:
    plan = Plan.model_validate(demo.plan_json(sys.executable))
    assert dag.validate(plan) == []
    layers = dag.layers(plan)
    assert 4 <= len(plan.nodes) <= 6
    assert max(len(layer) for layer in layers) >= 2


def failed_files(run: subprocess.CompletedProcess[str]) -> set[str]:
    """The test files with a failing test, from pytest's ``-rf`` summary lines."""
    return {
        line.split()[1].split("::")[0]
        for line in run.stdout.splitlines()
        if line.startswith("FAILED ")
    }


def test_tests_are_red_before_and_green_with_the_solutions(tmp_path: Path) -> None:
    # One pytest run per phase, not one per file (a pytest start costs seconds): exit 1 is
    # "tests failed" (a collection error is 2), and each file must have a failure of its own.
    repo = demo.create_demo_repo(tmp_path / "demo")
    data = Path(demo.__file__).parent
    tests = {}
    for node_id, (_impl, test, *_rest) in demo.NODES.items():
        shutil.copy(data / "node_tests" / Path(test).name, repo / test)
        tests[node_id] = test
    red = pytest_run(repo, "-rf", *tests.values())
    assert red.returncode == 1, red.stdout[-2000:]  # failing, not broken
    assert failed_files(red) == set(tests.values()), red.stdout[-2000:]
    for solution in ("tokenize", "stopwords", "table", "counter", "cli"):
        shutil.copy(data / "solutions" / f"{solution}.py", repo / "wordfreq" / f"{solution}.py")
    green = pytest_run(repo)
    assert green.returncode == 0, green.stdout[-2000:]
    # and the deliberately wrong attempts really fail their node's tests (counter and
    # table import neither each other, so each file's failure is its own wrong attempt)
    wrong = {"counter": "tests/test_counter.py", "table": "tests/test_table.py"}
    for name in wrong:
        shutil.copy(data / "solutions" / f"{name}_wrong.py", repo / "wordfreq" / f"{name}.py")
    broken = pytest_run(repo, "-rf", *wrong.values())
    assert broken.returncode == 1, broken.stdout[-2000:]
    assert failed_files(broken) == set(wrong.values()), broken.stdout[-2000:]


def test_script_covers_every_role_and_node() -> None:
    script = demo.demo_script(sys.executable)
    roles = {entry["role"] for entry in script["calls"]}
    assert roles >= {
        "explorer",
        "brainstorm",
        "planner",
        "critic",
        "test_author",
        "executor",
        "reviewer",
    }
    for node_id in demo.NODES:
        assert any(e.get("node") == node_id and e["role"] == "executor" for e in script["calls"])
        assert any(e.get("node") == node_id and e["role"] == "test_author" for e in script["calls"])
    json.dumps(script)
