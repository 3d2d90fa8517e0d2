"""Findings of outside-in QA: the CLI run as a user runs it (``python -m director_tui``,
real git, real files) on repositories we had not tried, each pinned by a test."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.cli import director
from tests.gitrepo import run_git
from tests.run_fixture import JOB_ID, SANDBOX_OFF, NodeSpec, build_job, sample_nodes

# -- a broken config.toml stops every command, not only the ones that call an agent -----
# (except bench, which reads only its profiles: tests/test_bench.py pins that)
BROKEN_CONFIGS = {
    "bad TOML": ('[tiers]\nplanner = "scripted/x"\n[limits\n', "line 3"),
    "unknown provider": ('# mine\n[tiers]\n\nplanner = "nope/x"\n', "line 4: tiers.planner:"),
}
EVERY_COMMAND = [
    ["status"],
    ["status", "--json"],
    ["retry", "some-node"],
    ["pause"],
    ["sync-agents"],
    ["init"],
    ["run", "--no-tui"],
    ["plan", "a task", "--no-tui"],
    ["auto", "a task"],
]


@pytest.mark.parametrize("broken", BROKEN_CONFIGS, ids=list(BROKEN_CONFIGS))
def test_a_broken_config_is_exit_2_with_file_and_line_for_every_command(
    git_repo: Path, broken: str
) -> None:
    text, where = BROKEN_CONFIGS[broken]
    config = git_repo / ".director" / "config.toml"
    config.parent.mkdir()
    config.write_text(text)
    before = sorted(p.relative_to(git_repo) for p in git_repo.rglob("*") if ".git" not in p.parts)
    # The unknown provider goes through every command; broken TOML (the same path
    # through load_config) through a few, to keep the suite quick.
    commands = EVERY_COMMAND if broken == "unknown provider" else EVERY_COMMAND[::3]
    for command in commands:
        out = director(*command, cwd=git_repo)
        said = f"{command}: rc={out.returncode}\n{out.stdout}\n{out.stderr}"
        assert out.returncode == 2, said
        assert str(config) in out.stderr and where in out.stderr, said
        assert "Traceback" not in out.stderr, said
    after = sorted(p.relative_to(git_repo) for p in git_repo.rglob("*") if ".git" not in p.parts)
    assert after == before  # nothing written: no agents, no state, no .gitignore edit
    assert config.read_text() == text


def test_a_broken_user_config_is_named_too(git_repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("[limits]\nparallel = 0\n")
    out = director("status", cwd=git_repo, env={"DIRECTOR_HOME": str(home)})
    assert out.returncode == 2, out.stderr
    assert f"{home / 'config.toml'}: invalid configuration" in out.stderr
    assert "line 2: limits.parallel:" in out.stderr


def test_control_still_reaches_a_live_run_when_the_config_broke_meanwhile(
    git_repo: Path,
) -> None:
    """A running job read its config when it started: cancelling it must stay possible."""
    config = git_repo / ".director" / "config.toml"
    config.parent.mkdir()
    config.write_text("[limits\n")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            # The lock and the control socket of a live run (a stand-in: no plan to run).
            "import asyncio, sys\n"
            "from pathlib import Path\n"
            "from director_tui.engine.control_channel import ControlServer\n"
            "from director_tui.engine.store import Store\n"
            "async def live(store):\n"
            "    async with ControlServer(store, lambda pid: ('', None)):\n"
            "        print('locked', flush=True)\n"
            "        await asyncio.to_thread(sys.stdin.read)\n"
            "store = Store(Path(sys.argv[1]))\n"
            "with store.run_lock('run'):\n"
            "    asyncio.run(live(store))\n",
            str(git_repo),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        out = director("pause", "--no-wait", cwd=git_repo)
        assert out.returncode == 0, out.stderr
        assert "queued pause" in out.stdout
        assert "warning" in out.stderr and "line 1" in out.stderr
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert run_git(git_repo, "status", "--porcelain") == "?? .director/"


# -- the job branch checked out by the user ------------------------------------------------
def _user_checkout_of_the_job_branch(tmp_path: Path, where: str) -> tuple[Path, Path, str]:
    """An approved sample job whose branch the user checked out ``where``: "checkout"
    (their own, before director made its job worktree), "worktree" (one of their own)
    or "both" (theirs and director's job worktree: ``--ignore-other-worktrees``)."""
    store = build_job(tmp_path, [_one_node()])
    repo = store.repo
    branch = f"director/job-{JOB_ID}"
    holder = repo
    if where == "checkout":
        run_git(repo, "switch", "-q", branch)
    elif where == "worktree":
        holder = tmp_path / "mine"
        run_git(repo, "worktree", "add", "-q", str(holder), branch)
    else:
        from director_tui.engine.jobs import ensure_job_worktree

        ensure_job_worktree(store, branch)  # as the plan pipeline leaves it
        run_git(repo, "checkout", "-q", "--ignore-other-worktrees", branch)
    return repo, holder, branch


def _one_node() -> NodeSpec:
    return sample_nodes()[0]


@pytest.mark.parametrize("where", ["checkout", "worktree", "both"])
def test_job_branch_checked_out_by_the_user_is_a_clear_error_then_the_run_resumes(
    tmp_path: Path, where: str
) -> None:
    repo, holder, branch = _user_checkout_of_the_job_branch(tmp_path, where)
    head_before = run_git(holder, "rev-parse", "HEAD")
    out = director("run", "--no-tui", cwd=repo)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and "fatal:" not in out.stderr
    assert f"the job branch {branch} is checked out at {holder}" in out.stderr
    assert "then run the command again" in out.stderr
    assert run_git(holder, "rev-parse", "HEAD") == head_before  # theirs, untouched
    assert run_git(holder, "status", "--porcelain", "--untracked-files=no") == ""
    # The next step the message gives works: free the branch, run again, done.
    if holder == repo:
        run_git(repo, "switch", "-q", "main")
    else:
        run_git(repo, "worktree", "remove", str(holder))
    again = director("run", "--no-tui", cwd=repo)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "all nodes merged" in again.stdout


def test_status_prints_task_and_reports_literally_not_as_markup(tmp_path: Path) -> None:
    """A task with ``[/bold]`` in it made ``director status`` die in rich's markup parser
    (MarkupError traceback); '[gates]' in the integration report vanished."""
    from director_tui.engine.models import PlanStage

    store = build_job(tmp_path, [_one_node()])
    stage = store.read_model(store.plan_stage, PlanStage)
    assert stage is not None
    task = "handle [/bold] and [red]x[/red] in names"
    store.write_model(store.plan_stage, stage.model_copy(update={"task": task}))
    assert director("run", "--no-tui", cwd=store.repo).returncode == 0
    out = director("status", cwd=store.repo)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert task in out.stdout
    assert "no [gates] configured" in out.stdout


# -- a closed stdout (director run --no-tui | head) --------------------------------------
def _director_into_a_closed_pipe(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run director with stdout a pipe nobody reads any more: its very first progress
    line meets EPIPE, as in ``director run --no-tui | head -1`` once head is done."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "director_tui", *args],
            cwd=cwd,
            stdout=write_end,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=180,
        )
    finally:
        os.close(write_end)


def test_a_closed_stdout_does_not_stop_a_run_halfway(tmp_path: Path) -> None:
    """Rich's answer to EPIPE is SystemExit, raised inside an engine event callback: the
    run died at its first progress line, exit 1, nothing merged."""
    store = build_job(tmp_path)
    out = _director_into_a_closed_pipe("run", "--no-tui", cwd=store.repo)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    status = director("status", "--json", cwd=store.repo)
    nodes = json.loads(status.stdout)["nodes"]
    assert [n["status"] for n in nodes] == ["done", "done", "done"]


def test_a_closed_stdout_does_not_stop_planning_halfway(tmp_path: Path) -> None:
    from tests.plan_helpers import base_entries, good_tests, make_sample

    repo, _script = make_sample(tmp_path, [*base_entries(), *good_tests()])
    out = _director_into_a_closed_pipe(
        "plan", "add mul and div", "--auto", "--no-critique", "--no-tui", cwd=repo
    )
    assert out.returncode == 0, out.stderr
    status = director("status", "--json", cwd=repo)
    assert json.loads(status.stdout)["job"]["stage"] == "approved"


# -- names and contents that are not UTF-8 -----------------------------------------------
LATIN1_NAME = b"caf\xe9.txt"


def test_an_untracked_latin1_file_name_is_named_in_the_dirty_checkout_error(
    git_repo: Path,
) -> None:
    """git's -z output decoded as strict UTF-8 died with UnicodeDecodeError."""
    with open(os.fsencode(git_repo) + b"/" + LATIN1_NAME, "wb") as fh:
        fh.write(b"x")
    out = director("plan", "a task", "--no-tui", cwd=git_repo)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert "uncommitted changes" in out.stderr and "caf\\xe9.txt" in out.stderr


def test_an_executor_that_writes_latin1_names_and_bytes_is_gated_not_crashed(
    tmp_path: Path,
) -> None:
    """The allowlist message with the raw name could not be saved to state.json (the run
    died in pydantic's JSON encoder); a stage-two review of a diff with latin-1 bytes
    must reach the reviewer."""
    from tests.run_fixture import solve, write_script

    spec = _one_node()
    spec.extra_files = ["calc/notes.txt"]
    store = build_job(tmp_path, [spec], limits={"max_attempts": 1})
    stray = "printf x > \"$(printf 'caf\\351.txt')\""
    latin1_notes = "printf 'caf\\351 cr\\350me\\n' > calc/notes.txt"
    write_script(
        store,
        [
            solve(spec, attempt=1, model="cheap", steps=[{"run": stray}]),
            solve(spec, model="strong", steps=[{"run": latin1_notes}]),
            {
                "role": "reviewer",
                "prompt_contains": "caf\\xe9 cr\\xe8me",
                "text": '{"verdict": "pass", "summary": "ok", "findings": []}',
            },
        ],
    )
    # the escalated attempt also writes the solution
    script = json.loads((store.root / "script.json").read_text())
    script["calls"][1]["steps"].append({"write": spec.impl_path, "content": spec.solution})
    (store.root / "script.json").write_text(json.dumps(script))
    out = director("run", "--no-tui", cwd=store.repo)
    assert "Traceback" not in out.stderr, out.stderr
    assert "outside the allowlist: caf\\xe9.txt" in out.stdout
    assert out.returncode == 0, out.stdout + out.stderr
    status = json.loads(director("status", "--json", cwd=store.repo).stdout)
    (node,) = status["nodes"]
    assert node["status"] == "done" and node["review"]["verdict"] == "pass"
    merged = subprocess.run(
        ["git", "show", f"director/job-{JOB_ID}:calc/notes.txt"],
        cwd=store.repo,
        capture_output=True,
        check=True,
    ).stdout
    assert merged == "caf\xe9 cr\xe8me\n".encode("latin-1")


# -- submodules, no commits: said up front --------------------------------------------------
def test_a_repo_with_a_submodule_is_warned_at_plan_and_by_doctor(tmp_path: Path) -> None:
    from tests.gitrepo import make_repo
    from tests.plan_helpers import base_entries, good_tests, make_sample

    library = make_repo(tmp_path / "library", {"lib.txt": "lib\n"})
    repo, _script = make_sample(tmp_path, [*base_entries(), *good_tests()])
    run_git(
        repo,
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        str(library),
        "vendor/lib",
    )
    run_git(repo, "commit", "-q", "-m", "vendor lib")
    doctor = director("doctor", cwd=repo)
    assert "note submodules (vendor/lib)" in doctor.stdout, doctor.stdout
    out = director("plan", "add mul and div", "--auto", "--no-critique", "--no-tui", cwd=repo)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "git submodules (vendor/lib)" in out.stdout
    assert "do not check them out" in out.stdout


def test_doctor_says_a_repo_without_commits_cannot_be_planned_yet(tmp_path: Path) -> None:
    repo = tmp_path / "new"
    repo.mkdir()
    run_git(repo, "init", "-q")
    out = director("doctor", cwd=repo)
    assert out.returncode == 1
    assert "FIX  commits: none yet" in out.stdout


def test_director_folder_deleted_during_a_run_is_said_with_the_next_step(tmp_path: Path) -> None:
    from tests.run_fixture import solve, write_script

    spec = _one_node()
    # Sandbox off: inside it .director/ is hidden and the rm cannot reach it.
    store = build_job(tmp_path, [spec], config=SANDBOX_OFF)
    write_script(store, [solve(spec, steps=[{"run": f"rm -rf {store.root}"}])])
    out = director("run", "--no-tui", cwd=store.repo)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert "plan.json disappeared while the run went (was .director/ deleted?)" in out.stderr
    assert f"git log director/job-{JOB_ID}" in out.stderr


def test_a_bare_repository_is_named_as_such_with_the_next_step(tmp_path: Path) -> None:
    bare = tmp_path / "shared repo.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    out = director("status", cwd=bare)
    assert out.returncode == 2
    assert f"{bare} is a bare repository" in out.stderr
    assert f"git clone '{bare}' <folder>" in out.stderr
    below = director("plan", "x", "--no-tui", "--repo", str(bare / "refs"), cwd=tmp_path)
    assert below.returncode == 2 and f"{bare} is a bare repository" in below.stderr


def test_the_dot_git_folder_of_a_checkout_is_not_taken_for_the_checkout(git_repo: Path) -> None:
    out = director("status", cwd=git_repo / ".git")
    assert out.returncode == 2
    assert "is inside the .git folder of a repository" in out.stderr


# -- a repository director cannot write to -------------------------------------------------
@pytest.fixture
def read_only_repo(tmp_path: Path) -> Iterator[Path]:
    """A repository on which writes fail with EROFS (root: a read-only bind mount) or
    EACCES (another user: no write permission)."""
    from tests.gitrepo import make_repo

    repo = make_repo(tmp_path / "repo")
    if os.geteuid() != 0:
        for folder in (repo, repo / ".git"):
            folder.chmod(0o555)
        yield repo
        for folder in (repo, repo / ".git"):
            folder.chmod(0o755)
        return
    view = tmp_path / "read-only view"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(repo), str(view)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"root without mount rights: {mounted.stderr.decode().strip()}")
    try:
        remount = ["mount", "-o", "remount,ro,bind", str(view)]
        subprocess.run(remount, check=True, capture_output=True)
        yield view
    finally:
        subprocess.run(["umount", str(view)], check=True)


