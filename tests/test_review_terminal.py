"""`director review` shows an agent's diff to a human who decides on it (found by
outside-in QA): what the agent wrote must reach the terminal as visible characters — an
escape sequence in a diff line erased or overwrote lines, set the clipboard (OSC 52) —
and a comment the user types wrong is refused instead of kept unusable."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from director_tui.engine import jobs
from tests.cli import director_on
from tests.conftest import run_git
from tests.run_fixture import JOB_ID, build_job, run, sample_nodes, solve, write_script

# Erase the line and go back to its start (the next text overwrites what was shown), put
# "owned" on the clipboard, flip the rest of the line right-to-left.
HIDING = "\x1b[2K\x1b[1G\x1b]52;c;b3duZWQ=\x1b\\\u202e"


def test_escape_sequences_in_an_agents_diff_are_shown_not_acted_on(tmp_path: Path) -> None:
    add = sample_nodes()[0]
    add = replace(add, solution=add.solution + f"# {HIDING}hidden\n")
    store = build_job(tmp_path, [add])
    write_script(store, [solve(add)])
    assert run(store).success
    # The header names the job branch before the merge, then the merge (not the merge twice).
    branch = jobs.job_branch(JOB_ID)
    before, merge = run_git(store.repo, "rev-parse", f"{branch}^1", branch).split()
    comment = "calc/add.py:3: what is \x1b[8mthis"
    shown = director_on(store.repo, "review", "add", "--comment", comment)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"merged  · {before[:10]}..{merge[:10]}" in out, out
    assert "\x1b" not in out and "\u202e" not in out, repr(out)
    assert "# \\x1b[2K\\x1b[1G\\x1b]52;c;b3duZWQ=\\x1b\\\\u202ehidden" in out, out
    assert "calc/add.py:3: what is \\x1b[8mthis" in out, out


def test_a_comment_with_no_text_line_zero_or_a_backwards_hunk_is_refused(
    tmp_path: Path,
) -> None:
    store = build_job(tmp_path, sample_nodes()[:1])
    for bad in ("", "   ", "calc/add.py:0: zero", "calc/add.py:5-2: backwards"):
        refused = director_on(store.repo, "review", "add", "--comment", bad)
        assert refused.returncode == 2, (bad, refused.stdout, refused.stderr)
        assert "comment" in refused.stderr, refused.stderr
        rejected = director_on(store.repo, "reject", "add", "--comment", bad)
        assert rejected.returncode == 2, (bad, rejected.stdout, rejected.stderr)
    assert not (store.root / "reviews" / "add.json").exists()
    fine = director_on(store.repo, "review", "add", "--comment", "calc/add.py:2-2: one line")
    assert fine.returncode == 0 and "calc/add.py:2: one line" in fine.stdout, fine.stdout
