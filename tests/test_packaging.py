"""The wheel carries everything the program reads at run time, and installs a `director`."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return next(out.glob("director_tui-*.whl"))


def test_wheel_ships_prompts_styles_config_and_demo(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    source = {p.relative_to(ROOT).as_posix() for p in (ROOT / "director_tui").rglob("*")}
    for kind in ("*.md", "*.tcss"):
        expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "director_tui").rglob(kind)}
        assert expected, kind
        assert expected <= names, sorted(expected - names)
    assert "director_tui/config.example.toml" in names
    data = [
        n
        for n in source
        if "/demo/" in n and "__pycache__" not in n and "." in n.rsplit("/", 1)[-1]
    ]
    assert set(data) <= names, sorted(set(data) - names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "director = director_tui.cli:main" in text


def test_installed_wheel_runs_without_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    probe = (
        "from director_tui.engine.prompts import all_role_prompts;"
        "from director_tui.engine.config import example_config_text;"
        "from director_tui import demo;"
        "assert all(all_role_prompts().values());"
        "assert '[tiers]' in example_config_text();"
        "assert 'wordfreq' in demo.spec_markdown();"
        "from director_tui.cli import main;"
        "print(demo.__file__)"
    )
    # -I would drop PYTHONPATH; -S keeps the editable checkout's import hook out, and the
    # run-time dependencies come from this interpreter's site-packages, listed after.
    import site

    paths = [str(target), *site.getsitepackages()]
    out = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path[:0] = {paths!r}; {probe}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(target))  # from the wheel, not the checkout


def test_wheel_ships_no_test_support(wheel: Path) -> None:
    """Sample jobs for snapshots, screenshots and benches live in tests/support/, not in
    the package a user installs."""
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if "fixtures" in n or n.startswith("tests/")], names
    assert "director_tui/tui/app.py" in names  # the check looks at a real listing


def test_license_is_an_spdx_string_so_setuptools_does_not_warn() -> None:
    """`license = { text = "MIT" }` made every install print setuptools' deprecation
    warning about project.license; the SPDX string needs setuptools 77+."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    assert "setuptools>=77" in project["build-system"]["requires"]


def test_make_demo_installs_the_program_without_the_test_toolchain(tmp_path: Path) -> None:
    """`make demo` is a new user's first command: the runtime only, not mypy, ruff,
    hypothesis… (the `[test]` extra), which took a minute before the first screen."""
    plan = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "demo", f"VENV={tmp_path / 'venv'}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "pip install -q -e .\n" in plan
    assert "[test]" not in plan
    assert "director demo" in plan
