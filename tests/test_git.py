"""Git layer on real repositories: changes of every kind, merges, the user's checkout."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from gitrepo import make_repo, run_git

from director_tui.engine import git
from director_tui.engine.errors import GitError
from director_tui.engine.jobs import ensure_job_worktree, job_branch, job_worktree
from director_tui.engine.run.merge_queue import rebase_judged
from director_tui.engine.store import Store


def test_changes_sees_every_kind_of_change(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "r",
        {
            "keep.py": "x = 1\n",
            "gone.py": "y = 2\n",
            "old_name.py": "z = 3\n" * 20,
            "run.sh": "echo\n",
        },
    )
    (repo / "keep.py").write_text("x = 2\n")  # modified, unstaged
    (repo / "gone.py").unlink()  # deleted
    os.rename(repo / "old_name.py", repo / "new_name.py")  # renamed, untracked target
    (repo / "run.sh").chmod(0o755)  # mode change
    (repo / "pkg").mkdir()
    (repo / "pkg" / "fresh.py").write_text("new\n")  # untracked in a new folder
    os.symlink("/etc/hostname", repo / "escape")  # symlink out of the tree
    os.symlink("keep.py", repo / "inside")  # symlink inside the tree
    changes = {c.path: c for c in git.changes(repo, "HEAD")}
    assert changes["keep.py"].status == "M"
    assert changes["gone.py"].status == "D"
    assert changes["new_name.py"].status == "R" and changes["new_name.py"].old_path == "old_name.py"
    assert changes["run.sh"].new_mode == "100755" and changes["run.sh"].old_mode == "100644"
    assert changes["pkg/fresh.py"].status == "A"
    assert (
        changes["escape"].is_symlink
        and git.symlink_escapes(repo, changes["escape"]) == "/etc/hostname"
    )
    assert git.symlink_escapes(repo, changes["inside"]) is None
    # computing changes never touched the index
    assert run_git(repo, "diff", "--cached", "--name-only") == ""


def test_committed_changes_count_against_the_base(git_repo: Path) -> None:
    base = git.rev(git_repo)
    (git_repo / "a.py").write_text("a\n")
    run_git(git_repo, "add", "a.py")
    run_git(git_repo, "commit", "-qm", "a")
    (git_repo / "b.py").write_text("b\n")
    assert sorted(c.path for c in git.changes(git_repo, base)) == ["a.py", "b.py"]


def test_job_worktree_never_touches_the_users_checkout(git_repo: Path) -> None:
    (git_repo / "README.md").write_text("user edit in progress\n")
    (git_repo / "notes.txt").write_text("untracked user file\n")
    run_git(git_repo, "add", "notes.txt")  # staged by the user
    before_status = run_git(git_repo, "status", "--porcelain")
    store = Store(git_repo)
    branch = job_branch("t1")
    git.create_branch(git_repo, branch, git.rev(git_repo))
    wt = ensure_job_worktree(store, branch)
    assert wt == job_worktree(store)
    (wt / "feature.py").write_text("print('hi')\n")
    git.commit_all(wt, "feature")
    assert ensure_job_worktree(store, branch) == wt  # idempotent
    assert git.current_branch(git_repo) == "main"
    assert run_git(git_repo, "status", "--porcelain") == before_status
    assert (git_repo / "README.md").read_text() == "user edit in progress\n"
    assert sorted(git.dirty_files(git_repo)) == ["README.md", "notes.txt"]
    assert git.file_at(git_repo, branch, "feature.py") == b"print('hi')\n"


def test_merge_conflict_is_reported_and_aborted_and_rebase_fixes_order(git_repo: Path) -> None:
    store = Store(git_repo)
    base = git.rev(git_repo)
    git.create_branch(git_repo, "job", base)
    job = ensure_job_worktree(store, "job")
    node_a = store.worktrees / "a"
    node_b = store.worktrees / "b"
    git.add_worktree(git_repo, node_a, "node-a", base)
    git.add_worktree(git_repo, node_b, "node-b", base)
    (node_a / "README.md").write_text("# from a\n")
    git.commit_all(node_a, "a")
    (node_b / "README.md").write_text("# from b\n")
    git.commit_all(node_b, "b")
    assert git.merge_no_ff(job, "node-a", "merge a")
    head = git.rev(job)
    assert not git.merge_no_ff(job, "node-b", "merge b")
    assert git.rev(job) == head and run_git(job, "status", "--porcelain") == ""
    # a change that does not conflict rebases cleanly onto the moved job head
    git.reset_clean(node_b, base)
    (node_b / "other.py").write_text("ok\n")
    judged = git.commit_all(node_b, "b2")
    assert rebase_judged(node_b, "node-b", judged, "job")
    assert git.merge_no_ff(job, "node-b", "merge b2")
    # What is rebased is the judged commit; a branch moved meanwhile is never overwritten.
    git.reset_clean(node_b, base)
    (node_b / "third.py").write_text("ok\n")
    judged = git.commit_all(node_b, "b3")
    run_git(git_repo, "update-ref", "refs/heads/node-b", base)
    assert not rebase_judged(node_b, "node-b", judged, "job")
    assert git.rev(git_repo, "node-b") == base
    assert git.current_branch(node_b) == "node-b"


def test_reset_clean_leaves_nothing_behind(git_repo: Path) -> None:
    (git_repo / "junk.py").write_text("x\n")
    (git_repo / "README.md").write_text("changed\n")
    git.reset_clean(git_repo)
    assert run_git(git_repo, "status", "--porcelain", "--ignored") == ""


def test_commit_all_can_exclude_byproducts(git_repo: Path) -> None:
    (git_repo / "mod.py").write_text("x\n")
    (git_repo / "__pycache__").mkdir()
    (git_repo / "__pycache__" / "mod.pyc").write_bytes(b"\0")
    head = git.commit_all(git_repo, "work", exclude=["__pycache__"])
    files = run_git(git_repo, "show", "--name-only", "--format=", head).split()
    assert files == ["mod.py"]


def test_sha256_and_gitignore(git_repo: Path) -> None:
    (git_repo / "f").write_bytes(b"abc")
    assert git.sha256_file(git_repo / "f") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert git.ensure_gitignore(git_repo, [".director/*"])
    assert not git.ensure_gitignore(git_repo, [".director/*"])
    assert ".director/*" in (git_repo / ".gitignore").read_text()


def test_parallel_worktree_adds_and_lists_do_not_trip_over_each_other(git_repo: Path) -> None:
    """Parallel nodes start and finish at once. Unserialised, this stress fails within a
    few rounds with "failed to read .git/worktrees/<name>/commondir"."""
    import threading

    base = git.rev(git_repo)
    errors: list[BaseException] = []
    stop = threading.Event()

    def churn(i: int) -> None:
        path = git_repo / ".director" / "worktrees" / f"n{i}"
        for _ in range(5):
            try:
                git.add_worktree(git_repo, path, f"node-{i}", base)
                git.git(["worktree", "remove", "--force", str(path)], git_repo)
            except BaseException as exc:
                errors.append(exc)

    def lister() -> None:
        while not stop.is_set():
            try:
                git.worktree_branches(git_repo)
            except BaseException as exc:
                errors.append(exc)

    listers = [threading.Thread(target=lister) for _ in range(2)]
    workers = [threading.Thread(target=churn, args=(i,)) for i in range(12)]
    for t in [*listers, *workers]:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    for t in listers:
        t.join()
    assert errors == []


def test_user_hooks_and_signing_config_do_not_break_director_commits(git_repo: Path) -> None:
    hook = git_repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'hook says no' >&2\nexit 1\n")
    hook.chmod(0o755)
    merge_hook = git_repo / ".git" / "hooks" / "pre-merge-commit"
    merge_hook.write_text("#!/bin/sh\nexit 1\n")
    merge_hook.chmod(0o755)
    run_git(git_repo, "config", "commit.gpgsign", "true")
    run_git(git_repo, "config", "user.signingkey", "DEADBEEF")
    base = git.rev(git_repo)
    store = Store(git_repo)
    git.create_branch(git_repo, "job", base)
    job = ensure_job_worktree(store, "job")
    node = store.worktrees / "a"
    git.add_worktree(git_repo, node, "node-a", base)
    (node / "a.py").write_text("a = 1\n")
    git.commit_all(node, "a")
    assert git.merge_no_ff(job, "node-a", "merge a")
    assert git.file_at(git_repo, "job", "a.py") == b"a = 1\n"


def test_remove_worktree_refuses_a_main_working_tree(git_repo: Path) -> None:
    (git_repo / "keep.txt").write_text("mine\n")
    with pytest.raises(GitError):
        git.remove_worktree(git_repo, git_repo)
    assert (git_repo / "keep.txt").read_text() == "mine\n"


def test_a_deleted_job_worktree_is_recreated(git_repo: Path) -> None:
    import shutil

    store = Store(git_repo)
    git.create_branch(git_repo, "job", git.rev(git_repo))
    wt = ensure_job_worktree(store, "job")
    shutil.rmtree(wt)  # what a user cleaning up by hand does
    assert ensure_job_worktree(store, "job") == wt
    assert (wt / "README.md").read_text() == "# sample\n"
    assert git.current_branch(wt) == "job"


def test_worktree_intact_sees_a_broken_or_redirected_git_link(git_repo: Path) -> None:
    """Git run in a worktree whose .git link an agent broke finds another repository:
    the user's checkout when the worktree is inside it (the layout before), none when it
    is outside (today's)."""
    store = Store(git_repo)
    store.ensure()  # the worktree folder's marker: director's git finds the repo by it
    base = git.rev(git_repo)
    wt = store.worktrees / "n"
    git.add_worktree(git_repo, wt, "node-n", base)
    assert git.worktree_intact(git_repo, wt)
    link = (wt / ".git").read_text()
    (wt / ".git").unlink()  # `rm .git`
    plain = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=wt, capture_output=True)
    assert plain.returncode != 0  # outside the checkout: no repository above
    # Director's own git goes by git's records, never by the worktree's .git file.
    assert git.out(["rev-parse", "--show-toplevel"], wt) == str(wt.resolve())
    assert not git.worktree_intact(git_repo, wt)
    (wt / ".git").mkdir()  # a .git folder of its own
    assert not git.worktree_intact(git_repo, wt)
    (wt / ".git").rmdir()
    (wt / ".git").write_text(f"gitdir: {git_repo / '.git'}\n")  # points at the user's repo
    assert not git.worktree_intact(git_repo, wt)
    (wt / ".git").write_text(link)
    assert git.worktree_intact(git_repo, wt)


