"""Model checks that passed are kept across director's processes (``model_cache``): a kept
pass answers plan, run and bench without a cold ``opencode models``; anything that
decides OpenCode's list changing asks it again; a failure is never kept; doctor always
asks. OpenCode is a real subprocess here: a script that writes down each time it is
asked and lists what ``models.txt`` says."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from director_tui.engine.agents import model_cache, model_check
from director_tui.engine.agents.model_check import (
    ModelStatus,
    check_tiers,
    require_models,
    require_profile_models,
)
from director_tui.engine.config import Config
from director_tui.engine.errors import UsageError
from tests.cli import director_here_on


class FakeOpenCode:
    """``opencode models`` lists ``models.txt``; each call is a line in ``calls.log``."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.binary = folder / "opencode"
        self.models = folder / "models.txt"
        self.calls = folder / "calls.log"
        self.models.write_text("fake/a\nfake/b\n")
        self.write_binary("")
        monkeypatch.setenv("DIRECTOR_OPENCODE_BIN", str(self.binary))

    def write_binary(self, extra: str) -> None:
        self.binary.write_text(
            f'#!/bin/sh\necho "$1" >> {self.calls}\n{extra}\n'
            f'[ "$1" = models ] && cat {self.models} && exit 0\necho 1.18.33\n'
        )
        self.binary.chmod(0o755)

    def asked(self) -> int:
        """How many times ``opencode models`` ran."""
        if not self.calls.exists():
            return 0
        return self.calls.read_text().split().count("models")


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeOpenCode:
    folder = tmp_path / "bin"
    folder.mkdir()
    return FakeOpenCode(folder, monkeypatch)


def new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a new director process starts with: nothing remembered in memory."""
    monkeypatch.setattr(model_check, "_PASSED", set())
    monkeypatch.setattr(model_check, "_LISTED", {})


def tiers(**by_role: str) -> Config:
    base = {"executor": "opencode/fake/a", "escalation": "opencode/fake/b"}
    return Config.model_validate({"tiers": base | by_role})


RUN_ROLES = ("executor", "escalation")


def run_check(repo: Path, monkeypatch: pytest.MonkeyPatch, config: Config | None = None) -> str:
    """One ``director run``'s check, in a process of its own."""
    new_process(monkeypatch)
    return asyncio.run(require_models(config or tiers(), repo, RUN_ROLES, "the run"))


def cache_file() -> Path:
    path = model_cache.cache_path()
    assert path is not None
    return path


