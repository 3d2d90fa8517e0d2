"""End-to-end fixtures: the REAL OpenCode binary talking to the project's fake model server.

No network and no model: ``tests/fake_model_server.py`` answers OpenCode's
``/chat/completions`` requests with scripted streams (text, tool calls, usage, errors,
hangs), so the real binary really writes files and runs commands in a test worktree.

Fixtures (all usable from any test under ``tests/e2e/``; mark such tests
``@pytest.mark.e2e``):

``opencode_bin`` (session)
    Path to OpenCode 1.18.33, installed from npm once into
    ``~/.cache/director-tui/opencode-1.18.33`` (``$DIRECTOR_TUI_CACHE`` overrides the
    root) by :func:`agent_clis.ensure_cli`. First use takes ~10 s; later runs reuse it.
    Skips the test when npm is missing or the install fails.

``fake_server`` (function)
    A started :class:`fake_model_server.FakeModelServer` on 127.0.0.1. ``load(script)``
    queues turns; ``requests`` records what OpenCode sent.

``opencode_env`` (function) — the one most tests want
    A function ``opencode_env(script, **options) -> OpenCodeSetup``. ``script`` maps a
    *model name* to the turns the server plays for it, one turn per model request, in
    order (turn format: see ``fake_model_server``). By default every role's tier is
    ``opencode/fake/<role>`` (planner, test_author, executor, explorer, reviewer,
    escalation; brainstorm and critic borrow the planner tier, so their turns queue
    under ``"planner"``), so a script keyed by role name just works::

        def test_x(opencode_env, git_repo):
            setup = opencode_env({
                "executor": [
                    {"tool_calls": [{"name": "write", "arguments":
                        {"filePath": "{cwd}/a.py", "content": "x = 1\\n"}}],
                     "usage": {"input": 100, "output": 20}},
                    {"text": "done", "usage": {"input": 150, "output": 5}},
                ]})
            ctx = EngineContext.open(Store(git_repo), setup.config)
            result, cost = await ctx.call_agent("executor", "do it", git_repo)

    One agent call usually takes 2 model turns or more: each tool call is one turn (the
    CLI sends the tool's result back as a new request) and the final text is another.
    Keep a turn's ``usage`` under the model's context limit (200k here): past it OpenCode
    compacts the session, which costs an extra, unscripted request.
    ``options``: ``tiers={"executor": "opencode/fake/cheap", ...}`` to override tiers,
    ``prices={"cheap": (1.0, 5.0)}`` ($/M input, output; default 1.0/5.0 for every
    model, so OpenCode reports a real non-zero cost), ``idle_timeout_secs`` and
    ``node_timeout_secs`` (default 60 / 120), ``config`` (a dict merged over the rest
    before validation, e.g. ``{"gates": {"test": "pytest -q"}}``).

    It sets, for the test's duration (monkeypatch), the environment the driver reads:
    ``DIRECTOR_OPENCODE_BIN`` (the pinned binary), ``DIRECTOR_AGENT_HOME`` (a temp HOME
    for the agent process only, so OpenCode never touches the developer's
    ``~/.local/share/opencode``; a copy of ``opencode_home_template``, or empty for a
    test marked ``fresh_agent_home``), ``OPENCODE_DISABLE_AUTOUPDATE=1``,
    ``OPENCODE_DISABLE_MODELS_FETCH=1`` and ``OPENCODE_CONFIG_CONTENT`` holding the
    ``fake`` provider (the driver merges its role agents into that value — exactly how
    a user's own value is treated). ``OpenCodeSetup.env`` holds the same values for
    tests that start ``director`` as a subprocess.

``opencode_home_template`` (session)
    A HOME in which the real OpenCode has done its first start once: its database made
    and migrated, and the ``@opencode-ai/plugin`` package it installs from npm into
    ``~/.config/opencode`` on the first start in a HOME (a fetch of 7-30 MB of package
    metadata that every start in a still-empty HOME begins again and that dies with the
    process). Made once per pytest process (one ``opencode serve``, ~6 s on a quiet
    2-core machine); each test gets a copy (``cp -a``; the installed packages
    hard-linked), as a user's second session finds their HOME. Tests ABOUT a first start
    mark themselves ``@pytest.mark.fresh_agent_home`` and get an empty HOME. Offline (no
    install under way after ``TEMPLATE_OFFLINE_SECS``, or none finished in
    ``TEMPLATE_INSTALL_SECS``) the package is left out and each start tries again, as
    in an empty HOME.

``claude_bin`` / ``claude_env`` (session / function)
    The same for Claude Code 2.1.332: ``claude_env(script)`` points the real ``claude``
    at the fake server's Anthropic Messages endpoint (``ANTHROPIC_BASE_URL``); script
    keys are the model names after ``claude-code/`` in the tier. Tool names are Claude
    Code's (``Write`` with ``file_path``, ``Bash`` with ``command``).

``codex_bin`` / ``codex_env`` (session / function)
    The same for Codex 0.171.0: ``codex_env(script)`` gives the real ``codex`` its own
    ``CODEX_HOME`` (a fresh folder per test beside the installed CLIs, never under the
    temp dir where Codex's own sandbox cannot start, so nothing lands in the developer's
    ``~/.codex``) whose ``config.toml`` selects a ``fake`` model provider on the fake
    server's OpenAI Responses endpoint (``wire_api = "responses"``, the key read from
    ``FAKE_CODEX_API_KEY``). Script keys are the model names after ``codex/`` in the
    tier. For a model it has no metadata for, Codex 0.171 offers the model the
    ``exec_command`` tool (``{"cmd": "<shell command>"}``) and no ``apply_patch``, so
    scripted edits are shell commands; a model in its bundled catalog (``gpt-5.5``) also
    gets the freeform ``apply_patch`` (script it as ``{"name": "apply_patch", "input":
    "*** Begin Patch\\n..."}``). ``request_retries`` / ``stream_retries`` (default
    0 / 1) set the provider's ``request_max_retries`` / ``stream_max_retries``: Codex's
    own defaults retry a failing server for many seconds.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from agent_clis import CliUnavailable, cache_root, ensure_cli
from fake_model_server import FakeModelServer, Script
from gitrepo import make_repo

from director_tui.engine.config import ROLES, Config, deep_merge, split_tier


@dataclass
class OpenCodeSetup:
    config: Config
    env: dict[str, str]
    server: FakeModelServer
    binary: Path


OpenCodeEnv = Callable[..., OpenCodeSetup]


@pytest.fixture(scope="session")
def opencode_bin() -> Path:
    try:
        return ensure_cli("opencode")
    except (CliUnavailable, OSError) as exc:
        # A failure, not a skip: these are the acceptance tests against the real binary.
        pytest.fail(f"OpenCode could not be installed (npm needed): {exc}")


# OpenCode's first start in a HOME installs @opencode-ai/plugin (64 MB with its
# dependencies) from npm in the background: seconds, longer on a slow network.
TEMPLATE_INSTALL_SECS = 120.0
TEMPLATE_OFFLINE_SECS = 20.0
_MODULES = Path(".config", "opencode", "node_modules")
_PLUGIN = _MODULES / "@opencode-ai" / "plugin" / "package.json"
_PLUGIN_LOCK = Path(".config", "opencode", "package-lock.json")


def _first_start(binary: Path, home: Path, project: Path) -> bool:
    """Run ``opencode serve`` in ``home`` until its first start is over: the database
    made, the instance of ``project`` booted (which starts the plugin install) and the
    install finished. False when the install did not finish in time."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("XDG_", "OPENCODE_"))
    }
    password = "template"
    env.update(
        HOME=str(home),
        OPENCODE_DISABLE_AUTOUPDATE="1",
        OPENCODE_DISABLE_MODELS_FETCH="1",
        OPENCODE_SERVER_USERNAME="opencode",
        OPENCODE_SERVER_PASSWORD=password,
    )
    log = home.parent / "template-serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(binary), "serve", "--hostname", "127.0.0.1", "--port", "0"],
            cwd=project, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + TEMPLATE_INSTALL_SECS
        url = ""
        while not url:
            found = re.search(r"listening on (http://\S+)", log.read_text(errors="replace"))
            url = found.group(1) if found else ""
            if proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        auth = base64.b64encode(f"opencode:{password}".encode()).decode()
        boot = urllib.request.Request(
            f"{url}/config/providers?directory={quote(str(project), safe='')}",
            headers={"Authorization": f"Basic {auth}"},
        )
        with urllib.request.urlopen(boot, timeout=60) as answer:
            answer.read()
        # No npm cache a while after the boot: no network, the install never starts.
        offline_at = time.monotonic() + TEMPLATE_OFFLINE_SECS
        while not ((home / _PLUGIN).exists() and (home / _PLUGIN_LOCK).exists()):
            if proc.poll() is not None or time.monotonic() > deadline:
                return False
            if time.monotonic() > offline_at and not (home / ".npm").exists():
                return False
            time.sleep(0.2)
        return True
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@dataclass(frozen=True)
class HomeTemplate:
    home: Path  # everything but the installed packages: copied for each test
    packages: Path | None  # ~/.config/opencode/node_modules: hard-linked for each test

    def copy_to(self, home: Path) -> None:
        subprocess.run(["cp", "-a", f"{self.home}/.", str(home)], check=True)
        if self.packages is not None:
            # 4,300 files nobody writes (OpenCode only reads and, were they missing,
            # reinstalls them): linked, not copied — a copy cost as much CPU as it saved.
            target = home / _MODULES
            subprocess.run(["cp", "-al", str(self.packages), str(target)], check=True)


