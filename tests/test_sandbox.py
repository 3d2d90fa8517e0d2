"""The OS sandbox (engine/sandbox.py): what a sandboxed executor cannot do, through the
engine with real processes (scripted provider ``run`` steps are real shell commands), and
director's own git that an agent cannot make run its code (sandbox off)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from packaging.requirements import Requirement

from director_tui.engine import git, sandbox, worktree_home
from director_tui.engine.config import ROLES, load_config
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import UsageError
from director_tui.engine.events import GateResult, Notice
from director_tui.engine.models import RunState
from director_tui.engine.sandbox import Availability, SandboxSpec, decide
from tests.cli import director_on
from tests.conftest import make_repo, run_git
from tests.run_fixture import (
    SANDBOX_OFF,
    NodeSpec,
    Recorder,
    build_job,
    job_file,
    run,
    sample_nodes,
    solve,
    write_script,
)


@pytest.fixture
def bwrap() -> None:
    """The sandbox tests need a working bwrap. ``make test`` installs it (as root, with
    apt); a skip is allowed only where it could not (not root, not CI), never silently
    in CI."""
    available = sandbox.probe()
    if available.ok:
        return
    if os.environ.get("CI") or os.geteuid() == 0:
        pytest.fail(f"the sandbox tests need bwrap: {available.reason}")
    pytest.skip(f"bwrap unavailable: {available.reason}")


# -- the pure parts ---------------------------------------------------------------------
def test_auto_uses_the_sandbox_where_it_works_and_says_why_not_elsewhere() -> None:
    works, missing = Availability(True, "", "/usr/bin/bwrap"), Availability(False, "no bwrap")
    assert decide("auto", works).enabled
    off = decide("auto", missing)
    assert not off.enabled and off.line() == "sandbox: off — no bwrap"
    assert not decide("off", works).enabled
    with pytest.raises(UsageError) as raised:
        decide("bwrap", missing)
    assert raised.value.exit_code == 2 and "no bwrap" in raised.value.message


def test_the_argv_hides_then_binds_writable_then_protects(tmp_path: Path) -> None:
    home, wt, state, tool = (tmp_path / n for n in ("home", "wt", "state", "tool"))
    for folder in (home, wt, state, tool):
        folder.mkdir()
    (wt / ".git").write_text("gitdir: x\n")
    spec = SandboxSpec(
        cwd=wt, hide=(home,), tools=(tool,), writable=(state,), protect=(wt / ".git",)
    )
    argv = spec.wrap(["echo", "hi"])
    assert argv[:3] == ["bwrap", "--ro-bind", "/"]
    order = [argv.index(x) for x in (str(home), str(tool), str(wt), str(state), str(wt / ".git"))]
    assert order == sorted(order)
    assert argv[argv.index(str(wt)) - 1] == "--bind"
    assert argv[argv.index(str(wt / ".git")) - 1] == "--ro-bind"
    for flag in ("--cap-drop", "--unshare-pid", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert argv[-3:] == ["--", "echo", "hi"]
    assert spec.allows_write(wt / "src" / "x.py")
    assert not spec.allows_write(wt / ".git")
    assert not spec.allows_write(wt / ".." / "outside.txt")
    read_only = SandboxSpec(cwd=wt, cwd_writable=False).wrap(["true"])
    assert read_only[read_only.index(str(wt)) - 1] == "--ro-bind"


def test_tool_folders_bring_back_an_agent_installed_under_a_hidden_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    npm = home / ".cache" / "cli" / "node_modules" / ".bin"
    assert sandbox.tool_folders(str(npm / "opencode"), f"{home}/.local/bin:/usr/bin", [home]) == [
        home / ".cache" / "cli",
        home / ".local",
    ]


def test_a_checkout_under_a_hidden_folder_is_bound_back_without_its_director_folder(
    tmp_path: Path,
) -> None:
    """The outer path first, so the deeper rule wins: the checkout read-only under the
    hidden /tmp, its .director/ hidden again, the worktree inside it writable, its .git
    read-only; ~/.local bound back for its bin shows no keyring; a tool folder that is
    the home itself brings no home back."""
    home, repo = tmp_path / "home", tmp_path / "repo"
    wt = repo / ".director" / "worktrees" / "n"
    keyrings = home / ".local" / "share" / "keyrings"
    for folder in (wt, keyrings, home / ".ssh", home / ".local" / "bin"):
        folder.mkdir(parents=True)
    (wt / ".git").write_text("gitdir: x\n")
    hide = (home, repo / ".director")
    tools = (repo, *sandbox.tool_folders(None, f"{home}/.local/bin", hide), home)
    spec = SandboxSpec(cwd=wt, hide=hide, tools=tools, protect=(wt / ".git",))
    runtime = [m for m in spec.mounts() if m[1].is_relative_to(sandbox.RUNTIME_DIR)]
    assert runtime[:1] == [("--tmpfs", sandbox.RUNTIME_DIR)]  # outermost: it goes first
    assert [m for m in spec.mounts() if m not in runtime] == [
        ("--tmpfs", home),
        ("--ro-bind", repo),
        ("--tmpfs", repo / ".director"),
        ("--ro-bind", home / ".local"),
        ("--tmpfs", keyrings),
        ("--bind", wt),
        ("--ro-bind", wt / ".git"),
    ]


def test_tool_folders_never_bind_a_secret_folder_whole(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = f"{home}/.config/bin:{home}/.ssh:{tmp_path}/bin"
    assert sandbox.tool_folders(None, path, [home]) == [home / ".config" / "bin", tmp_path / "bin"]


# -- a hostile executor, sandbox on --------------------------------------------------------
def test_a_sandboxed_executors_writes_outside_and_daemons_vanish_and_the_retry_merges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bwrap: None
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes)
    add = nodes[0]
    etc_probe = Path("/etc") / f"director-sandbox-{uuid.uuid4().hex[:8]}"
    daemon = f"sleep 6{uuid.uuid4().int % 100:02d}"
    request = json.dumps({"action": "skip", "node": "add"})
    root = store.worktrees  # every worktree of the repository, the node's own among them
    marker = (root / worktree_home.REPO_MARKER).read_bytes()
    hostile = [
        "echo x > ~/outside.txt",
        f"touch {etc_probe}",
        f"echo x > {store.repo}/leak.txt",
        f"echo '{request}' > {store.control}/evil.json",
        # The worktree root outside its own worktree: a sibling's (the job's), the root
        # itself, the marker director's git trusts, another repository's folder.
        f"echo x > {root}/_job/sibling.txt",
        f"echo x > {root}/planted.txt",
        f"echo /tmp > {root}/{worktree_home.REPO_MARKER}",
        f"mkdir -p {root.parent}/other-repo && echo x > {root.parent}/other-repo/x",
        "echo 'gitdir: /tmp/elsewhere' > .git",
        f"nohup {daemon} > /dev/null 2>&1 &",
    ]
    first = {
        "role": "executor",
        "node": add.id,
        "attempt": 1,
        "steps": [
            *({"run": command} for command in hostile),
            {"write": f"{store.repo}/written-in-process.txt", "content": "x"},
            {"write": f"{root}/_job/written-in-process.txt", "content": "x"},
        ],
    }
    write_script(store, [first, solve(add)])
    rec = Recorder()
    try:
        outcome = run(store, rec)
        survivors = [
            p
            for p in psutil.process_iter(["cmdline"])
            if " ".join(p.info["cmdline"] or []) == daemon
        ]
    finally:
        etc_probe.unlink(missing_ok=True)
    assert outcome.success, outcome.message
    assert not (home / "outside.txt").exists()
    assert not etc_probe.exists()
    assert not (store.repo / "leak.txt").exists()
    assert not (store.repo / "written-in-process.txt").exists()
    assert not (root / "_job" / "sibling.txt").exists()
    assert not (root / "_job" / "written-in-process.txt").exists()
    assert not (root / "planted.txt").exists() and not (root.parent / "other-repo").exists()
    assert (root / worktree_home.REPO_MARKER).read_bytes() == marker
    assert list(store.control.iterdir()) == []
    assert survivors == []
    assert run_git(store.repo, "status", "--porcelain", "--", ".", ":!.director") == ""
    state = store.read_model(store.state, RunState)
    assert state is not None and state.nodes["add"].attempts == 2
    gates = [(g.attempt, g.check) for g in rec.of(GateResult) if g.node_id == "add"]
    assert gates[-1] == (2, "passed") and (1, "passed") not in gates
    assert job_file(store, add.impl_path) == add.solution
    transcript = "".join(p.read_text() for p in store.logs.glob("executor-*.jsonl"))
    assert '"tool": "write", "status": "error"' in transcript  # the refused in-process write


def test_a_daemon_the_nodes_code_starts_in_a_sandboxed_gate_ends_with_the_test_run(
    tmp_path: Path, bwrap: None
) -> None:
    """In the sandbox the gate sweeps no processes after its tests: a daemon the node's
    code starts when the tests import it (a session of its own, out of reach of a group
    kill) is gone when the test run ends — the kernel emptied the run's PID namespace —
    so director had nothing to stop (without the sandbox it does: tests/test_run.py)."""
    add = sample_nodes()[0]
    marker = f"sleep 5{uuid.uuid4().int % 1000:03d}"
    add.solution = (
        "import subprocess\n"
        f"subprocess.Popen({marker.split()!r}, start_new_session=True,"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n\n\n" + add.solution
    )
    store = build_job(tmp_path, [add])
    write_script(store, [solve(add)])
    rec = Recorder()
    outcome = run(store, rec)
    survivors = [
        p for p in psutil.process_iter(["cmdline"]) if " ".join(p.info["cmdline"] or []) == marker
    ]
    for process in survivors:  # never leave them behind, even when the test fails
        process.kill()
    assert outcome.success, outcome.message
    assert survivors == []
    assert not [n.message for n in rec.of(Notice) if "left running" in n.message]


async def test_a_sandboxed_cli_call_ends_with_every_process_it_started(
    tmp_path: Path, bwrap: None
) -> None:
    """An agent CLI run in the sandbox that leaves a daemon behind (a session of its own)
    and exits: the daemon is gone when the call returns, so the call says its processes
    ended and the run sweeps no process list for it. Without the sandbox it says not."""
    from director_tui.engine.agents.base import AgentCall
    from director_tui.engine.agents.opencode import OpenCodeProvider

    worktree = tmp_path / "wt"
    worktree.mkdir()
    marker = f"sleep 7{uuid.uuid4().int % 1000:03d}"
    cli = tmp_path / "bin" / "opencode"
    cli.parent.mkdir()
    # It exits only once the daemon is in a session of its own (else the kill of the
    # CLI's process group after the call could take it, and the test would prove nothing).
    cli.write_text(
        '#!/bin/sh\n[ "$1" = --version ] && echo 1.18.33 && exit 0\nrm -f ready\n'
        f"setsid sh -c 'touch ready; exec {marker}' > /dev/null 2>&1 &\n"
        "while [ ! -e ready ]; do sleep 0.01; done\nexit 0\n"
    )
    cli.chmod(0o755)

    def call(spec: SandboxSpec | None) -> AgentCall:
        return AgentCall(
            role="executor",
            tier="opencode/fake/m",
            prompt="task",
            cwd=worktree,
            log_dir=tmp_path / "logs",
            sandbox=spec,
        )

    def survivors(wait: float = 0.0) -> list[psutil.Process]:
        # (a daemon still on its way through setsid and nohup is not yet `sleep`)
        deadline = time.monotonic() + wait
        while True:
            found = [
                p
                for p in psutil.process_iter(["cmdline"])
                if " ".join(p.info["cmdline"] or []) == marker
            ]
            if found or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        for process in found:  # never leave them behind
            process.kill()
        return found

    spec = SandboxSpec(cwd=worktree, hide=(tmp_path / "home",))
    (tmp_path / "home").mkdir()
    result = await OpenCodeProvider(str(cli)).run(call(spec), lambda a: None)
    assert result.processes_ended
    assert survivors() == []
    result = await OpenCodeProvider(str(cli)).run(call(None), lambda a: None)
    assert not result.processes_ended
    assert len(survivors(wait=5.0)) == 1  # what the run's sweep is for


# -- a checkout and a venv under /tmp (a CI clone in mktemp -d) ------------------------------
def _with_requirements(name: str) -> list[importlib.metadata.Distribution]:
    """The installed distribution ``name`` and every one it needs here (no extras)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = [name]
    while todo:
        dist = importlib.metadata.distribution(todo.pop())
        key = dist.metadata["Name"].lower()
        if key in found:
            continue
        found[key] = dist
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return list(found.values())


