"""Red for the right reason: did a node's freshly written tests fail the way they should?

Before any implementation exists a node's tests must run and fail. They fail for the
*wrong* reason when the test command never got to judge the code: the runner could not
collect or import the test file (syntax error, bad import, broken fixture), the command
line was wrong, no test ran, the command crashed or timed out. Tests that *pass* already
test nothing new. Either way the test author gets the output back.

Exit codes are the primary signal, because they are what runners document:

* pytest: 1 = tests ran and some failed (the right reason); 2 = interrupted, which
  includes collection errors such as an import error in the test file; 3 = internal
  error; 4 = usage error; 5 = no tests collected.
* any runner: 126/127 = the command could not be run or was not found; > 128 = killed by
  a signal; a timeout is never a verdict.

For runners whose exit code does not tell a failing test from a broken file (unittest,
jest/vitest, mocha, go test, cargo test all exit 1 or 101 for both) we also look for the
markers those runners print when a test file cannot even load. That is a heuristic and
says so in its reason; when nothing matches, a non-zero exit counts as red.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from director_tui.engine.proc import CommandResult

RedOutcome = Literal["red", "passed", "wrong_reason"]

PYTEST_EXIT_MEANING = {
    2: "pytest was interrupted: usually a collection error, such as a syntax or import "
    "error in the test file itself",
    3: "pytest hit an internal error",
    4: "pytest was called wrongly (usage error: bad option or a path that does not exist)",
    5: "pytest collected no tests",
}

# (pattern, why) — printed by runners when a test file fails to load or nothing ran.
_LOAD_FAILURES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"ImportError: Failed to import test module"),
        "unittest could not import a test module",
    ),
    (re.compile(r"^Ran 0 tests?\b", re.M), "no tests ran"),
    (re.compile(r"^NO TESTS RAN", re.M), "no tests ran"),
    (re.compile(r"Test suite failed to run"), "a jest test suite failed to load"),
    (re.compile(r"No tests found, exiting with code 1"), "jest found no tests"),
    (re.compile(r"No test files found"), "the runner found no test files"),
    (re.compile(r"^\s*no tests to run", re.M | re.I), "no tests ran"),
    (re.compile(r"\[setup failed\]"), "go test could not set up the package"),
    # node --test prints a file's load error as TAP comments: "# SyntaxError: …"
    (re.compile(r"^(?:# )?SyntaxError: ", re.M), "a syntax error stopped the run"),
)


@dataclass(frozen=True)
class RedVerdict:
    outcome: RedOutcome
    reason: str

    @property
    def ok(self) -> bool:
        return self.outcome == "red"


def looks_like_pytest(command: str, output: str) -> bool:
    return bool(re.search(r"\bpytest\b|\bpy\.test\b", command)) or ("test session starts" in output)


def classify_red(command: str, result: CommandResult) -> RedVerdict:
    """Judge a test run made before any implementation exists."""
    code = result.exit_code
    if result.timed_out or code is None:
        return RedVerdict(
            "wrong_reason", f"the test command timed out after {result.duration_secs:.0f}s"
        )
    if code == 0:
        return RedVerdict(
            "passed",
            "the tests passed before any implementation exists, so they test nothing new",
        )
    if code in (126, 127):
        return RedVerdict("wrong_reason", f"the test command could not be run (exit {code})")
    if code > 128 or code < 0:
        return RedVerdict("wrong_reason", f"the test command was killed or crashed (exit {code})")
    output = result.output
    if looks_like_pytest(command, output):
        if code == 1:
            return RedVerdict("red", "pytest ran the tests and they failed (exit 1)")
        meaning = PYTEST_EXIT_MEANING.get(code, "pytest did not report failing tests")
        return RedVerdict("wrong_reason", f"{meaning} (exit {code})")
    for pattern, why in _LOAD_FAILURES:
        if pattern.search(output):
            return RedVerdict("wrong_reason", f"{why} (exit {code}; seen in the output)")
    return RedVerdict("red", f"the test command failed with exit {code}")
