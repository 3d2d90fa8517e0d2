"""How `director status` and `director run` print: tables whole when piped, scripted roles named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.run_fixture import build_job, run, sample_nodes, solve, write_script


def test_piped_status_keeps_every_column_whole(tmp_path: Path) -> None:
    nodes = sample_nodes()
    store = build_job(tmp_path, nodes)
    write_script(store, [solve(n) for n in nodes])
    assert run(store).outcome == "success"
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = subprocess.run(
        [sys.executable, "-m", "director_tui", "status", "--repo", str(store.repo)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    rows = [line for line in out.splitlines() if "scripted/" in line]
    assert len(rows) == len(nodes), out
    assert all("scripted/cheap" in row and "…" not in row for row in rows), out
    assert "saw fail" in out and "watch-it-fail" not in out  # plain words (issue 14)


def test_the_run_line_names_only_the_scripted_roles() -> None:
    from director_tui.views.run_view import scripted_note

    mixed = {"planner": "opencode/big", "executor": "scripted/cheap", "reviewer": "scripted/r"}
    assert scripted_note(mixed) == " [magenta](scripted: executor, reviewer)[/]"
    assert scripted_note({"executor": "scripted/cheap"}) == " [magenta](scripted agents)[/]"
    assert scripted_note({"executor": "opencode/x"}) == ""
