"""The run board's column widths, from the content and the terminal's width (no Textual).

A column sized once by its first cells cut what came later ("◇ reviewi", "■ cancell",
"escalate applie") with half the screen free, and a board attached to a headless run,
built from a different first content, sized them differently. Here every width is a
function of what the rows hold and of the width there is: the same rows give the same
table in-process and attached. The state column is as wide as the longest state when
there is room (a state change then moves no column), else as its cells; the last column
takes what is left.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.cells import cell_len

from director_tui.tui.board import COLUMNS, GLYPHS, STATUS_WORDS

CELL_PADDING = 1  # the DataTable's padding on each side of a cell
LAST_EVENT_MIN = 16  # below this the table scrolls sideways rather than cut more


def state_cell(status: str) -> str:
    return f"{GLYPHS.get(status, '?')} {STATUS_WORDS.get(status, status)}"


def column_widths(
    node_ids: Iterable[str], rows: Iterable[Sequence[str]], width: int
) -> tuple[int, ...]:
    """Content widths of ``COLUMNS`` (node first, then a row's cells) in ``width`` cells.

    Every column but the last is as wide as its widest cell or header (the state column
    as wide as any state can be, when that leaves the last its minimum); the last column gets the rest of ``width``, never less
    than :data:`LAST_EVENT_MIN`."""
    widest = [cell_len(name) for name in COLUMNS]
    for node_id in node_ids:
        widest[0] = max(widest[0], cell_len(node_id))
    for cells in rows:
        for index, cell in enumerate(cells, start=1):
            widest[index] = max(widest[index], cell_len(cell))
    any_state = max(cell_len(state_cell(status)) for status in GLYPHS)
    if _last_column([widest[0], any_state, *widest[2:-1]], width) >= LAST_EVENT_MIN:
        widest[1] = max(widest[1], any_state)  # room for every state: none moves the rest
    fixed = widest[:-1]
    return (*fixed, max(LAST_EVENT_MIN, _last_column(fixed, width)))


def _last_column(fixed: list[int], width: int) -> int:
    """What ``width`` leaves the last column after ``fixed`` and every cell's padding."""
    return width - sum(w + 2 * CELL_PADDING for w in fixed) - 2 * CELL_PADDING
