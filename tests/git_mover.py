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
    monkeypatch: pytest.MonkeyPatch, tmp: Path, script: str, *, when: str = "*"
) -> Path:
    """Run ``script`` once, after the first ``git … commit-tree …`` whose arguments (as
    one string) match the shell pattern ``when``. Returns the file that exists once it
    ran (the script's output and errors are in ``<it>.log``)."""
    real = shutil.which("git")
    assert real is not None
    real_dir = tmp / "real-git"
    real_dir.mkdir()
    (real_dir / "git").symlink_to(real)
    seam = tmp / "git-seam"
    seam.mkdir()
    armed, fired = seam / "armed", seam / "fired"
    armed.touch()
    mover = seam / "mover.sh"
    mover.write_text("set -e\n" + script)
    wrapper = seam / "git"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'"{real}" "$@"\n'
        "rc=$?\n"
        'case " $* " in\n'
        f"  *' commit-tree '{when})\n"
        f"    if [ $rc -eq 0 ] && rm {armed} 2>/dev/null; then\n"
        f'      PATH="{real_dir}:$PATH" sh {mover} >{fired}.log 2>&1 && touch {fired}\n'
        "    fi ;;\n"
        "esac\n"
        "exit $rc\n"
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{seam}{os.pathsep}{os.environ.get('PATH', '')}")
    return fired
