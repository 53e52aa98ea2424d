"""Plain-text tables for the terminal (the CLI, sweep and backtest leaderboards)."""

from __future__ import annotations


def table(rows: list[dict], columns: list[str]) -> str:
    """``rows`` as aligned columns with a header rule; ``-`` for missing values."""
    if not rows:
        return "(none)"
    cells = [[str(r.get(c, "")) if r.get(c) is not None else "-" for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)
