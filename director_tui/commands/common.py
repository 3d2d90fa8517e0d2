"""Helpers the command modules share: repo resolution, output, the TUI switch."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from director_tui.engine import git
from director_tui.engine.config import Config, load_config
from director_tui.engine.store import Store


def add_repo_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repo", default=".", metavar="PATH", help="the git repository to work on (default: .)"
    )


def add_tui_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-tui",
        action="store_true",
        help="print progress lines instead of opening the app (automatic when not a terminal)",
    )


def resolve_repo(args: argparse.Namespace) -> Path:
    return git.repo_root(Path(args.repo).expanduser().resolve())


def store_for(args: argparse.Namespace) -> Store:
    """The repository's store, after checking its configuration: a broken config.toml
    (bad TOML, an unknown provider, a wrong type) stops every command with exit 2 and
    the file and line, before anything is read or written — not only the commands that
    call an agent."""
    store = Store(resolve_repo(args))
    checked_config(store.repo)
    return store


def checked_config(repo: Path) -> Config:
    """The merged user + repo config; ConfigError (exit 2, file and line) when broken."""
    return load_config(repo)


def want_tui(args: argparse.Namespace) -> bool:
    if getattr(args, "no_tui", False) or getattr(args, "json", False):
        return False
    return sys.stdout.isatty() and sys.stdin.isatty() and os.environ.get("TERM") != "dumb"


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def not_built(name: str) -> int:
    print(f"director {name}: not built yet in this version", file=sys.stderr)
    return 1