def test_file_at_reads_the_repository_not_a_git_dir_the_worktree_points_at(
    git_repo: Path, tmp_path: Path
) -> None:
    """The gates compare frozen tests with ``file_at``: an agent that points its worktree's
    .git file at a repository of its own (same branch name, its own README) must not choose
    what director reads."""
    store = Store(git_repo)
    store.ensure()
    wt = store.worktrees / "n"
    git.add_worktree(git_repo, wt, "node-n", git.rev(git_repo))
    decoy = tmp_path / "decoy"
    subprocess.run(["git", "init", "-q", "-b", "node-n", str(decoy)], check=True)
    (decoy / "README.md").write_text("# planted\n")
    subprocess.run(["git", "-C", str(decoy), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(decoy), "-c", "user.name=a", "-c", "user.email=a@b", "commit",
         "-qm", "decoy"],
        check=True,
    )  # fmt: skip
    (wt / ".git").write_text(f"gitdir: {decoy / '.git'}\n")
    assert git.file_at(wt, "node-n", "README.md") == b"# sample\n"


def test_revs_and_rev_and_tree_read_commits_in_one_process(git_repo: Path) -> None:
    first = git.rev(git_repo)
    (git_repo / "a.py").write_text("a\n")
    run_git(git_repo, "add", "a.py")
    run_git(git_repo, "commit", "-qm", "a")
    run_git(git_repo, "tag", "-a", "-m", "annotated", "v1")  # a tag object peels to its commit
    second = git.rev(git_repo)
    assert git.revs(git_repo, "HEAD~1", "v1", second) == [first, second, second]
    assert git.rev_and_tree(git_repo, "v1") == (
        second,
        run_git(git_repo, "rev-parse", "HEAD^{tree}"),
    )
    tree = run_git(git_repo, "rev-parse", "HEAD^{tree}")
    # A name that is no commit (missing, a tree) fails as rev() does, never a wrong oid.
    for bad in ("no-such-branch", tree):
        with pytest.raises(GitError):
            git.revs(git_repo, "HEAD", bad)
        with pytest.raises(GitError):
            git.rev_and_tree(git_repo, bad)


