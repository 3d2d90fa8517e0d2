"""``director bench`` with the scripted provider: exact counts, costs, cuts and spread.

One sample repo, one frozen two-node plan (add, mul), four profiles:

- ``all-frontier``: the executor passes every node first time, at frontier prices.
- ``cheap-cloud``: a cheap executor needs two attempts at ``mul``; at ``add`` it fails
  twice in repeat 1 (→ one escalation to the frontier tier, which gets a stage-two
  review) but gets it right on its second attempt in repeat 2. Spread.
- ``local-first``: a free local model; it never gets ``add`` right, not even escalated.
- ``broken``: names an OpenCode tier while OpenCode is not installed.

Every expected number below is computed from the script's token counts and the
profile prices (no ``cost`` in the script: the engine prices tokens from ``[pricing]``).
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from director_tui.engine import git
from director_tui.engine.bench import events_path, list_benches, load_summary, run_bench
from director_tui.engine.errors import ConfigError, UsageError
from director_tui.engine.events import BenchProgress, EventBase
from director_tui.engine.models import Plan
from director_tui.engine.store import RUNTIME_IGNORES, Store, read_jsonl
from tests.conftest import make_repo

PY = sys.executable
PRELUDE = "import os, sys\nsys.path.insert(0, os.getcwd())\n"
TEST_ADD = PRELUDE + "from calc.add import add\nassert add(2, 3) == 5\nprint('add ok')\n"
TEST_MUL = PRELUDE + "from calc.mul import mul\nassert mul(4, 3) == 12\nprint('mul ok')\n"
ADD_OK = "def add(a, b):\n    return a + b\n"
ADD_WRONG = "def add(a, b):\n    return a - b\n"
MUL_OK = "def mul(a, b):\n    return a * b\n"
MUL_WRONG = "def mul(a, b):\n    return a + b\n"

# $ per million tokens (input, output)
PRICES = {"frontier": (5.0, 25.0), "cheap": (0.25, 1.25), "local": (0.0, 0.0)}
PLAN_TOKENS = (1000, 200)  # every planning call and the reviewer
FRONTIER_EXEC = (2000, 400)
CHEAP_EXEC = (4000, 800)
LOCAL_EXEC = (3000, 600)


def price(model: str, tokens: tuple[int, int]) -> float:
    inp, out = PRICES[model]
    return tokens[0] * inp / 1e6 + tokens[1] * out / 1e6


def node(node_id: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "title": f"implement {node_id}",
        "spec": f"Implement {node_id} in calc/{node_id}.py.",
        "files": [f"calc/{node_id}.py"],
        "depends_on": [],
        "test_cmd": f"{PY} tests/check_{node_id}.py",
        "tests": [f"tests/check_{node_id}.py"],
        "estimated_difficulty": "easy",
    }


PLAN = {"nodes": [node("add"), node("mul")]}
SPEC = "# add and mul\n\n## Goal\nAdd calc.add and calc.mul.\n\n## Acceptance criteria\n1. add\n2. mul\n"


def call(role: str, text: str = "", tokens: tuple[int, int] = PLAN_TOKENS, **kw: Any) -> dict:
    return {"role": role, "text": text, "tokens": {"input": tokens[0], "output": tokens[1]}, **kw}


def write(path: str, content: str) -> dict[str, str]:
    return {"write": path, "content": content}


def script(fix_file: Path) -> dict[str, Any]:
    verdict = json.dumps({"verdict": "pass", "summary": "fine", "findings": []})
    # In repeat 2 of cheap-cloud the cheap model gets add right at its second attempt: the
    # run step sees which run's worktree it is in (as any agent's shell would).
    second_try = (
        f'case "$PWD" in */runs/cheap-cloud-2/*) cp {fix_file} calc/add.py ;; *) true ;; esac'
    )
    return {
        "calls": [
            call("explorer", "## Layout\ncalc/ is an empty package\n"),
            call("brainstorm", SPEC),
            call("critic", SPEC, prompt_contains="Spec to review"),
            call("critic", json.dumps(PLAN), prompt_contains="Plan to review"),
            call("planner", json.dumps(PLAN)),
            call("test_author", "red", node="add", steps=[write("tests/check_add.py", TEST_ADD)]),
            call("test_author", "red", node="mul", steps=[write("tests/check_mul.py", TEST_MUL)]),
            call("reviewer", verdict),
            # frontier: right first time (also what an escalation to the frontier plays)
            call("executor", "ok", FRONTIER_EXEC, node="add", model="frontier",
                 steps=[write("calc/add.py", ADD_OK)]),
            call("executor", "ok", FRONTIER_EXEC, node="mul", model="frontier",
                 steps=[write("calc/mul.py", MUL_OK)]),
            # cheap: mul right at the second attempt; add wrong twice (fixed in repeat 2)
            call("executor", "ok", CHEAP_EXEC, node="mul", model="cheap", attempt=1,
                 steps=[write("calc/mul.py", MUL_WRONG)]),
            call("executor", "ok", CHEAP_EXEC, node="mul", model="cheap",
                 steps=[write("calc/mul.py", MUL_OK)]),
            call("executor", "ok", CHEAP_EXEC, node="add", model="cheap", attempt=2,
                 steps=[write("calc/add.py", ADD_WRONG), {"run": second_try}]),
            call("executor", "ok", CHEAP_EXEC, node="add", model="cheap",
                 steps=[write("calc/add.py", ADD_WRONG)]),
            # local: mul right, add never
            call("executor", "ok", LOCAL_EXEC, node="mul", model="local",
                 steps=[write("calc/mul.py", MUL_OK)]),
            call("executor", "ok", LOCAL_EXEC, node="add", model="local",
                 steps=[write("calc/add.py", ADD_WRONG)]),
        ]
    }  # fmt: skip


def profile_toml(executor: str, escalation: str, script_path: Path) -> str:
    tiers = {
        "planner": "scripted/frontier",
        "test_author": "scripted/frontier",
        "explorer": "scripted/frontier",
        "reviewer": "scripted/frontier",
        "executor": executor,
        "escalation": escalation,
    }
    lines = ["[tiers]", *(f'{k} = "{v}"' for k, v in tiers.items())]
    for model, (inp, out) in PRICES.items():
        lines += [f'[pricing."scripted/{model}"]', f"input = {inp}", f"output = {out}"]
    lines += [
        "[limits]",
        "max_attempts = 2",
        "flake_runs = 1",
        "parallel = 2",
        "node_timeout_secs = 60",
        "idle_timeout_secs = 30",
        "gate_timeout_secs = 60",
        "cost_ceiling_usd = 0",
        "[gates]",
        f'test = "{PY} tests/check_add.py && {PY} tests/check_mul.py"',
        "[scripted]",
        f"script = {json.dumps(str(script_path))}",
    ]
    return "\n".join(lines) + "\n"


def git_out(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def user_view(repo: Path) -> dict[str, str]:
    return {
        "head": git_out(repo, "rev-parse", "HEAD"),
        "branch": git_out(repo, "symbolic-ref", "--short", "HEAD"),
        "status": git_out(repo, "status", "--porcelain=v1", "--untracked-files=all"),
        "index": git_out(repo, "ls-files", "-s"),
        "readme": (repo / "README.md").read_text(),
        "notes": (repo / "notes.txt").read_text() if (repo / "notes.txt").exists() else "",
        "config": (repo / ".director" / "config.toml").read_text(),
        "state": (repo / ".director" / "state.json").read_text(),
    }


def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = make_repo(
        tmp_path / "repo",
        {"README.md": "# calc\n", "calc/__init__.py": "", "calc/ops.py": "# helpers\n"},
    )
    # In the shared git dir: a sandboxed agent's command reads it there, unlike tmp_path.
    fix = repo / ".git" / "add_fix.py"
    fix.write_text(ADD_OK)
    script_path = tmp_path / "script.json"
    script_path.write_text(json.dumps(script(fix)))
    director = repo / ".director"
    (director / "profiles").mkdir(parents=True)
    profiles = {
        "all-frontier": profile_toml("scripted/frontier", "scripted/frontier", script_path),
        "cheap-cloud": profile_toml("scripted/cheap", "scripted/frontier", script_path),
        "local-first": profile_toml("scripted/local", "scripted/local", script_path),
        "broken": profile_toml("opencode/fake/model", "scripted/frontier", script_path),
    }
    for name, text in profiles.items():
        (director / "profiles" / f"{name}.toml").write_text(text)
    # The user's own config is not even valid TOML: a bench must never read it.
    (director / "config.toml").write_text("this is [not toml\n")
    (director / "state.json").write_text('{"user": "job in progress"}\n')
    # As after any earlier director command: runtime state is kept out of `git status`.
    with (repo / ".git" / "info" / "exclude").open("a") as fh:
        fh.write("\n".join(RUNTIME_IGNORES) + "\n")
    monkeypatch.setenv("DIRECTOR_OPENCODE_BIN", str(tmp_path / "no-such-opencode"))
    return repo


PROFILES = ["all-frontier", "cheap-cloud", "local-first", "broken"]


def bench(repo: Path, on_event: Any = None, **kw: Any) -> dict[str, Any]:
    return asyncio.run(
        run_bench(Store(repo), "add add and mul to calc", PROFILES, on_event=on_event, **kw)
    ).to_json()


def row(summary: dict[str, Any], profile: str) -> dict[str, Any]:
    return next(r for r in summary["rows"] if r["profile"] == profile)


def test_bench_counts_costs_cuts_spread_hashes_and_isolation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = sample(tmp_path, monkeypatch)
    events: list[EventBase] = []
    snapshot: dict[str, dict[str, str]] = {}

    def on_event(event: EventBase) -> None:
        events.append(event)
        # The user starts editing while the bench runs: a tracked change, a staged
        # change, an untracked file. All of it must survive.
        if isinstance(event, BenchProgress) and event.phase == "start" and not snapshot:
            (repo / "README.md").write_text("# calc\n\nwork in progress\n")
            (repo / "calc" / "ops.py").write_text("# helpers, staged\n")
            git_out(repo, "add", "calc/ops.py")
            (repo / "notes.txt").write_text("my notes\n")
            snapshot["user"] = user_view(repo)

    # One node at a time: concurrent `git worktree add` calls inside one run can race
    # (reported to the run engine), and this test is about the bench, not that race.
    summary = bench(repo, on_event, repeat=2, parallel=1)

    # -- the user's checkout, config and job: untouched -----------------------------------
    assert user_view(repo) == snapshot["user"]
    assert summary["user_checkout_untouched"] is True
    assert sorted(p.name for p in (repo / ".director").iterdir()) == [
        "bench",
        "config.toml",
        "profiles",
        "state.json",
    ]

    # -- planning once, counted once --------------------------------------------------------
    assert summary["status"] == "finished"
    assert summary["plan_profile"] == "all-frontier"
    plan_calls = 7  # explorer, brainstorm, critic ×2, planner, test_author ×2
    assert summary["plan_cost"] == pytest.approx(plan_calls * price("frontier", PLAN_TOKENS))
    assert summary["plan_cost"] == pytest.approx(0.07)

    frontier_run = 2 * price("frontier", FRONTIER_EXEC)
    cheap_1 = (
        2 * price("cheap", CHEAP_EXEC)  # mul: two attempts
        + 2 * price("cheap", CHEAP_EXEC)  # add: two failed attempts
        + price("frontier", FRONTIER_EXEC)  # add: escalated
        + price("frontier", PLAN_TOKENS)  # add: stage-two review of the escalated node
    )
    cheap_2 = 4 * price("cheap", CHEAP_EXEC)  # two attempts at each node, no escalation
    assert (frontier_run, cheap_1, cheap_2) == pytest.approx((0.04, 0.038, 0.008))

    # -- per run ---------------------------------------------------------------------------
    runs = {(r["profile"], r["repeat"]): r for r in summary["runs"]}
    assert list(runs) == [(p, k) for k in (1, 2) for p in PROFILES]  # round-robin
    for k in (1, 2):
        f = runs[("all-frontier", k)]
        assert (f["done"], f["executor_pct"], f["escalated"], f["review_pct"]) == (2, 100, 0, 0)
        assert f["integration_ok"] and f["acceptance_passed"] == 2
        assert f["run_cost"] == pytest.approx(frontier_run)
        assert f["tokens_by_role"] == {
            "executor": {"input": 4000, "output": 800, "tokens": 4800, "cost_usd": 0.04, "calls": 2}
        }
        loc = runs[("local-first", k)]
        assert (loc["done"], loc["executor_pct"], loc["escalated"]) == (1, 50, 1)
        assert loc["integration_ok"] is False and loc["acceptance_passed"] == 1
        assert loc["run_cost"] == 0
        assert loc["tokens_by_role"]["executor"]["tokens"] == 3 * 3600
        assert loc["tokens_by_role"]["escalation"]["tokens"] == 3600
        broken = runs[("broken", k)]
        assert broken["error"] and "opencode" in broken["error"] and "not found" in broken["error"]
    c1, c2 = runs[("cheap-cloud", 1)], runs[("cheap-cloud", 2)]
    assert (c1["done"], c1["executor_pct"], c1["escalated"], c1["review_pct"]) == (2, 50, 1, 50)
    assert (c2["done"], c2["executor_pct"], c2["escalated"], c2["review_pct"]) == (2, 100, 0, 0)
    assert c1["run_cost"] == pytest.approx(cheap_1) and c2["run_cost"] == pytest.approx(cheap_2)
    assert c1["acceptance_passed"] == c2["acceptance_passed"] == 2
    assert {role: u["tokens"] for role, u in c1["tokens_by_role"].items()} == {
        "executor": 4 * 4800,
        "escalation": 2400,
        "reviewer": 1200,
    }
    assert all(r["wall_secs"] > 0 for r in summary["runs"] if not r["error"])

    # -- across repeats: mean, spread, cut, quality ------------------------------------------
    frontier = row(summary, "all-frontier")
    assert frontier["run_cost"] == pytest.approx(0.04) and frontier["run_cost_std"] == 0
    assert frontier["cost_cut_pct"] is None and frontier["acceptance_pct"] == 100
    cheap = row(summary, "cheap-cloud")
    mean = (cheap_1 + cheap_2) / 2
    std = math.sqrt(((cheap_1 - mean) ** 2 + (cheap_2 - mean) ** 2) / (2 - 1))
    assert cheap["run_cost"] == pytest.approx(mean) == pytest.approx(0.023)
    assert cheap["run_cost_std"] == pytest.approx(std) == pytest.approx(0.0212132, rel=1e-5)
    assert (cheap["run_cost_min"], cheap["run_cost_max"]) == pytest.approx((0.008, 0.038))
    assert cheap["stats"]["executor_pct"] == pytest.approx(
        {"mean": 75, "std": math.sqrt(2 * 25**2), "min": 50, "max": 100, "n": 2}
    )
    assert (cheap["escalated"], cheap["review_pct"], cheap["done"]) == (0.5, 25, 2)
    assert cheap["cost_cut_pct"] == pytest.approx(100 * (1 - mean / frontier_run))  # 42.5
    assert cheap["cut_target_met"] is False and cheap["quality_held"] is True
    assert cheap["tokens_by_role"] == {"escalation": 1200, "executor": 19200, "reviewer": 600}
    local = row(summary, "local-first")
    assert local["cost_cut_pct"] == 100 and local["cut_target_met"] is True
    assert local["acceptance_pct"] == 50 and local["quality_held"] is False
    assert local["integration_ok"] is False and local["run_cost_std"] == 0
    broken = row(summary, "broken")
    assert broken["runs_ok"] == 0 and "not found" in broken["error"]
    assert broken["cost_cut_pct"] is None

    # -- hash check: the frozen tests, byte for byte, on every profile branch ------------------
    check = summary["hash_check"]
    assert check["ok"] and check["branches_checked"] == 6 and not check["mismatches"]
    frozen = Plan.model_validate_json(
        (repo / ".director" / "bench" / summary["bench_id"] / "plan" / "plan.json").read_text()
    )
    assert set(check["files"]) == {"tests/check_add.py", "tests/check_mul.py"}
    for r in summary["runs"]:
        if r["error"]:
            assert not git.branch_exists(repo, r["branch"])
            continue
        assert r["hashes_ok"] is True
        assert git.file_at(repo, r["branch"], "tests/check_add.py") == TEST_ADD.encode()
        assert git.file_at(repo, r["branch"], "tests/check_mul.py") == TEST_MUL.encode()
        # every fork starts at the frozen job branch
        merged = subprocess.run(
            ["git", "merge-base", "--is-ancestor", frozen.job_branch, r["branch"]], cwd=repo
        )
        assert merged.returncode == 0
    assert git.file_at(repo, runs[("cheap-cloud", 2)]["branch"], "calc/add.py") == ADD_OK.encode()
    assert git.file_at(repo, runs[("local-first", 1)]["branch"], "calc/add.py") is None

    # -- files: summary (latest + per id), history, metrics streams, live events --------------
    bench_root = repo / ".director" / "bench"
    assert load_summary(Store(repo)).to_json() == summary
    assert load_summary(Store(repo), summary["bench_id"][:15]).to_json() == summary
    assert [e["bench_id"] for e in list_benches(Store(repo))] == [summary["bench_id"]]
    stream = read_jsonl(bench_root / summary["bench_id"] / "cheap-cloud.metrics.jsonl")
    run_records = [r for r in stream if r["kind"] == "run"]
    assert [(r["repeat"], r["escalated"]) for r in run_records] == [(1, 1), (2, 0)]
    assert [r["repeat"] for r in stream if r["kind"] == "bench_run"] == [1, 2]
    assert (bench_root / "cheap-cloud.metrics.jsonl").read_text() == (
        bench_root / summary["bench_id"] / "cheap-cloud.metrics.jsonl"
    ).read_text()
    live = [e for e in read_jsonl(events_path(Store(repo))) if e["type"] == "bench"]
    assert [e["phase"] for e in live][-1] == "finished"
    assert [(e["profile"], e["repeat"]) for e in live if e["phase"] == "start"] == [
        (p, k) for k in (1, 2) for p in PROFILES
    ]
    node_events = [e for e in live if e["phase"] == "node" and e["profile"] == "all-frontier"]
    assert node_events and node_events[-1]["done"] == 2 and node_events[-1]["total"] == 2
    assert [e.phase for e in events if isinstance(e, BenchProgress)][-1] == "finished"
    # merged node branches are tidied away, the failed node's branch is kept
    branches = git_out(
        repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/director/job-bench-*"
    ).split()
    assert branches and all("local-first" in b and b.endswith("--add") for b in branches)


def test_bad_input_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = sample(tmp_path, monkeypatch)
    with pytest.raises(ConfigError, match="profile 'nope' not found"):
        asyncio.run(run_bench(Store(repo), "task", ["all-frontier", "nope"]))
    with pytest.raises(UsageError, match="not a usable profile name"):
        asyncio.run(run_bench(Store(repo), "task", ["../x"]))
    with pytest.raises(UsageError, match="--repeat"):
        asyncio.run(run_bench(Store(repo), "task", ["all-frontier"], repeat=0))
    with pytest.raises(UsageError, match="missing"):  # planning needs OpenCode
        asyncio.run(run_bench(Store(repo), "task", ["broken"]))
    (repo / "README.md").write_text("dirty\n")
    with pytest.raises(UsageError, match="uncommitted"):
        asyncio.run(run_bench(Store(repo), "task", ["all-frontier"]))
    assert not (repo / ".director" / "bench").exists()
    assert git_out(repo, "branch", "--list", "director/*") == ""


def test_a_crashing_run_is_recorded_and_an_interrupt_keeps_the_partial_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from director_tui.engine import run as run_module

    repo = sample(tmp_path, monkeypatch)
    real_run_job = run_module.run_job

    async def crash_cheap(ctx: Any, **kw: Any) -> Any:
        if "cheap-cloud-1" in str(ctx.store.root):
            raise RuntimeError("simulated engine bug")
        return await real_run_job(ctx, **kw)

    monkeypatch.setattr(run_module, "run_job", crash_cheap)
    profiles = ["cheap-cloud", "all-frontier"]
    summary = asyncio.run(
        run_bench(Store(repo), "add add and mul", profiles, repeat=2, parallel=1)
    ).to_json()
    cheap = row(summary, "cheap-cloud")
    assert cheap["runs_ok"] == 1 and cheap["errors"] == [
        "run 1: RuntimeError: simulated engine bug"
    ]
    assert cheap["error"] is None and cheap["run_cost"] == pytest.approx(0.008)  # run 2 only
    assert row(summary, "all-frontier")["runs_ok"] == 2
    assert summary["status"] == "finished"

    def interrupt(event: EventBase) -> None:
        if isinstance(event, BenchProgress) and event.phase == "start" and event.repeat == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(
            run_bench(
                Store(repo), "add add and mul", ["all-frontier"], repeat=3, on_event=interrupt
            )
        )
    partial = load_summary(Store(repo)).to_json()
    assert partial["status"] == "interrupted" and len(partial["runs"]) == 1
    assert [e["status"] for e in list_benches(Store(repo))] == ["interrupted", "finished"]
    with pytest.raises(UsageError, match="not a usable profile name"):
        asyncio.run(run_bench(Store(repo), "task", ["a..b"]))


def test_a_profile_that_holds_nodes_for_human_review_still_finishes_its_bench(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No one accepts a held node during a bench: `[review] human` does not apply there (a
    profile that set it waited forever)."""
    repo = sample(tmp_path, monkeypatch)
    profile = repo / ".director" / "profiles" / "all-frontier.toml"
    profile.write_text(profile.read_text() + '[review]\nhuman = "always"\n')
    held = run_bench(Store(repo), "add add and mul", ["all-frontier"], parallel=1)
    summary = asyncio.run(asyncio.wait_for(held, timeout=120)).to_json()  # a hold never ends
    assert summary["status"] == "finished"
    assert row(summary, "all-frontier")["done"] == 2