def _venv_under(folder: Path) -> Path:
    """A venv of its own under ``folder`` with pytest and what it needs copied in (no
    network), from which director itself runs: its ``sys.executable`` and
    ``sys.prefix`` are then under /tmp, as in a CI clone's ``.venv``."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    for dist in _with_requirements("pytest"):
        for file in dist.files or []:
            if file.parts[0] != ".." and not file.name.endswith(".pyc"):
                (site / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(str(dist.locate_file(file))), site / file)
    # Director's own packages for the director process (unseen in the sandbox when they
    # live under /tmp too: pytest comes from the copy above).
    ours = sysconfig.get_paths()["purelib"]
    (site / "director-under-test.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


def test_a_checkout_and_venv_under_tmp_run_their_pytest_gate_sandboxed_and_see_no_secret(
    tmp_path: Path, bwrap: None
) -> None:
    """Director runs from a venv under /tmp (hidden by the sandbox's own /tmp) on a
    checkout under /tmp; the node's test and gate are ``<venv>/bin/python -m pytest``.
    Inside the sandbox the venv, the checkout (read-only) and a tool of ~/.local/bin on
    PATH are visible, and neither ~/.ssh, a keyring under ~/.local nor .director/ is: the
    node's test asserts it, so the run merges only if all hold (before the fix the venv's
    python was not there: exit 127)."""
    home = tmp_path / "home"
    for folder in (home / ".ssh", home / ".local" / "share" / "keyrings", home / ".local" / "bin"):
        folder.mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("SECRET\n")
    (home / ".local" / "share" / "keyrings" / "login.keyring").write_text("SECRET\n")
    (home / ".local" / "bin" / "tool").write_text("#!/bin/sh\necho tool ran\n")
    (home / ".local" / "bin" / "tool").chmod(0o755)
    python = _venv_under(tmp_path / "venv")
    sees = (
        "import subprocess\n"
        "from calc.add import add\n\n\n"
        "def test_add():\n    assert add(2, 3) == 5\n\n\n"
        "def test_what_the_sandbox_shows():\n"
        "    home = os.path.expanduser('~')\n"
        "    assert not os.path.exists(home + '/.ssh/id_rsa')\n"
        "    assert not os.path.exists(home + '/.local/share/keyrings/login.keyring')\n"
        "    assert subprocess.run(['tool'], capture_output=True).stdout == b'tool ran\\n'\n"
        "    checkout = os.getcwd().split('/.director/')[0]\n"
        "    assert os.path.exists(checkout + '/README.md')\n"
        "    assert not os.path.exists(checkout + '/.director/plan.json')\n"
    )
    add = PytestNode("add", "calc/add.py", sees, "def add(a, b):\n    return a + b\n")
    add.python = str(python)
    store = build_job(tmp_path, [add], gates={"test": add.test_cmd})
    write_script(store, [solve(add)])
    env = {
        **os.environ,
        "HOME": str(home),
        "PATH": f"{home}/.local/bin:{os.environ['PATH']}",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    ran = subprocess.run(
        [python, "-m", "director_tui", "run", "--no-tui", "--repo", str(store.repo)],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "sandbox: on (bwrap)" in ran.stdout
    assert job_file(store, add.impl_path) == add.solution
    landed = subprocess.run(
        [python, "-m", "director_tui", "land", "--repo", str(store.repo)],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    assert landed.returncode == 0, landed.stdout + landed.stderr
    assert "integration gate passed (test)" in landed.stdout


@dataclass
class PytestNode(NodeSpec):
    """A node whose test is a pytest file run by a given interpreter."""

    python: str = ""

    @property
    def test_path(self) -> str:
        return f"tests/test_{self.id}.py"

    @property
    def test_cmd(self) -> str:
        return f"{self.python} -m pytest -q -p no:cacheprovider {self.test_path}"


# -- director's own git, sandbox off ---------------------------------------------------------
def test_an_agent_cannot_make_directors_git_run_its_code(tmp_path: Path) -> None:
    """A planted fsmonitor and hooks in the shared git dir, and the worktree's .git file
    pointed at a git dir the agent made with an fsmonitor and a clean filter of its own:
    director's git runs none of them (hooks and fsmonitor off, the git dir named from
    git's records, never from the worktree's .git file)."""
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, config=SANDBOX_OFF)
    add = nodes[0]
    marker = tmp_path / "agent-code-ran"
    hook = tmp_path / "payload.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\nexit 0\n")
    hook.chmod(0o755)
    planted = " && ".join(
        [
            f"git config core.fsmonitor {hook}",
            "H=$(git rev-parse --git-common-dir)/hooks && mkdir -p $H",
            *(f"cp {hook} $H/{name}" for name in ("pre-commit", "post-commit", "post-merge")),
            *(f"cp {hook} $H/{name}" for name in ("reference-transaction", "post-checkout")),
            f"git init -q --bare {tmp_path}/agent-git",
            f"git --git-dir={tmp_path}/agent-git config core.fsmonitor {hook}",
            # A clean filter of its own git dir: no -c switches that one off.
            f"git --git-dir={tmp_path}/agent-git config filter.evil.clean {hook}",
            f"mkdir -p {tmp_path}/agent-git/info",
            f"echo '* filter=evil' > {tmp_path}/agent-git/info/attributes",
            f"echo 'gitdir: {tmp_path}/agent-git' > .git",
        ]
    )
    first = solve(add, attempt=1)
    first["steps"] = [*first["steps"], {"run": planted}]
    write_script(store, [first, solve(add)])
    outcome = run(store, Recorder())
    assert not marker.exists(), "director's git ran code the agent planted"
    assert outcome.success, outcome.message
    assert job_file(store, add.impl_path) == add.solution


# -- the commands ----------------------------------------------------------------------------
def _path_without_bwrap(tmp_path: Path) -> str:
    """A PATH holding git and sh but no bwrap."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("git", "sh"):
        found = next(
            Path(d) / tool for d in os.environ["PATH"].split(":") if (Path(d) / tool).exists()
        )
        (folder / tool).symlink_to(found)
    return str(folder)


