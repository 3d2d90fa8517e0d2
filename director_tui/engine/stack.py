"""What kind of repository this is, for `director init`'s starting gates and ignores.

Read from the files a stack is known by (package.json and its scripts, pyproject.toml,
go.mod, Cargo.toml, a Makefile's targets); nothing is run. A repository of several stacks
gets each one's gates, the first named ``test``; one of none keeps the example's.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class StackGuess:
    names: list[str] = field(default_factory=list)  # "Node.js (npm)", "Python", …
    gates: dict[str, str] = field(default_factory=dict)  # in the order they should run
    ignore: list[str] = field(default_factory=list)

    def add_gate(self, name: str, command: str) -> None:
        key = name if name not in self.gates else f"{name}_{len(self.gates)}"
        self.gates[key] = command

    def add_ignore(self, *globs: str) -> None:
        self.ignore += [g for g in globs if g not in self.ignore]


PYTHON_IGNORES = ("**/__pycache__/**", "*.pyc", ".pytest_cache/**")


def _node(repo: Path, guess: StackGuess) -> None:
    try:
        package = json.loads((repo / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    scripts = package.get("scripts") if isinstance(package, dict) else None
    scripts = scripts if isinstance(scripts, dict) else {}
    runner = "npm"
    for lock, name in (("pnpm-lock.yaml", "pnpm"), ("yarn.lock", "yarn"), ("bun.lockb", "bun")):
        if (repo / lock).exists():
            runner = name
    guess.names.append(f"Node.js ({runner})")
    for script in ("lint", "typecheck", "test"):
        if script in scripts:
            guess.add_gate(
                script, f"{runner} test" if script == "test" else f"{runner} run {script}"
            )
    guess.add_ignore("node_modules/**", "coverage/**")


def _python(repo: Path, guess: StackGuess) -> None:
    markers = ("pyproject.toml", "setup.py", "setup.cfg", "pytest.ini", "tox.ini")
    if not any((repo / m).exists() for m in markers):
        return
    guess.names.append("Python")
    tools: dict[str, object] = {}
    try:
        data = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
        found = data.get("tool")
        tools = found if isinstance(found, dict) else {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        pass
    if "ruff" in tools:
        guess.add_gate("lint", "ruff check .")
    if "mypy" in tools:
        guess.add_gate("typecheck", "mypy .")
    guess.add_gate("test", "python -m pytest -q")
    guess.add_ignore(*PYTHON_IGNORES)


def _go(repo: Path, guess: StackGuess) -> None:
    if (repo / "go.mod").exists():
        guess.names.append("Go")
        guess.add_gate("vet", "go vet ./...")
        guess.add_gate("test", "go test ./...")


def _rust(repo: Path, guess: StackGuess) -> None:
    if (repo / "Cargo.toml").exists():
        guess.names.append("Rust")
        guess.add_gate("test", "cargo test")
        guess.add_ignore("target/**")


_MAKE_TEST = re.compile(r"^(test|check)\s*:", re.MULTILINE)


def _make(repo: Path, guess: StackGuess) -> None:
    """A Makefile's test target, when no stack above said how to test."""
    try:
        text = (repo / "Makefile").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    match = _MAKE_TEST.search(text)
    if match and "test" not in guess.gates:
        guess.names.append("Makefile")
        guess.add_gate("test", f"make {match.group(1)}")


def detect(repo: Path) -> StackGuess:
    guess = StackGuess()
    for look in (_node, _python, _go, _rust, _make):
        look(repo, guess)
    return guess
