"""``director sync-agents`` and ``director doctor`` as a user runs them."""

from __future__ import annotations

from pathlib import Path

from tests.cli import director_here_on as director


def test_sync_agents_writes_agents_and_seeds_config_once(git_repo: Path) -> None:
    done = director(git_repo, "sync-agents")
    assert done.returncode == 0, done.stderr
    explorer = (git_repo / ".opencode" / "agents" / "director-explorer.md").read_text()
    assert 'edit: "deny"' in explorer and 'bash: "deny"' in explorer
    executor = (git_repo / ".opencode" / "agents" / "director-executor.md").read_text()
    assert 'edit: "allow"' in executor and 'webfetch: "deny"' in executor
    config = git_repo / ".director" / "config.toml"
    assert "[tiers]" in config.read_text()
    config.write_text("# mine\n")
    again = director(git_repo, "sync-agents")
    assert again.returncode == 0 and config.read_text() == "# mine\n"


def test_doctor_says_what_to_fix_and_passes_when_fixed(git_repo: Path, tmp_path: Path) -> None:
    missing = director(git_repo, "doctor", env={"DIRECTOR_OPENCODE_BIN": str(tmp_path / "none")})
    assert missing.returncode == 1
    assert "npm install -g opencode-ai@" in missing.stdout
    fake = tmp_path / "opencode"
    # a stand-in opencode that has the default tiers' models
    models = "anthropic/claude-opus-4-5 anthropic/claude-haiku-4-5 anthropic/claude-sonnet-4-5"
    fake.write_text(
        f'#!/bin/sh\n[ "$1" = models ] && printf "%s\\n" {models} && exit 0\necho 1.18.33\n'
    )
    fake.chmod(0o755)
    fine = director(git_repo, "doctor", env={"DIRECTOR_OPENCODE_BIN": str(fake)})
    assert fine.returncode == 0, fine.stdout
    assert "all good" in fine.stdout
    # before `director init` no config file is called valid
    assert "config: valid" not in fine.stdout
    assert "note config: none yet" in fine.stdout and "`director init`" in fine.stdout
    (git_repo / ".director").mkdir(exist_ok=True)
    (git_repo / ".director" / "config.toml").write_text('[tiers]\nexecutor = "nope/x"\n')
    broken = director(git_repo, "doctor", env={"DIRECTOR_OPENCODE_BIN": str(fake)})
    assert broken.returncode == 1 and "unknown provider 'nope'" in broken.stdout


def test_doctor_fails_an_opencode_that_cannot_list_its_models(
    git_repo: Path, tmp_path: Path
) -> None:
    """An installed OpenCode that lists no models (no provider set up at all) is a thing to
    fix, never "all good"."""
    fake = tmp_path / "opencode"
    fake.write_text(
        '#!/bin/sh\n[ "$1" = models ] && echo "Error: no providers" >&2 && exit 1\necho 1.18.33\n'
    )
    fake.chmod(0o755)
    out = director(git_repo, "doctor", env={"DIRECTOR_OPENCODE_BIN": str(fake)})
    assert out.returncode == 1, out.stdout
    assert (
        "FIX  tier opencode/anthropic/claude-haiku-4-5 (for executor, explorer): not checked — "
        "`opencode models` listed no models (exit 1: Error: no providers)" in out.stdout
    )
