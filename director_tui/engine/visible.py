"""Text an agent wrote, made safe to put on a terminal: every character visible.

A diff line or a file name can carry escape sequences that clear the screen, move the
cursor over a line or set the clipboard (OSC 52), and bidirectional overrides that make
code read other than it runs ("Trojan Source"). A reviewer must see the bytes, not what
a terminal makes of them: ``director review`` (views/review_view.py) and the app's diff
view (tui/widgets/diff_view.py) both show such text through :func:`visible`.
"""

from __future__ import annotations

import re

# C0 controls but the tab, DEL, C1 controls, and the bidirectional overrides.
_UNSHOWN = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` with what a terminal would act on written out: ``\\x1b``, ``\\u202e``.
    (Rich strips a few controls itself, BEL and CR, never ESC.)"""
    return _UNSHOWN.sub(_escaped, text)


def visible_lines(text: str) -> str:
    """:func:`visible` line by line: the line breaks kept as breaks (a transcript's text,
    a command's output), every other control written out."""
    return "\n".join(visible(line) for line in text.split("\n"))


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
