"""Priming an OpenCode server (``OpenCodeServer.prime``), against the real OpenCode
1.18.33 binary and the fake model server: a server boots the instance of the directory
it serves as it starts, so its first session finds it booted — in the OS sandbox too —
and a priming the server refuses does not fail the start.

The signal is OpenCode's own log at INFO level, not a timing: it logs ``creating
instance`` the one time it boots a directory's instance and ``booting location
services`` the one time it boots that directory's file watcher; an unprimed server logs
both inside its first session, after the session's ``created`` line."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import OpenCodeEnv

from director_tui.engine import git, jobs
from director_tui.engine.agent_servers import SLOT_ROLES
from director_tui.engine.agents.base import AgentCall, ExitReason
from director_tui.engine.agents.opencode import agent_definition, agent_name
from director_tui.engine.agents.opencode_server import OpenCodeServer
from director_tui.engine.agents.opencode_session import OpenCodeServerProvider
from director_tui.engine.config import load_config
from director_tui.engine.context import EngineContext
from director_tui.engine.store import Store
from tests.conftest import make_repo

pytestmark = pytest.mark.e2e

ANSWER = [{"text": "ok", "usage": {"input": 10, "output": 1}}]


def boots(log: str, directory: Path) -> tuple[int, int]:
    """How often the log says the instance and the location services of ``directory``
    were booted."""
    return (
        log.count(f'message="creating instance" directory={directory}\n'),
        log.count(f'message="booting location services" directory={directory} '),
    )


def call(cwd: Path, tmp_path: Path) -> AgentCall:
    return AgentCall(
        role="executor",
        tier="opencode/fake/executor",
        prompt="say ok",
        cwd=cwd,
        log_dir=tmp_path / "logs",
        timeout_secs=120,
    )


def executor_agent(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """The agent the session uses, there from the start: another agent would restart
    the server (``use_agent``), and a restart primes again."""
    probe = call(tmp_path, tmp_path)
    return {agent_name(probe.role): agent_definition(probe)}


async def first_session_after_start(server: OpenCodeServer, cwd: Path, tmp_path: Path) -> str:
    """Start ``server``, run one session in ``cwd``; the log as it was between the two."""
    try:
        assert await server.ensure_running()
        before = server.stderr_path.read_text()
        result = await OpenCodeServerProvider(server).run(call(cwd, tmp_path), lambda _a: None)
        assert result.exit_reason == ExitReason.ok, result.message
        assert result.text == "ok"
        assert server.starts == 1  # started once: every boot in the log is this start's
        return before
    finally:
        await server.stop()


def test_a_primed_server_has_booted_its_directory_before_its_first_session(
    opencode_env: OpenCodeEnv, git_repo: Path, tmp_path: Path
) -> None:
    setup = opencode_env({"executor": ANSWER})
    server = OpenCodeServer(
        str(setup.binary),
        agents=executor_agent(tmp_path),
        log_dir=tmp_path / "server-logs",
        directory=git_repo,
        log_level="INFO",
    )

    before = asyncio.run(first_session_after_start(server, git_repo, tmp_path))

    assert server.prime_error == ""
    assert boots(before, git_repo) == (1, 1), before[-2000:]
    assert "message=created id=ses_" not in before  # no session did it
    # The session booted nothing again: still one of each in the whole log.
    assert boots(server.stderr_path.read_text(), git_repo) == (1, 1)


def test_an_unprimed_server_boots_its_directory_inside_the_first_session(
    opencode_env: OpenCodeEnv, git_repo: Path, tmp_path: Path
) -> None:
    """The other side of the signal: without a directory to prime, the first session
    pays the boots (else the test above could not fail)."""
    setup = opencode_env({"executor": ANSWER})
    server = OpenCodeServer(
        str(setup.binary),
        agents=executor_agent(tmp_path),
        log_dir=tmp_path / "server-logs",
        log_level="INFO",
    )

    before = asyncio.run(first_session_after_start(server, git_repo, tmp_path))

    assert boots(before, git_repo) == (0, 0)
    log = server.stderr_path.read_text()
    assert boots(log, git_repo) == (1, 1)
    assert log.index("message=created id=ses_") < log.index('"booting location services"')


def test_a_refused_priming_does_not_fail_the_start(
    opencode_env: OpenCodeEnv, git_repo: Path, tmp_path: Path
) -> None:
    """OpenCode answers 500 to a file search in a directory that does not exist: the
    server is up all the same, says why the priming failed, and serves a session."""
    setup = opencode_env({"executor": ANSWER})
    gone = tmp_path / "not-there"
    server = OpenCodeServer(
        str(setup.binary),
        agents=executor_agent(tmp_path),
        log_dir=tmp_path / "server-logs",
        directory=gone,
    )

    asyncio.run(first_session_after_start(server, git_repo, tmp_path))

    assert server.starts == 1
    assert "/find/file" in server.prime_error and "HTTP 500" in server.prime_error


def test_a_slot_server_primes_its_worktree_inside_the_sandbox(
    opencode_env: OpenCodeEnv, tmp_path: Path
) -> None:
    """A slot's server as the registry makes it (in the OS sandbox where bwrap works:
    its worktree bound back into a hidden worktree folder) primes that worktree."""
    setup = opencode_env({"executor": ANSWER})
    repo = make_repo(tmp_path / "repo", {"README.md": "# r\n"})
    store = Store(repo)
    store.ensure()
    ctx = EngineContext.open(store, load_config(repo))
    slot = jobs.slot_worktree(store, 0)
    jobs.park_slot_worktree(store, slot, git.rev(repo))
    server = ctx.servers.server(slot, writable=True, roles=SLOT_ROLES, name="slot-0")
    server.log_level = "INFO"
    assert server.binary == str(setup.binary)
    assert Path(server.argv()[0]).name == ("bwrap" if ctx.sandbox.enabled else "opencode")

    before = asyncio.run(first_session_after_start(server, slot, tmp_path))

    assert server.prime_error == ""
    assert boots(before, slot) == (1, 1), before[-2000:]
    assert boots(server.stderr_path.read_text(), slot) == (1, 1)
