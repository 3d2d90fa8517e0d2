"""Control requests must come from the user, not from an attempt: an executor that runs
`director skip <other node>` or drops a request file into `.director/control/` is refused
(an answer event, and the record of the nodes involved), while the user's own
`director skip` from another shell still works. Real processes: the scripted executor's
`run` steps and the user's command are real `director` subprocesses talking to the run's
socket."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from director_tui.engine.events import ControlApplied, Notice
from director_tui.engine.models import NodeStatus, RunState
from director_tui.engine.run.requests import FILE_DROP_REFUSAL
from director_tui.engine.store import Store
from tests.cli import director_on
from tests.run_fixture import (
    SANDBOX_OFF,
    Recorder,
    build_job,
    run,
    sample_nodes,
    solve,
    write_script,
)

PY = sys.executable


def _two_nodes(tmp_path: Path) -> tuple[Store, list[dict[str, object]]]:
    add, mul, _ = sample_nodes()
    # Sandbox off: these are the control channel's own refusals; in the OS sandbox the
    # request file vanishes and .director/ is out of reach (tests/test_sandbox.py).
    store = build_job(tmp_path, [add, mul], config=SANDBOX_OFF)
    slow_mul = solve(mul)
    slow_mul["steps"] = [{"sleep": 1.0}, *slow_mul["steps"]]  # type: ignore[list-item]
    return store, [solve(add), slow_mul]


def _with_first_step(entry: dict[str, object], command: str) -> dict[str, object]:
    return {**entry, "steps": [{"run": command}, *entry["steps"]]}  # type: ignore[misc]


def _state(store: Store) -> RunState:
    state = store.read_model(store.state, RunState)
    assert state is not None
    return state


def test_an_executor_running_director_skip_on_another_node_is_refused(tmp_path: Path) -> None:
    store, (add, mul) = _two_nodes(tmp_path)
    skip = f"{PY} -m director_tui skip mul --repo {store.repo}"
    write_script(store, [_with_first_step(add, skip), mul])
    rec = Recorder()
    outcome = run(store, rec, parallel=2)
    assert outcome.success, outcome.message
    assert outcome.done == ["add", "mul"] and not outcome.skipped
    refusals = [e for e in rec.of(ControlApplied) if not e.ok]
    assert len(refusals) == 1 and refusals[0].action == "skip" and refusals[0].node_id == "mul"
    assert "a process the run started" in refusals[0].message or "agent" in refusals[0].message
    state = _state(store)
    assert state.nodes["add"].refused_controls == [refusals[0].message]  # the sender's record
    assert state.nodes["mul"].refused_controls == [refusals[0].message]  # and the target's
    assert [c.ok for c in state.controls] == [False]
    assert any(n.node_id == "add" and "refused `skip mul`" in n.message for n in rec.of(Notice))


def test_a_request_file_an_executor_writes_is_refused(tmp_path: Path) -> None:
    store, (add, mul) = _two_nodes(tmp_path)
    request = {"action": "skip", "node_id": "mul", "request_id": "from-agent", "at": 0}
    drop = (
        f"{PY} -c \"import json, pathlib; pathlib.Path('{store.control}/0-x.json')"
        f'.write_text(json.dumps({request!r}))"'
    )
    write_script(store, [_with_first_step(add, drop), mul])
    rec = Recorder()
    outcome = run(store, rec, parallel=2)
    assert outcome.success and outcome.done == ["add", "mul"], outcome.message
    refusal = next(e for e in rec.of(ControlApplied) if e.request_id == "from-agent")
    assert not refusal.ok and FILE_DROP_REFUSAL in refusal.message
    assert _state(store).nodes["mul"].refused_controls == [refusal.message]
    assert not list(store.control.glob("*.json"))  # taken off the queue


def test_the_users_director_skip_from_another_shell_still_works(tmp_path: Path) -> None:
    """A headless `director run` and, beside it, the user's `director skip` — two real
    processes, as from two shells (a process the run started would be refused)."""
    add, mul, _ = sample_nodes()
    store = build_job(tmp_path, [add, mul])
    slow = solve(mul)
    slow["steps"] = [{"sleep": 30}, *slow["steps"]]
    write_script(store, [solve(add), slow])
    headless = subprocess.Popen(
        [PY, "-m", "director_tui", "run", "--no-tui", "--parallel", "2", "--repo", str(store.repo)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while '"node_id":"mul","status":"running"' not in _events(store):
            assert headless.poll() is None, "the run ended before mul started"
            time.sleep(0.05)
        user = director_on(store.repo, "skip", "mul")
        assert user.returncode == 0, user.stdout + user.stderr
        assert "node mul skipped" in user.stdout
        assert headless.wait(timeout=60) == 1  # a node skipped: not every node merged
    finally:
        if headless.poll() is None:
            headless.kill()
    state = _state(store)
    assert state.nodes["mul"].status == NodeStatus.skipped
    assert state.nodes["add"].status == NodeStatus.done
    assert state.nodes["mul"].refused_controls == []


def _events(store: Store) -> str:
    text = store.events.read_text() if store.events.exists() else ""
    return text.replace(" ", "")


def test_request_files_left_before_a_run_are_refused_too(tmp_path: Path) -> None:
    """A file an agent left while planning (or anyone, any time) is not applied by the
    next run: nothing proves who wrote it."""
    add, mul, _ = sample_nodes()
    store = build_job(tmp_path, [add, mul])
    store.control.mkdir(parents=True, exist_ok=True)
    (store.control / "0-left.json").write_text(
        json.dumps({"action": "skip", "node_id": "mul", "request_id": "left"})
    )
    outcome = run(store)
    assert outcome.success and outcome.done == ["add", "mul"]


def test_a_refusal_reads_once_in_the_run_lines_and_in_status(tmp_path: Path) -> None:
    """The run's progress lines and `director status` say 'refused `skip mul`: …', not
    'refused refused `skip mul`' (the refusal's message already begins with the word)."""
    add, mul, _ = sample_nodes()
    store = build_job(tmp_path, [add, mul])
    write_script(store, [solve(add), solve(mul)])
    store.control.mkdir(parents=True, exist_ok=True)
    (store.control / "0-left.json").write_text(
        json.dumps({"action": "skip", "node_id": "mul", "request_id": "left"})
    )
    ran = director_on(store.repo, "run", "--no-tui")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    status = director_on(store.repo, "status")
    for out in (ran.stdout, status.stdout):
        flat = " ".join(out.split())  # rich wraps long lines
        assert "control skip mul: refused `skip mul`: it was a file dropped" in flat, out
        assert "refused refused" not in flat