def test_a_pass_is_kept_for_the_next_process_which_asks_nothing(
    git_repo: Path, fake: FakeOpenCode, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_check(git_repo, monkeypatch) == ""  # asked: nothing to say
    assert fake.asked() == 1
    note = run_check(git_repo, monkeypatch)
    assert fake.asked() == 1
    assert note == (
        "models: as OpenCode listed them under a minute ago (its binary, config and "
        "credentials are unchanged; `director doctor` asks afresh)"
    )
    new_process(monkeypatch)
    checks = asyncio.run(check_tiers(tiers(), git_repo, RUN_ROLES))
    assert [c.status for c in checks] == [ModelStatus.ok, ModelStatus.ok]
    assert all(c.checked_at is not None for c in checks)
    assert "OpenCode had this model under a minute ago" in checks[0].detail
    # Another repository has its own project config: asked there.
    other = git_repo.parent / "other"
    other.mkdir()
    run_check(other, monkeypatch)
    assert fake.asked() == 2


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _agent_home() -> Path:
    return Path(os.environ["DIRECTOR_AGENT_HOME"])


# Each changes one thing that decides what `opencode models` lists for the agents.
CHANGES: dict[str, Callable[[Path, FakeOpenCode, pytest.MonkeyPatch], None]] = {
    "inline config": lambda repo, fake, mp: mp.setenv("OPENCODE_CONFIG_CONTENT", '{"x": 1}'),
    "global config": lambda repo, fake, mp: _write(
        _agent_home() / ".config" / "opencode" / "opencode.json", "{}"
    ),
    "global config.json": lambda repo, fake, mp: _write(
        _agent_home() / ".config" / "opencode" / "config.json", "{}"
    ),
    "~/.opencode": lambda repo, fake, mp: _write(
        _agent_home() / ".opencode" / "opencode.jsonc", "{}"
    ),
    "project config": lambda repo, fake, mp: _write(repo / "opencode.json", "{}"),
    "project .opencode": lambda repo, fake, mp: _write(repo / ".opencode" / "opencode.jsonc", "{}"),
    "a plugin": lambda repo, fake, mp: _write(repo / ".opencode" / "plugin" / "p.ts", "x"),
    "credentials": lambda repo, fake, mp: _write(
        _agent_home() / ".local" / "share" / "opencode" / "auth.json", '{"acme": {}}'
    ),
    "provider key": lambda repo, fake, mp: mp.setenv("ACME_API_KEY", "sk-other"),
    "AWS profile": lambda repo, fake, mp: mp.setenv("AWS_PROFILE", "work"),
    "binary": lambda repo, fake, mp: fake.write_binary("# upgraded"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_to_what_decides_the_list_asks_again(
    change: str,
    git_repo: Path,
    fake: FakeOpenCode,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("ACME_API_KEY", "sk-one")
    run_check(git_repo, monkeypatch)
    run_check(git_repo, monkeypatch)
    assert fake.asked() == 1  # unchanged: kept
    CHANGES[change](git_repo, fake, monkeypatch)
    assert run_check(git_repo, monkeypatch) == ""
    assert fake.asked() == 2
    run_check(git_repo, monkeypatch)
    assert fake.asked() == 2  # the new answer is kept in turn


def test_files_named_by_env_and_config_and_their_env_references(
    git_repo: Path, fake: FakeOpenCode, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``OPENCODE_CONFIG`` and ``OPENCODE_CONFIG_DIR`` name files OpenCode reads: their
    contents count; a config's ``{env:NAME}`` makes NAME count whatever it is called."""
    custom = tmp_path / "custom.json"
    custom.write_text('{"provider": {"acme": {"options": {"apiKey": "{env:ACME_SEKRIT}"}}}}')
    config_dir = tmp_path / "config-dir"
    _write(config_dir / "opencode.json", "{}")
    monkeypatch.setenv("OPENCODE_CONFIG", str(custom))
    monkeypatch.setenv("OPENCODE_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("ACME_SEKRIT", "one")
    run_check(git_repo, monkeypatch)
    run_check(git_repo, monkeypatch)
    assert fake.asked() == 1
    steps: list[Callable[[], None]] = [
        lambda: custom.write_text(custom.read_text().replace("acme", "acme2")),
        lambda: _write(config_dir / "opencode.json", '{"model": "x"}'),
        lambda: monkeypatch.setenv("ACME_SEKRIT", "two"),
    ]
    for asked, step in enumerate(steps, start=2):
        step()
        run_check(git_repo, monkeypatch)
        assert fake.asked() == asked
    monkeypatch.setenv("UNRELATED_SETTING", "anything")  # not a provider's: still kept
    run_check(git_repo, monkeypatch)
    assert fake.asked() == len(steps) + 1


def test_a_relative_opencode_config_is_read_from_the_repository(
    git_repo: Path, fake: FakeOpenCode, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """OpenCode starts in the repository, so that is where a relative name points, not
    where director was started."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENCODE_CONFIG", "ci/opencode.json")
    _write(git_repo / "ci" / "opencode.json", "{}")
    run_check(git_repo, monkeypatch)
    _write(git_repo / "ci" / "opencode.json", '{"provider": {}}')
    run_check(git_repo, monkeypatch)
    assert fake.asked() == 2


SCHEMA = '\n  "$schema": "https://opencode.ai/config.json",'


@pytest.mark.parametrize("before", ['{"provider":{}}', '{\n  "provider": {}\n}\n', "{}", "  {\n}"])
def test_the_schema_opencode_writes_into_a_config_it_reads_is_no_change(
    before: str, git_repo: Path, fake: FakeOpenCode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenCode 1.18.33 adds ``"$schema"`` after the opening brace of every config file it
    reads that has none (seen in the global and the project's): the command after the
    first would otherwise ask again."""
    files = [_agent_home() / ".config" / "opencode" / "opencode.json", git_repo / "opencode.json"]
    for path in files:
        _write(path, before)
    run_check(git_repo, monkeypatch)
    for path in files:
        brace = before.index("{") + 1
        path.write_text(before[:brace] + SCHEMA + before[brace:])
    run_check(git_repo, monkeypatch)
    assert fake.asked() == 1
    files[1].write_text(files[1].read_text().replace("{", '{"model": "fake/a",', 1))
    run_check(git_repo, monkeypatch)
    assert fake.asked() == 2


def test_a_missing_model_is_never_kept_and_a_refused_command_writes_nothing(
    git_repo: Path, fake: FakeOpenCode, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.models.write_text("fake/a\n")
    for _ in range(2):
        with pytest.raises(UsageError, match="no model 'b'"):
            run_check(git_repo, monkeypatch)
    assert fake.asked() == 2
    # fake/a passed, but the command was refused: no file, and nothing kept for next time.
    assert not cache_file().exists()
    # The provider gets the model (nothing in the fingerprint changed): seen at once.
    fake.models.write_text("fake/a\nfake/b\n")
    run_check(git_repo, monkeypatch)
    assert fake.asked() == 3


def test_a_bench_keeps_nothing_when_one_profile_is_refused(
    git_repo: Path, fake: FakeOpenCode, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = tiers(), tiers(executor="opencode/fake/gone")
    with pytest.raises(UsageError, match="profile bad"):
        asyncio.run(
            require_profile_models({"good": (good, RUN_ROLES), "bad": (bad, RUN_ROLES)}, git_repo)
        )
    assert not cache_file().exists()
    new_process(monkeypatch)
    asyncio.run(require_profile_models({"good": (good, RUN_ROLES)}, git_repo))
    assert fake.asked() == 2  # one listing for both profiles, then one for the good one
    run_check(git_repo, monkeypatch)
    assert fake.asked() == 2  # the bench's pass answers a run
    new_process(monkeypatch)
    note = asyncio.run(require_profile_models({"good": (good, RUN_ROLES)}, git_repo))
    assert note.startswith("models: as OpenCode listed them under a minute ago")
    assert fake.asked() == 2


@pytest.mark.parametrize(
    "content", ["{not json", "[]", '{"version": 1, "passed": []}', "\xff\xfe", ""]
)
def test_a_corrupt_cache_file_is_ignored_and_replaced(
    content: str, git_repo: Path, fake: FakeOpenCode, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(cache_file(), content)
    run_check(git_repo, monkeypatch)
    assert fake.asked() == 1
    assert json.loads(cache_file().read_text())["version"] == model_cache.VERSION
    run_check(git_repo, monkeypatch)
    assert fake.asked() == 1


def test_an_unwritable_cache_only_costs_the_saving(
    git_repo: Path, fake: FakeOpenCode, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_file().mkdir(parents=True)  # a folder where the file should be
    run_check(git_repo, monkeypatch)
    run_check(git_repo, monkeypatch)
    assert fake.asked() == 2


def _age_passes(by: float) -> list[float]:
    data = json.loads(cache_file().read_text())
    for passes in data["passed"].values():
        for tier in passes:
            passes[tier] -= by
    cache_file().write_text(json.dumps(data))
    return _kept_times()


def _kept_times() -> list[float]:
    data = json.loads(cache_file().read_text())
    return sorted(at for passes in data["passed"].values() for at in passes.values())


def test_a_pass_older_than_a_day_is_asked_again(
    git_repo: Path, fake: FakeOpenCode, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_check(git_repo, monkeypatch)
    # Used at 23 h, a pass keeps the time it was listed at: using it is no new evidence.
    aged = _age_passes(23 * 3600)
    assert "23 h ago" in run_check(git_repo, monkeypatch)
    assert fake.asked() == 1 and _kept_times() == aged
    _age_passes(3600 + 60)
    run_check(git_repo, monkeypatch)
    assert fake.asked() == 2
    assert min(_kept_times()) > time.time() - 60
    # One from the future (the clock was set back) proves nothing either.
    data = json.loads(cache_file().read_text())
    for passes in data["passed"].values():
        for tier in passes:
            passes[tier] = time.time() + 3600
    cache_file().write_text(json.dumps(data))
    run_check(git_repo, monkeypatch)
    assert fake.asked() == 3


def test_off_keeps_nothing(
    git_repo: Path, fake: FakeOpenCode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(model_cache.PATH_ENV, "off")
    run_check(git_repo, monkeypatch)
    run_check(git_repo, monkeypatch)
    assert fake.asked() == 2


def test_the_cache_keeps_digests_and_times_never_a_value(
    git_repo: Path, fake: FakeOpenCode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_API_KEY", "sk-very-secret-value")
    monkeypatch.setenv("OPENCODE_CONFIG_CONTENT", '{"provider": {"acme": {"name": "Acme"}}}')
    run_check(git_repo, monkeypatch)
    text = cache_file().read_text()
    assert "sk-very-secret" not in text and "Acme" not in text and str(git_repo) not in text
    (key,) = json.loads(text)["passed"]
    assert len(key) == 64 and set(key) <= set("0123456789abcdef")


def test_the_state_dir_is_the_default_home_of_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(model_cache.PATH_ENV)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert model_cache.cache_path() == tmp_path / "state" / "director" / "model-checks.json"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")  # invalid by the XDG spec
    assert model_cache.cache_path() == Path.home() / ".local/state/director/model-checks.json"


def test_doctor_asks_every_time_and_its_pass_is_kept_for_plan_and_run(
    git_repo: Path, fake: FakeOpenCode, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(
        git_repo / ".director" / "config.toml",
        "[tiers]\n"
        + "".join(
            f'{role} = "opencode/fake/a"\n'
            for role in ("planner", "test_author", "executor", "explorer", "reviewer")
        )
        + 'escalation = "opencode/fake/b"\n',
    )
    run_check(git_repo, monkeypatch)
    assert fake.asked() == 1
    for asked in (2, 3):
        new_process(monkeypatch)
        out = director_here_on(git_repo, "doctor")
        assert fake.asked() == asked, out.stdout
        assert "ok   tier opencode/fake/a (for " in out.stdout
        assert "OpenCode has this model" in out.stdout and "had this model" not in out.stdout
        assert "note models: asked OpenCode now; plan, run and bench reuse a pass" in out.stdout
    run_check(git_repo, monkeypatch)
    assert fake.asked() == 3
    # Doctor finds a model gone that a pass was kept for: the pass goes, plan asks again.
    fake.models.write_text("fake/a\n")
    new_process(monkeypatch)
    gone = director_here_on(git_repo, "doctor")
    assert "FIX  tier opencode/fake/b (for escalation)" in gone.stdout
    with pytest.raises(UsageError, match="no model 'b'"):
        run_check(git_repo, monkeypatch)
    assert fake.asked() == 5
    # A doctor that finds a model missing keeps no pass, not even the other tiers'.
    cache_file().unlink()
    new_process(monkeypatch)
    director_here_on(git_repo, "doctor")
    assert fake.asked() == 6 and not cache_file().exists()


def test_plan_says_in_one_line_that_a_kept_pass_answered(
    git_repo: Path, fake: FakeOpenCode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The line is in the new job's notices (the printed progress and events.jsonl); the
    planner's call then fails (the stand-in OpenCode runs no agent), which is no matter."""
    roles = ("planner", "test_author", "executor", "explorer", "reviewer", "escalation")
    _write(
        git_repo / ".director" / "config.toml",
        "[tiers]\n" + "".join(f'{role} = "opencode/fake/a"\n' for role in roles),
    )
    new_process(monkeypatch)
    director_here_on(git_repo, "doctor")
    assert fake.asked() == 1
    new_process(monkeypatch)
    plan = director_here_on(git_repo, "plan", "add a feature", "--no-tui")
    assert fake.asked() == 1, plan.stdout + plan.stderr
    line = "models: as OpenCode listed them under a minute ago (its binary, config and"
    assert line in " ".join(plan.stdout.split()), plan.stdout
    events = (git_repo / ".director" / "events.jsonl").read_text()
    assert events.count("models: as OpenCode listed them") == 1
