"""A test file the repository ignores (found by outside-in QA with a Node.js repository
whose .gitignore has ``*.js``): planning stopped on git's own "The following paths are
ignored … Use -f if you really want to add them", naming neither the rule nor the way
out. It now names the file, the rule and what to do."""

from __future__ import annotations

from pathlib import Path

from tests.cli import director_on
from tests.plan_helpers import base_entries, good_tests, make_sample


def test_tests_matched_by_the_repositorys_gitignore_are_named_with_their_rule(
    tmp_path: Path,
) -> None:
    repo, _ = make_sample(
        tmp_path, [*base_entries(), *good_tests()], extra_files={".gitignore": "tests/test_d*\n"}
    )
    done = director_on(
        repo, "plan", "add mul and div", "--auto", "--no-critique", "--parallel", "1"
    )
    assert done.returncode == 1, done.stdout + done.stderr
    said = done.stderr
    assert "tests/test_div.py (.gitignore:1:tests/test_d*)" in said, said
    assert "Use -f" not in said and "director plan --force" in said, said
