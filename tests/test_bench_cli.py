"""``director bench`` as a user starts it: a real process, exit codes, output, files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from director_tui.engine.bench import RunResult, build_summary
from director_tui.engine.store import Store, append_jsonl, atomic_write_json
from tests.cli import director_here_on
from tests.test_bench import sample, user_view


def director(repo: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return director_here_on(repo, "bench", *args, stdin=stdin, env={"COLUMNS": "100"})


def test_cli_bench_runs_prints_the_table_and_reports_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = sample(tmp_path, monkeypatch)
    before = user_view(repo)
    done = director(
        repo,
        "--input",
        "-",
        "--profiles",
        "all-frontier,cheap-cloud",
        "--parallel",
        "1",
        "--no-tui",
        stdin="add add and mul to calc\n",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert user_view(repo) == before
    out = done.stdout
    assert "planned once under all-frontier" in out and "shared plan cost $0.0700" in out
    assert "▶ all-frontier #1" in out and "▶ cheap-cloud #1" in out  # live progress lines
    cheap = next(line for line in out.splitlines() if line.startswith("cheap-cloud "))
    assert "$0.0380" in cheap and "5% ✘" in cheap and "meets bar ✔" in cheap
    assert "hash check ✔ 2 test file(s) identical on all 2 profile branches" in out

    again = director(repo, "--report")
    assert again.returncode == 0, again.stderr
    assert next(line for line in again.stdout.splitlines() if line.startswith("cheap-cloud ")) == (
        cheap
    )
    as_json = json.loads(director(repo, "--report", "--json").stdout)
    assert [r["profile"] for r in as_json["rows"]] == ["all-frontier", "cheap-cloud"]
    assert as_json["rows"][1]["run_cost"] == pytest.approx(0.038)
    listed = json.loads(director(repo, "--list", "--json").stdout)
    assert [e["bench_id"] for e in listed] == [as_json["bench_id"]]


def test_cli_json_run_prints_only_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = sample(tmp_path, monkeypatch)
    done = director(repo, "add add and mul", "--profiles", "all-frontier", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "finished" and summary["rows"][0]["done"] == 2


def test_cli_exits_1_when_every_run_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # planned under the scripted all-frontier; the only profile compared names an OpenCode
    # tier while OpenCode is not installed, so every run fails: nothing was compared
    repo = sample(tmp_path, monkeypatch)
    args = ("add add and mul", "--profiles", "broken", "--plan-profile", "all-frontier")
    done = director(repo, *args, "--no-tui")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "every run failed" in done.stderr and "Traceback" not in done.stderr
    assert "ERROR" in done.stdout  # the table still says why
    as_json = director(repo, *args, "--json")
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["status"] == "finished"
    help_text = " ".join(director(repo, "--help").stdout.split())
    assert "1 nothing compared: planning failed, or every run failed" in help_text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["task"], "name the profiles"),
        (["task", "--profiles", "all-frontier,nope"], "profile 'nope' not found"),
        (["task", "--profiles", "all-frontier", "--repeat", "0"], "--repeat"),
        (["--profiles", "all-frontier"], "the task is empty"),
        (["--report", "--profiles", "a"], "only read results"),
        (["--report"], "no bench has run"),
    ],
)
def test_cli_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    repo = sample(tmp_path, monkeypatch)
    done = director(repo, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (repo / ".director" / "bench").exists()


def test_cli_refuses_a_profile_whose_model_opencode_does_not_have(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every profile's models are asked of the agent CLI before the bench plans: the
    "broken" profile's executor is a model OpenCode lists no such thing for, so the bench
    stops at once naming the profile, tier, role and the file to fix — not after the
    planning was paid for."""
    repo = sample(tmp_path, monkeypatch)
    fake = tmp_path / "opencode"
    fake.write_text('#!/bin/sh\n[ "$1" = models ] && printf "fake/other\\n" && exit 0\nexit 1\n')
    fake.chmod(0o755)
    done = director_here_on(
        repo,
        "bench",
        "add add and mul",
        "--profiles",
        "all-frontier,broken",
        env={"DIRECTOR_OPENCODE_BIN": str(fake)},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    err = " ".join(done.stderr.split())
    assert "the bench would call a model the agent CLI does not have" in err
    assert (
        "profile broken: tier opencode/fake/model (for executor): OpenCode's provider 'fake' "
        "has no model 'model' — pick one it has (fake/other) in [tiers] of "
        ".director/profiles/broken.toml" in err
    )
    assert "all-frontier" not in err.split("does not have", 1)[1]  # scripted: nothing to ask
    assert "Traceback" not in done.stderr
    assert not (repo / ".director" / "bench").exists()


def test_cli_report_by_id_and_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = sample(tmp_path, monkeypatch)
    store = Store(repo)
    for bench_id, cost in (("20260101-000000-aaaa", 0.04), ("20260102-000000-bbbb", 0.02)):
        summary = build_summary(
            {"bench_id": bench_id, "task": f"task {bench_id}", "status": "finished"},
            ["all-frontier"],
            [RunResult(profile="all-frontier", repeat=1, n_nodes=1, done=1, run_cost=cost)],
            {},
        ).to_json()
        atomic_write_json(store.bench / bench_id / "summary.json", summary)
        atomic_write_json(store.bench / "summary.json", summary)
    # the older bench is in the history index, the newer one only has its folder
    append_jsonl(
        store.bench / "history.jsonl",
        {"bench_id": "20260101-000000-aaaa", "status": "finished", "task": "indexed"},
    )
    old = director(repo, "--report", "20260101")
    assert old.returncode == 0 and "task 20260101-000000-aaaa" in old.stdout
    latest = director(repo, "--report")
    assert "task 20260102-000000-bbbb" in latest.stdout
    ambiguous = director(repo, "--report", "2026010")
    assert ambiguous.returncode == 2 and "ambiguous" in ambiguous.stderr
    listed = director(repo, "--list")
    assert listed.returncode == 0
    assert listed.stdout.index("20260102-000000-bbbb") < listed.stdout.index("indexed")
    by_id = json.loads(director(repo, "--report", "--json", "20260101").stdout)
    assert by_id["bench_id"] == "20260101-000000-aaaa"  # the ID after --json is the ID
    narrow = subprocess.run(
        [sys.executable, "-m", "director_tui", "bench", "--list", "--repo", str(repo)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "60"},
        check=False,
    )
    # the id is what --report takes: whole even at 60 columns (profiles and task wrap)
    assert "20260101-000000-aaaa" in narrow.stdout and "20260102-000000-bbbb" in narrow.stdout


def test_init_profiles_writes_starters_that_load_and_keeps_edits(git_repo: Path) -> None:
    from director_tui.engine.config import load_profile, split_tier

    run = [sys.executable, "-m", "director_tui", "init", "--profiles", "--no-input"]
    done = subprocess.run([*run, "--repo", str(git_repo)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    names = sorted(p.stem for p in (git_repo / ".director" / "profiles").glob("*.toml"))
    assert names == ["all-frontier", "cheap-cloud", "local-first"]
    for name in names:
        config = load_profile(git_repo, name)
        text = (git_repo / ".director" / "profiles" / f"{name}.toml").read_text()
        assert text.startswith("# Bench profile")  # commented, to be edited
        # every tier it uses is priced, so the bench can compute the cost cut
        assert all(tier in config.pricing for tier in config.tier_map().values())
    assert split_tier(load_profile(git_repo, "local-first").tiers.executor)[1].startswith("ollama/")
    edited = git_repo / ".director" / "profiles" / "cheap-cloud.toml"
    edited.write_text(edited.read_text() + "# mine\n")
    again = subprocess.run([*run, "--repo", str(git_repo)], capture_output=True, text=True)
    assert again.returncode == 0 and edited.read_text().endswith("# mine\n")
