"""AGENTS.md / CLAUDE.md discovery and scoping, on real git repositories."""

from __future__ import annotations

from pathlib import Path

from director_tui.engine.guidance import find_guidance, guidance_for, guidance_prompt
from tests.conftest import make_repo


def _repo(tmp_path: Path) -> Path:
    repo = make_repo(
        tmp_path / "repo",
        {
            "AGENTS.md": "Use tabs? No: four spaces.\n",
            "src/api/CLAUDE.md": "API handlers return dicts.\n",
            "src/api/handlers.py": "",
            "docs/AGENTS.md": "Docs are in British English.\n",
            "src/core.py": "",
            ".gitignore": "build/\n",
        },
    )
    (repo / "build").mkdir()
    (repo / "build" / "AGENTS.md").write_text("ignored build output\n")
    (repo / "web").mkdir()
    (repo / "web" / "AGENTS.md").write_text("untracked but not ignored\n")
    return repo


def test_finds_tracked_and_untracked_but_not_ignored(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    paths = [g.path for g in find_guidance(repo)]
    assert paths[0] == "AGENTS.md"  # the root comes first
    assert set(paths) == {"AGENTS.md", "src/api/CLAUDE.md", "docs/AGENTS.md", "web/AGENTS.md"}


def test_nested_guidance_is_scoped_to_its_folder(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    assert [g.path for g in guidance_for(repo, ["src/core.py"])] == ["AGENTS.md"]
    api = [g.path for g in guidance_for(repo, ["src/api/handlers.py", "tests/test_api.py"])]
    assert api == ["AGENTS.md", "src/api/CLAUDE.md"]
    # a sibling folder whose name starts the same is not inside the scope
    assert [g.path for g in guidance_for(repo, ["src/api2/x.py"])] == ["AGENTS.md"]


def test_prompt_section_names_files_and_scopes(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    text = guidance_prompt(repo, ["src/api/handlers.py"])
    assert "four spaces" in text and "API handlers return dicts" in text
    assert "applies to src/api/" in text
    assert "British English" not in text


def test_no_guidance_gives_empty_section(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "plain")
    assert guidance_prompt(repo, ["a.py"]) == ""


def test_outside_git_walks_the_tree(tmp_path: Path) -> None:
    (tmp_path / "loose" / "pkg").mkdir(parents=True)
    (tmp_path / "loose" / "pkg" / "AGENTS.md").write_text("pkg rules\n")
    (tmp_path / "loose" / "node_modules").mkdir()
    (tmp_path / "loose" / "node_modules" / "AGENTS.md").write_text("vendored\n")
    assert [g.path for g in find_guidance(tmp_path / "loose")] == ["pkg/AGENTS.md"]