def test_merge_into_branch_by_ids_reads_the_branch_only_before_believing_a_conflict(
    git_repo: Path,
) -> None:
    """The merge queue's call (the expected head, the judged commit by id) reads no ref
    up front: a branch that moved still fails (never overwritten), and a conflict is
    only reported as one when the branch is where it was expected and both are commits."""

    def commit_on(start: str, text: str) -> str:
        run_git(git_repo, "checkout", "-q", "--detach", start)
        (git_repo / "README.md").write_text(text)
        run_git(git_repo, "commit", "-q", "-am", text)
        return git.rev(git_repo)

    base = git.rev(git_repo)
    ours, theirs = commit_on(base, "ours\n"), commit_on(base, "theirs\n")
    run_git(git_repo, "checkout", "-q", "--detach", base)
    (git_repo / "other.txt").write_text("x\n")
    run_git(git_repo, "add", "other.txt")
    run_git(git_repo, "commit", "-q", "-m", "other")
    clean = git.rev(git_repo)
    git.create_branch(git_repo, "job", ours)
    # A conflict with the branch where it was expected: None, the branch untouched.
    assert git.merge_into_branch(git_repo, "job", theirs, "m", expected_head=ours) is None
    assert git.rev(git_repo, "job") == ours
    # The branch moved: the same conflict is a move, not a conflict; a clean merge fails
    # its swap and leaves the mover's commit in place.
    git.create_branch(git_repo, "job", base, force=True)
    with pytest.raises(git.BranchMovedError):
        git.merge_into_branch(git_repo, "job", theirs, "m", expected_head=ours)
    with pytest.raises(git.BranchMovedError):
        git.merge_into_branch(git_repo, "job", clean, "m", expected_head=ours)
    assert git.rev(git_repo, "job") == base
    # merge-tree answers 1 for a tree too: no conflict is made of it.
    tree = run_git(git_repo, "rev-parse", f"{clean}^{{tree}}")
    with pytest.raises(GitError):
        git.merge_into_branch(git_repo, "job", tree, "m", expected_head=base)
    merged = git.merge_into_branch(git_repo, "job", clean, "m", expected_head=base)
    assert merged is not None and git.rev(git_repo, "job") == merged
    assert run_git(git_repo, "log", "-1", "--format=%P", merged) == f"{base} {clean}"


