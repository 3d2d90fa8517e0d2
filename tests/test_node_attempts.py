"""Every attempt of a node, not only the last call (issue 16, item 4): the attempts read
from a real scripted run's events (executor, gate, escalation, review), each call's
transcript parsed into text, tool calls and commands with their output — for the
scripted provider and for the lines OpenCode, Claude Code and Codex print — and
`director log` printing them."""

from __future__ import annotations

import io
import json
from pathlib import Path

from director_tui.engine.node_attempts import (
    CallStep,
    GateStep,
    ReviewStep,
    call_transcript,
    node_attempts,
)
from director_tui.engine.store import Store
from director_tui.engine.transcript import read_transcript
from tests.cli import director_here_on, director_on
from tests.run_fixture import build_job, run, sample_nodes, solve, write_script

WRONG_ADD = "def add(a, b):\n    return a - b\n"


def _escalated_then_reviewed(tmp_path: Path) -> Store:
    """add: attempt 1 writes a wrong add (the gate fails), the escalation attempt reads,
    watches the test fail, fixes it and passes; the stage-two reviewer passes it."""
    add = sample_nodes()[0]
    store = build_job(
        tmp_path, [add], limits={"max_attempts": 1}, config="[review]\nstage_two = true\n"
    )
    write_script(
        store,
        [
            {
                "role": "executor",
                "node": "add",
                "attempt": 1,
                "steps": [
                    {"run": add.test_cmd},
                    {"text": "Writing **add**."},
                    {"write": add.impl_path, "content": WRONG_ADD},
                ],
                "text": "done",
                "tokens": {"input": 100, "output": 20},
                "cost": 0.001,
            },
            {
                "role": "executor",
                "node": "add",
                "attempt": 2,
                "steps": [
                    {"read": add.impl_path},
                    {"run": add.test_cmd},
                    {"write": add.impl_path, "content": add.solution},
                    {"run": add.test_cmd},
                ],
                "text": "Fixed: add now adds.",
                "tokens": {"input": 300, "output": 50},
                "cost": 0.01,
            },
            {
                "role": "reviewer",
                "node": "add",
                "text": json.dumps({"verdict": "pass", "summary": "fine", "findings": []}),
            },
        ],
    )
    outcome = run(store)
    assert outcome.done == ["add"] and outcome.escalated == ["add"]
    return store


def test_each_attempt_lists_its_calls_gate_and_review_with_transcripts(tmp_path: Path) -> None:
    store = _escalated_then_reviewed(tmp_path)
    history = node_attempts(store, "add")
    first, second = history.attempts
    assert (first.number, first.escalated, first.tier) == (1, False, "scripted/cheap")
    assert (second.number, second.escalated, second.tier) == (2, True, "scripted/strong")
    assert first.label() == "attempt 1 · cheap" and second.label() == "escalation 2 · strong"
    assert [type(s) for s in first.steps] == [CallStep, GateStep]
    assert [type(s) for s in second.steps] == [CallStep, GateStep, CallStep, ReviewStep]
    assert not first.merged and second.merged  # the second one's work merged
    gate = first.steps[1]
    assert isinstance(gate, GateStep) and not gate.passed and "exited with code 1" in gate.message
    executor, _gate, reviewer, review = second.steps
    assert isinstance(executor, CallStep) and executor.role == "executor"
    assert (executor.exit_reason, executor.input_tokens, executor.cost_usd) == ("ok", 300, 0.01)
    assert isinstance(reviewer, CallStep) and reviewer.role == "reviewer"
    assert isinstance(review, ReviewStep) and review.verdict == "pass"

    items = call_transcript(store, executor).items
    assert [i.kind for i in items] == ["tool", "command", "tool", "command", "text"]
    watched, passed = items[1], items[3]
    assert watched.command.endswith("tests/check_add.py") and watched.exit_code == 1
    assert "ImportError" in watched.output  # the command's own output, not a summary
    assert passed.exit_code == 0 and "add ok" in passed.output
    assert items[0].tool == "read" and items[0].args == "calc/add.py"
    assert items[4].text == "Fixed: add now adds."
    first_items = call_transcript(store, first.steps[0]).items  # type: ignore[arg-type]
    assert any(i.kind == "text" and i.text == "Writing **add**." for i in first_items)


def test_director_log_lists_the_attempts_and_prints_one_with_its_commands(
    tmp_path: Path,
) -> None:
    store = _escalated_then_reviewed(tmp_path)
    listing = director_here_on(store.repo, "log", "add")
    assert listing.returncode == 0, listing.stderr
    assert "add · attempt 1 · cheap" in listing.stdout
    assert "gate · tests FAILED" in listing.stdout
    assert "add · escalation 2 · strong · merged" in listing.stdout
    assert "review two · pass: fine" in listing.stdout
    assert "ImportError" not in listing.stdout  # transcripts only with --attempt
    one = director_here_on(store.repo, "log", "add", "--attempt", "2")
    assert one.returncode == 0, one.stderr
    assert "tests/check_add.py  → exit 1" in one.stdout
    assert "ImportError" in one.stdout and "add ok" in one.stdout
    assert "attempt 1" not in one.stdout
    data = json.loads(director_here_on(store.repo, "log", "add", "--attempt", "2", "--json").stdout)
    assert [a["number"] for a in data["attempts"]] == [2]
    assert any(
        item["kind"] == "command" and item["exit_code"] == 0
        for transcript in data["transcripts"].values()
        for item in transcript["items"]
    )
    missing = director_here_on(store.repo, "log", "add", "--attempt", "7")
    assert missing.returncode == 2 and "its attempts: 1, 2" in missing.stderr
    unknown = director_here_on(store.repo, "log", "nope")
    assert unknown.returncode == 2 and "no node 'nope'" in unknown.stderr


