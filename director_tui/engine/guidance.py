"""Coding guidance the repository gives its contributors: ``AGENTS.md`` / ``CLAUDE.md``.

A guidance file at the repository root applies everywhere; one in a sub-folder applies
only to work under that folder (the convention both files follow). Roles that write code
or tests get the files that apply to the paths they will touch:

    text = guidance_prompt(worktree, ["src/pkg/parse.py", "tests/test_parse.py"])

Files are found with ``git ls-files`` (tracked, plus untracked but not ignored) so build
output and vendored folders the repository ignores are never searched; outside a git
checkout we fall back to walking the tree.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from director_tui.engine import git
from director_tui.engine.errors import UsageError

GUIDANCE_NAMES = ("AGENTS.md", "CLAUDE.md")
# A guidance file larger than this is cut: it goes into every prompt of the role.
MAX_CHARS_PER_FILE = 12_000
_SKIP_DIRS = {".git", ".director", "node_modules", ".venv", "venv", "__pycache__"}


@dataclass(frozen=True)
class GuidanceFile:
    path: str  # repo-relative, POSIX
    scope: str  # folder it governs, "" for the whole repository
    text: str


def _listed_files(root: Path) -> list[str]:
    # Through git.py's runner: in a worktree an agent worked in, git must name the git
    # directory itself and run nothing the agent planted (fsmonitor, hooks).
    try:
        proc = git.git(
            ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], root, check=False
        )
    except UsageError:  # no git
        proc = None
    if proc is not None and proc.returncode == 0:
        return [p for p in proc.stdout.split("\0") if p]
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
        rel = Path(folder).relative_to(root).as_posix()
        found.extend(name if rel == "." else f"{rel}/{name}" for name in files)
    return found


def find_guidance(root: Path) -> list[GuidanceFile]:
    """Every guidance file under ``root``, shallowest first (root before nested)."""
    result: list[GuidanceFile] = []
    for rel in _listed_files(root):
        name = posixpath.basename(rel)
        top = rel.split("/", 1)[0]
        if name not in GUIDANCE_NAMES or top in _SKIP_DIRS:
            continue
        path = root / rel
        if not path.is_file():
            continue  # deleted in the work tree but still in the index
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if len(text) > MAX_CHARS_PER_FILE:
            text = text[:MAX_CHARS_PER_FILE] + "\n[... cut: the file is longer]\n"
        scope = posixpath.dirname(rel)
        result.append(GuidanceFile(path=rel, scope=scope, text=text))
    result.sort(key=lambda g: (g.scope.count("/") + (1 if g.scope else 0), g.path))
    return result


def applies_to(guidance: GuidanceFile, paths: list[str]) -> bool:
    """Root guidance always applies; nested guidance when a path lies under its folder."""
    if not guidance.scope:
        return True
    prefix = guidance.scope + "/"
    return any(posixpath.normpath(p).startswith(prefix) for p in paths)


def guidance_for(root: Path, paths: list[str]) -> list[GuidanceFile]:
    return [g for g in find_guidance(root) if applies_to(g, paths)]


def guidance_prompt(root: Path, paths: list[str]) -> str:
    """A prompt section with the applicable guidance, or "" when the repo has none."""
    files = guidance_for(root, paths)
    if not files:
        return ""
    parts = [
        "## Repository guidance",
        "The repository's own instructions for contributors. Follow them; a nested file "
        "applies to the files under its folder and takes precedence there.",
    ]
    for item in files:
        where = f"applies to {item.scope}/" if item.scope else "applies to the whole repository"
        parts.append(f"### {item.path} ({where})\n\n{item.text.strip()}")
    return "\n\n".join(parts) + "\n"
