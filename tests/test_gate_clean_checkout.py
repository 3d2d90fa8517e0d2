"""What is tested is what merges: the node gate runs its tests on a clean checkout of the
attempt's commit (engine/gates.py), so files that never reach the commit cannot make
them pass.

Scripted agents whose ``run`` steps leave such files with real shell commands: a
conftest.py a new self-ignoring ``.gitignore`` hides from git, and a ``.pyc`` (matched by
``[repository] ignore``) standing in for the ``.py`` it deleted. Each is caught at the
gate, named in the feedback, and the honest second attempt merges a job branch that
passes its own frozen test."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from director_tui.engine import jobs
from director_tui.engine.events import GateResult
from director_tui.engine.models import RunState
from tests.conftest import run_git
from tests.run_fixture import (
    JOB_ID,
    PY,
    NodeSpec,
    Recorder,
    build_job,
    job_file,
    run,
    solve,
    write_script,
)


class PytestNode(NodeSpec):
    """A node whose test runs under pytest, so a conftest.py can steer it."""

    @property
    def test_cmd(self) -> str:
        # Without this venv's pytest plugins (hypothesis, textual's snapshots...), as the
        # demo's gates: ~0.75 s of CPU less a pytest start, and a conftest.py still counts.
        return f"PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {PY} -m pytest -q -p no:cacheprovider {self.test_path}"


ADD = PytestNode(
    "add",
    "calc/add.py",
    "from calc.add import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
    "def add(a, b):\n    return a + b\n",
)
# Makes the frozen test pass without calc/add.py doing anything: it replaces the module.
CONFTEST = (
    "import sys, types\n"
    "module = types.ModuleType('calc.add')\n"
    "module.add = lambda a, b: a + b\n"
    "sys.modules['calc.add'] = module\n"
)


def _attempt(spec: NodeSpec, steps: list[dict[str, Any]], attempt: int) -> dict[str, Any]:
    return {**solve(spec), "steps": steps, "attempt": attempt}


def _job_branch_passes_its_test(store: Any, spec: NodeSpec, tmp_path: Path) -> bool:
    """Check the job branch out afresh and run the node's frozen test there."""
    checkout = tmp_path / "fresh"
    run_git(store.repo, "worktree", "add", "-q", "--detach", str(checkout), jobs.job_branch(JOB_ID))
    proc = subprocess.run(spec.test_cmd, shell=True, cwd=checkout, capture_output=True, check=False)
    return proc.returncode == 0


def _gates(rec: Recorder) -> list[GateResult]:
    return [g for g in rec.of(GateResult) if g.node_id == "add"]


def test_a_conftest_hidden_by_a_new_gitignore_does_not_pass_the_gate(tmp_path: Path) -> None:
    store = build_job(tmp_path, [ADD])
    sneaky = [
        {"run": ADD.test_cmd},
        {"write": "conftest.py", "content": CONFTEST},
        # The rule hides conftest.py and itself: neither shows in git status.
        {"run": "printf 'conftest.py\\n.gitignore\\n' > .gitignore && " + ADD.test_cmd},
    ]
    write_script(store, [_attempt(ADD, sneaky, 1), solve(ADD)])
    rec = Recorder()
    outcome = run(store, rec)

    assert outcome.success, outcome.message
    first, second = _gates(rec)
    assert (first.check, first.passed) == ("tests", False)
    assert ".gitignore (an ignore rule)" in first.message and "conftest.py" in first.message
    assert "clean checkout" in first.message
    assert second.check == "passed"
    assert job_file(store, ADD.impl_path) == ADD.solution
    assert job_file(store, "conftest.py") is None and job_file(store, ".gitignore") is None
    assert _job_branch_passes_its_test(store, ADD, tmp_path)


def test_a_pyc_standing_in_for_a_deleted_py_does_not_pass_the_gate(tmp_path: Path) -> None:
    """``*.pyc`` is in the default ``[repository] ignore``: never committed. Python imports
    a sourceless ``calc/add.pyc``, so without a clean checkout the tests passed while the
    commit deleted ``calc/add.py``."""
    nodes = [
        NodeSpec(
            "add",
            "calc/add.py",
            "from calc.add import add\nassert add(2, 3) == 5\nprint('add ok')\n",
            "def add(a, b):\n    return a + b\n",
        )
    ]
    spec = nodes[0]
    store = build_job(tmp_path, nodes)
    compile_then_delete = (
        f"{PY} -c \"import py_compile; py_compile.compile('calc/add.py', cfile='calc/add.pyc')\""
        f" && rm calc/add.py && {spec.test_cmd}"
    )
    sneaky = [{"write": spec.impl_path, "content": spec.solution}, {"run": compile_then_delete}]
    write_script(store, [_attempt(spec, sneaky, 1), solve(spec)])
    rec = Recorder()
    outcome = run(store, rec)

    assert outcome.success, outcome.message
    first, second = _gates(rec)
    assert (first.check, first.passed) == ("tests", False)
    assert "calc/add.pyc" in first.message
    assert second.check == "passed"
    assert job_file(store, spec.impl_path) == spec.solution
    assert _job_branch_passes_its_test(store, spec, tmp_path)
    state = store.read_model(store.state, RunState)
    assert state is not None and state.nodes["add"].attempts == 2


def test_an_edit_hidden_by_skip_worktree_is_committed_and_judged(tmp_path: Path) -> None:
    """``git update-index --skip-worktree`` keeps a file out of ``add -A`` and ``reset
    --hard`` alike: the edit would be tested but never committed. The gate clears the
    mark first, so the edit is in the commit it tests."""
    nodes = [
        NodeSpec(
            "add",
            "calc/add.py",
            "from calc.add import add\nassert add(2, 3) == 5\nprint('add ok')\n",
            "def add(a, b):\n    return a + b\n",
        )
    ]
    spec = nodes[0]
    store = build_job(tmp_path, nodes)
    steps = [
        {"write": spec.impl_path, "content": spec.solution},
        {"run": f"git update-index --skip-worktree {spec.impl_path} && {spec.test_cmd}"},
    ]
    write_script(store, [_attempt(spec, steps, 1)])
    rec = Recorder()
    outcome = run(store, rec)

    assert outcome.success, outcome.message
    [gate] = _gates(rec)
    assert gate.check == "passed"
    assert job_file(store, spec.impl_path) == spec.solution
    assert _job_branch_passes_its_test(store, spec, tmp_path)
