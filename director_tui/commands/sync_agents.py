"""``director sync-agents``: write the role agents as .opencode/agents/*.md and seed config.

Agents are always passed inline at run time (nothing in the repo is needed); this
command only makes them visible and editable-by-copy for users who want to see them.
"""

from __future__ import annotations

import argparse
import json

from director_tui.commands.common import add_repo_arg, checked_config, resolve_repo
from director_tui.engine.agents.opencode import agent_name, permission_block
from director_tui.engine.config import example_config_text, repo_config_path
from director_tui.engine.prompts import PROMPT_ROLES, permissions_for, role_prompt
from director_tui.engine.store import atomic_write_text


def agent_markdown(role: str) -> str:
    lines = ["---", f"description: director-tui {role}", "mode: primary", "permission:"]
    for key, value in permission_block(permissions_for(role)).items():
        lines.append(f"  {key}: {json.dumps(value)}")
    lines.append("---")
    return "\n".join(lines) + "\n\n" + role_prompt(role)


def handle(args: argparse.Namespace) -> int:
    repo = resolve_repo(args)
    checked_config(repo)  # a broken config.toml is said before anything is written
    folder = repo / ".opencode" / "agents"
    folder.mkdir(parents=True, exist_ok=True)
    for role in PROMPT_ROLES:
        path = folder / f"{agent_name(role)}.md"
        atomic_write_text(path, agent_markdown(role))
        print(f"wrote {path.relative_to(repo)}")
    config = repo_config_path(repo)
    if config.exists():
        print(f"kept {config.relative_to(repo)} (already there)")
    else:
        config.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(config, example_config_text())
        print(f"seeded {config.relative_to(repo)} from config.example.toml")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "sync-agents",
        help="write the role agents as .opencode/agents/*.md and seed config",
        description="Write the role agents as .opencode/agents/*.md and seed "
        ".director/config.toml when missing. Runs never need these files: agents are "
        "passed to OpenCode inline.",
    )
    add_repo_arg(parser)
    parser.set_defaults(handler=handle)
