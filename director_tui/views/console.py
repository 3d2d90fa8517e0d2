"""The console the progress printers write through."""

from __future__ import annotations

import os
import re
import sys

from rich.console import Console


class ProgressConsole(Console):
    """A rich console that goes quiet when its reader goes away.

    Rich's default answer to a closed pipe (``director run --no-tui | head``) is
    ``SystemExit`` — raised from inside an engine event callback, it stopped a plan or a
    run halfway. The work matters more than its progress lines: the rest of the output
    goes to /dev/null and the job carries on (``director status`` tells how it ended)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


# Off a terminal rich assumes 80 columns and squeezes tables to fit ("scrip…"); a log
# file or a pipe has no width, so tables get room to print whole.
PIPED_WIDTH = 160


def table_console() -> Console:
    """A console for tables: the terminal's width, or a wide page when piped (COLUMNS wins)."""
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(width=PIPED_WIDTH if piped else None, highlight=False)


# What a terminal acts on instead of printing: C0 controls but the tab, DEL, C1 controls,
# and the bidirectional overrides ("Trojan Source": code that reads other than it runs).
_UNSHOWN = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shown(text: str) -> str:
    """``text`` safe to print on the user's terminal, every character visible: text an
    agent wrote (a diff line, a file name) can carry escape sequences that clear the
    screen, move the cursor over a line or set the clipboard (OSC 52) — a reviewer must
    see the bytes, not what a terminal makes of them. Such characters read ``\\x1b``,
    ``\\u202e``. Rich strips a few (BEL, CR) itself, never ESC."""
    return _UNSHOWN.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
