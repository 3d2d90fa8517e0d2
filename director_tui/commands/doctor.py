"""``director doctor``: check git, provider binaries and config, and say what to fix."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from director_tui.commands.common import add_repo_arg
from director_tui.engine import sandbox
from director_tui.engine.agents import claude_code, codex, opencode
from director_tui.engine.agents.collect import binary_version, find_binary, version_text
from director_tui.engine.agents.model_check import ModelStatus, check_tiers, keep_passes
from director_tui.engine.config import (
    Config,
    load_config,
    repo_config_path,
    split_tier,
    user_config_path,
)
from director_tui.engine.errors import DirectorError
from director_tui.engine.sandbox import SandboxMode

# provider → (binary env override, binary name, minimum version, pinned version, hint)
CLIS = {
    "opencode": (opencode.BINARY_ENV, "opencode", opencode.MIN_VERSION, opencode.PINNED_VERSION,
                 opencode.INSTALL_HINT),
    "claude-code": (claude_code.BINARY_ENV, "claude", claude_code.MIN_VERSION,
                    claude_code.PINNED_VERSION, claude_code.INSTALL_HINT),
    "codex": (codex.BINARY_ENV, "codex", codex.MIN_VERSION, codex.PINNED_VERSION,
              codex.INSTALL_HINT),
}  # fmt: skip


def check_provider(name: str) -> tuple[bool, str]:
    env_var, binary_name, minimum, pinned, hint = CLIS[name]
    binary = find_binary(env_var, binary_name)
    if binary is None:
        return False, f"{name}: `{binary_name}` not found — {hint}"
    version = asyncio.run(binary_version(binary))
    if version is None:
        return False, f"{name}: {binary} --version gave no version — {hint}"
    if version < minimum:
        return False, (
            f"{name}: {binary} is {version_text(version)}, need {version_text(minimum)}+ — {hint}"
        )
    return True, f"{name}: {binary} {version_text(version)} (tested with {pinned})"


def handle(args: argparse.Namespace) -> int:
    problems = 0

    def report(ok: bool, line: str) -> None:
        nonlocal problems
        problems += not ok
        print(f"{'ok ' if ok else 'FIX'}  {line}")

    git = shutil.which("git")
    report(git is not None, f"git: {git}" if git else "git: not installed — install git")
    repo = Path(args.repo).expanduser().resolve()
    config: Config | None = None
    if git:
        inside = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
        )
        if inside.returncode == 0:
            repo = Path(inside.stdout.strip())
            report(True, f"repository: {repo}")
            _check_repository(repo, report)
        else:
            report(False, f"repository: {repo} is not a git repository — run `git init` there")
    try:
        config = load_config(repo)
        _report_config_files(repo, report)
    except DirectorError as exc:
        report(False, f"config: {exc}")
    _check_sandbox(config.sandbox.mode if config is not None else "auto", report)
    if config is not None:
        installed: set[str] = set()
        for provider in sorted(config.providers_used()):
            if provider == "scripted":
                report(True, "scripted: built in (no model, for demos and tests)")
                continue
            ok, line = check_provider(provider)
            report(ok, line)
            if ok:
                installed.add(provider)
        _check_models(config, repo, installed, report)
    print("all good" if not problems else f"{problems} thing(s) to fix")
    return 0 if not problems else 1


def _report_config_files(repo: Path, report: Callable[[bool, str], None]) -> None:
    """Only a file that exists is called valid; before `director init` the defaults apply."""
    files = [p for p in (user_config_path(), repo_config_path(repo)) if p.is_file()]
    if files:
        report(True, f"config: valid ({', '.join(str(p) for p in files)})")
    else:
        print(
            f"note config: none yet ({repo_config_path(repo)} does not exist) — the built-in "
            "defaults are checked below; `director init` writes your own"
        )


def _check_models(
    config: Config, repo: Path, installed: set[str], report: Callable[[bool, str], None]
) -> None:
    """Each tier's model, asked of its CLI (only CLIs found above can be asked) now:
    never a pass kept from an earlier command, which is what plan and run use."""
    try:
        checks = asyncio.run(check_tiers(config, repo, fresh=True))
    except DirectorError as exc:
        report(False, f"models: {exc}")
        return
    keep_passes(checks)
    if any(c.listed for c in checks):
        print(
            "note models: asked OpenCode now; plan, run and bench reuse a pass for a day "
            "while its binary, config and credentials are unchanged"
        )
    for check in checks:
        provider = split_tier(check.tier)[0]
        if provider == "scripted" or (provider not in installed and provider in CLIS):
            continue  # its binary line above already says what to fix
        if check.status == ModelStatus.unchecked and provider == "opencode":
            report(False, check.line())  # the CLI is installed yet cannot list models
        elif check.status == ModelStatus.unchecked:
            print(f"note {check.line()}")
        else:
            report(check.status == ModelStatus.ok, check.line())


def _check_sandbox(mode: SandboxMode, report: Callable[[bool, str], None]) -> None:
    """Whether agents will run in the OS sandbox here, and why not."""
    availability = sandbox.probe()
    if mode == "off":
        works = f"bwrap works here ({availability.binary})" if availability.ok else ""
        print(f'note sandbox: off ([sandbox] mode = "off"){"; " + works if works else ""}')
    elif availability.ok:
        report(True, f"sandbox: on — agents and gate tests run in bwrap ({availability.binary})")
    elif mode == "bwrap":
        report(False, f'sandbox: [sandbox] mode = "bwrap" but {availability.reason}')
    else:
        print(
            f"note sandbox: off — {availability.reason}; agents run unsandboxed (writes "
            "outside their worktree are detected, not prevented)"
        )


def _check_repository(repo: Path, report: Callable[[bool, str], None]) -> None:
    """What planning will refuse or trip over, said before a plan is started."""
    from director_tui.engine import git

    if not os.access(repo, os.W_OK):
        report(False, f"writable: no — director writes {repo / '.director'}; use a writable clone")
    if not git.has_commits(repo):
        report(False, "commits: none yet — make a first commit; director plans from one")
        return
    if git.current_branch(repo) is None:
        report(False, "branch: HEAD is detached — check out a branch (`git switch -c <name>`)")
    submodules = git.submodule_paths(repo)
    if submodules:
        print(
            f"note submodules ({', '.join(submodules[:5])}): director's worktrees leave them "
            "empty; tests and gates that need their files fail there"
        )
    _check_worktrees(repo, report)


def _check_worktrees(repo: Path, report: Callable[[bool, str], None]) -> None:
    """Where the worktrees go (outside the checkout), that it can be written, and none an
    older version left inside the checkout, where the user's test runners see them."""
    from director_tui.engine import worktree_home
    from director_tui.engine.store import Store

    store = Store(repo)
    where = store.worktrees
    existing = next(p for p in (where, *where.parents) if p.exists())
    if worktree_home.inside_checkout(repo):
        report(
            False,
            f"worktrees: {where} is inside the checkout — set {worktree_home.ROOT_ENV} to an "
            "absolute path outside it",
        )
    elif not existing.is_dir() or not os.access(existing, os.W_OK):
        report(
            False, f"worktrees: {existing} is not a writable folder — set {worktree_home.ROOT_ENV}"
        )
    else:
        print(
            f"note worktrees: {where} (outside the checkout; {worktree_home.ROOT_ENV} moves them)"
        )
    legacy = store.legacy_worktrees
    left = sorted(p.name for p in legacy.iterdir()) if legacy.is_dir() else []
    if left:
        report(
            False,
            f"worktrees: {len(left)} left inside the checkout in {legacy} by an older "
            "director; your test runners and linters see them — the next `director plan`, "
            "`run` or `clean` moves them out",
        )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "doctor",
        help="check git, the config, the sandbox, the agent CLIs and each tier's model; say what to fix",
        description="Check git, the repository, the config, whether the OS sandbox (bwrap) "
        "works here, each provider's binary and "
        "version, and each tier's model (OpenCode: asked with `opencode models`, with the "
        "environment director gives its agents), and say what to fix. Exit 0 when all is well, 1 when something needs "
        "fixing. Run it first on a new machine or repository.",
    )
    add_repo_arg(parser)
    parser.set_defaults(handler=handle)
