"""Rows of text in aligned columns for a terminal, measured in display cells.

A Chinese character takes two cells of a terminal, so ``str.ljust`` (which
counts characters) leaves a column of Chinese names misaligned. The width
comes from the standard library's East Asian Width property: enough for the
names and ids of a configuration, and no dependency for it on an edge box
(``wcwidth`` would be the library for emoji and the rarer scripts).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

GAP = "  "


def display_width(text: str) -> int:
    """Terminal cells ``text`` takes: wide and full-width characters two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def aligned(rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    """Each row as a line, every column but the last padded to its widest cell."""
    widths = [
        max(display_width(row[column]) for row in rows if column < len(row))
        for column in range(max((len(row) for row in rows), default=0))
    ]
    lines = []
    for row in rows:
        cells = [
            cell + " " * (widths[column] - display_width(cell)) if column < len(row) - 1 else cell
            for column, cell in enumerate(row)
        ]
        lines.append(indent + GAP.join(cells))
    return lines
