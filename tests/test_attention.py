"""Attention: which engine events call for the human (or say the job finished), told once
while open; the terminal escapes; the user's `[notify] command` run as a real process."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from director_tui.engine.attention import (
    Attention,
    AttentionTracker,
    terminal_alert,
)
from director_tui.engine.config import ConfigError, Notify, load_config
from director_tui.engine.events import (
    AgentStarted,
    EventBase,
    EventBus,
    NodeAwaitingReview,
    NodeStateChanged,
    Notice,
    PlanStageChanged,
    RunFinished,
    RunStarted,
)
from director_tui.engine.notify import attention_on, run_notify_command
from tests.run_fixture import Recorder, build_job, run, sample_nodes, solve, write_script
from tests.support.notify_recorder import notified, recording_command

JOB = "20260101-000000-abcd"


def numbered(*events: EventBase) -> list[EventBase]:
    for seq, event in enumerate(events, start=1):
        event.seq = seq
    return list(events)


def told(events: list[EventBase]) -> list[tuple[str, str, str]]:
    tracker = AttentionTracker()
    items = [tracker.see(event) for event in events]
    return [(i.kind, i.level, i.node_id) for i in items if i is not None]


# -- what calls for the human -----------------------------------------------------------
def test_a_gate_reached_is_told_once_until_the_human_acts() -> None:
    events = numbered(
        PlanStageChanged(job_id=JOB, stage="spec"),
        PlanStageChanged(job_id=JOB, stage="gate1", message="spec written"),
        PlanStageChanged(job_id=JOB, stage="gate1", message="said again"),  # still open
        # the human rejects: the brainstorm agent rewrites, then the gate waits again
        AgentStarted(call_id="c1", role="brainstorm", tier="scripted/x"),
        PlanStageChanged(job_id=JOB, stage="gate1", message="spec rewritten"),
        PlanStageChanged(job_id=JOB, stage="decompose", message="Gate 1 approved"),
        PlanStageChanged(job_id=JOB, stage="tests"),
        PlanStageChanged(job_id=JOB, stage="gate2"),
    )
    assert told(events) == [
        ("gate_reached", "needs_you", ""),
        ("gate_reached", "needs_you", ""),
        ("gate_reached", "needs_you", ""),
    ]
    tracker = AttentionTracker.replayed(events)
    headline = tracker.headline()
    assert headline is not None and headline.headline == "Gate 2 needs you"
    assert headline.job_id == JOB and headline.seq == 8
    assert "Gate 2 waits for you" in headline.message


def test_the_second_gate_is_its_own_occasion() -> None:
    """Events that go from one gate straight to the other (a job written by hand, or an
    old events.jsonl) still tell Gate 2, and the header shows it, not Gate 1."""
    events = numbered(
        PlanStageChanged(job_id=JOB, stage="gate1"),
        PlanStageChanged(job_id=JOB, stage="gate2"),
    )
    assert told(events) == [("gate_reached", "needs_you", ""), ("gate_reached", "needs_you", "")]
    tracker = AttentionTracker.replayed(events)
    assert [item.gate for item in tracker.open.values()] == ["gate2"]


def test_gates_passed_automatically_call_for_nobody() -> None:
    events = numbered(
        PlanStageChanged(job_id=JOB, stage="gate1", auto=True),
        PlanStageChanged(job_id=JOB, stage="decompose", auto=True),
        PlanStageChanged(job_id=JOB, stage="gate2", auto=True),
        PlanStageChanged(job_id=JOB, stage="approved", auto=True),
    )
    assert told(events) == []


def test_run_events_failed_node_ceiling_and_the_two_ends() -> None:
    events = numbered(
        RunStarted(job_id=JOB, job_branch="b", node_ids=["a", "b"], parallel=2, ceiling_usd=1),
        NodeStateChanged(node_id="a", status="running"),
        NodeStateChanged(node_id="a", status="failed", message="out of attempts"),
        NodeStateChanged(node_id="a", status="failed"),  # said again: not told again
        RunFinished(job_id=JOB, outcome="failed", message="failed: a"),
        # the human retries a: the failure closes, a new run starts
        NodeStateChanged(node_id="a", status="pending"),
        RunStarted(job_id=JOB, job_branch="b", node_ids=["a", "b"], parallel=2, ceiling_usd=1),
        RunFinished(job_id=JOB, outcome="stopped", message="cost ceiling reached"),
        RunStarted(job_id=JOB, job_branch="b", node_ids=["a", "b"], parallel=2, ceiling_usd=9),
        RunFinished(job_id=JOB, outcome="cancelled"),
        RunStarted(job_id=JOB, job_branch="b", node_ids=["a", "b"], parallel=2, ceiling_usd=9),
        RunFinished(job_id=JOB, outcome="success", message="all nodes merged"),
    )
    assert told(events) == [
        ("node_failed", "needs_you", "a"),
        ("job_finished", "needs_you", ""),
        ("ceiling_stopped", "needs_you", ""),
        ("job_finished", "finished", ""),
    ]
    tracker = AttentionTracker.replayed(events)
    headline = tracker.headline()
    assert headline is not None and (headline.kind, headline.level) == ("job_finished", "finished")
    assert tracker.needs_you() == 0


def test_a_node_held_for_review_is_told_by_its_event_or_its_state() -> None:
    """The diff-review hold (``[review] human``): the ``NodeAwaitingReview`` event and the
    node state ``awaiting_review`` — either or both — are one occasion per hold."""
    events = numbered(
        RunStarted(job_id=JOB, job_branch="b", node_ids=["b"], parallel=1, ceiling_usd=1),
        NodeStateChanged(node_id="b", status="awaiting_review"),
        NodeAwaitingReview(node_id="b", commit="c0ffee"),
        NodeStateChanged(node_id="b", status="merging"),  # accepted
        NodeAwaitingReview(node_id="b", commit="c0ffee2"),  # held again after a retry
    )
    assert told(events) == [
        ("review_waiting", "needs_you", "b"),
        ("review_waiting", "needs_you", "b"),
    ]


def test_a_new_job_forgets_what_the_old_one_waited_for() -> None:
    tracker = AttentionTracker.replayed(
        numbered(
            PlanStageChanged(job_id="old", stage="gate1"),
            PlanStageChanged(job_id="new", stage="recon"),
        )
    )
    assert tracker.headline() is None


def test_real_run_events_tell_a_failed_node_and_the_unfinished_job(tmp_path: Path) -> None:
    """From the run engine's own events: a node whose every attempt fails its gate."""
    nodes = sample_nodes()
    store = build_job(tmp_path, nodes, limits={"max_attempts": 1})
    failing = {"role": "executor", "node": nodes[0].id, "steps": [], "text": "gave up"}
    write_script(store, [failing, *(solve(spec) for spec in nodes[1:])])
    recorder = Recorder()
    outcome = run(store, recorder)
    assert outcome.outcome == "failed"
    kinds = told(recorder.events)
    assert ("node_failed", "needs_you", nodes[0].id) in kinds
    assert kinds[-1] == ("job_finished", "needs_you", "")


