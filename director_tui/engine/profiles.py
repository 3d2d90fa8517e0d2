"""Bench profiles: whole config files in ``.director/profiles/<name>.toml``."""

from __future__ import annotations

from pathlib import Path

from director_tui.engine.store import Store, atomic_write_text

_HEADER = """\
# Bench profile "{name}": {what}
# A profile is a whole config file, loaded on its own by `director bench` (your
# config.toml is never read or changed by a bench). Only the tiers differ between the
# starter profiles; copy any other table from config.example.toml to change it too.
"""

STARTERS: dict[str, tuple[str, dict[str, str]]] = {
    "all-frontier": (
        "every role on a frontier model — the baseline the others are measured against",
        {
            "planner": "opencode/anthropic/claude-opus-4-5",
            "test_author": "opencode/anthropic/claude-opus-4-5",
            "executor": "opencode/anthropic/claude-opus-4-5",
            "explorer": "opencode/anthropic/claude-opus-4-5",
            "reviewer": "opencode/anthropic/claude-opus-4-5",
            "escalation": "opencode/anthropic/claude-opus-4-5",
        },
    ),
    "cheap-cloud": (
        "a small cloud model executes; a frontier model reviews and takes escalations",
        {
            "planner": "opencode/anthropic/claude-opus-4-5",
            "test_author": "opencode/anthropic/claude-opus-4-5",
            "executor": "opencode/anthropic/claude-haiku-4-5",
            "explorer": "opencode/anthropic/claude-haiku-4-5",
            "reviewer": "opencode/anthropic/claude-sonnet-4-5",
            "escalation": "opencode/anthropic/claude-sonnet-4-5",
        },
    ),
    "local-first": (
        "a local model (e.g. served by ollama or LM Studio) executes; cloud for the rest",
        {
            "planner": "opencode/anthropic/claude-opus-4-5",
            "test_author": "opencode/anthropic/claude-opus-4-5",
            "executor": "opencode/ollama/qwen3-coder",
            "explorer": "opencode/ollama/qwen3-coder",
            "reviewer": "opencode/anthropic/claude-sonnet-4-5",
            "escalation": "opencode/anthropic/claude-sonnet-4-5",
        },
    ),
}

_PRICES = {
    "opencode/anthropic/claude-opus-4-5": (5.0, 25.0),
    "opencode/anthropic/claude-sonnet-4-5": (3.0, 15.0),
    "opencode/anthropic/claude-haiku-4-5": (1.0, 5.0),
    "opencode/ollama/qwen3-coder": (0.0, 0.0),
}


def starter_text(name: str) -> str:
    what, tiers = STARTERS[name]
    lines = [_HEADER.format(name=name, what=what), "[tiers]"]
    lines += [f'{role} = "{tier}"' for role, tier in tiers.items()]
    for tier in sorted(set(tiers.values())):
        inp, outp = _PRICES[tier]
        note = "  # runs on your machine: $0" if inp == 0 and outp == 0 else ""
        lines += ["", f'[pricing."{tier}"]{note}', f"input = {inp}", f"output = {outp}"]
    return "\n".join(lines) + "\n"


def write_starter_profiles(store: Store, *, overwrite: bool = False) -> list[Path]:
    written = []
    for name in STARTERS:
        path = store.profiles / f"{name}.toml"
        if path.exists() and not overwrite:
            continue
        atomic_write_text(path, starter_text(name))
        written.append(path)
    return written
