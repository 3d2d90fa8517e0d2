"""Reading text the same way everywhere."""

from pathlib import Path


def read_text(path: str | Path) -> str:
    """The file's text, decoded as UTF-8 with undecodable bytes replaced."""
    return Path(path).read_bytes().decode("utf-8", errors="replace")
