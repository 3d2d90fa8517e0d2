"""`director doctor`, `plan` and `run` ask the REAL OpenCode (`opencode models`, with the
environment director gives its agents) whether each tier's model exists, and name the
tier, the roles and the fix when it does not — instead of an "UnknownError" at the first
call. The fake model server is the OpenAI-compatible provider OpenCode is configured with.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import OpenCodeEnv

from tests.cli import director_on

pytestmark = pytest.mark.e2e


def write_tiers(repo: Path, tiers: dict[str, str]) -> None:
    (repo / ".director").mkdir(exist_ok=True)
    body = "".join(f'{role} = "{tier}"\n' for role, tier in tiers.items())
    (repo / ".director" / "config.toml").write_text("[tiers]\n" + body)


def test_doctor_passes_a_configured_model_and_names_a_missing_one(
    opencode_env: OpenCodeEnv, git_repo: Path
) -> None:
    setup = opencode_env({})
    tiers = dict(setup.config.tiers)
    write_tiers(git_repo, tiers)
    fine = director_on(git_repo, "doctor", env=setup.env)
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert "ok   tier opencode/fake/executor (for executor): OpenCode has this model" in (
        fine.stdout
    )
    assert "config: valid (" in fine.stdout and "all good" in fine.stdout

    tiers["reviewer"] = "opencode/elsewhere/big-model"  # a provider OpenCode does not have
    tiers["escalation"] = "opencode/fake/no-such-model"  # a model its provider does not have
    write_tiers(git_repo, tiers)
    broken = director_on(git_repo, "doctor", env=setup.env)
    assert broken.returncode == 1, broken.stdout
    assert (
        "FIX  tier opencode/elsewhere/big-model (for reviewer): OpenCode has no provider "
        "'elsewhere'" in broken.stdout
    )
    assert "`opencode auth login`" in broken.stdout and "docs/providers.md" in broken.stdout
    assert (
        "FIX  tier opencode/fake/no-such-model (for escalation): OpenCode's provider 'fake' "
        "has no model 'no-such-model' — pick one it has (fake/" in broken.stdout
    )
    assert "2 thing(s) to fix" in broken.stdout

    # planning would call the planner's tier: refused before anything is written
    tiers["planner"] = "opencode/elsewhere/big-model"
    write_tiers(git_repo, tiers)
    plan = director_on(git_repo, "plan", "add a feature", "--no-tui", env=setup.env)
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "planning would call a model the agent CLI does not have" in plan.stderr
    assert "tier opencode/elsewhere/big-model (for brainstorm, critic, planner)" in plan.stderr
    assert "Traceback" not in plan.stderr
    assert not (git_repo / ".director" / "plan_stage.json").exists()


def test_bench_checks_every_profiles_models_before_planning(
    opencode_env: OpenCodeEnv, git_repo: Path
) -> None:
    """`director bench` asks the real OpenCode about every profile's tiers up front: the
    profile whose executor OpenCode does not have is named with its tier, role and file;
    the profile whose models exist is not; nothing is planned."""
    setup = opencode_env({})
    profiles = git_repo / ".director" / "profiles"
    profiles.mkdir(parents=True)
    good = dict(setup.config.tiers)
    bad = dict(good, executor="opencode/fake/no-such-model")
    for name, tiers in (("good", good), ("bad", bad)):
        body = "".join(f'{role} = "{tier}"\n' for role, tier in tiers.items())
        (profiles / f"{name}.toml").write_text("[tiers]\n" + body)
    bench = director_on(git_repo, "bench", "add a feature", "--profiles", "good,bad", env=setup.env)
    assert bench.returncode == 2, bench.stdout + bench.stderr
    err = " ".join(bench.stderr.split())
    assert "the bench would call a model the agent CLI does not have" in err
    assert (
        "profile bad: tier opencode/fake/no-such-model (for executor): OpenCode's provider "
        "'fake' has no model 'no-such-model'" in err
    )
    assert "in [tiers] of .director/profiles/bad.toml" in err
    assert "profile good" not in err
    assert "Traceback" not in bench.stderr
    assert not (git_repo / ".director" / "bench").exists()
