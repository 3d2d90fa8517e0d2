"""A footer that shows whole keys only: what does not fit is left out, never cut.

Textual's footer lays its keys in a row and clips the row at the command-palette key, so
at 120 columns Gate 1 ended in a bare "f5" and at 80 its ``^q Quit`` went under the
palette. Here the keys that do not fit are dropped whole, the least needed first: the
app's screen switches (F-keys) from the right, then the screen's own keys from the right;
``^q`` quit stays. Every dropped key still works and is in the command palette.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len
from textual import events
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

QUIT_KEY = "ctrl+q"
# Cells a key takes besides its key and description: the space between them (compact
# style) and the margin after it.
KEY_GAP = 1
KEY_MARGIN = 1
PALETTE_EXTRA = 1  # the palette key's left border


def key_width(key_display: str, description: str) -> int:
    """The cells one compact footer key takes, its margin included."""
    text = key_display + (" " * KEY_GAP + description if description else "")
    return cell_len(text) + KEY_MARGIN


def keys_that_fit(keys: list[tuple[str, int]], width: int, app_keys: frozenset[str]) -> list[str]:
    """Of ``keys`` (key, cells) in footer order, the ones to show within ``width`` cells:
    app keys dropped first, then the screen's, each from the right; quit never."""
    shown = [key for key, _cells in keys]
    cells = dict(keys)
    droppable = [k for k in reversed(shown) if k in app_keys and k != QUIT_KEY]
    droppable += [k for k in reversed(shown) if k not in app_keys and k != QUIT_KEY]
    total = sum(cells[k] for k in shown)
    for key in droppable:
        if total <= width:
            break
        shown.remove(key)
        total -= cells[key]
    return shown


class FittingFooter(Footer):
    """``Footer(compact=True)`` whose keys are whole at any width."""

    def __init__(self) -> None:
        super().__init__(compact=True)
        self._laid_out_for = 0

    def compose(self) -> Iterable[Widget]:
        widgets = list(super().compose())
        keys = [w for w in widgets if isinstance(w, FooterKey)]
        palette = [k for k in keys if k.has_class("-command-palette")]
        plain = [k for k in keys if not k.has_class("-command-palette")]
        width = self.size.width or self.app.size.width
        room = width - sum(key_width(k.key_display, k.description) + PALETTE_EXTRA for k in palette)
        app_keys = frozenset(key for binding in self.app.BINDINGS for key in _keys_of(binding))
        fitting = set(
            keys_that_fit(
                [(k.key, key_width(k.key_display, k.description)) for k in plain],
                room,
                app_keys,
            )
        )
        self._laid_out_for = width
        return [
            w for w in widgets if not isinstance(w, FooterKey) or w in palette or w.key in fitting
        ]

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._laid_out_for:
            self.call_after_refresh(self.recompose)


def _keys_of(binding: object) -> list[str]:
    key = getattr(binding, "key", None)
    if key is None and isinstance(binding, tuple):
        key = binding[0]
    return [part.strip() for part in str(key or "").split(",") if part.strip()]
