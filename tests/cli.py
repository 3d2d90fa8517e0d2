"""Run the `director` command line: in a subprocess, as a user's shell would, or in this
process through ``cli.main`` (the same parsing, handlers and exit codes, without starting
an interpreter and importing the package again for every call)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from director_tui import cli


def director(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """`python -m director_tui ARGS`; stdin is closed unless text is given."""
    return subprocess.run(
        [sys.executable, "-m", "director_tui", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        timeout=timeout,
        check=False,
    )


def director_on(
    repo: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`director ARGS --repo REPO`."""
    return director(*args, "--repo", str(repo), env=env, stdin=stdin)


@contextlib.contextmanager
def _environment(cwd: Path | None, env: dict[str, str] | None) -> Iterator[None]:
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    try:
        os.environ.update(env or {})
        if cwd is not None:
            os.chdir(cwd)
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def director_here(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`director ARGS` through ``cli.main`` in this process, output captured; stdin is
    empty unless text is given, and nothing is a terminal (as with ``director``).

    For what a command does. What is about the process itself — signals, the
    interpreter's exit status, a traceback on stderr, a real pipe — keeps ``director``."""
    out, err = io.StringIO(), io.StringIO()
    with (
        _environment(cwd, env),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        contextlib.ExitStack() as stack,
    ):
        saved_stdin = sys.stdin
        sys.stdin = io.StringIO(stdin or "")
        stack.callback(setattr, sys, "stdin", saved_stdin)
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # argparse: --help, --version, a bad flag
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return subprocess.CompletedProcess(["director", *args], code, out.getvalue(), err.getvalue())


def director_here_on(
    repo: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`director ARGS --repo REPO` in this process."""
    return director_here(*args, "--repo", str(repo), env=env, stdin=stdin)