# -- the terminal's escapes ------------------------------------------------------------
ITEM = Attention(
    kind="gate_reached",
    level="needs_you",
    job_id=JOB,
    message="Gate 1 waits; for you\nnow",
    headline="Gate 1 needs you",
    gate="gate1",
)


def test_terminal_alert_rings_and_notifies_in_both_escapes() -> None:
    alert = terminal_alert(ITEM, bell=True, desktop="both", in_tmux=False)
    assert alert == (
        "\a"
        "\x1b]9;director: needs you: Gate 1 waits, for you now\a"
        "\x1b]777;notify;director: needs you;Gate 1 waits, for you now\a"
    )
    assert terminal_alert(ITEM, bell=False, desktop="off", in_tmux=False) == ""
    only9 = terminal_alert(ITEM, bell=False, desktop="osc9", in_tmux=False)
    assert only9.startswith("\x1b]9;") and "777" not in only9


def test_terminal_alert_goes_through_tmux_passthrough() -> None:
    alert = terminal_alert(ITEM, bell=True, desktop="osc9", in_tmux=True)
    assert alert == "\a\x1bPtmux;\x1b\x1b]9;director: needs you: Gate 1 waits, for you now\a\x1b\\"


# -- the notify command ----------------------------------------------------------------
def test_notify_command_gets_the_event_on_stdin_and_in_env(tmp_path: Path) -> None:
    argv, out = recording_command(tmp_path)
    failure = run_notify_command(Notify(command=argv), ITEM, tmp_path)
    assert failure == ""
    [record] = notified(out)
    assert record["stdin"] == {**ITEM.as_json(), "repo": str(tmp_path)}
    env = record["env"]
    assert isinstance(env, dict)
    expected = {
        "DIRECTOR_EVENT": "gate_reached",
        "DIRECTOR_LEVEL": "needs_you",
        "DIRECTOR_JOB": JOB,
        "DIRECTOR_NODE": "",
        "DIRECTOR_GATE": "gate1",
        "DIRECTOR_TITLE": "director: needs you",
        "DIRECTOR_MESSAGE": ITEM.message,
        "DIRECTOR_REPO": str(tmp_path),
    }
    assert {key: env.get(key) for key in expected} == expected
    assert record["cwd"] == str(tmp_path)


