"""The console the progress printers write through."""

from __future__ import annotations

import os
import sys

from rich.console import Console

from director_tui.engine.visible import visible


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


# Text an agent wrote, printed: every character visible (escape sequences, bidi overrides).
shown = visible
