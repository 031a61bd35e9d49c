"""The plain-text table the small bench scripts print: first column left-aligned, the others
right-aligned, columns separated by " | " under a "-+-" rule."""

from __future__ import annotations


def print_rows(header: list[str], rows: list[list[str]]) -> None:
    """Print ``header`` and ``rows`` (lists of cell strings of equal length) as one table."""
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for k, r in enumerate([header, *rows]):
        print(" | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if k == 0:
            print("-+-".join("-" * w for w in widths))
