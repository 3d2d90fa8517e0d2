"""Stage-two review: verdict parsing, cost gating, a critical finding blocks and re-opens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from director_tui.engine.config import Config
from director_tui.engine.events import NodeStateChanged, Notice, ReviewResult
from director_tui.engine.models import RunState
from director_tui.engine.review import VerdictError, needs_stage_two, parse_verdict
from tests.run_fixture import Recorder, build_job, job_file, run, sample_nodes, solve, write_script

PASS = {"verdict": "pass", "summary": "fine", "findings": []}
CRITICAL = {
    "verdict": "block",
    "summary": "hard-codes the expected value",
    "findings": [{"severity": "critical", "file": "calc/add.py", "summary": "returns 5 always"}],
}


def test_parse_verdict_accepts_fenced_and_prose_wrapped_json() -> None:
    assert parse_verdict(json.dumps(PASS)).verdict == "pass"
    wrapped = "Here is my review:\n```json\n" + json.dumps(CRITICAL) + "\n```\nthanks"
    verdict = parse_verdict(wrapped)
    assert verdict.blocking and verdict.findings[0].file == "calc/add.py"


@pytest.mark.parametrize(
    "text", ["", "looks good to me", '{"verdict": "maybe"}', '{"summary": "no verdict"}']
)
def test_parse_verdict_rejects_non_verdicts(text: str) -> None:
    with pytest.raises(VerdictError):
        parse_verdict(text)


def test_stage_two_is_cost_gated() -> None:
    config = Config()
    threshold = config.review.stage_two_file_threshold
    assert not needs_stage_two(config, escalated=False, files_touched=threshold)
    assert needs_stage_two(config, escalated=False, files_touched=threshold + 1)
    assert needs_stage_two(config, escalated=True, files_touched=1)
    config.review.stage_two = False
    assert not needs_stage_two(config, escalated=True, files_touched=99)


def _review(node: str, attempt: int, verdict: object) -> dict[str, object]:
    text = verdict if isinstance(verdict, str) else json.dumps(verdict)
    return {"role": "reviewer", "node": node, "attempt": attempt, "text": text, "cost": 0.002}


def test_critical_finding_blocks_the_merge_and_reopens_the_node(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, config="[review]\nstage_two_file_threshold = 0\n")
    add = nodes[0]
    cheat = solve(add, attempt=1)
    cheat["steps"] = [{"write": add.impl_path, "content": "def add(a, b):\n    return 5\n"}]
    write_script(
        store,
        [
            cheat,
            solve(add, attempt=2, prompt_contains="returns 5 always"),
            _review("add", 1, CRITICAL),
            _review("add", 2, PASS),
        ],
    )
    rec = Recorder()
    outcome = run(store, rec)
    assert outcome.success, outcome.message
    reviews = rec.of(ReviewResult)
    assert [(r.stage, r.blocking) for r in reviews] == [("two", True), ("two", False)]
    state = store.read_model(store.state, RunState)
    assert state is not None
    st = state.nodes["add"]
    assert st.attempts == 2 and st.stage_two
    assert st.usage["reviewer"].calls == 2
    assert job_file(store, add.impl_path) == add.solution
    assert outcome.stage_two_trigger_rate == 1.0


def test_unparseable_verdict_is_retried_once_then_recorded_not_blocking(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, config="[review]\nstage_two_file_threshold = 0\n")
    add = nodes[0]
    write_script(store, [solve(add), _review("add", 1, "I think it is fine.")])
    rec = Recorder()
    outcome = run(store, rec)
    assert outcome.success
    state = store.read_model(store.state, RunState)
    assert state is not None
    st = state.nodes["add"]
    assert st.usage["reviewer"].calls == 2
    assert "unparseable" in st.review_error
    assert rec.of(ReviewResult)[-1].verdict == "error"


def test_no_review_below_the_threshold(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes)
    write_script(store, [solve(nodes[0])])  # no reviewer entry: a call would crash
    outcome = run(store)
    assert outcome.success
    state = store.read_model(store.state, RunState)
    assert state is not None and "reviewer" not in state.nodes["add"].usage


def test_a_reviewer_that_crashes_fails_open_and_the_record_says_so(tmp_path: Path) -> None:
    """Kept on purpose: the deterministic gates passed, and a flaky reviewer must not
    block a merge. But the node's record says it merged without a review verdict: its
    status message, its state (review_error, no review) and the notice."""
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, config="[review]\nstage_two_file_threshold = 0\n")
    add = nodes[0]
    crash = {"role": "reviewer", "node": "add", "exit": "crashed", "message": "segfault"}
    write_script(store, [solve(add), crash])
    rec = Recorder()
    outcome = run(store, rec)
    assert outcome.success
    state = store.read_model(store.state, RunState)
    assert state is not None
    st = state.nodes["add"]
    assert st.review is None and st.review_error
    assert rec.of(ReviewResult)[-1].verdict == "error"
    done = [e for e in rec.of(NodeStateChanged) if e.status == "done"]
    assert done and "without a review verdict" in done[-1].message
    assert any("merges without a review verdict" in n.message for n in rec.of(Notice))
