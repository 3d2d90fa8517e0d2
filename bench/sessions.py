"""Per-session overhead of an OpenCode agent call: a cold ``opencode run`` next to a session
on a running ``opencode serve``, in a directory the server has used before (warm) and in a
new directory each time, measured side by side in one run (round robin, so machine load
hits all three alike).

The model is the project's fake model server answering at once (one text turn, zero
latency), so what is measured is harness + OpenCode time: the whole ``provider.run`` of
each driver, transcript and parsing included. The pinned OpenCode is installed like the
e2e tests install it (``tests/agent_clis.py``). Goal (issue 13): warm session median
≤ 0.3 s and ≥ 10× less than a cold start measured in the same run.

    .venv/bin/python bench/sessions.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from agent_clis import ensure_cli  # noqa: E402
from fake_model_server import FakeModelServer  # noqa: E402

from director_tui.engine.agents.base import AgentCall, AgentResult  # noqa: E402
from director_tui.engine.agents.opencode import OpenCodeProvider  # noqa: E402
from director_tui.engine.agents.opencode_server import OpenCodeServer  # noqa: E402
from director_tui.engine.agents.opencode_session import OpenCodeServerProvider  # noqa: E402

MODEL = "bench"
TURN = {"text": "ok", "usage": {"input": 10, "output": 1}}


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    identity = ["-c", "user.name=b", "-c", "user.email=b@localhost"]
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    subprocess.run(
        ["git", *identity, "commit", "-q", "--allow-empty", "-m", "init"], cwd=path, check=True
    )
    return path


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" 1")[0].strip()
    except OSError:
        return "?"


async def timed(run: Callable[[], Awaitable[AgentResult]]) -> float:
    started = time.perf_counter()
    result = await run()
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"a bench call failed: {result.exit_reason}: {result.message}")
    return elapsed


async def bench(rounds: int, root: Path) -> int:
    binary = ensure_cli("opencode")
    fake = FakeModelServer().start()
    fake.load({MODEL: [TURN] * (3 * rounds + 10)})
    home = root / "agent-home"
    home.mkdir()
    os.environ.update(
        {
            "DIRECTOR_OPENCODE_BIN": str(binary),
            "DIRECTOR_AGENT_HOME": str(home),
            "OPENCODE_DISABLE_AUTOUPDATE": "1",
            "OPENCODE_DISABLE_MODELS_FETCH": "1",
            "OPENCODE_CONFIG_CONTENT": json.dumps(
                {
                    "provider": {
                        "fake": {
                            "npm": "@ai-sdk/openai-compatible",
                            "name": "Fake model server",
                            "options": {"baseURL": fake.url, "apiKey": "fake-key"},
                            "models": {
                                MODEL: {
                                    "name": MODEL,
                                    "limit": {"context": 200_000, "output": 32_000},
                                }
                            },
                        }
                    }
                }
            ),
        }
    )
    logs = root / "logs"
    warm_dir = new_repo(root / "warm")

    def call(cwd: Path) -> AgentCall:
        return AgentCall(
            role="executor",
            tier=f"opencode/fake/{MODEL}",
            prompt="say ok",
            cwd=cwd,
            log_dir=logs,
        )

    print(f"load before: {loadavg()}", flush=True)
    server = OpenCodeServer(str(binary), agents={}, log_dir=logs)
    session = OpenCodeServerProvider(server)
    cold_driver = OpenCodeProvider(str(binary))
    try:
        started = time.perf_counter()
        first = await timed(lambda: session.run(call(warm_dir), lambda _a: None))
        print(f"server start + first session in a new directory: {first:.2f}s", flush=True)
        await timed(lambda: cold_driver.run(call(warm_dir), lambda _a: None))  # warm caches
        cold: list[float] = []
        warm: list[float] = []
        fresh: list[float] = []
        for index in range(rounds):
            cold.append(await timed(lambda: cold_driver.run(call(warm_dir), lambda _a: None)))
            warm.append(await timed(lambda: session.run(call(warm_dir), lambda _a: None)))
            fresh_dir = new_repo(root / f"new-{index}")
            fresh.append(await timed(lambda d=fresh_dir: session.run(call(d), lambda _a: None)))
            print(
                f"round {index + 1}/{rounds}: cold {cold[-1]:.2f}s  warm {warm[-1]:.2f}s  "
                f"new directory {fresh[-1]:.2f}s  (load {loadavg()})",
                flush=True,
            )
        total = time.perf_counter() - started
    finally:
        await server.stop()
        fake.stop()
    cold_m, warm_m, fresh_m = (statistics.median(x) for x in (cold, warm, fresh))
    print()
    print(f"median of {rounds} (load after: {loadavg()}, {total:.0f}s in all):")
    print(f"  cold `opencode run`            {cold_m:6.2f}s")
    print(
        f"  server session, warm directory {warm_m:6.2f}s   {cold_m / warm_m:5.1f}x less than cold"
    )
    print(
        f"  server session, new directory  {fresh_m:6.2f}s   {cold_m / fresh_m:5.1f}x less than cold"
    )
    print(
        f"goal: warm ≤ 0.30s and ≥ 10x less than cold → "
        f"{'met' if warm_m <= 0.3 and cold_m / warm_m >= 10 else 'NOT met'}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sessions-") as tmp:
        return asyncio.run(bench(args.rounds, Path(tmp)))


if __name__ == "__main__":
    raise SystemExit(main())
