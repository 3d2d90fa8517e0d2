"""The OS sandbox with the REAL OpenCode binary: a bash tool call that writes outside the
worktree (the user's checkout, the agent's home, /etc, .director/control, the worktree folder
and the job's worktree beside its own) — with its paths hidden from OpenCode's own
permission check — is prevented, not just detected, and the honest second attempt merges."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from conftest import OpenCodeEnv
from test_run_e2e import solve_turns

from director_tui.engine import sandbox
from director_tui.engine.context import EngineContext
from director_tui.engine.events import GateResult
from director_tui.engine.run import run_job
from tests.run_fixture import Recorder, build_job, job_file, sample_nodes

pytestmark = pytest.mark.e2e


def test_a_real_opencode_bash_call_cannot_write_outside_its_worktree(
    tmp_path: Path, opencode_env: OpenCodeEnv
) -> None:
    available = sandbox.probe()
    assert available.ok, f"the sandbox e2e needs bwrap (make test installs it): {available.reason}"
    add = sample_nodes()[0]
    store = build_job(tmp_path, [add])
    etc_probe = Path("/etc") / f"director-e2e-{uuid.uuid4().hex[:8]}"
    # Paths built at run time: OpenCode's own external_directory permission refuses a
    # command that names a path outside the worktree, but cannot see through variables.
    # R: the user's checkout; W: the folder of the repository's worktrees (the job's too).
    escape = (
        f'S=/; R="${{S}}{str(store.repo)[1:]}"; echo leak > "$R/leak.txt"; '
        f'echo x > "$HOME/outside.txt"; E=/et; touch "${{E}}c/{etc_probe.name}"; '
        'echo x > "$R/.director/control/evil.json"; W="${PWD%/*}"; echo x > "$W/planted.txt"; '
        'echo x > "$W/_job/planted.txt"; echo tried'
    )
    setup = opencode_env(
        {
            "executor": [
                {
                    "tool_calls": [
                        {"name": "bash", "arguments": {"command": escape, "description": "x"}}
                    ],
                    "usage": {"input": 500, "output": 20},
                },
                {"text": "done", "usage": {"input": 600, "output": 5}},
                *solve_turns(add),
            ]
        },
        config={"limits": {"flake_runs": 1, "gate_timeout_secs": 60}},
    )
    assert setup.config.sandbox.mode == "auto"
    ctx = EngineContext.open(store, setup.config)
    rec = Recorder()
    ctx.bus.subscribe(rec)
    try:
        outcome = asyncio.run(run_job(ctx, parallel=1))
    finally:
        etc_probe.unlink(missing_ok=True)
    assert ctx.sandbox.enabled
    assert outcome.success, outcome.message
    assert not (store.repo / "leak.txt").exists()
    assert not (store.worktrees / "planted.txt").exists()
    assert not (store.worktrees / "_job" / "planted.txt").exists()
    assert not (Path(setup.env["DIRECTOR_AGENT_HOME"]) / "outside.txt").exists()
    assert not etc_probe.exists()
    assert list(store.control.iterdir()) == []
    assert [g.check for g in rec.of(GateResult)] == ["tests", "passed"]
    assert job_file(store, add.impl_path) == add.solution
    transcript = "".join(p.read_text() for p in store.logs.glob("executor-*.jsonl"))
    assert "Read-only file system" in transcript  # the shell said why, the agent saw it
