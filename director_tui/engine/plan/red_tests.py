"""Red tests and their freeze: run a node's tests before any implementation (red for the
right reason), commit and hash them, and tell whether they are still frozen. Used by the
tests stage and by Gate 2's edits."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from director_tui.engine import dag, git
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import GitError
from director_tui.engine.events import GateResult, TestOutput
from director_tui.engine.gates import committed_test_hashes
from director_tui.engine.models import Node
from director_tui.engine.proc import run_command
from director_tui.engine.redcheck import RedVerdict, classify_red


def tests_frozen(worktree: Path, node: Node) -> bool:
    """The node's tests are committed as regular files whose blobs hash to the recorded
    hashes, and unchanged in the worktree since (as git sees it: an eol conversion on
    checkout is no change, a person's edit is)."""
    if not node.tests or set(node.test_hashes) != set(node.tests):
        return False
    try:
        if committed_test_hashes(worktree, "HEAD", node.tests) != node.test_hashes:
            return False
    except GitError:
        return False
    pathspecs = [f":(literal){path}" for path in node.tests]
    status = ["status", "--porcelain=v1", "-z", "--untracked-files=no", "--", *pathspecs]
    return git.git(status, worktree).stdout == ""


def is_junk(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in patterns) or "/__pycache__/" in (
        "/" + path
    )


def revert_outside(worktree: Path, keep: set[str]) -> list[str]:
    """Undo every change in the job worktree to a path not in ``keep``; returns them
    (as shown to people: see :func:`git.shown`)."""
    reverted: list[str] = []
    done: set[str] = set()
    for change in git.changes(worktree, "HEAD"):
        for path in change.raw_paths:
            norm = dag.normalise_path(path)
            if norm in keep or path in done:
                continue
            done.add(path)
            if git.file_at(worktree, "HEAD", path) is not None:
                git.git(["checkout", "-q", "HEAD", "--", path], worktree)
            else:
                target = worktree / path
                if target.is_symlink() or target.is_file():
                    target.unlink()
            reverted.append(git.shown(path))
    return reverted


def _commit_tests(worktree: Path, paths: list[str], message: str) -> None:
    _refuse_ignored(worktree, paths)
    git.git(["add", "-A", "--", *paths], worktree)
    if git.git(["diff", "--cached", "--quiet"], worktree, check=False).returncode != 0:
        git.git(["commit", "-q", "--no-verify", "-m", message], worktree)


def _refuse_ignored(worktree: Path, paths: list[str]) -> None:
    """A test file the repository's ignore rules match (``*.js`` where JavaScript is build
    output) can never be committed, frozen or merged: say which rule, instead of git's
    "Use -f if you really want to add them"."""
    found = git.git(["check-ignore", "-v", "--", *paths], worktree, check=False).stdout
    rules = [line.split("\t", 1) for line in found.splitlines() if "\t" in line]
    if rules:
        named = ", ".join(f"{path} ({rule.rstrip(':')})" for rule, path in rules)
        raise GitError(
            f"the tests {named} are ignored by the repository's ignore rules: a commit "
            "leaves them out, so they can be neither frozen nor merged — un-ignore them (a "
            "`!` line in .gitignore, e.g. `!test/**`), commit that, and plan again with "
            '`director plan --force "<task>"` (the job branch was cut before your fix)'
        )


async def red_check(
    ctx: EngineContext, node: Node, worktree: Path, attempt: int
) -> tuple[RedVerdict, str]:
    def on_line(line: str) -> None:
        ctx.bus.emit(TestOutput(node_id=node.id, line=line))

    result = await run_command(
        node.test_cmd,
        worktree,
        timeout=ctx.config.limits.gate_timeout_secs,
        on_line=on_line,
        sandbox=ctx.sandbox_spec(worktree),  # the tests are the test author's code
    )
    verdict = classify_red(node.test_cmd, result)
    ctx.bus.emit(
        GateResult(
            node_id=node.id,
            attempt=attempt,
            passed=verdict.ok,
            check="red",
            message=verdict.reason,
            output_tail=result.tail(30),
        )
    )
    return verdict, result.output


def freeze(worktree: Path, node: Node, output: str, message: str) -> None:
    _commit_tests(worktree, node.tests, message)
    # The committed blobs, what the gates compare and what merges: the worktree copy can
    # differ from them (an eol rule, a filter), either way.
    node.test_hashes = committed_test_hashes(worktree, "HEAD", node.tests)
    node.red_output = "\n".join(output.strip().splitlines()[-60:])
