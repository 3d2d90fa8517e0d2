"""Shared scaffolding for the plan-pipeline tests: a small Python repo, a scripted-provider
config, and script entries for every planning role."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from director_tui.engine.config import load_config
from director_tui.engine.context import EngineContext
from director_tui.engine.store import Store
from tests.conftest import make_repo

PY = sys.executable
SAMPLE_FILES = {
    "calc/__init__.py": "",
    "calc/ops.py": "def add(a: int, b: int) -> int:\n    return a + b\n",
    "tests/__init__.py": "",
    "tests/test_add.py": "from calc.ops import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    "README.md": "# calc\n",
}
SPEC = """# Multiply and divide

## Goal
Add `mul` and `div` to calc.ops.

## Assumptions
- ints only

## Design
`calc/ops.py`: `mul(a: int, b: int) -> int`; `calc/div.py`: `div(a, b) -> float`.

## Out of scope
Nothing else.

## Acceptance criteria
1. `mul(2, 3) == 6`
2. `div(6, 3) == 2.0`

## Open questions
None.
"""

RED_MUL = (
    "def test_mul():\n    from calc.ops import mul\n\n    assert mul(2, 3) == 6\n"
    "    assert mul(-1, 4) == -4\n"
)
RED_DIV = "def test_div():\n    from calc.div import div\n\n    assert div(6, 3) == 2.0\n"
SYNTAX_ERROR = "def test_mul(:\n    pass\n"
ALREADY_PASSING = "def test_mul():\n    assert 2 * 3 == 6\n"


def node(
    node_id: str, files: list[str], tests: list[str], depends_on: list[str] | None = None
) -> dict[str, Any]:
    return {
        "id": node_id,
        "title": f"implement {node_id}",
        "spec": f"Implement {node_id} in {files[0]}.",
        "files": files,
        "depends_on": depends_on or [],
        # Plugin autoload (textual's snapshot plugin…) costs ~1.3 s per run; the sample
        # repo needs none of them.
        "test_cmd": f"PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {PY} -m pytest -q -p no:cacheprovider "
        + " ".join(tests),
        "tests": tests,
        "estimated_difficulty": "easy",
    }


MUL = node("mul", ["calc/ops.py"], ["tests/test_mul.py"])
DIV = node("div", ["calc/div.py"], ["tests/test_div.py"])
GOOD_PLAN = {"nodes": [MUL, DIV]}


def entry(role: str, text: str = "", **kw: Any) -> dict[str, Any]:
    return {"role": role, "text": text, "tokens": {"input": 100, "output": 50}, "cost": 0.001, **kw}


def write_test(node_id: str, path: str, content: str, attempt: int | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {"node": node_id}
    if attempt is not None:
        extra["attempt"] = attempt
    return entry("test_author", "wrote tests", steps=[{"write": path, "content": content}], **extra)


def base_entries(planner_text: str | None = None) -> list[dict[str, Any]]:
    return [
        entry("explorer", "## Layout\ncalc/ops.py defines add(a, b).\n"),
        entry("brainstorm", "```markdown\n" + SPEC + "```"),
        entry("planner", planner_text if planner_text is not None else json.dumps(GOOD_PLAN)),
    ]


def good_tests() -> list[dict[str, Any]]:
    return [
        write_test("mul", "tests/test_mul.py", RED_MUL),
        write_test("div", "tests/test_div.py", RED_DIV),
    ]


def make_sample(
    tmp_path: Path,
    calls: list[dict[str, Any]],
    *,
    plan_retries: int = 2,
    extra_files: dict[str, str] | None = None,
) -> tuple[Path, Path]:
    """A sample repo configured for the scripted provider; returns (repo, script path)."""
    repo = make_repo(tmp_path / "repo", {**SAMPLE_FILES, **(extra_files or {})})
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"calls": calls}))
    (repo / ".director").mkdir()
    tier = "scripted/model"
    (repo / ".director" / "config.toml").write_text(
        "[tiers]\n"
        + "".join(
            f'{role} = "{tier}"\n'
            for role in ("planner", "test_author", "executor", "explorer", "reviewer", "escalation")
        )
        + f"\n[scripted]\nscript = {json.dumps(str(script))}\n"
        + f"\n[limits]\nplan_retries = {plan_retries}\ngate_timeout_secs = 120\n"
    )
    return repo, script


def set_script(script: Path, calls: list[dict[str, Any]]) -> None:
    script.write_text(json.dumps({"calls": calls}))


def context(repo: Path) -> EngineContext:
    store = Store(repo)
    return EngineContext.open(store, load_config(repo))


def git_out(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def user_view(repo: Path) -> dict[str, str]:
    """Everything about the user's checkout that director must never change."""
    return {
        "head": git_out(repo, "rev-parse", "HEAD"),
        "branch": git_out(repo, "symbolic-ref", "--short", "HEAD"),
        "status": git_out(repo, "status", "--porcelain=v1", "--untracked-files=all"),
        "index": git_out(repo, "ls-files", "-s"),
        "ops": (repo / "calc" / "ops.py").read_text(),
    }
