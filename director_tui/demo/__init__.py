"""The embedded demo: a small real Python repository, a task worth five nodes, and a
script for the scripted provider that plays every role.

Everything the demo shows runs through the same engine as a real job (worktrees, gates,
hashes, merges); only the agents are replaced by the script, and every screen says so.
The script is built so the run shows the interesting paths: two layers of parallel
nodes, one node whose first attempt fails and whose retry passes, and one node the cheap
executor cannot finish, so it escalates (and, escalated, gets a stage-two review).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from director_tui.engine.store import RUNTIME_IGNORES

DEMO_LABEL = "demo — scripted agents, no model calls"
TASK = (
    "Add a word-frequency report to wordfreq: `python -m wordfreq.cli report FILE --top N` "
    "prints the N most common words of FILE (lower-cased, punctuation stripped, common "
    "English stop words left out, ties broken alphabetically) as an aligned two-column "
    "table with a `word  count` header. A file that cannot be read is a clear error on "
    "stderr with exit code 2."
)

# node id → (implementation file, test file, depends_on, difficulty, title)
NODES: dict[str, tuple[str, str, list[str], str, str]] = {
    "tokenize": (
        "wordfreq/tokenize.py",
        "tests/test_tokenize.py",
        [],
        "easy",
        "Split text into words",
    ),
    "stopwords": ("wordfreq/stopwords.py", "tests/test_stopwords.py", [], "easy", "Stop-word list"),
    "table": ("wordfreq/table.py", "tests/test_table.py", [], "medium", "Aligned word/count table"),
    "counter": (
        "wordfreq/counter.py",
        "tests/test_counter.py",
        ["tokenize", "stopwords"],
        "medium",
        "Top-N word counts",
    ),
    "cli": ("wordfreq/cli.py", "tests/test_cli.py", ["counter", "table"], "easy", "report command"),
}

SPECS = {
    "tokenize": "Create wordfreq/tokenize.py with `tokenize(text: str) -> list[str]`: lower-case the "
    "text and return the runs of letters and digits, keeping an apostrophe only between two "
    'word characters ("don\'t" stays one word, "\'quoted\'" becomes "quoted"). Whitespace-only '
    "text gives []. Verify: {test_cmd}",
    "stopwords": "Create wordfreq/stopwords.py with `STOP_WORDS: frozenset[str]` (at least: a, an, and, "
    "are, as, at, be, but, by, for, from, has, have, in, is, it, its, of, on, or, that, the, this, "
    "to, was, were, will, with), `is_stop_word(word: str) -> bool` (case-insensitive) and "
    "`remove_stop_words(words: list[str]) -> list[str]` keeping order. Verify: {test_cmd}",
    "table": "Create wordfreq/table.py with `format_table(rows: list[tuple[str, int]]) -> str`: a header "
    "line `word` / `count`, then one line per row; the word column is left-aligned to the widest "
    "of 'word' and every word, the count column right-aligned to the widest of 'count' and every "
    "count, two spaces between columns, lines joined by '\\n', no trailing newline. Verify: {test_cmd}",
    "counter": "Create wordfreq/counter.py with `top_words(text: str, n: int) -> list[tuple[str, int]]`: "
    "tokenize with wordfreq.tokenize.tokenize, drop stop words with "
    "wordfreq.stopwords.remove_stop_words, count, and return the n most common as (word, count) "
    "sorted by count descending then word ascending. n <= 0 raises ValueError. Verify: {test_cmd}",
    "cli": "Create wordfreq/cli.py with `main(argv: list[str] | None = None) -> int` (argparse, prog "
    "'wordfreq'): sub-command `report FILE [--top N]` (default 10) reads FILE with "
    "wordfreq.textio.read_text and prints format_table(top_words(text, N)); returns 0. If the file "
    "cannot be read, print 'wordfreq: cannot read FILE: <reason>' to stderr and return 2. Add "
    "`if __name__ == '__main__': raise SystemExit(main())`. Verify: {test_cmd}",
}


def _data(*parts: str) -> Traversable:
    node: Traversable = resources.files(__package__)
    for part in parts:
        node = node.joinpath(part)
    return node


def _read(*parts: str) -> str:
    return _data(*parts).read_text(encoding="utf-8")


def _copy_tree(source: Traversable, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.name == "__pycache__":
            continue
        if item.is_dir():
            _copy_tree(item, target / item.name)
        else:
            (target / item.name).write_bytes(item.read_bytes())


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        env={
            "GIT_AUTHOR_NAME": "demo",
            "GIT_AUTHOR_EMAIL": "demo@localhost",
            "GIT_COMMITTER_NAME": "demo",
            "GIT_COMMITTER_EMAIL": "demo@localhost",
            "PATH": _path_env(),
            "HOME": str(repo),
        },
    )


def _path_env() -> str:
    import os

    return os.environ.get("PATH", "/usr/bin:/bin")


# The sample repo needs no pytest plugins; not auto-loading whatever the interpreter has
# installed saves over a second per test run, and the demo runs its tests ~30 times.
PYTEST = "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {python} -m pytest -q -p no:cacheprovider"


def pytest_command(python: str) -> str:
    return PYTEST.format(python=shlex.quote(python))


def test_command(node_id: str, python: str) -> str:
    return f"{pytest_command(python)} {NODES[node_id][1]}"


def find_python_with_pytest() -> str | None:
    """An interpreter that can run the sample's tests: ours, else python3 on PATH."""
    for candidate in (sys.executable, shutil.which("python3"), shutil.which("python")):
        if not candidate:
            continue
        probe = subprocess.run([candidate, "-c", "import pytest"], capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    return None


def plan_json(python: str) -> dict[str, Any]:
    nodes = []
    for node_id, (impl, test, deps, difficulty, title) in NODES.items():
        cmd = test_command(node_id, python)
        nodes.append(
            {
                "id": node_id,
                "title": title,
                "spec": SPECS[node_id].format(test_cmd=cmd),
                "files": [impl],
                "depends_on": deps,
                "test_cmd": cmd,
                "tests": [test],
                "estimated_difficulty": difficulty,
            }
        )
    return {"nodes": nodes}


def spec_markdown() -> str:
    return _read("spec.md")


def demo_script(python: str) -> dict[str, Any]:
    """Every call the demo job makes, in the scripted provider's format."""
    calls: list[dict[str, Any]] = [
        {
            "role": "explorer",
            "steps": [
                {"read": "README.md"},
                {"read": "wordfreq/textio.py"},
                {"read": "tests/test_textio.py"},
                {"sleep": 0.4},
            ],
            "text": _read("recon.md"),
            "tokens": {"input": 6200, "output": 700},
        },
        {
            "role": "brainstorm",
            "steps": [{"sleep": 0.5}],
            "text": spec_markdown(),
            "tokens": {"input": 4100, "output": 1500},
        },
        {
            "role": "critic",
            "prompt_contains": '"nodes"',
            "steps": [{"sleep": 0.3}],
            "text": json.dumps(plan_json(python), indent=2),
            "tokens": {"input": 5200, "output": 1900},
        },
        {
            "role": "critic",
            "steps": [{"sleep": 0.3}],
            "text": spec_markdown(),
            "tokens": {"input": 4300, "output": 1500},
        },
        {
            "role": "planner",
            "steps": [{"sleep": 0.5}],
            # Prose around the JSON, as real planners write: the extractor copes.
            "text": "Here is the plan.\n```json\n"
            + json.dumps(plan_json(python), indent=2)
            + "\n```\n",
            "tokens": {"input": 5000, "output": 2100},
        },
    ]
    for node_id, (_impl, test, _deps, _difficulty, _title) in NODES.items():
        calls.append(
            {
                "role": "test_author",
                "node": node_id,
                "steps": [
                    {"write": test, "content": _read("node_tests", Path(test).name)},
                    {"run": test_command(node_id, python)},
                ],
                "text": f"Wrote {test}; it fails until {node_id} exists.",
                "tokens": {"input": 2500, "output": 900},
            }
        )
    calls += _executor_calls(python)
    calls.append(
        {
            "role": "reviewer",
            "steps": [{"sleep": 0.3}],
            "text": json.dumps(
                {
                    "verdict": "pass",
                    "summary": "Small, readable change that does what the spec says.",
                    "findings": [
                        {
                            "severity": "minor",
                            "file": "wordfreq/table.py",
                            "summary": "could share width code",
                        }
                    ],
                }
            ),
            "tokens": {"input": 3000, "output": 250},
        }
    )
    return {"calls": calls}


def _executor_calls(python: str) -> list[dict[str, Any]]:
    def attempt(
        node_id: str, solution: str, *, model: str | None = None, **match: Any
    ) -> dict[str, Any]:
        impl, _test, *_ = NODES[node_id]
        entry: dict[str, Any] = {
            "role": "executor",
            "node": node_id,
            "steps": [
                {"run": test_command(node_id, python)},  # watch it fail first
                {"sleep": 0.6},
                {"write": impl, "content": _read("solutions", solution)},
                {"run": test_command(node_id, python)},
            ],
            "text": f"Implemented {impl}.",
            "tokens": {"input": 3200, "output": 800},
            **match,
        }
        if model:
            entry["model"] = model
        return entry

    return [
        # counter: the first attempt ignores the tie-break rule; the retry reads the failure.
        attempt("counter", "counter_wrong.py", attempt=1),
        attempt("counter", "counter.py"),
        # table: the cheap executor never gets the alignment right; escalation does.
        attempt("table", "table.py", model="frontier"),
        attempt("table", "table_wrong.py"),
        attempt("tokenize", "tokenize.py"),
        attempt("stopwords", "stopwords.py"),
        attempt("cli", "cli.py"),
    ]


def demo_config(python: str, script_path: str = ".director/script.json") -> str:
    return f"""\
# The director-tui demo: {DEMO_LABEL}.
# Every role is played by the scripted provider from {script_path}; swap these tiers for
# real ones (see config.example.toml) to run the same flow with models.
[tiers]
planner = "scripted/frontier"
test_author = "scripted/frontier"
executor = "scripted/cheap"
explorer = "scripted/cheap"
reviewer = "scripted/frontier"
escalation = "scripted/frontier"

[gates]
test = {json.dumps(pytest_command(python))}

[pricing."scripted/frontier"]
input = 5.0
output = 25.0

[pricing."scripted/cheap"]
input = 0.25
output = 1.25

[limits]
max_attempts = 2
parallel = 3
node_timeout_secs = 120
idle_timeout_secs = 60
cost_ceiling_usd = 5

[review]
stage_two = true
stage_two_file_threshold = 3

[scripted]
script = "{script_path}"
"""


def bench_profiles(python: str) -> dict[str, str]:
    """Two profiles for the demo bench: all-frontier and the cheap executor."""
    frontier = demo_config(python).replace(
        'executor = "scripted/cheap"', 'executor = "scripted/frontier"'
    )
    return {"all-frontier": frontier, "cheap-cloud": demo_config(python)}


def create_demo_repo(target: Path, *, python: str | None = None) -> Path:
    """A fresh git repository at ``target`` with the sample package, config and script."""
    python = python or sys.executable
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists and is not empty")
    _copy_tree(_data("sample_repo"), target)
    (target / ".gitignore").write_text(
        "__pycache__/\n.pytest_cache/\n" + "\n".join(RUNTIME_IGNORES) + "\n", encoding="utf-8"
    )
    director = target / ".director"
    (director / "profiles").mkdir(parents=True)
    (director / "config.toml").write_text(demo_config(python), encoding="utf-8")
    (director / "script.json").write_text(
        json.dumps(demo_script(python), indent=2), encoding="utf-8"
    )
    for name, text in bench_profiles(python).items():
        (director / "profiles" / f"{name}.toml").write_text(text, encoding="utf-8")
    # The repo's config and profiles are committed, as a team would; the script and all
    # runtime state stay ignored.
    _git(target, "init", "-q", "-b", "main")
    _git(target, "add", "-A")
    _git(target, "commit", "-q", "-m", "wordfreq: sample package")
    return target


def remove_demo_repo(target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