@pytest.fixture(scope="session")
def opencode_home_template(
    opencode_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> HomeTemplate:
    root = tmp_path_factory.mktemp("opencode-home-template")
    home = root / "home"
    home.mkdir()
    packages: Path | None = root / "node_modules"
    if _first_start(opencode_bin, home, make_repo(root / "project")):
        (home / _MODULES).rename(root / "node_modules")
    else:
        # A half-done install would be copied into every test: none, as in a new HOME.
        shutil.rmtree(home / ".config" / "opencode", ignore_errors=True)
        packages = None
    # npm's download cache: nothing reads it once the package is installed.
    shutil.rmtree(home / ".npm", ignore_errors=True)
    assert (home / ".local" / "share" / "opencode" / "opencode.db").exists(), (
        root / "template-serve.log"
    ).read_text(errors="replace")[-2000:]
    return HomeTemplate(home, packages)


@pytest.fixture
def fake_server() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()
    try:
        yield server
    finally:
        server.stop()


def fake_provider_config(
    server: FakeModelServer, models: set[str], prices: dict[str, tuple[float, float]]
) -> dict[str, Any]:
    """An OpenCode config with one ``fake`` OpenAI-compatible provider on the server."""
    return {
        "provider": {
            "fake": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Fake model server",
                "options": {"baseURL": server.url, "apiKey": "fake-key"},
                "models": {
                    model: {
                        "name": model,
                        "cost": {
                            "input": prices.get(model, (1.0, 5.0))[0],
                            "output": prices.get(model, (1.0, 5.0))[1],
                        },
                        "limit": {"context": 200_000, "output": 32_000},
                    }
                    for model in sorted(models)
                },
            }
        }
    }


