"""A `[notify] command` for tests: a real process that appends what it was given."""

from __future__ import annotations

import json
import sys
from pathlib import Path

# A notify command: appends what it was given (stdin and the DIRECTOR_* variables) to a
# JSON-lines file, so a test reads what the user's command would have received.
RECORDER_SCRIPT = """\
import json, os, sys
record = {"stdin": json.loads(sys.stdin.read()),
          "env": {k: v for k, v in os.environ.items() if k.startswith("DIRECTOR_")},
          "cwd": os.getcwd()}
with open(sys.argv[1], "a") as fh:
    fh.write(json.dumps(record) + "\\n")
"""


def recording_command(tmp_path: Path) -> tuple[list[str], Path]:
    """A notify command as an argv, and the file it appends each call to."""
    script = tmp_path / "notify_recorder.py"
    script.write_text(RECORDER_SCRIPT)
    return [sys.executable, str(script), str(tmp_path / "notified.jsonl")], (
        tmp_path / "notified.jsonl"
    )


def notified(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