def test_notify_command_as_a_string_is_split_like_a_shell_would(tmp_path: Path) -> None:
    argv, out = recording_command(tmp_path)
    command = " ".join(f"'{arg}'" for arg in argv)
    assert run_notify_command(Notify(command=command), ITEM, tmp_path) == ""
    assert len(notified(out)) == 1


def test_notify_command_failures_are_one_line_never_an_exception(tmp_path: Path) -> None:
    failing = Notify(command=[sys.executable, "-c", "import sys; sys.exit('no display here')"])
    assert run_notify_command(failing, ITEM, tmp_path) == (
        f"{sys.executable} exited with 1: no display here"
    )
    missing = Notify(command="/nonexistent/notifier --now")
    assert "/nonexistent/notifier" in run_notify_command(missing, ITEM, tmp_path)
    slow = Notify(command=[sys.executable, "-c", "import time; time.sleep(30)"], timeout_secs=0.5)
    started = time.monotonic()
    assert "took longer than 0.5s" in run_notify_command(slow, ITEM, tmp_path)
    assert time.monotonic() - started < 10


def test_attention_on_a_bus_runs_the_command_once_per_occasion_and_warns_on_failure(
    tmp_path: Path,
) -> None:
    argv, out = recording_command(tmp_path)
    bus = EventBus()
    seen: list[EventBase] = []
    bus.subscribe(seen.append)
    with attention_on(bus, Notify(command=argv), tmp_path):
        bus.emit(PlanStageChanged(job_id=JOB, stage="gate1"))
        bus.emit(PlanStageChanged(job_id=JOB, stage="gate1"))  # the same occasion
        bus.emit(NodeStateChanged(node_id="a", status="failed", message="out of attempts"))
    # closing waited for the queued commands: both ran, in order
    assert [r["stdin"]["event"] for r in notified(out)] == ["gate_reached", "node_failed"]  # type: ignore[index]
    assert notified(out)[1]["env"]["DIRECTOR_NODE"] == "a"  # type: ignore[index]

    failing = Notify(command=[sys.executable, "-c", "raise SystemExit(3)"])
    with attention_on(bus, failing, tmp_path):
        bus.emit(PlanStageChanged(job_id=JOB, stage="gate2"))
    warnings = [e for e in seen if isinstance(e, Notice) and e.level == "warning"]
    assert [w.message for w in warnings] == [
        f"[notify] command for gate_reached: {sys.executable} exited with 3"
    ]


def test_attention_on_a_terminal_writes_bell_and_osc_and_respects_the_kinds(
    tmp_path: Path,
) -> None:
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    bus = EventBus()
    quiet = Notify(events=["job_finished"], desktop="osc777")
    with attention_on(bus, quiet, tmp_path, terminal=terminal):
        bus.emit(PlanStageChanged(job_id=JOB, stage="gate1"))  # not a kind asked for
        assert terminal.getvalue() == ""
        bus.emit(RunFinished(job_id=JOB, outcome="success", message="all nodes merged"))
    assert terminal.getvalue() == (
        f"\a\x1b]777;notify;director: finished;job {JOB} finished: all nodes merged\a"
    )


def test_notify_config_is_checked_with_file_and_meaning(tmp_path: Path) -> None:
    from tests.gitrepo import make_repo

    repo = make_repo(tmp_path / "repo")
    config = repo / ".director" / "config.toml"
    config.parent.mkdir()
    config.write_text('[notify]\ncommand = "notify-send \'unclosed"\n')
    with pytest.raises(ConfigError, match="does not split"):
        load_config(repo)
    config.write_text('[notify]\nevents = ["gate_reached", "lunch"]\n')
    with pytest.raises(ConfigError, match="unknown lunch"):
        load_config(repo)
    config.write_text('[notify]\ncommand = ["notify-send", "-u", "critical"]\nbell = false\n')
    notify = load_config(repo).notify
    assert notify.argv() == ["notify-send", "-u", "critical"] and not notify.bell
