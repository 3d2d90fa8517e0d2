"""docs/providers.md, followed literally: its worked example's files and commands are read
out of the markdown (fences marked ``file=<path>`` and ``run``), the project's fake model
server stands in for Ollama, and the real OpenCode answers `director doctor` — which must
end exactly as the page says it does. Edit the page and this test follows it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from fake_model_server import FakeModelServer

from tests.cli import director

pytestmark = pytest.mark.e2e

DOC = Path(__file__).parents[2] / "docs" / "providers.md"
FENCE = re.compile(r"^( *)```(\w+)([^\n]*)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
OLLAMA_URL = "http://localhost:11434/v1"


def worked_example() -> list[tuple[str, str, str]]:
    """(language, info after it, body) of every fence in the worked example, in order."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Worked example") :]
    section = section[: section.find("\n## ", 1) if "\n## " in section[1:] else None]
    blocks = []
    for indent, lang, info, body in FENCE.findall(section):
        lines = [line.removeprefix(indent) for line in body.splitlines()]
        blocks.append((lang, info.strip(), "\n".join(lines) + "\n"))
    return blocks


def test_the_worked_local_example_ends_with_doctor_green(
    opencode_bin: Path, fake_server: FakeModelServer, git_repo: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        # the user's HOME, as the page's "~" means; the agents get it too
        "HOME": str(home),
        "DIRECTOR_AGENT_HOME": str(home),
        "DIRECTOR_OPENCODE_BIN": str(opencode_bin),
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_MODELS_FETCH": "1",  # no network in tests
    }
    blocks = worked_example()
    files = [(info, body) for lang, info, body in blocks if info.startswith("file=")]
    commands = [body for lang, info, body in blocks if lang == "sh" and info == "run"]
    expected = [body for lang, info, body in blocks if info == "doctor-output"]
    assert files and commands and expected, "the worked example lost its marked fences"
    assert OLLAMA_URL in files[0][1]

    for info, body in files:
        target = info.removeprefix("file=")
        path = home / target.removeprefix("~/") if target.startswith("~/") else git_repo / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body.replace(OLLAMA_URL, f"{fake_server.url}/v1"))

    result = None
    for command in commands:
        argv = shlex.split(command.replace("\\\n", " "))  # a shell joins continued lines
        assert argv[0] == "director", command
        result = director(*argv[1:], cwd=git_repo, env=env)
        assert "Traceback" not in result.stderr
        assert result.returncode == 0 or command.strip() == "director doctor", result.stderr
    assert result is not None and commands[-1].strip() == "director doctor"
    assert result.returncode == 0, result.stdout + result.stderr
    for line in expected[0].splitlines():
        assert line in result.stdout, f"{line!r} not in:\n{result.stdout}"
    assert result.stdout.rstrip().endswith(expected[0].rstrip().splitlines()[-1])