def test_a_read_only_repository_is_a_clear_error_not_a_traceback(read_only_repo: Path) -> None:
    for command in (["plan", "a task", "--no-tui"], ["run", "--no-tui"], ["sync-agents"]):
        out = director(*command, cwd=read_only_repo)
        said = f"{command}: {out.stderr}"
        assert out.returncode == 2, said
        assert "Traceback" not in out.stderr, said
        assert f"director: cannot write {read_only_repo}/" in out.stderr, said
        assert "make the repository writable, or work in a writable clone" in out.stderr
    doctor = director("doctor", cwd=read_only_repo)
    assert doctor.returncode == 1 and "FIX  writable: no" in doctor.stdout


# -- Ctrl-C, kill, a closed terminal: the run stops cleanly and resumes ------------------------
def _marked_processes(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if marker in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_mid_run_saves_state_stops_the_agent_and_run_resumes(
    tmp_path: Path, stop: str
) -> None:
    """Ctrl-C (SIGINT to the group), ``kill`` (SIGTERM) and a closed terminal (SIGHUP):
    exit 130, the node back to pending, no agent left running, ``director run`` resumes.
    SIGTERM and SIGHUP used to kill director on the spot with its agent still running."""
    from tests.run_fixture import solve, write_script

    spec = _one_node()
    store = build_job(tmp_path, [spec])
    marker = f"qa-agent-{uuid.uuid4().hex}"
    # In the shared git dir: the sandboxed agent sees it (read-only), unlike tmp_path.
    go_on = store.repo / ".git" / "go-on"
    stall = {"run": f"test -e {go_on} || sleep 600 # {marker}"}
    write_script(store, [solve(spec, steps=[stall, *solve(spec)["steps"]])])
    run = subprocess.Popen(
        [sys.executable, "-m", "director_tui", "run", "--no-tui"],
        cwd=store.repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        # A terminal's Ctrl-C reaches a process whose SIGINT is not ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        _wait_for(lambda: bool(_marked_processes(marker)), "the agent to start")
        if stop == "SIGINT":
            os.killpg(run.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        else:
            run.send_signal(getattr(signal, stop))
        try:
            stdout, stderr = run.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            run.kill()
            stdout, stderr = run.communicate()
            pytest.fail(f"director did not stop after {stop}:\n{stdout}\n{stderr}")
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, stdout + stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    _wait_for(lambda: not _marked_processes(marker), "the agent to be gone", timeout=30)
    status = json.loads(director("status", "--json", cwd=store.repo).stdout)
    assert [n["status"] for n in status["nodes"]] == ["pending"]
    go_on.touch()
    again = director("run", "--no-tui", cwd=store.repo)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "all nodes merged" in again.stdout


# -- an empty task -------------------------------------------------------------------------
def test_an_empty_task_is_refused_and_never_resumes_an_unfinished_job(tmp_path: Path) -> None:
    """``director auto "$TASK"`` with TASK unset resumed the unfinished job (and spent
    model calls on it) instead of saying the task was empty."""
    from tests.plan_helpers import base_entries, make_sample

    repo, _script = make_sample(tmp_path, base_entries())
    stopped = director("plan", "add mul and div", "--no-tui", cwd=repo)
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr  # at Gate 1
    stage_file = repo / ".director" / "plan_stage.json"
    before = stage_file.read_text()
    for command in (["auto", ""], ["plan", " ", "--no-tui"], ["bench", "", "--profiles", "x"]):
        out = director(*command, cwd=repo)
        assert out.returncode == 2, f"{command}: {out.stdout}{out.stderr}"
        assert "the task is empty" in out.stderr
        assert f'director {command[0]} "<what you want done>"' in out.stderr
    assert stage_file.read_text() == before


def test_nothing_to_resume_is_exit_2_with_nothing_written(git_repo: Path, tmp_path: Path) -> None:
    """`director auto` with no task and no unfinished job said "nothing written" (exit 2)
    after making .director/, its worktree-root marker and the repository's folder under
    the worktree base; `plan --continue` and `plan --restore-edit` with no plan did too."""
    base = tmp_path / "worktree-base"
    env = {"DIRECTOR_WORKTREE_ROOT": str(base)}
    for command, said in (
        (["auto"], "there is no unfinished job to resume"),
        (["auto", "--force"], "--force starts a new job, so it needs the task"),
        (["plan", "--no-tui"], "the task is empty"),
        (["plan", "--continue", "--no-tui"], "there is no plan in progress"),
        (["plan", "--restore-edit"], "there is no plan in progress"),
    ):
        out = director(*command, cwd=git_repo, env=env)
        assert out.returncode == 2, f"{command}: {out.stdout}{out.stderr}"
        assert said in out.stderr, command
        assert not (git_repo / ".director").exists(), command
        assert not base.exists(), command


# -- --help teaches -------------------------------------------------------------------------
def test_every_subcommand_help_teaches_with_examples() -> None:
    from director_tui.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    with_examples = {"init", "plan", "run", "auto", "status", "bench"}
    with_examples |= {"retry", "escalate", "skip", "pause", "resume", "cancel"}
    for name, command in sub.choices.items():
        text = command.format_help()
        assert command.description and command.description[0].isupper(), name
        if name in with_examples:
            assert "examples:" in text or "example:" in text, name
            assert f"director {name}" in text.split("options:")[-1], name
    assert "exit codes:" in sub.choices["run"].format_help()
    # pause/resume take no node: their usage must not offer one
    assert "node" not in sub.choices["pause"].format_usage()
    assert "node" in sub.choices["cancel"].format_usage()
    # init's example is copyable: the command is not broken across lines mid-flag
    assert "--gate test='pytest -q' --gate lint='ruff check .'" in sub.choices["init"].format_help()


# -- a missing agent CLI is bad input, said before a job or a branch exists -------------
def test_plan_and_run_with_a_missing_agent_cli_write_nothing(git_repo: Path) -> None:
    missing = {"DIRECTOR_OPENCODE_BIN": str(git_repo / "no-such-opencode")}
    before = run_git(git_repo, "for-each-ref", "--format=%(refname)")
    out = director("plan", "add a feature", "--no-tui", cwd=git_repo, env=missing)
    assert out.returncode == 2, out.stderr
    assert "planning needs an agent CLI that is not installed" in out.stderr
    assert "opencode (for brainstorm, critic, explorer, planner, test_author)" in out.stderr
    assert "Traceback" not in out.stderr
    assert run_git(git_repo, "for-each-ref", "--format=%(refname)") == before
    assert not (git_repo / ".director" / "plan_stage.json").exists()
    # a planned job whose executor CLI is gone: the run refuses before it touches state
    store = build_job(git_repo.parent / "job", sample_nodes())
    config = store.root / "config.toml"
    config.write_text(config.read_text().replace('executor = "scripted/', 'executor = "opencode/'))
    out = director("run", "--no-tui", cwd=store.repo, env=missing)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "the run needs an agent CLI" in out.stderr and "opencode (for executor)" in out.stderr
    assert not store.state.exists()
