"""A deterministic seam for compare-and-swap tests: something moves a branch at the exact
moment between director's ``git commit-tree`` and its ``git update-ref``.

No mock: a ``git`` on ``PATH`` that runs the real git with every argument unchanged and,
once, right after a ``commit-tree`` whose arguments match, runs a shell script (with the
real git first on its ``PATH``) — as an agent outside the sandbox, or a sibling's
``git update-ref``, could at that moment. Director's own git (``engine/git.py``) finds
``git`` on ``PATH`` like any process, so every command it runs is the real one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def move_after_commit_tree(
    monkeypatch: pytest.MonkeyPatch, tmp: Path, script: str, *, when: str = "*", times: int = 1
) -> Path:
    """Run ``script`` after the first ``times`` ``git … commit-tree …`` whose arguments
    (as one string) match the shell pattern ``when``. Returns the file that exists once
    it ran (the script's output and errors are in ``<it>.log``)."""
    return move_around_git(monkeypatch, tmp, script, when=f"*' commit-tree '{when}", times=times)


def move_around_git(
    monkeypatch: pytest.MonkeyPatch,
    tmp: Path,
    script: str,
    *,
    when: str,
    before: bool = False,
    times: int = 1,
) -> Path:
    """Run ``script`` right after (``before``: right before) each of the first ``times``
    git commands whose arguments, as one string padded with a space each side, match
    the shell pattern ``when``. Returns the file that exists once it ran."""
    real = shutil.which("git")
    assert real is not None
    real_dir = tmp / "real-git"
    real_dir.mkdir()
    (real_dir / "git").symlink_to(real)
    seam = tmp / "git-seam"
    seam.mkdir()
    armed, fired = seam / "armed", seam / "fired"
    armed.mkdir()
    for shot in range(times):
        (armed / str(shot)).touch()
    mover = seam / "mover.sh"
    mover.write_text("set -e\n" + script)
    move = (
        f'    if [ $rc -eq 0 ] && rm "$(ls -d {armed}/* 2>/dev/null | head -1)" 2>/dev/null; then\n'
        f'      PATH="{real_dir}:$PATH" sh {mover} >{fired}.log 2>&1 && touch {fired}\n'
        "    fi ;;\n"
    )
    wrapper = seam / "git"
    wrapper.write_text(
        "#!/bin/sh\n"
        + (f'case " $* " in\n  {when})\n  rc=0\n{move}esac\n' if before else "")
        + f'"{real}" "$@"\n'
        + "rc=$?\n"
        + ("" if before else f'case " $* " in\n  {when})\n{move}esac\n')
        + "exit $rc\n"
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{seam}{os.pathsep}{os.environ.get('PATH', '')}")
    return fired
