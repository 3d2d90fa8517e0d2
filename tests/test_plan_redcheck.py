"""Red for the right reason, judged on real runs of real runners."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from director_tui.engine.proc import CommandResult, run_command
from director_tui.engine.redcheck import classify_red

PYTEST = f"PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {sys.executable} -m pytest -q -p no:cacheprovider"
UNITTEST = f"{sys.executable} -m unittest"


async def _run(tmp_path: Path, files: dict[str, str], command: str) -> CommandResult:
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    return await run_command(command, tmp_path, timeout=60)


@pytest.mark.parametrize(
    ("content", "outcome", "needle"),
    [
        ("def test_a():\n    from nowhere import f\n    assert f() == 1\n", "red", "exit 1"),
        ("def test_a():\n    assert 1 + 1 == 3\n", "red", "exit 1"),
        ("def test_a(:\n    pass\n", "wrong_reason", "collection error"),
        ("from nowhere import f\n\ndef test_a():\n    assert f()\n", "wrong_reason", "exit 2"),
        ("def test_a():\n    assert True\n", "passed", "passed before"),
        ("def helper():\n    pass\n", "wrong_reason", "no tests"),
    ],
)
async def test_pytest_exit_codes(tmp_path: Path, content: str, outcome: str, needle: str) -> None:
    cmd = f"{PYTEST} test_a.py"
    verdict = classify_red(cmd, await _run(tmp_path, {"test_a.py": content}, cmd))
    assert verdict.outcome == outcome
    assert needle in verdict.reason


async def test_pytest_usage_error_is_wrong_reason(tmp_path: Path) -> None:
    cmd = f"{PYTEST} --no-such-option test_a.py"
    result = await _run(tmp_path, {"test_a.py": "def test_a():\n    assert 0\n"}, cmd)
    verdict = classify_red(cmd, result)
    assert verdict.outcome == "wrong_reason" and "usage" in verdict.reason


async def test_unittest_failure_is_red_but_import_error_is_not(tmp_path: Path) -> None:
    failing = "import unittest\n\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(1, 2)\n"
    cmd = f"{UNITTEST} test_u"
    assert classify_red(cmd, await _run(tmp_path, {"test_u.py": failing}, cmd)).ok
    broken = "import unittest\nfrom nowhere import f\n"
    verdict = classify_red(cmd, await _run(tmp_path, {"test_u.py": broken}, cmd))
    assert verdict.outcome == "wrong_reason" and "import" in verdict.reason


async def test_missing_command_and_timeout_are_wrong_reason(tmp_path: Path) -> None:
    result = await run_command("no-such-runner-xyz --all", tmp_path, timeout=30)
    assert classify_red("no-such-runner-xyz --all", result).outcome == "wrong_reason"
    slow = await run_command("sleep 5", tmp_path, timeout=0.3)
    verdict = classify_red("sleep 5", slow)
    assert verdict.outcome == "wrong_reason" and "timed out" in verdict.reason


async def test_generic_runner_nonzero_is_red(tmp_path: Path) -> None:
    result = await run_command("echo '1 failing'; exit 1", tmp_path, timeout=30)
    assert classify_red("./run-tests.sh", result).ok


async def test_node_test_runner_failure_is_red_but_a_syntax_error_is_not(tmp_path: Path) -> None:
    """node --test prints a file that cannot load as TAP comments ("# SyntaxError: …")."""
    head = "const test = require('node:test');\nconst assert = require('node:assert');\n"
    cmd = "node --test t.test.js"
    failing = head + "test('pow', () => { assert.strictEqual(1, 8); });\n"
    assert classify_red(cmd, await _run(tmp_path, {"t.test.js": failing}, cmd)).ok
    broken = head + "test('pow', () => { assert.strictEqual(1, 8) );\n"
    verdict = classify_red(cmd, await _run(tmp_path, {"t.test.js": broken}, cmd))
    assert verdict.outcome == "wrong_reason" and "syntax error" in verdict.reason
