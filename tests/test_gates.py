"""Deterministic gates on real git worktrees: hashes, allowlist, ignore globs, symlinks,
tests + flake runs, and the integration gate's attribution."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from director_tui.engine import gates
from director_tui.engine.models import Node
from tests.conftest import make_repo, run_git

PY = sys.executable


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {
            "src/a.py": "A = 0\n",
            "tests/check_a.py": "from src.a import A\nassert A == 1\n",
            "src/__init__.py": "",
        },
    )


def _node(repo: Path, **kw: object) -> Node:
    test = "tests/check_a.py"
    digest = hashlib.sha256((repo / test).read_bytes()).hexdigest()
    fields: dict[str, object] = {
        "id": "a",
        "files": ["src/a.py", "docs/"],
        "tests": [test],
        "test_cmd": f"{PY} -c 'import sys; sys.path.insert(0, \".\"); import tests.check_a'",
        "test_hashes": {test: digest},
    }
    fields.update(kw)
    return Node.model_validate(fields)


async def _gate(node: Node, repo: Path, **kw: object) -> gates.GateOutcome:
    base = run_git(repo, "rev-parse", "HEAD")
    options: dict[str, object] = {
        "ignore_globs": ["**/__pycache__/**", "*.log"],
        "flake_runs": 1,
        "timeout": 30,
    }
    options.update(kw)
    return await gates.node_gate(node, repo, base, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("build.log", True),
        ("deep/dir/x.log", True),
        ("__pycache__/m.pyc", True),
        ("pkg/__pycache__/m.pyc", True),
        ("src/a.py", False),
        ("logs.py", False),
    ],
)
def test_ignore_globs(path: str, expected: bool) -> None:
    assert gates.ignored(path, ["**/__pycache__/**", "*.log"]) is expected


def test_allowlist_files_and_folders() -> None:
    assert gates.allowed("src/a.py", ["src/a.py"])
    assert gates.allowed("docs/x/y.md", ["docs/"])
    assert not gates.allowed("src/b.py", ["src/a.py", "docs/"])
    assert not gates.allowed("docsx/y.md", ["docs/"])


async def test_green_change_passes(repo: Path) -> None:
    (repo / "src/a.py").write_text("A = 1\n")
    (repo / "docs").mkdir()
    (repo / "docs/notes.md").write_text("new file under an allowed folder\n")
    (repo / "run.log").write_text("byproduct\n")
    outcome = await _gate(_node(repo), repo)
    assert outcome.passed, outcome.message
    assert sorted(outcome.changed_files) == ["docs/notes.md", "src/a.py"]
    assert outcome.test_runs == 1


async def test_red_change_fails_with_the_output(repo: Path) -> None:
    (repo / "src/a.py").write_text("A = 2\n")
    outcome = await _gate(_node(repo), repo)
    assert not outcome.passed and outcome.check == "tests"
    assert "AssertionError" in outcome.output_tail
    assert "exited with code 1" in outcome.feedback()


async def test_edited_test_fails_on_hash_before_any_test_runs(repo: Path) -> None:
    node = _node(repo)  # hashed before the edit
    (repo / "tests/check_a.py").write_text("pass\n")
    outcome = await _gate(node, repo)
    assert outcome.check == "hashes" and outcome.test_runs == 0


async def test_deleted_or_renamed_file_outside_the_allowlist(repo: Path) -> None:
    (repo / "src/a.py").write_text("A = 1\n")
    os.rename(repo / "src/__init__.py", repo / "src/init_moved.py")
    outcome = await _gate(_node(repo), repo)
    assert outcome.check == "allowlist"
    assert "src/__init__.py" in outcome.message


async def test_symlink_inside_the_worktree_is_fine_outside_is_not(repo: Path) -> None:
    (repo / "src/a.py").write_text("A = 1\n")
    (repo / "docs").mkdir()
    os.symlink("../src/a.py", repo / "docs/link.py")
    assert (await _gate(_node(repo), repo)).passed
    os.symlink("/etc/hostname", repo / "docs/escape")
    outcome = await _gate(_node(repo), repo)
    assert outcome.check == "symlink" and "/etc/hostname" in outcome.message


async def test_flake_runs_catch_an_unstable_test(repo: Path, tmp_path: Path) -> None:
    counter = tmp_path / "n"
    script = (
        f"import pathlib; p = pathlib.Path({json.dumps(str(counter))}); "
        "n = int(p.read_text()) + 1 if p.exists() else 1; p.write_text(str(n)); "
        "raise SystemExit(1 if n == 3 else 0)"
    )
    node = _node(repo, test_cmd=f"{PY} -c '{script}'")
    outcome = await _gate(node, repo, flake_runs=3)
    assert outcome.check == "flake" and outcome.flaky and outcome.test_runs == 3
    outcome = await _gate(node, repo, flake_runs=3)
    assert outcome.passed and outcome.test_runs == 3


async def test_commit_attempt_leaves_byproducts_out_of_the_commit(repo: Path) -> None:
    (repo / "src/a.py").write_text("A = 1\n")
    (repo / "debug.log").write_text("noise\n")
    outcome = await _gate(_node(repo), repo, commit_message="node a")
    assert outcome.passed
    committed = run_git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert committed == ["src/a.py"]


async def test_integration_gate_names_command_exit_code_and_suspect(repo: Path) -> None:
    commands = [("lint", "true"), ("test", "echo 'FAILED in src/a.py line 3' && exit 3")]
    merged = [("x", ["lib/x.py"]), ("a", ["src/a.py"]), ("z", ["lib/z.py"])]
    result = await gates.integration_gate(commands, repo, merged, timeout=30)
    assert not result.passed and result.name == "test" and result.exit_code == 3
    assert result.suspects == ["a"]
    report = result.report()
    assert "'test'" in report and "exit code 3" in report and "a" in report
    assert result.ran == ["lint", "test"]


async def test_integration_without_a_mention_blames_the_last_merge(repo: Path) -> None:
    result = await gates.integration_gate(
        [("t", "exit 1")], repo, [("x", ["lib/x.py"]), ("y", ["lib/y.py"])], timeout=30
    )
    assert result.suspects == ["y"]
    ok = await gates.integration_gate([("t", "true")], repo, [], timeout=30)
    assert ok.passed


def _node_worktree(repo: Path, tmp: Path) -> tuple[Path, str]:
    """A node worktree on its own branch, as the run engine makes one."""
    worktree = tmp / "wt-a"
    run_git(repo, "worktree", "add", "-q", "-b", "job--a", str(worktree), "HEAD")
    return worktree, run_git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize(
    "move_head",
    [
        ["checkout", "-q", "-b", "elsewhere"],
        ["checkout", "-q", "--detach"],
    ],
)
async def test_an_agent_moving_head_off_the_node_branch_still_merges_its_work(
    repo: Path, tmp_path: Path, move_head: list[str]
) -> None:
    worktree, base = _node_worktree(repo, tmp_path)
    run_git(worktree, *move_head)
    (worktree / "src/a.py").write_text("A = 1\n")
    run_git(worktree, "commit", "-q", "-am", "the agent's own commit")
    outcome = await gates.node_gate(
        _node(repo),
        worktree,
        base,
        ignore_globs=[],
        flake_runs=1,
        timeout=30,
        commit_message="node a",
        branch="job--a",
    )
    assert outcome.passed, outcome.message
    # The branch the merge queue merges by name holds what was judged.
    assert run_git(worktree, "symbolic-ref", "HEAD") == "refs/heads/job--a"
    assert run_git(repo, "show", "job--a:src/a.py") == "A = 1"


async def test_the_gate_judges_the_commit_it_made_not_where_the_branch_moved(
    repo: Path, tmp_path: Path
) -> None:
    """The agent's code, run as the tests (no sandbox), points the node branch at a
    commit of its own after director committed the attempt. Every test run (the flake
    re-run checks the commit out again) and the verdict are about director's commit."""
    worktree, base = _node_worktree(repo, tmp_path)
    (worktree / "src/a.py").write_text("A = 1\n")
    planted, index = tmp_path / "planted", tmp_path / "evil-index"
    script = tmp_path / "plant.sh"
    script.write_text(
        "set -e\n"
        f"if [ ! -f {planted} ]; then\n"
        "  B=$(printf 'A = 1\\nEVIL = 1\\n' | git hash-object -w --stdin)\n"
        f"  GIT_INDEX_FILE={index} git read-tree job--a\n"
        f"  GIT_INDEX_FILE={index} git update-index --cacheinfo 100644,$B,src/a.py\n"
        f"  T=$(GIT_INDEX_FILE={index} git write-tree)\n"
        "  C=$(git commit-tree $T -p job--a -m 'looks like node a')\n"
        "  git update-ref refs/heads/job--a $C\n"
        f"  echo $C > {planted}\n"
        "fi\n"
        f'{PY} -c \'import sys; sys.path.insert(0, "."); import src.a; '
        'assert src.a.A == 1 and not hasattr(src.a, "EVIL")\'\n'
    )
    outcome = await gates.node_gate(
        _node(repo, test_cmd=f"sh {script}"),
        worktree,
        base,
        ignore_globs=[],
        flake_runs=2,
        timeout=30,
        commit_message="node a",
        branch="job--a",
    )
    assert outcome.passed and outcome.test_runs == 2, outcome
    evil = planted.read_text().strip()
    assert run_git(repo, "rev-parse", "job--a") == evil  # the plant really moved it
    assert outcome.commit == run_git(repo, "rev-parse", f"{evil}^") != evil
    assert run_git(repo, "log", "-1", "--format=%P %s", outcome.commit) == f"{base} node a"
    assert run_git(repo, "show", f"{outcome.commit}:src/a.py") == "A = 1"


