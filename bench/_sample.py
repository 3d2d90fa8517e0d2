"""A synthetic job for the run-engine benchmarks: a repo, a job branch, an approved plan
of N nodes (each writes one file; its "test" checks that file) and a scripted agent whose
work takes a known time. Shared by ``overhead.py`` and ``makespan.py``."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from director_tui.engine import jobs
from director_tui.engine.models import Node, Plan, PlanStage, Stage
from director_tui.engine.store import Store

JOB_ID = "bench-job"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def build(
    root: Path,
    deps: dict[str, list[str]],
    durations: dict[str, float],
    *,
    extra_config: str = "",
) -> Store:
    """``deps``: node id → its dependencies (in plan order); ``durations``: agent seconds."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "bench@localhost")
    git(repo, "config", "user.name", "bench")
    (repo / "src").mkdir()
    (repo / "checks").mkdir()
    (repo / "README.md").write_text("# bench\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    branch = jobs.job_branch(JOB_ID)
    nodes: list[Node] = []
    for nid in deps:
        check = repo / "checks" / f"{nid}.sh"
        check.write_text(f"grep -q done src/{nid}.txt\n")
    git(repo, "checkout", "-q", "-b", branch)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "red checks")
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    for nid, node_deps in deps.items():
        test = f"checks/{nid}.sh"
        content = git(repo, "show", f"{branch}:{test}").encode() + b"\n"
        nodes.append(
            Node(
                id=nid,
                title=nid,
                spec=f"write done into src/{nid}.txt",
                files=[f"src/{nid}.txt"],
                depends_on=node_deps,
                test_cmd=f"sh {test}",
                tests=[test],
                test_hashes={test: hashlib.sha256(content).hexdigest()},
            )
        )
    store = Store(repo)
    store.ensure()
    store.write_model(
        store.plan, Plan(job_id=JOB_ID, job_branch=branch, base_commit=base, nodes=nodes)
    )
    store.write_model(
        store.plan_stage,
        PlanStage(job_id=JOB_ID, task="bench", stage=Stage.approved, job_branch=branch),
    )
    store.config.write_text(
        "[tiers]\n"
        + "".join(
            f'{role} = "scripted/bench"\n'
            for role in ("planner", "test_author", "executor", "explorer", "reviewer", "escalation")
        )
        + "[limits]\nflake_runs = 1\ncost_ceiling_usd = 0\n"
        + extra_config
    )
    calls = [
        {
            "role": "executor",
            "node": nid,
            "steps": [
                *([{"sleep": durations[nid]}] if durations.get(nid) else []),
                {"write": f"src/{nid}.txt", "content": "done\n"},
            ],
            "cost": 0.0,
        }
        for nid in deps
    ]
    (store.root / "script.json").write_text(json.dumps({"calls": calls}))
    return store