@pytest.fixture
def opencode_env(
    opencode_bin: Path,
    fake_server: FakeModelServer,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> OpenCodeEnv:
    agent_home = tmp_path_factory.mktemp("agent-home")
    if request.node.get_closest_marker("fresh_agent_home") is None:
        template: HomeTemplate = request.getfixturevalue("opencode_home_template")
        template.copy_to(agent_home)

    def make(
        script: Script,
        *,
        tiers: dict[str, str] | None = None,
        prices: dict[str, tuple[float, float]] | None = None,
        idle_timeout_secs: float = 60,
        node_timeout_secs: float = 120,
        config: dict[str, Any] | None = None,
    ) -> OpenCodeSetup:
        tier_map = {role: f"opencode/fake/{role}" for role in ROLES}
        tier_map.update(tiers or {})
        models = set(script)
        for tier in tier_map.values():
            provider, ref = split_tier(tier)
            if provider == "opencode" and ref.startswith("fake/"):
                models.add(ref.removeprefix("fake/"))
        fake_server.load(script)
        data: dict[str, Any] = {
            "tiers": tier_map,
            "limits": {
                "idle_timeout_secs": idle_timeout_secs,
                "node_timeout_secs": node_timeout_secs,
            },
        }
        env = {
            "DIRECTOR_OPENCODE_BIN": str(opencode_bin),
            "DIRECTOR_AGENT_HOME": str(agent_home),
            "OPENCODE_DISABLE_AUTOUPDATE": "1",
            "OPENCODE_DISABLE_MODELS_FETCH": "1",
            "OPENCODE_CONFIG_CONTENT": json.dumps(
                fake_provider_config(fake_server, models, prices or {})
            ),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return OpenCodeSetup(
            config=Config.model_validate(deep_merge(data, config or {})),
            env=env,
            server=fake_server,
            binary=opencode_bin,
        )

    return make


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    """Claude Code 2.1.332, installed like ``opencode_bin``."""
    try:
        return ensure_cli("claude")
    except (CliUnavailable, OSError) as exc:
        pytest.fail(f"Claude Code could not be installed (npm needed): {exc}")


@pytest.fixture
def claude_env(
    claude_bin: Path,
    fake_server: FakeModelServer,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[Script], FakeModelServer]:
    """``claude_env(script)``: the real Claude Code pointed at the fake server's
    Anthropic Messages endpoint (``ANTHROPIC_BASE_URL``); script keys are model names
    as given after ``claude-code/`` in the tier."""
    agent_home = tmp_path_factory.mktemp("claude-home")

    def make(script: Script) -> FakeModelServer:
        fake_server.load(script)
        env = {
            "DIRECTOR_CLAUDE_BIN": str(claude_bin),
            "DIRECTOR_AGENT_HOME": str(agent_home),
            "ANTHROPIC_BASE_URL": fake_server.url,
            "ANTHROPIC_API_KEY": "sk-fake",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return fake_server

    return make


@pytest.fixture(scope="session")
def codex_bin() -> Path:
    """Codex 0.171.0, installed like ``opencode_bin``."""
    try:
        return ensure_cli("codex")
    except (CliUnavailable, OSError) as exc:
        pytest.fail(f"Codex could not be installed (npm needed): {exc}")


@pytest.fixture
def codex_env(
    codex_bin: Path,
    fake_server: FakeModelServer,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Callable[..., FakeModelServer]:
    """``codex_env(script, request_retries=0, stream_retries=1)``: the real Codex pointed
    at the fake server's Responses endpoint through its own ``CODEX_HOME``.

    That ``CODEX_HOME`` is NOT under the temp dir (``/tmp``, where ``tmp_path`` is):
    Codex then refuses to make its helper aliases ("Refusing to create helper binaries
    under temporary dir"), and its own sandbox, which starts its commands as
    ``bwrap … codex-linux-sandbox`` through one of them, fails every command with
    ``bwrap: execvp codex-linux-sandbox``. It lives beside the installed CLIs and is
    removed after the test."""
    agent_home = tmp_path_factory.mktemp("codex-agent-home")
    homes = cache_root() / "codex-homes"
    homes.mkdir(parents=True, exist_ok=True)
    codex_home = Path(tempfile.mkdtemp(prefix="test-", dir=homes))
    request.addfinalizer(lambda: shutil.rmtree(codex_home, ignore_errors=True))

    def make(
        script: Script, *, request_retries: int = 0, stream_retries: int = 1
    ) -> FakeModelServer:
        fake_server.load(script)
        (codex_home / "config.toml").write_text(
            'model_provider = "fake"\n'
            "\n"
            "[model_providers.fake]\n"
            'name = "Fake model server"\n'
            f'base_url = "{fake_server.url}/v1"\n'
            'env_key = "FAKE_CODEX_API_KEY"\n'
            'wire_api = "responses"\n'
            f"request_max_retries = {request_retries}\n"
            f"stream_max_retries = {stream_retries}\n"
        )
        env = {
            "DIRECTOR_CODEX_BIN": str(codex_bin),
            "DIRECTOR_AGENT_HOME": str(agent_home),
            "CODEX_HOME": str(codex_home),
            "FAKE_CODEX_API_KEY": "sk-fake",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return fake_server

    return make
