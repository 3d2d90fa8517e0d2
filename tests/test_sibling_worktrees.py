"""One node's agent writing into another node's worktree (engine/sibling_watch.py): the
writer's attempt fails and is charged, the sibling's attempt is never merged and runs
again uncharged, and what merges under the sibling's name is only its own work.

Two nodes run in parallel; barrier files outside every watched place force the order:
mul's agent writes its solution and waits, add's agent appends a line to mul's file
through ``../mul/…`` (a real shell command), then mul's agent ends."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from director_tui.engine import sandbox_watch
from director_tui.engine.events import GateResult, Notice
from director_tui.engine.models import RunState
from tests.run_fixture import (
    JOB_ID,
    SANDBOX_OFF,
    Recorder,
    build_job,
    job_file,
    run,
    sample_nodes,
    solve,
    write_script,
)

WAIT = "i=0; while [ ! -f {f} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done"
BACKDOOR = "BACKDOOR = 'planted by add'"


def _with(
    entry: dict[str, Any], before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> dict[str, Any]:
    return {**entry, "steps": [*before, *entry["steps"], *after]}


def _outside(rec: Recorder, node: str) -> list[GateResult]:
    return [g for g in rec.of(GateResult) if g.node_id == node and g.check == sandbox_watch.CHECK]


async def test_a_write_into_a_sibling_worktree_is_attributed_and_never_merged(
    tmp_path: Path,
) -> None:
    add, mul = sample_nodes()[:2]
    store = build_job(tmp_path, [add, mul], config=SANDBOX_OFF, limits={"max_attempts": 2})
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    victim_first = _with(
        solve(mul),
        [],
        [{"run": f"touch {barrier}/mul-in; " + WAIT.format(f=barrier / "add-done")}],
    )
    victim_first["attempt"] = 1
    writer_first = _with(
        solve(add),
        [
            {
                "run": WAIT.format(f=barrier / "mul-in")
                + f' && echo "{BACKDOOR}" >> ../mul/{mul.impl_path}'
                + f"; touch {barrier}/add-done"
            }
        ],
        [],
    )
    writer_first["attempt"] = 1
    write_script(store, [writer_first, victim_first, solve(add), solve(mul)])
    rec = Recorder()
    outcome = await asyncio.to_thread(run, store, rec, parallel=2)

    assert outcome.success, outcome.message
    [writer_rejected] = _outside(rec, "add")
    assert writer_rejected.attempt == 1
    assert "mul" in writer_rejected.message and f"../mul/{mul.impl_path}" in writer_rejected.message
    [victim_rejected] = _outside(rec, "mul")
    assert "add" in victim_rejected.message and "not charged" in victim_rejected.message
    # Only mul's own work merged under its name.
    assert job_file(store, mul.impl_path) == mul.solution
    assert BACKDOOR not in (job_file(store, mul.impl_path) or "")
    assert job_file(store, add.impl_path) == add.solution
    state = store.read_model(store.state, RunState)
    assert state is not None
    assert state.nodes["add"].attempts == 2  # its own tool call did it: charged
    assert state.nodes["mul"].attempts == 1  # the written-into attempt was not charged


async def test_a_commit_put_on_a_siblings_branch_after_its_gate_never_merges(
    tmp_path: Path,
) -> None:
    """add's agent waits for mul's gate commit, then points mul's branch at a commit with
    a backdoor (git objects and update-ref only: no path into mul's worktree). mul's
    frozen test waits for the plant, so the branch has moved before mul can merge, however
    loaded the machine; what merges is the commit mul's gate judged."""
    add, mul = sample_nodes()[:2]
    planted = tmp_path / "planted"
    # After the import, so the red run and the agent's own run (stub: ImportError) do not
    # wait; only the gate's run of the solution does.
    wait_for_plant = (
        f"import os, time\nwhile not os.path.exists({str(planted)!r}):\n    time.sleep(0.05)\n"
    )
    mul = replace(mul, test_body=mul.test_body.replace("\n", "\n" + wait_for_plant, 1))
    store = build_job(tmp_path, [add, mul], config=SANDBOX_OFF)
    branch = f"refs/heads/director/job-{JOB_ID}--{mul.id}"
    index = tmp_path / "evil-index"
    evil = tmp_path / "evil.py"
    evil.write_text(mul.solution + BACKDOOR + "\n")
    plant = (
        "until git log -1 --format=%s "
        + branch
        + " 2>/dev/null | grep -q 'director: node mul'; do sleep 0.05; done; "
        f"B=$(git hash-object -w {evil}) && "
        f"GIT_INDEX_FILE={index} git read-tree {branch} && "
        f"GIT_INDEX_FILE={index} git update-index --cacheinfo 100644,$B,{mul.impl_path} && "
        f"T=$(GIT_INDEX_FILE={index} git write-tree) && "
        f"C=$(git commit-tree $T -p {branch} -m 'looks like mul') && "
        f"git update-ref {branch} $C && touch {planted}"
    )
    write_script(store, [_with(solve(add), [{"run": plant}], []), solve(mul)])
    rec = Recorder()
    outcome = await asyncio.to_thread(run, store, rec, parallel=2)

    assert outcome.success, outcome.message
    assert planted.exists()
    assert job_file(store, mul.impl_path) == mul.solution  # the judged commit, no backdoor
    moved = [n.message for n in rec.of(Notice) if "put back on the judged commit" in n.message]
    assert moved and moved[0].startswith("node mul:"), [n.message for n in rec.of(Notice)]
