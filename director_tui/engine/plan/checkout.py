"""The user's checkout: what planning refuses to build on (read-only, before any write)."""

from __future__ import annotations

from pathlib import Path

from director_tui.engine import git
from director_tui.engine.errors import UsageError
from director_tui.engine.store import RUNTIME_IGNORES


def check_checkout(repo: Path) -> tuple[str, str]:
    """The checked-out branch and commit; refuses what planning must not build on."""
    if not git.has_commits(repo):
        raise UsageError(f"{repo} has no commits yet", hint="make a first commit, then plan again")
    in_progress = git.operation_in_progress(repo)
    if in_progress is not None:
        what, finish = in_progress
        raise UsageError(
            f"{what} is in progress in {repo}: director plans from a settled branch",
            hint=f"finish it first ({finish}), then plan again",
        )
    if git.branch_exists(repo, "director"):
        # git cannot hold refs/heads/director and refs/heads/director/job-… at once
        raise UsageError(
            "a branch named 'director' exists: director's job branches are director/job-<id>, "
            "and git cannot have both",
            hint="rename it (git branch -m director <new-name>), then plan again",
        )
    tracked = _tracked_runtime_files(repo)
    if tracked:
        # director rewrites these: in the user's checkout that would be editing their files
        raise UsageError(
            "director's runtime files are committed in this repository ("
            + ", ".join(tracked[:5])
            + (", …" if len(tracked) > 5 else "")
            + "): director rewrites them, which would change your tracked files",
            hint="untrack them (git rm -r --cached <those files>, commit; only "
            ".director/config.toml and .director/profiles/ belong in git), then plan again",
        )
    branch = git.current_branch(repo)
    if branch is None:
        raise UsageError(
            "HEAD is detached: director plans from a branch",
            hint="check out a branch (`git switch -c <name>`) and plan again",
        )
    dirty = [f for f in git.dirty_files(repo) if not (f == ".gitignore" and _only_ours(repo))]
    if dirty:
        shown = "\n".join(f"  {git.shown(p)}" for p in dirty[:20])
        more = f"\n  … and {len(dirty) - 20} more" if len(dirty) > 20 else ""
        raise UsageError(
            f"the working tree has uncommitted changes:\n{shown}{more}",
            hint="commit or stash them first (an untracked file you keep out of git: add it "
            "to .gitignore); director never touches your uncommitted work",
        )
    return branch, git.rev(repo)


def _tracked_runtime_files(repo: Path) -> list[str]:
    """Files under .director/ that git tracks, except the config and profiles (which are
    the user's to commit): a director-cli user may have committed plan.json or spec.md."""
    listed = git.git(["ls-files", "-z", "--", ".director"], repo, check=False).stdout
    return [
        git.shown(raw)
        for raw in listed.split("\0")
        if raw and raw != ".director/config.toml" and not raw.startswith(".director/profiles/")
    ]


def _only_ours(repo: Path) -> bool:
    """True when the uncommitted change to .gitignore is only the lines `director init`
    adds: planning need not wait for that commit (.director/ is kept out of git through
    .git/info/exclude as well), and nothing the user wrote is left behind."""
    ours = {"# director runtime state", *RUNTIME_IGNORES}
    if git.git(["cat-file", "-e", "HEAD:.gitignore"], repo, check=False).returncode != 0:
        # A new, untracked .gitignore: all of it must be ours.
        lines = (repo / ".gitignore").read_text(encoding="utf-8", errors="replace").splitlines()
        return all(line.strip() in ours | {""} for line in lines)
    diff = git.git(["diff", "HEAD", "--no-color", "-U0", "--", ".gitignore"], repo, check=False)
    if diff.returncode != 0:
        return False
    changed = [
        line
        for line in diff.stdout.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return bool(changed) and all(
        line.startswith("+") and line[1:].strip() in ours | {""} for line in changed
    )
