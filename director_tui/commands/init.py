"""``director init``: write ``.director/config.toml`` for this repository."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from director_tui.commands.common import HELP_FORMAT, add_repo_arg, help_epilog, resolve_repo
from director_tui.engine import config as cfg
from director_tui.engine import git, sandbox, stack
from director_tui.engine.errors import ConfigError
from director_tui.engine.store import RUNTIME_IGNORES, Store, atomic_write_text

ROLE_FLAGS = {
    "planner": "spec, decomposition and critique",
    "test_author": "writes each node's tests first",
    "executor": "implements one node at a time (the cheap tier)",
    "explorer": "read-only recon of the repo",
    "reviewer": "stage-two code review",
    "escalation": "one more try when the executor runs out",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "init",
        help="create .director/config.toml (roles → models, gate commands)",
        description="Create .director/config.toml from the commented example, bind each role "
        "to a tier ('<provider>/<model>'), set the integration gate commands, and keep "
        "director's runtime files out of git. Asks on a terminal; use flags in scripts.",
        epilog=help_epilog(
            "director init                                  # asks, on a terminal",
            "director init --executor opencode/ollama/qwen3-coder \\",
            "              --gate test='pytest -q' --gate lint='ruff check .'",
            "director init --profiles                       # starter bench profiles too",
            exit_codes=False,
        ),
        formatter_class=HELP_FORMAT,
    )
    add_repo_arg(parser)
    for role, what in ROLE_FLAGS.items():
        parser.add_argument(
            f"--{role.replace('_', '-')}",
            metavar="TIER",
            dest=role,
            help=f"tier for {role}: {what}",
        )
    parser.add_argument(
        "--gate",
        action="append",
        default=[],
        metavar="NAME=CMD",
        help="an integration gate command (repeatable, run in the order given)",
    )
    parser.add_argument(
        "--sandbox",
        choices=("auto", "bwrap", "off"),
        help="[sandbox] mode: run agents and gate tests in bubblewrap — auto (where it "
        "works, the default), bwrap (insist), off",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing config.toml")
    parser.add_argument(
        "--profiles",
        action="store_true",
        help="also write starter bench profiles (all-frontier, cheap-cloud, local-first)",
    )
    parser.add_argument("--no-input", action="store_true", help="never prompt, even on a terminal")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    repo = resolve_repo(args)
    store = Store(repo)
    values: dict[str, object] = {}
    for role in ROLE_FLAGS:
        tier = getattr(args, role)
        if tier:
            values[f"tiers.{role}"] = tier
    for spec in args.gate:
        name, sep, command = spec.partition("=")
        if not sep or not name.strip():
            print(f"director init: --gate wants NAME=CMD, got {spec!r}", file=sys.stderr)
            return 2
        values[f"gates.{name.strip()}"] = command
    if args.sandbox:
        values["sandbox.mode"] = args.sandbox
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not args.no_input
    if store.config.exists() and not args.force:
        if values:
            cfg.set_values(store.config, values)  # validates before writing
            print(f"updated {store.config}")
        else:
            try:
                cfg.load_config(repo)
            except ConfigError as exc:
                raise ConfigError(
                    exc.message,
                    hint="fix the file, or `director init --force` to start over from the "
                    "commented example (your file is replaced)",
                ) from exc
            print(f"{store.config} already exists (use --force to start over)")
    else:
        guess = stack.detect(repo)
        if interactive and not values:
            values = _ask(cfg.Tiers(), guess)
        detected_gates = None
        if not any(k.startswith("gates.") for k in values) and guess.gates:
            detected_gates = guess.gates
        if guess.ignore:
            values["repository.ignore"] = guess.ignore
        text = cfg.example_config_text()
        target = store.config
        tmp = target.with_name(".config.toml.new")
        atomic_write_text(tmp, text)
        try:
            if values:
                cfg.set_values(tmp, values)
            cfg.prune_starter_config(tmp, gates=detected_gates)
            cfg.validate(cfg.read_toml(tmp), str(target))
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        print(f"wrote {target}")
        _say_detected(guess, detected_gates)
    if args.profiles:
        from director_tui.engine.profiles import write_starter_profiles

        for path in write_starter_profiles(store):
            print(f"wrote {path}")
    if git.ensure_gitignore(repo, RUNTIME_IGNORES):
        print(
            f"added director's runtime files to {Path(repo, '.gitignore')} "
            "(commit it when you like; `director plan` does not wait for it)"
        )
    return 0


def _say_detected(guess: stack.StackGuess, gates: dict[str, str] | None) -> None:
    if not guess.names:
        print(
            "  no stack detected (package.json, pyproject.toml, go.mod, Cargo.toml, a "
            "Makefile's test target): check [gates] and [repository] ignore in it"
        )
        return
    print(f"  detected: {', '.join(guess.names)}")
    if gates:
        print("  gates: " + " · ".join(f"{k} = {v!r}" for k, v in gates.items()))
    if guess.ignore:
        print(f"  ignored build files: {', '.join(guess.ignore)}")


def _ask(defaults: cfg.Tiers, guess: stack.StackGuess) -> dict[str, object]:
    print("Bind each role to a tier '<provider>/<model>' (enter keeps the default).")
    print(f"Providers: {', '.join(cfg.PROVIDERS)}")
    values: dict[str, object] = {}
    for role, what in ROLE_FLAGS.items():
        default = getattr(defaults, role)
        while True:
            answer = input(f"  {role} ({what}) [{default}]: ").strip()
            if not answer:
                break
            try:
                cfg.Tiers.model_validate({role: answer})
            except ValidationError as exc:  # re-ask with the reason, in plain words
                reasons = [str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()]
                print(f"    {'; '.join(reasons)}")
                continue
            values[f"tiers.{role}"] = answer
            break
    suggested = guess.gates.get("test", "python -m pytest -q")
    gate = input(f"  integration test command [{suggested}]: ").strip()
    if gate:
        values["gates.test"] = gate
    available = sandbox.probe()
    if available.ok:
        answer = input(
            "  run agents and tests in the bubblewrap sandbox (worktree writable, home "
            "hidden)? [Y/n]: "
        )
        values["sandbox.mode"] = "off" if answer.strip().lower().startswith("n") else "bwrap"
    else:
        print(f"  sandbox: off — {available.reason}")
    return values