def test_doctor_and_plan_say_when_the_sandbox_is_missing(git_repo: Path, tmp_path: Path) -> None:
    path = _path_without_bwrap(tmp_path)
    doctor = director_on(git_repo, "doctor", env={"PATH": path})
    assert "note sandbox: off — bwrap not installed (apt install bubblewrap)" in doctor.stdout
    config = git_repo / ".director" / "config.toml"
    config.parent.mkdir()
    tiers = "".join(f'{role} = "scripted/m"\n' for role in ROLES)
    config.write_text(f'[tiers]\n{tiers}[sandbox]\nmode = "bwrap"\n')
    doctor = director_on(git_repo, "doctor", env={"PATH": path})
    assert doctor.returncode == 1, doctor.stdout
    assert 'FIX  sandbox: [sandbox] mode = "bwrap" but bwrap not installed' in doctor.stdout
    plan = director_on(git_repo, "plan", "add a feature", env={"PATH": path})
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert 'mode = "bwrap" but the sandbox is unavailable' in plan.stderr


def test_doctor_says_the_sandbox_is_on_where_bwrap_works(git_repo: Path, bwrap: None) -> None:
    doctor = director_on(git_repo, "doctor")
    assert "ok   sandbox: on — agents and gate tests run in bwrap" in doctor.stdout


