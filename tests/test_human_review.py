"""Human review (``[review] human``): a passing node is held before it merges until the
human accepts it; a retry or reject sends the human's comments, with file and line, to
the next executor attempt (scripted provider: the entry that matches only a prompt
carrying the comment is the one that wrote the merged code)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from director_tui.engine import node_diff, review_comments
from director_tui.engine.control import apply_offline, send_control
from director_tui.engine.events import NodeAwaitingReview, NodeMerged
from director_tui.engine.models import NodeStatus, Plan, RunState
from director_tui.engine.review_comments import ReviewComment
from director_tui.engine.store import Store
from tests.cli import director_here_on
from tests.run_fixture import (
    HUMAN_ALWAYS,
    Recorder,
    build_job,
    job_file,
    run,
    run_until_held,
    sample_nodes,
    solve,
    start_run,
    status_is,
    until,
    write_script,
)

ALWAYS = HUMAN_ALWAYS
REVIEWED_MUL = "def mul(a, b):\n    return a * b  # as reviewed\n"
COMMENT = "calc/mul.py:2: say that this was reviewed"


def _state(store: Store) -> RunState:
    return RunState.model_validate_json(store.state.read_bytes())


def _merged(rec: Recorder, node: str) -> bool:
    return any(e.node_id == node for e in rec.of(NodeMerged))


async def test_a_held_node_merges_only_when_accepted_and_comments_reach_the_next_prompt(
    tmp_path: Path,
) -> None:
    nodes = sample_nodes()[:2]  # add, mul: independent
    add, mul = nodes
    store = build_job(tmp_path, nodes, config=ALWAYS)
    write_script(
        store,
        [
            solve(
                mul,
                prompt_contains=COMMENT,
                steps=[{"write": mul.impl_path, "content": REVIEWED_MUL}],
            ),
            solve(add),
            solve(mul),
        ],
    )
    rec = Recorder()
    task = await start_run(store, rec, parallel=2)
    await until(rec, status_is("add", "awaiting_review"))
    await until(rec, status_is("mul", "awaiting_review"))
    await asyncio.sleep(0.5)  # held: nothing merges while the human has not answered
    assert not rec.of(NodeMerged) and not task.done()
    assert job_file(store, add.impl_path) == add.stub
    assert {e.node_id for e in rec.of(NodeAwaitingReview)} == {"add", "mul"}
    # The held attempt is what the diff shows: the commit the gate judged.
    plan = store.read_model(store.plan, Plan)
    assert plan is not None
    diff = node_diff.node_diff(store, plan, _state(store), "add")
    assert diff.source == "held for your review"
    (file,) = diff.files
    assert file.path == add.impl_path
    assert [ln.text for ln in file.hunks[0].lines if ln.kind == "add"] == [
        "def add(a, b):",
        "    return a + b",
    ]

    send_control(store, "accept", "add")
    await until(rec, lambda e: isinstance(e, NodeMerged) and e.node_id == "add")
    assert job_file(store, add.impl_path) == add.solution
    assert _state(store).nodes["add"].attempts == 1  # no other attempt ran

    review_comments.add(store, "mul", review_comments.parse(COMMENT))
    send_control(store, "retry", "mul")
    # Held again after the attempt the comment went to.
    await until(
        rec, lambda _e: len([h for h in rec.of(NodeAwaitingReview) if h.node_id == "mul"]) == 2
    )
    assert review_comments.load(store, "mul") == []  # sent: read once
    send_control(store, "accept", "mul")
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.success, outcome.message
    # Only the script entry whose prompt carried "calc/mul.py:2: …" writes this.
    assert job_file(store, mul.impl_path) == REVIEWED_MUL


def test_reject_sends_the_node_back_with_its_comments(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    (add,) = nodes
    store = build_job(tmp_path, nodes, config=ALWAYS)
    better = "def add(a, b):\n    return b + a\n"
    comment = "calc/add.py:2: return b + a"
    write_script(
        store,
        [
            solve(
                add, prompt_contains=comment, steps=[{"write": add.impl_path, "content": better}]
            ),
            solve(add),
        ],
    )

    async def reject_then_accept() -> None:
        rec = Recorder()
        task = await start_run(store, rec)
        await until(rec, status_is("add", "awaiting_review"))
        review_comments.add(store, "add", review_comments.parse(comment))
        send_control(store, "reject", "add")
        await until(rec, lambda e: status_is("add", "running")(e) and e.attempt == 2)
        await until(rec, lambda e: status_is("add", "awaiting_review")(e) and e.attempt == 2)
        send_control(store, "accept", "add")
        outcome = await asyncio.wait_for(task, 30)
        assert outcome.success, outcome.message

    asyncio.run(reject_then_accept())
    assert job_file(store, add.impl_path) == better
    assert _state(store).nodes["add"].attempts == 2  # the rejected attempt counted


def test_a_held_node_survives_the_run_and_merges_when_accepted_offline(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    (add,) = nodes
    store = build_job(tmp_path, nodes, config=ALWAYS)
    run_until_held(store, "add")
    held = _state(store).nodes["add"]
    assert held.status == NodeStatus.awaiting_review and held.held_commit
    with store.run_lock("control"):
        record = apply_offline(store, "accept", "add")
    assert record.ok, record.message
    write_script(store, [])  # no agent may be called: the accepted commit merges
    rec = Recorder()
    outcome = run(store, rec)
    assert outcome.success, outcome.message
    assert job_file(store, add.impl_path) == add.solution
    assert _merged(rec, "add") and _state(store).nodes["add"].attempts == 1


def test_on_escalation_holds_only_a_node_that_needed_the_escalation_tier(tmp_path: Path) -> None:
    nodes = sample_nodes()[:2]
    add, mul = nodes
    config = '[review]\nhuman = "on-escalation"\nstage_two = false\n'
    store = build_job(tmp_path, nodes, config=config, limits={"max_attempts": 1})
    wrong = {"role": "executor", "node": "mul", "model": "cheap", "steps": []}
    write_script(store, [solve(add), wrong, solve(mul, model="strong")])

    async def go() -> None:
        rec = Recorder()
        task = await start_run(store, rec, parallel=2)
        await until(rec, status_is("mul", "awaiting_review"))
        await until(rec, lambda e: isinstance(e, NodeMerged) and e.node_id == "add")
        assert not _merged(rec, "mul")
        (held,) = rec.of(NodeAwaitingReview)
        assert held.node_id == "mul" and "escalation" in held.reason
        send_control(store, "accept", "mul")
        outcome = await asyncio.wait_for(task, 30)
        assert outcome.success, outcome.message

    asyncio.run(go())


def test_accept_and_reject_refuse_a_node_that_is_not_held(tmp_path: Path) -> None:
    store = build_job(tmp_path, sample_nodes()[:1])
    with store.run_lock("control"):
        accepted = apply_offline(store, "accept", "add")
        rejected = apply_offline(store, "reject", "add")
    assert not accepted.ok and "not waiting for your review" in accepted.message
    assert not rejected.ok


def test_comments_parse_with_file_line_and_hunk() -> None:
    one = review_comments.parse("calc/mul.py:12: use the * operator")
    assert (one.path, one.line, one.end_line, one.text) == (
        "calc/mul.py",
        12,
        None,
        "use the * operator",
    )
    hunk = review_comments.parse("calc/mul.py:10-14: not needed")
    assert hunk.where == "calc/mul.py:10-14"
    whole = review_comments.parse("note: keep it short")
    assert (whole.path, whole.text) == ("", "note: keep it short")
    feedback = review_comments.as_feedback([one, ReviewComment(text="thanks")])
    assert "- calc/mul.py:12: use the * operator" in feedback and "- thanks" in feedback


def test_director_review_prints_the_diff_collects_comments_and_accept_merges(
    tmp_path: Path,
) -> None:
    nodes = sample_nodes()[:1]
    (add,) = nodes
    store = build_job(tmp_path, nodes, config=ALWAYS)
    run_until_held(store, "add")
    repo = store.repo
    shown = director_here_on(repo, "review", "add")
    assert shown.returncode == 0, shown.stderr
    assert "held for your review" in shown.stdout and "calc/add.py" in shown.stdout
    assert "    1 +def add(a, b):" in shown.stdout
    assert "\x1b[" not in shown.stdout  # piped: plain
    assert "director accept add" in shown.stdout
    coloured = director_here_on(repo, "review", "add", env={"FORCE_COLOR": "1"})
    assert "\x1b[" in coloured.stdout  # a terminal: coloured
    commented = director_here_on(repo, "review", "add", "--comment", "calc/add.py:2: name it")
    assert commented.returncode == 0 and "1 comment(s) added" in commented.stdout
    assert "calc/add.py:2: name it" in commented.stdout
    as_json = json.loads(director_here_on(repo, "review", "add", "--json").stdout)
    assert as_json["status"] == "awaiting_review"
    assert as_json["diff"]["files"][0]["path"] == "calc/add.py"
    assert as_json["comments"][0]["line"] == 2
    tests = director_here_on(repo, "review", "add", "--tests")
    assert "+assert add(2, 3) == 5" in tests.stdout and add.test_path in tests.stdout
    assert director_here_on(repo, "review", "nope").returncode == 2
    refused = director_here_on(repo, "reject", "nope", "--comment", "x")
    assert refused.returncode == 2 and not (store.root / "reviews" / "nope.json").exists()

    status = director_here_on(repo, "status")
    assert "add: waiting for your review — `director review add`" in status.stdout
    accepted = director_here_on(repo, "accept", "add")
    assert accepted.returncode == 0 and "accepted" in accepted.stdout, accepted.stdout
    again = director_here_on(repo, "accept", "add")
    assert again.returncode == 1 and "not waiting for your review" in again.stdout
    # The comment was not sent (accept sends none): it stays for a later retry.
    assert review_comments.load(store, "add")
    outcome = run(store)
    assert outcome.success and job_file(store, add.impl_path) == add.solution


def test_director_retry_with_a_comment_sends_it_to_the_held_nodes_next_attempt(
    tmp_path: Path,
) -> None:
    store = build_job(tmp_path, sample_nodes()[:1], config=ALWAYS)
    run_until_held(store, "add")
    retried = director_here_on(
        store.repo, "retry", "add", "--comment", "calc/add.py:2: swap the operands"
    )
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "your 1 comment(s) as its feedback" in retried.stdout
    st = _state(store).nodes["add"]
    assert st.status == NodeStatus.pending and not st.held_commit
    assert "- calc/add.py:2: swap the operands" in st.feedback
    assert review_comments.load(store, "add") == []