def _agent_wrote_escapes(tmp_path: Path) -> Store:
    """add solved by an agent whose text, tool arguments and command output carry an
    erase-line, an OSC 52 clipboard write and a right-to-left override."""
    add = sample_nodes()[0]
    store = build_job(tmp_path, [add])
    entry = solve(add)
    entry["steps"] = [
        {"text": "Done.\x1b[2K said \u202eevil"},
        {"read": "calc/\x1b]52;c;aGk=\x07add.py"},
        {"run": "printf '\\033[2Kwiped \\342\\200\\256rev\\n'"},
        *entry["steps"],
    ]
    write_script(store, [entry])
    assert run(store).done == ["add"]
    return store


def test_director_log_piped_is_plain_lines_with_escape_sequences_shown_as_text(
    tmp_path: Path,
) -> None:
    """Piped, `director log` padded every line to 160 columns (Markdown and padded blocks)
    and wrote an agent's escape sequences to the reader's terminal as they were."""
    store = _agent_wrote_escapes(tmp_path)
    out = director_on(store.repo, "log", "add", "--attempt", "1")  # stdout: a real pipe
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "    Done.\\x1b[2K said \\u202eevil" in lines  # the text, as written, in full
    assert "    ✘ read calc/\\x1b]52;c;aGk=\\x07add.py" in lines  # no such file: an error
    assert "    \\x1b[2Kwiped \\u202erev" in lines  # the command's output
    assert not [line for line in lines if line != line.rstrip()]  # no padding at all
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in out.stdout


def test_director_log_on_a_terminal_shows_escape_sequences_as_text(tmp_path: Path) -> None:
    from rich.console import Console

    from director_tui.views.attempts_view import print_attempts

    store = _agent_wrote_escapes(tmp_path)
    history = node_attempts(store, "add")
    step = history.attempts[0].steps[0]
    assert isinstance(step, CallStep)
    terminal = Console(file=io.StringIO(), force_terminal=True, width=100)
    print_attempts("add", history.attempts, {step.call_id: call_transcript(store, step)}, terminal)
    written = terminal.file.getvalue()  # type: ignore[attr-defined]
    assert "\\x1b[2K" in written and "\\x1b]52;c;aGk=\\x07" in written
    assert "\\u202e" in written
    # Rich's own colours are there; the agent's erase-line, clipboard write and override not.
    assert "\x1b[" in written
    for raw in ("\x1b[2K", "\x1b]52", "\x07", "\u202e"):
        assert raw not in written


def _write(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_an_opencode_transcript_reads_as_commands_tools_text_and_steps(tmp_path: Path) -> None:
    lines = [
        {"type": "step_start", "part": {}},
        {"type": "text", "part": {"text": "Running the tests."}},
        {"type": "tool_use", "part": {"tool": "bash", "state": {
            "status": "completed", "input": {"command": "pytest -q"}, "output": "1 failed"}}},
        {"type": "tool_use", "part": {"tool": "edit", "state": {
            "status": "error", "input": {"filePath": "a.py"}, "error": "no match"}}},
        {"type": "step_finish", "part": {"tokens": {"input": 10, "output": 2}, "cost": 0.5}},
    ]  # fmt: skip
    transcript = read_transcript(_write(tmp_path / "executor-1.jsonl", lines), "opencode")
    kinds = [(i.kind, i.tool, i.status) for i in transcript.items]
    assert kinds == [
        ("text", "", ""),
        ("command", "bash", "completed"),
        ("tool", "edit", "error"),
        ("step", "", ""),
    ]
    command, edit, step = transcript.items[1:]
    assert (command.command, command.output) == ("pytest -q", "1 failed")
    assert (edit.args, edit.output) == ("a.py", "no match")
    assert step.tokens is not None and step.tokens.input_tokens == 10 and step.cost_usd == 0.5
    # the lines say which CLI wrote them, whatever the tier claimed
    assert read_transcript(tmp_path / "executor-1.jsonl", "scripted").items == transcript.items


def test_claude_code_and_codex_transcripts_read_the_same_way(tmp_path: Path) -> None:
    claude = [
        {"type": "assistant", "message": {"id": "a", "model": "m", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "make test"}}]}},
        {"type": "user", "message": {"content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "Exit code 2\nboom",
             "is_error": True}]}},
        {"type": "result", "subtype": "success", "is_error": False, "result": "Checking.",
         "total_cost_usd": 0.25, "usage": {"input_tokens": 600, "output_tokens": 60}},
    ]  # fmt: skip
    items = read_transcript(_write(tmp_path / "c.jsonl", claude)).items
    assert [i.kind for i in items] == ["text", "command", "step"]  # the answer once
    assert (items[1].command, items[1].status, items[1].output) == (
        "make test",
        "error",
        "Exit code 2\nboom",
    )
    codex = [
        {"type": "thread.started", "thread_id": "x"},
        {"type": "item.completed", "item": {"type": "command_execution", "command": "ls",
         "aggregated_output": "a.py\n", "exit_code": 0, "status": "completed"}},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "Listed."}},
        {"type": "turn.completed", "usage": {"input_tokens": 50, "output_tokens": 5}},
    ]  # fmt: skip
    items = read_transcript(_write(tmp_path / "x.jsonl", codex)).items
    assert [(i.kind, i.command or i.text) for i in items[:2]] == [
        ("command", "ls"),
        ("text", "Listed."),
    ]
    assert items[0].output == "a.py\n"


def test_a_missing_transcript_is_said_not_an_error(tmp_path: Path) -> None:
    transcript = read_transcript(tmp_path / "executor-gone.jsonl", "opencode")
    assert not transcript.found and transcript.items == []