def test_a_headless_run_says_whether_its_agents_are_sandboxed(tmp_path: Path, bwrap: None) -> None:
    """The run's first lines name the sandbox state, on and off: a user who reads the
    output knows whether writes outside the worktree are prevented or only detected."""
    add = sample_nodes()[0]
    on = build_job(tmp_path / "on", [add])
    write_script(on, [solve(add)])
    done = director_on(on.repo, "run", "--no-tui")
    assert done.returncode == 0, done.stdout + done.stderr
    header = done.stdout.splitlines()[:3]
    assert any("sandbox: on (bwrap)" in line for line in header), done.stdout
    off = build_job(tmp_path / "off", [add], config=SANDBOX_OFF)
    write_script(off, [solve(add)])
    done = director_on(off.repo, "run", "--no-tui")
    assert done.returncode == 0, done.stdout + done.stderr
    header = done.stdout.splitlines()[:3]
    assert any('sandbox: off — [sandbox] mode = "off" in the config' in line for line in header)


def test_land_runs_the_gates_on_the_agents_code_in_the_sandbox(tmp_path: Path, bwrap: None) -> None:
    """`director land` re-runs [gates] on the job's code, which an agent wrote: sandboxed
    like every earlier run of it, or code that behaved in the run's sandbox reaches the
    user's home at the last step (found by QA: the land gate ran unsandboxed)."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("SECRET\n")
    payload = (
        "import os\n"
        "try:\n"
        "    key = open(os.path.expanduser('~/.ssh/id_rsa')).read()\n"
        "except OSError:\n"
        "    key = 'hidden'\n"
        "open(os.path.expanduser('~/landed.txt'), 'a').write(key)\n\n\n"
    )
    add = sample_nodes()[0]
    add.solution = payload + add.solution
    store = build_job(tmp_path, [add], gates={"test": add.test_cmd})
    write_script(store, [solve(add)])
    env = {"HOME": str(home)}
    ran = director_on(store.repo, "run", "--no-tui", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert not (home / "landed.txt").exists()  # the run's gates were sandboxed
    landed = director_on(store.repo, "land", env=env)
    assert landed.returncode == 0, landed.stdout + landed.stderr
    assert "integration gate passed (test)" in landed.stdout
    assert not (home / "landed.txt").exists()


def test_directors_git_names_the_worktrees_git_dir_from_gits_records(tmp_path: Path) -> None:
    """A worktree's .git file rewritten to a git dir with a clean filter of the agent's:
    director's git still works on the worktree git made (and runs no filter); a folder
    under .director/ that git does not know as a worktree fails closed instead of
    reaching the user's checkout."""
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    worktree = repo / ".director" / "worktrees" / "n"
    git.add_worktree(repo, worktree, "director/n", start="HEAD")
    admin = git.registered_admin_dir(repo, worktree)
    assert admin is not None and admin.parent.name == "worktrees"
    marker = tmp_path / "filter-ran"
    agent_git = tmp_path / "agent-git"
    run_git(tmp_path, "init", "-q", "--bare", str(agent_git))
    run_git(
        tmp_path, f"--git-dir={agent_git}", "config", "filter.evil.clean", f"touch {marker}; cat"
    )
    (agent_git / "info").mkdir(exist_ok=True)
    (agent_git / "info" / "attributes").write_text("* filter=evil\n")
    (worktree / ".git").write_text(f"gitdir: {agent_git}\n")
    (worktree / "b.txt").write_text("b\n")
    assert git.out(["rev-parse", "--absolute-git-dir"], worktree) == str(admin)
    git.git(["add", "-A"], worktree)
    assert not marker.exists()
    assert git.out(["diff", "--cached", "--name-only"], worktree) == "b.txt"
    stray = repo / ".director" / "stray"
    stray.mkdir()
    assert git.git(["status"], stray, check=False).returncode != 0


