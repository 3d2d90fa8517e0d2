"""Per-call start-up of Claude Code and Codex, measured like ``bench/sessions.py`` measures
OpenCode: the whole ``provider.run`` of each driver for a one-turn call to the project's
fake model server answering at once, split at the moment the model request arrives.

* **start-up**: from the call's start to the CLI's first model request (process start,
  config, auth, tools, prompt) — what a persistent mode (Claude Code's streaming JSON
  input, Codex's ``app-server``) could save per call at best;
* **after**: from that request to the call's end (the answer streamed, any further
  requests of the CLI's own, the session written, the process gone); the tail after the
  last request is printed too.

Issue 13: use a persistent mode only if it saves more than a second per call. The pinned
CLIs are installed like the e2e tests install them (``tests/agent_clis.py``), in a
private HOME (and ``CODEX_HOME``) for the bench.

    .venv/bin/python bench/cli_startup.py [--provider claude codex] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from agent_clis import cache_root, ensure_cli  # noqa: E402
from fake_model_server import FakeModelServer  # noqa: E402

from bench.sessions import loadavg, new_repo  # noqa: E402
from director_tui.engine.agents.base import AgentCall, AgentProvider  # noqa: E402
from director_tui.engine.agents.claude_code import ClaudeCodeProvider  # noqa: E402
from director_tui.engine.agents.codex import CodexProvider  # noqa: E402

MODEL = "bench-model"
TURN = {"text": "ok", "usage": {"input": 10, "output": 1}}


def setup(provider: str, fake: FakeModelServer, root: Path) -> tuple[AgentProvider, str]:
    """The driver and its tier, its environment pointed at the fake server."""
    home = root / f"{provider}-home"
    home.mkdir()
    if provider == "claude":
        os.environ.update(
            {
                "DIRECTOR_AGENT_HOME": str(home),
                "ANTHROPIC_BASE_URL": fake.url,
                "ANTHROPIC_API_KEY": "sk-fake",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_AUTOUPDATER": "1",
            }
        )
        return ClaudeCodeProvider(str(ensure_cli("claude"))), f"claude-code/{MODEL}"
    # Codex refuses its helper binaries under /tmp: its home lives beside the CLIs.
    homes = cache_root() / "codex-homes"
    homes.mkdir(parents=True, exist_ok=True)
    codex_home = Path(tempfile.mkdtemp(prefix="bench-", dir=homes))
    (codex_home / "config.toml").write_text(
        'model_provider = "fake"\n\n[model_providers.fake]\nname = "Fake model server"\n'
        f'base_url = "{fake.url}/v1"\nenv_key = "FAKE_CODEX_API_KEY"\nwire_api = "responses"\n'
        "request_max_retries = 0\nstream_max_retries = 1\n"
    )
    os.environ.update(
        {
            "DIRECTOR_AGENT_HOME": str(home),
            "CODEX_HOME": str(codex_home),
            "FAKE_CODEX_API_KEY": "sk-fake",
        }
    )
    return CodexProvider(str(ensure_cli("codex"))), f"codex/{MODEL}"


async def one_call(
    driver: AgentProvider, tier: str, cwd: Path, logs: Path, fake: FakeModelServer
) -> tuple[float, float, float, int]:
    """(start-up, after, tail after the last request) of one call in seconds, and how
    many model requests it made."""
    seen = len(fake.requests)
    call = AgentCall(role="executor", tier=tier, prompt="say ok", cwd=cwd, log_dir=logs)
    started = time.time()
    result = await driver.run(call, lambda _a: None)
    ended = time.time()
    if not result.ok:
        raise SystemExit(f"a bench call failed: {result.exit_reason}: {result.message}")
    first, last = fake.requests[seen].at, fake.requests[-1].at
    return first - started, ended - first, ended - last, len(fake.requests) - seen


async def bench(provider: str, rounds: int, root: Path) -> None:
    fake = FakeModelServer().start()
    # Enough turns for every request a call makes (Codex may ask for a title too).
    fake.load({MODEL: [TURN] * (4 * rounds + 8)})
    try:
        driver, tier = setup(provider, fake, root)
        cwd = new_repo(root / f"{provider}-repo")
        logs = root / "logs"
        await one_call(driver, tier, cwd, logs, fake)  # first start: caches, migrations
        startup: list[float] = []
        after: list[float] = []
        for index in range(rounds):
            up, rest, tail, requests = await one_call(driver, tier, cwd, logs, fake)
            startup.append(up)
            after.append(rest)
            print(
                f"  {provider} round {index + 1}/{rounds}: start-up {up:.2f}s  "
                f"after the first request {rest:.2f}s ({requests} request(s), "
                f"{tail:.2f}s after the last)  (load {loadavg()})",
                flush=True,
            )
    finally:
        fake.stop()
    up_m, rest_m = statistics.median(startup), statistics.median(after)
    print(
        f"{provider}: median of {rounds}: call {up_m + rest_m:.2f}s = start-up {up_m:.2f}s "
        f"+ after the first request {rest_m:.2f}s → a persistent mode saves at most "
        f"~{up_m:.1f}s per call ({'more' if up_m > 1 else 'less'} than a second)\n",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--provider", nargs="+", choices=["claude", "codex"], default=["claude", "codex"]
    )
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load before: {loadavg()}", flush=True)
    for provider in args.provider:
        with tempfile.TemporaryDirectory(prefix="bench-cli-startup-") as tmp:
            asyncio.run(bench(provider, args.rounds, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
