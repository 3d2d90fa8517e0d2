"""Frozen tests are hashed from the committed blobs, at plan time and at gate time: what is
frozen and judged is exactly what merges, whatever the worktree copy looks like. Each
case makes the worktree bytes and the blob differ (an eol rule, a ``.gitattributes`` the
agent wrote, a symlink, a mode), on real git."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from director_tui.engine import gates, git
from director_tui.engine.errors import GitError
from director_tui.engine.models import Node
from director_tui.engine.plan import red_tests
from director_tui.engine.plan.red_tests import freeze
from tests.conftest import make_repo, run_git

PY = sys.executable
TEST = "src/check_a.py"
# CRLF line endings, as an editor on Windows writes them.
TEST_CRLF = b"from src.a import A\r\nassert A == 1\r\n"
RUN_TEST = f"{PY} -c 'import sys; sys.path.insert(0, \".\"); import src.check_a'"


def _node(**kw: object) -> Node:
    fields: dict[str, object] = {
        "id": "a",
        "files": ["src/"],  # a folder: the agent may write any file in it, .gitattributes too
        "tests": [TEST],
        "test_cmd": RUN_TEST,
    }
    fields.update(kw)
    return Node.model_validate(fields)


def _repo(root: Path, files: dict[str, str]) -> Path:
    return make_repo(root / "repo", {"src/__init__.py": "", "src/a.py": "A = 0\n", **files})


def _frozen(repo: Path, node: Node, test_bytes: bytes) -> str:
    """The test author's file written as ``test_bytes``, committed and hashed by the
    plan's own freeze; returns the commit (the job branch head the nodes start from)."""
    (repo / TEST).write_bytes(test_bytes)
    freeze(repo, node, "red", "director: tests for a")
    return run_git(repo, "rev-parse", "HEAD")


def _node_worktree(repo: Path, tmp: Path, base: str) -> Path:
    worktree = tmp / "wt-a"
    run_git(repo, "worktree", "add", "-q", "-b", "job--a", str(worktree), base)
    return worktree


async def _gate(node: Node, worktree: Path, base: str) -> gates.GateOutcome:
    return await gates.node_gate(
        node,
        worktree,
        base,
        ignore_globs=[],
        flake_runs=2,
        timeout=30,
        commit_message="node a",
        branch="job--a",
    )


def _blob_hash(repo: Path, rev: str) -> str:
    show = ["git", "cat-file", "blob", f"{rev}:{TEST}"]
    data = subprocess.run(show, cwd=repo, capture_output=True, check=True).stdout
    return hashlib.sha256(data).hexdigest()


async def test_a_crlf_test_in_a_repo_that_normalises_line_endings_freezes_its_blob(
    tmp_path: Path,
) -> None:
    """The repository normalises text (``* text=auto``): the author's CRLF file is
    committed with LF, and every node worktree checks the LF blob out. The old freeze
    hashed the author's CRLF copy, so every attempt of the node was rejected as having
    modified its test, and ``plan --continue`` never saw the tests as frozen."""
    repo = _repo(tmp_path, {".gitattributes": "* text=auto\n"})
    node = _node()
    base = _frozen(repo, node, TEST_CRLF)
    assert (repo / TEST).read_bytes() == TEST_CRLF  # the worktree copy keeps CRLF
    assert node.test_hashes == {TEST: _blob_hash(repo, base)}  # the LF blob's hash
    assert red_tests.tests_frozen(repo, node)
    (repo / TEST).write_bytes(TEST_CRLF + b"assert True\r\n")  # a person's edit
    assert not red_tests.tests_frozen(repo, node)
    (repo / TEST).write_bytes(TEST_CRLF)

    worktree = _node_worktree(repo, tmp_path, base)
    (worktree / "src/a.py").write_text("A = 1\n")
    outcome = await _gate(node, worktree, base)
    assert outcome.passed and outcome.test_runs == 2, outcome


async def test_an_agents_gitattributes_cannot_merge_a_test_blob_other_than_the_frozen_one(
    tmp_path: Path,
) -> None:
    """The frozen test's blob has CRLF endings. The agent writes ``src/.gitattributes``
    (its allowlist is the folder) normalising it, and touches the test so git re-reads
    it: the worktree copy still has the frozen bytes, so the old check, which hashed
    the worktree copy, passed — and the LF blob ``git add`` made merged in place of the
    frozen one."""
    repo = _repo(tmp_path, {})
    node = _node()
    base = _frozen(repo, node, TEST_CRLF)
    frozen_blob = run_git(repo, "rev-parse", f"{base}:{TEST}")
    worktree = _node_worktree(repo, tmp_path, base)
    (worktree / "src/a.py").write_text("A = 1\n")
    (worktree / "src/.gitattributes").write_text("check_a.py text eol=crlf\n")
    test = worktree / TEST
    os.utime(test, (1, 1))  # only the stat data changes: git reads the file again
    assert test.read_bytes() == TEST_CRLF
    outcome = await _gate(node, worktree, base)
    assert not outcome.passed and outcome.check == "hashes", outcome
    assert f"test file {TEST} was modified" in outcome.message
    assert outcome.test_runs == 0
    # It really would have merged another blob: the commit director made holds one.
    attempt = run_git(repo, "rev-parse", "job--a")
    assert run_git(repo, "rev-parse", f"{attempt}:{TEST}") != frozen_blob


