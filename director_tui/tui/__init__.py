"""The Textual app: screens, widgets and styles over the engine (which never imports this).

``launch`` is what the CLI calls on its TUI branch; it imports Textual only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

ScreenName = Literal["home", "gate1", "gate2", "run", "bench"]


def launch(
    repo: Path,
    screen: ScreenName = "home",
    *,
    start_run: bool = False,
    parallel: int | None = None,
    max_attempts: int | None = None,
) -> int:
    """Open the app on ``repo`` at ``screen``; returns the process exit code.

    ``start_run=True`` starts (or resumes) the run in the app's engine worker, which is what
    ``director run`` on a terminal wants; otherwise the app follows whatever is running.
    ``parallel``/``max_attempts`` override the config for runs started from this app.
    """
    from director_tui.tui.app import DirectorApp, prefer_ui_thread

    prefer_ui_thread()
    app = DirectorApp(
        repo, start=screen, start_run=start_run, parallel=parallel, max_attempts=max_attempts
    )
    code = app.run()
    if app.farewell:
        print(app.farewell)
    return int(code or 0)