def test_a_server_socket_under_run_and_its_env_are_out_of_reach(
    tmp_path: Path, bwrap: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server listening under /run (systemd, D-Bus, screen, docker, an ssh-agent under
    /run/user) would run what a sandboxed agent sends it outside the sandbox: a read-only
    /run still lets connect() through, so /run is hidden and the variables naming such a
    server are unset. Reachable from outside, unreachable from inside."""
    if not os.access("/run", os.W_OK):
        if os.environ.get("CI") or os.geteuid() == 0:
            pytest.fail("/run is not writable: cannot put a server there")
        pytest.skip("needs a writable /run (root) to put a server there")
    import socket

    path = Path("/run") / f"director-test-{uuid.uuid4().hex[:8]}.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    try:
        probe = (
            "import os, socket; s = socket.socket(socket.AF_UNIX); "
            f"print('reached' if s.connect_ex({str(path)!r}) == 0 else 'refused'); "
            "print(os.environ.get('SSH_AUTH_SOCK', 'no agent'))"
        )
        outside = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )
        assert outside.stdout.split()[0] == "reached"  # the probe itself can tell
        monkeypatch.setenv("SSH_AUTH_SOCK", str(path))
        wt = tmp_path / "wt"
        wt.mkdir()
        inside = subprocess.run(
            SandboxSpec(cwd=wt, tools=interpreter_tools()).wrap([sys.executable, "-c", probe]),
            capture_output=True,
            text=True,
            check=True,
        )
        assert inside.stdout.split() == ["refused", "no", "agent"], inside.stderr
    finally:
        server.close()
        path.unlink(missing_ok=True)


def interpreter_tools() -> tuple[Path, ...]:
    return tuple(sandbox.interpreter_folders([Path.home()]))


def test_a_sandbox_spec_shows_the_tools_of_the_path_it_is_asked_under(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bwrap: None
) -> None:
    """The context works out PATH's tool folders once per PATH and hidden set: a spec
    asked again gives the same folders, a PATH changed since gives its own."""
    home = tmp_path / "home"
    for tool in (".local/bin", ".cargo/bin"):
        (home / tool).mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    store = build_job(tmp_path / "job", sample_nodes()[:1])
    ctx = EngineContext.open(store, load_config(store.repo))
    monkeypatch.setenv("PATH", f"{home}/.local/bin:/usr/bin:/bin")
    first = ctx.sandbox_spec(store.repo)
    assert first is not None and home / ".local" in first.tools
    again = ctx.sandbox_spec(store.repo)
    assert again is not None and again.tools == first.tools
    monkeypatch.setenv("PATH", f"{home}/.cargo/bin:/usr/bin:/bin")
    moved = ctx.sandbox_spec(store.repo)
    assert moved is not None and home / ".cargo" in moved.tools
    assert home / ".local" not in moved.tools
