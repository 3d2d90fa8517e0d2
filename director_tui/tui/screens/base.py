"""What every director screen shares: typed access to the app and the footer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import events
from textual.screen import Screen

if TYPE_CHECKING:
    from director_tui.tui.app import DirectorApp


class DirectorScreen(Screen[Any]):
    # Set at the end of each screen's on_mount: before that its widgets do not exist, and
    # the app's timer or a stage change must not ask it to repaint.
    ready = False

    @property
    def director(self) -> DirectorApp:
        return self.app  # type: ignore[return-value]

    def reload(self) -> None:
        """Re-read the store (after a stage change or an engine job)."""

    def on_screen_resume(self) -> None:
        if self.ready:
            self.reload()

    def on_resize(self, event: events.Resize) -> None:
        # the app's title (shared by every screen) fits itself to the new width
        self.director.fit_title()