def test_a_merge_of_a_commit_director_made_on_the_head_is_the_commits_tree(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merge queue's usual merge (the attempt's commit, which director made right on
    the job head) needs no merge-tree: the merge is the commit's own tree. A commit made
    on another head is merged three ways as before: both sides' work is kept."""
    base = git.rev(git_repo)
    run_git(git_repo, "checkout", "-q", "--detach", base)
    (git_repo / "node.txt").write_text("node\n")
    run_git(git_repo, "add", "node.txt")
    run_git(git_repo, "commit", "-q", "-m", "scratch")
    tree = run_git(git_repo, "rev-parse", "HEAD^{tree}")
    tip = git.commit_tree(git_repo, tree, [base], "node work")
    assert git.made_parents(tip) == (base,)
    run_git(git_repo, "checkout", "-q", "--detach", base)
    (git_repo / "other.txt").write_text("other\n")
    run_git(git_repo, "add", "other.txt")
    run_git(git_repo, "commit", "-q", "-m", "merged meanwhile")
    moved = git.rev(git_repo)
    ran: list[list[str]] = []
    real = git._run_git

    def recording(args: list[str], *rest: object) -> subprocess.CompletedProcess[str]:
        ran.append(args)
        return real(args, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(git, "_run_git", recording)
    git.create_branch(git_repo, "job", base)
    merged = git.merge_into_branch(git_repo, "job", tip, "m", expected_head=base)
    assert merged is not None and git.rev(git_repo, "job") == merged
    assert run_git(git_repo, "rev-parse", f"{merged}^{{tree}}") == tree
    assert run_git(git_repo, "log", "-1", "--format=%P", merged) == f"{base} {tip}"
    assert not [args for args in ran if args[0] == "merge-tree"]
    # The job head moved past the commit's parent: a three-way merge keeps both sides.
    git.create_branch(git_repo, "job", moved, force=True)
    merged = git.merge_into_branch(git_repo, "job", tip, "m", expected_head=moved)
    assert merged is not None
    files = run_git(git_repo, "ls-tree", "--name-only", merged).split()
    assert {"node.txt", "other.txt"} <= set(files)
    assert [args for args in ran if args[0] == "merge-tree"]


def test_head_symref_reads_a_director_worktrees_head_where_git_does(tmp_path: Path) -> None:
    """From the admin folder git's records name (the worktree's own .git file is not
    followed), the branch only: a detached HEAD or a folder director did not make is
    left to git (None)."""
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    store = Store(repo)
    store.ensure()
    worktree = store.worktrees / "n"
    git.add_worktree(repo, worktree, "director/job-x--n", start=git.rev(repo))
    assert git.head_symref(worktree) == "refs/heads/director/job-x--n"
    assert run_git(worktree, "symbolic-ref", "HEAD") == "refs/heads/director/job-x--n"
    run_git(worktree, "checkout", "-q", "--detach")
    assert git.head_symref(worktree) is None
    run_git(worktree, "checkout", "-q", "director/job-x--n")
    # A .git file pointed at another admin folder (the main checkout's HEAD is on main)
    # changes nothing: git's records name this worktree's own.
    (worktree / ".git").write_text(f"gitdir: {repo / '.git'}\n")
    assert git.head_symref(worktree) == "refs/heads/director/job-x--n"
    assert git.head_symref(tmp_path) is None


def test_loose_ref_reads_a_ref_file_and_leaves_the_rest_to_git(git_repo: Path) -> None:
    """What git reads first for the name; a packed ref, a symbolic one, a missing one or
    a name that climbs out of refs/ is None (git is asked then)."""
    head = git.rev(git_repo)
    run_git(git_repo, "update-ref", "refs/heads/director/job-x--n", head)
    assert git.loose_ref(git_repo, "refs/heads/director/job-x--n") == head
    assert git.loose_ref(git_repo, "refs/heads/director/job-x--gone") is None
    assert git.loose_ref(git_repo, "refs/../HEAD") is None
    run_git(git_repo, "symbolic-ref", "refs/heads/alias", "refs/heads/director/job-x--n")
    assert git.loose_ref(git_repo, "refs/heads/alias") is None
    run_git(git_repo, "pack-refs", "--all")
    assert git.loose_ref(git_repo, "refs/heads/director/job-x--n") is None
    assert git.rev(git_repo, "refs/heads/director/job-x--n") == head