async def test_a_test_made_executable_by_the_attempt_is_not_the_frozen_test(
    tmp_path: Path,
) -> None:
    repo = _repo(tmp_path, {})
    node = _node()
    base = _frozen(repo, node, b"from src.a import A\nassert A == 1\n")
    worktree = _node_worktree(repo, tmp_path, base)
    (worktree / "src/a.py").write_text("A = 1\n")
    (worktree / TEST).chmod(0o755)
    outcome = await _gate(node, worktree, base)
    assert not outcome.passed and outcome.check == "hashes", outcome
    assert run_git(repo, "ls-tree", "job--a", TEST).startswith("100755 ")  # what would merge


async def test_an_executable_frozen_test_stays_frozen_with_its_mode(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {})
    node = _node(test_cmd="./src/check_a.sh")
    node.tests = ["src/check_a.sh"]
    script = repo / "src/check_a.sh"
    check = "import sys; sys.path.insert(0, '.'); from src.a import A; assert A == 1"
    script.write_text(f'#!/bin/sh\nexec {PY} -c "{check}"\n')
    script.chmod(0o755)
    freeze(repo, node, "red", "director: tests for a")
    base = run_git(repo, "rev-parse", "HEAD")
    assert run_git(repo, "ls-tree", base, "src/check_a.sh").startswith("100755 ")
    assert red_tests.tests_frozen(repo, node)
    worktree = _node_worktree(repo, tmp_path, base)
    (worktree / "src/a.py").write_text("A = 1\n")
    outcome = await _gate(node, worktree, base)
    assert outcome.passed, outcome


def test_a_symlink_test_is_refused_at_freeze_time_with_its_reason(tmp_path: Path) -> None:
    """A symlink's blob is its target's name: freezing it would freeze nothing the agent
    cannot change (the old freeze hashed the target's bytes, and then the gate rejected
    every attempt for the link)."""
    repo = _repo(tmp_path, {"src/real_check.py": "from src.a import A\nassert A == 1\n"})
    node = _node()
    (repo / TEST).symlink_to("real_check.py")
    with pytest.raises(GitError, match="committed as a symlink"):
        freeze(repo, node, "red", "director: tests for a")
    assert not red_tests.tests_frozen(repo, node)


async def test_a_test_run_that_rewrites_a_frozen_test_fails_the_gate(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {})
    node = _node(test_cmd=f"{RUN_TEST} && printf 'assert True\\n' >> {TEST}")
    base = _frozen(repo, node, b"from src.a import A\nassert A == 1\n")
    worktree = _node_worktree(repo, tmp_path, base)
    (worktree / "src/a.py").write_text("A = 1\n")
    outcome = await _gate(node, worktree, base)
    assert not outcome.passed and outcome.check == "hashes", outcome
    assert "changed while the tests ran" in outcome.message


def test_the_tests_run_on_gits_checkout_of_the_judged_blob(tmp_path: Path) -> None:
    """A worktree copy git calls clean can still differ from the blob's checkout (here
    ``ident``: git collapses any ``$Id: … $`` before comparing). Before a test run the
    copy is written afresh from the commit; a copy that is the blob stays untouched."""
    repo = _repo(tmp_path, {".gitattributes": "*.py ident\n"})
    node = _node()
    base = _frozen(repo, node, b"# $Id$\nfrom src.a import A\nassert A == 1\n")
    test = repo / TEST
    test.unlink()
    run_git(repo, "checkout", "-q", "--", TEST)
    checked_out = test.read_bytes()
    assert checked_out.startswith(b"# $Id: ")  # git's own checkout expands it
    test.write_bytes(b"# $Id: " + b"0" * 40 + b" $\nfrom src.a import A\nassert A == 1\n")
    assert run_git(repo, "status", "--porcelain", "--", TEST) == ""  # git calls it clean
    _, contents = gates.check_committed_tests(node, repo, base, base)
    written = gates.checkout_tests(repo, base, contents)
    assert test.read_bytes() == checked_out
    assert written == {TEST: hashlib.sha256(checked_out).hexdigest()}
    plain = tmp_path / "plain"
    run_git(repo, "worktree", "add", "-q", "--detach", str(plain), base)
    (plain / TEST).write_bytes(contents[TEST])  # the blob itself (as with no ident rule)
    before = (plain / TEST).stat().st_mtime_ns
    gates.checkout_tests(plain, base, contents)
    assert (plain / TEST).stat().st_mtime_ns == before


def test_blobs_reads_many_exact_blobs_in_one_batch(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {})
    binary = bytes(range(256)) + b"\n\n\r\n"
    (repo / "data.bin").write_bytes(binary)
    (repo / "empty").write_bytes(b"")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "data")
    names = [
        "HEAD:data.bin",
        "HEAD:empty",
        "HEAD:nothing",
        "HEAD:src",
        "HEAD:x blob",  # missing, and its answer must not read as a header
        "HEAD:src/a.py",
    ]
    found = git.blobs(repo, names)
    assert found["HEAD:data.bin"] == (run_git(repo, "rev-parse", "HEAD:data.bin"), binary)
    assert found["HEAD:empty"] is not None and found["HEAD:empty"][1] == b""
    assert found["HEAD:nothing"] is None and found["HEAD:src"] is None  # missing, a tree
    assert found["HEAD:x blob"] is None
    assert found["HEAD:src/a.py"] is not None and found["HEAD:src/a.py"][1] == b"A = 0\n"
