"""`director init` starts from what the repository is: a Node.js repository gets its
package.json scripts as gates and node_modules ignored — not `python -m pytest -q`,
`__pycache__` and prices for tiers nobody chose (found by a new user)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from tests.cli import director_on
from tests.conftest import make_repo


def config_of(repo: Path) -> dict[str, object]:
    return tomllib.loads((repo / ".director" / "config.toml").read_text())


def test_a_node_repository_gets_its_scripts_as_gates(tmp_path: Path) -> None:
    package = {"name": "app", "scripts": {"test": "node --test", "lint": "eslint ."}}
    repo = make_repo(tmp_path / "node", {"package.json": json.dumps(package), "yarn.lock": ""})
    out = director_on(repo, "init", "--no-input", "--executor", "opencode/ollama/qwen3-coder")
    assert out.returncode == 0, out.stderr
    config = config_of(repo)
    assert config["gates"] == {"lint": "yarn run lint", "test": "yarn test"}
    ignore = config["repository"]["ignore"]  # type: ignore[index]
    assert "node_modules/**" in ignore and "**/__pycache__/**" not in ignore
    assert "detected: Node.js (yarn)" in out.stdout
    # prices only for the tiers chosen: the example's haiku entry went with the executor
    pricing = config["pricing"]
    assert "opencode/anthropic/claude-haiku-4-5" in pricing  # still the explorer's tier
    assert all(tier in json.dumps(config["tiers"]) for tier in pricing)  # type: ignore[union-attr]


def test_go_rust_python_and_make_are_recognised(tmp_path: Path) -> None:
    cases = {
        "go": ({"go.mod": "module x\n"}, {"vet": "go vet ./...", "test": "go test ./..."}),
        "rust": ({"Cargo.toml": "[package]\nname='x'\n"}, {"test": "cargo test"}),
        "py": (
            {"pyproject.toml": "[tool.ruff]\n[tool.mypy]\n"},
            {"lint": "ruff check .", "typecheck": "mypy .", "test": "python -m pytest -q"},
        ),
        "make": ({"Makefile": "check:\n\ttrue\n"}, {"test": "make check"}),
    }
    for name, (files, gates) in cases.items():
        repo = make_repo(tmp_path / name, files)
        out = director_on(repo, "init", "--no-input")
        assert out.returncode == 0, out.stderr
        assert config_of(repo)["gates"] == gates, name


def test_a_gate_given_on_the_command_line_wins(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"go.mod": "module x\n"})
    out = director_on(repo, "init", "--no-input", "--gate", "test=make t")
    assert out.returncode == 0, out.stderr
    assert config_of(repo)["gates"] == {"test": "make t"}