async def test_an_attempt_that_resets_below_its_base_is_rejected(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "src/b.py").write_text("B = 0\n")
    run_git(repo, "add", "src/b.py")
    run_git(repo, "commit", "-q", "-m", "base moves on")
    worktree, base = _node_worktree(repo, tmp_path)
    # Same files as the base plus the fix, but on top of the commit before the base.
    run_git(worktree, "reset", "-q", "--soft", "HEAD~1")
    (worktree / "src/a.py").write_text("A = 1\n")
    outcome = await gates.node_gate(
        _node(repo),
        worktree,
        base,
        ignore_globs=[],
        flake_runs=1,
        timeout=30,
        commit_message="node a",
        branch="job--a",
    )
    assert not outcome.passed and outcome.check == "history", outcome
    assert base[:10] in outcome.message


async def test_tests_checked_out_with_crlf_still_match_their_frozen_hash(
    repo: Path, tmp_path: Path
) -> None:
    """core.autocrlf=true checks the (LF, hashed) test out with CRLF: same test, other
    bytes. It must not reject every attempt; a real edit must still be caught."""
    node = _node(repo)  # hashes taken from the committed LF bytes
    run_git(repo, "config", "core.autocrlf", "true")
    worktree, base = _node_worktree(repo, tmp_path)
    test = worktree / "tests/check_a.py"
    assert b"\r\n" in test.read_bytes()  # git really converted it
    (worktree / "src/a.py").write_text("A = 1\n")
    options: dict[str, object] = {"ignore_globs": [], "flake_runs": 1, "timeout": 30}
    outcome = await gates.node_gate(node, worktree, base, **options)  # type: ignore[arg-type]
    assert outcome.passed, outcome.message
    unhashed = node.model_copy(update={"test_hashes": {}})
    assert gates.check_hashes(unhashed, worktree, base) is None
    test.write_bytes(test.read_bytes() + b"assert True\r\n")
    outcome = await gates.node_gate(node, worktree, base, **options)  # type: ignore[arg-type]
    assert outcome.check == "hashes", outcome
    assert gates.check_hashes(unhashed, worktree, base) is not None
