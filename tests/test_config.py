"""Config: user+repo merge, validation messages, profiles, comment-keeping edits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from director_tui.engine import config as cfg
from director_tui.engine.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_without_any_file(git_repo: Path) -> None:
    config = cfg.load_config(git_repo)
    assert config.limits.node_timeout_secs == 900
    assert config.limits.cost_ceiling_usd == 10
    assert config.limits.max_attempts == 3
    assert config.limits.flake_runs == 2
    assert config.review.stage_two_file_threshold == 3
    assert config.tier_for("brainstorm") == config.tiers.planner


def test_example_config_is_valid_and_covers_every_key() -> None:
    import tomllib

    data = tomllib.loads(cfg.example_config_text())
    config = cfg.validate(data, "example")
    for section in ("tiers", "sampling", "gates", "repository", "pricing", "limits", "review"):
        assert section in data, section
    for key in cfg.Limits.model_fields:
        assert key in data["limits"], f"limits.{key} missing from the example"
    for key in cfg.Review.model_fields:
        assert key in data["review"], f"review.{key} missing from the example"
    for role in cfg.ROLES:
        assert role in data["tiers"]
    assert config.gate_commands()[0][0] == "test"


def test_top_level_example_is_the_packaged_one() -> None:
    root = Path(__file__).resolve().parents[1]
    assert (root / "config.example.toml").read_text() == cfg.example_config_text()


def test_repo_merges_over_user_tables_merge_scalars_and_arrays_replace(
    git_repo: Path, tmp_path: Path
) -> None:
    user = write(
        tmp_path / "user.toml",
        '[tiers]\nexecutor = "opencode/u/exec"\nplanner = "opencode/u/plan"\n'
        "[limits]\nmax_attempts = 5\nparallel = 4\n"
        '[repository]\nignore = ["a", "b"]\n'
        '[gates]\ntest = "user-only"\n',
    )
    write(
        git_repo / ".director/config.toml",
        '[tiers]\nexecutor = "codex/gpt-x"\n[limits]\nparallel = 1\n[repository]\nignore = ["c"]\n',
    )
    config = cfg.load_config(git_repo, user_path=user)
    assert config.tiers.executor == "codex/gpt-x"  # repo wins
    assert config.tiers.planner == "opencode/u/plan"  # table merged: user key kept
    assert config.limits.max_attempts == 5
    assert config.limits.parallel == 1
    assert config.repository.ignore == ["c"]  # arrays replace, not concatenate
    assert config.gates == {}  # gates never come from the user file


def test_gates_keep_declaration_order_and_empty_disables(git_repo: Path) -> None:
    write(
        git_repo / ".director/config.toml",
        '[gates]\nzeta = "echo z"\nalpha = ""\nmid = "echo m"\n',
    )
    config = cfg.load_config(git_repo)
    assert config.gate_commands() == [("zeta", "echo z"), ("mid", "echo m")]


def test_broken_toml_names_file_line_and_column(git_repo: Path) -> None:
    path = write(git_repo / ".director/config.toml", "[limits]\nmax_attempts = 3\nparallel = = 2\n")
    with pytest.raises(ConfigError) as info:
        cfg.load_config(git_repo)
    text = str(info.value)
    assert str(path) in text
    assert "line 3" in text and "column" in text
    assert info.value.exit_code == 2


def test_config_that_is_not_utf8_is_a_config_error(git_repo: Path) -> None:
    """Regression: tomllib raised UnicodeDecodeError, a traceback in doctor/init/bench."""
    path = git_repo / ".director/config.toml"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xff\xfe[limits]\n")
    with pytest.raises(ConfigError) as info:
        cfg.load_config(git_repo)
    assert str(path) in str(info.value) and "not UTF-8" in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[limits]\nmax_attempts = -1\n", "limits.max_attempts"),
        ("[limits]\nnode_timeout_secs = 'soon'\n", "limits.node_timeout_secs"),
        ("[limits]\ncost_ceiling_usd = -3\n", "limits.cost_ceiling_usd"),
        ('[tiers]\nexecutor = "ollama/qwen"\n', "unknown provider 'ollama'"),
        ('[tiers]\nexecutor = "opencode"\n', "names no model"),
        ("[limits]\nmax_attempt = 2\n", "limits.max_attempt: unknown key"),
        ("[sampling.wizard]\ntemperature = 1\n", "unknown role"),
        ('[pricing."opencode/x/y"]\ninput = -1\noutput = 1\n', "pricing.opencode/x/y.input"),
        ('[review]\nstage_two = "yes"\n', "review.stage_two"),  # TOML has booleans
        ('[limits]\nmax_attempts = "3"\n', "limits.max_attempts"),
    ],
)
def test_bad_values_name_the_key_path(git_repo: Path, toml: str, expected: str) -> None:
    write(git_repo / ".director/config.toml", toml)
    with pytest.raises(ConfigError) as info:
        cfg.load_config(git_repo)
    assert expected in str(info.value)


def test_errors_in_the_user_file_are_reported_against_it(git_repo: Path, tmp_path: Path) -> None:
    user = write(tmp_path / "u.toml", '[tiers]\nplanner = "nope/x"\n')
    with pytest.raises(ConfigError) as info:
        cfg.load_config(git_repo, user_path=user)
    assert str(user) in str(info.value)


def test_profiles_load_as_single_files_without_user_merge(git_repo: Path, tmp_path: Path) -> None:
    user = write(tmp_path / "u.toml", "[limits]\nmax_attempts = 9\n")
    write(git_repo / ".director/profiles/cheap.toml", '[tiers]\nexecutor = "scripted/cheap"\n')
    assert cfg.load_config(git_repo, user_path=user).limits.max_attempts == 9
    profile = cfg.load_profile(git_repo, "cheap")
    assert profile.tiers.executor == "scripted/cheap"
    assert profile.limits.max_attempts == 3
    with pytest.raises(ConfigError, match="profile 'missing' not found"):
        cfg.load_profile(git_repo, "missing")


def test_set_values_keeps_comments_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(cfg.example_config_text())
    cfg.set_values(path, {"tiers.executor": "codex/gpt-5-codex", "gates.lint": "ruff check ."})
    text = path.read_text()
    assert 'executor = "codex/gpt-5-codex"' in text
    assert "# Switching a model is an edit here, never a code change." in text
    assert text.count("[limits]") == 1
    config = cfg.validate(cfg.read_toml(path), str(path))
    assert config.gates["lint"] == "ruff check ."
    # nothing else changed: every original comment line is still there
    original_comments = [
        line for line in cfg.example_config_text().splitlines() if line.startswith("#")
    ]
    assert all(line in text for line in original_comments)


def test_set_values_refuses_an_invalid_result_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("# mine\n[limits]\nparallel = 2\n")
    before = path.read_text()
    with pytest.raises(ConfigError):
        cfg.set_values(path, {"limits.parallel": -5})
    assert path.read_text() == before


def test_reading_config_does_not_import_tomlkit(git_repo: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from director_tui.engine import config;"
        f"config.load_config(Path({str(git_repo)!r})); print('tomlkit' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_scripted_agents_are_labelled(git_repo: Path) -> None:
    assert cfg.load_config(git_repo).scripted_label() is None
    all_scripted = {role: "scripted/x" for role in cfg.ROLES}
    assert cfg.validate({"tiers": all_scripted}, "t").scripted_label() == (
        "demo — scripted agents, no model calls"
    )
    mixed = cfg.validate({"tiers": {"executor": "scripted/cheap"}}, "t").scripted_label()
    assert mixed == "scripted: executor"
