"""Splitting text into words."""

import re

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-cased words; punctuation dropped, apostrophes inside words kept."""
    return _WORD.findall(text.lower())
