"""The report of a sweep (``specloop run -m``) or a policy backtest (``loop --backtest -m``):
the leaderboard the sweep wrote, as a chart and a table (and, for a backtest, each policy's
metric per batch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from specloop import redact

from . import _records as rec
from . import _svg as svg
from ._html import Page, badge, charts, code, kv, note, table, tiles

SKIP = {"rank", "job", "overrides", "status", "seconds", "cache_hits", "version", "run_id",
        "error", "worst_batch", "retrains", "promotions", "batches"}


def build(ctx: Any, given: str) -> Page:
    folder = rec.sweep_dir(Path(ctx.project_dir), given)
    board = rec.leaderboard(folder)
    rows = [{**r, "overrides": redact(ctx, r.get("overrides") or ""),
             "error": redact(ctx, r["error"]) if r.get("error") else None}
            for r in board["rows"]]
    metric_cols = list(dict.fromkeys(k for r in rows for k in r if k not in SKIP))
    primary = board["primary"] if board["primary"] in metric_cols else \
        next((m for m in metric_cols if m.startswith("mean_")), metric_cols[0] if metric_cols
             else None)
    if primary in metric_cols:
        metric_cols.remove(primary)
        metric_cols.insert(0, primary)
    what = "policy backtest" if board["kind"] == "backtest" else "sweep"
    ok = [r for r in rows if r.get("status") == "succeeded"]
    page = Page(board["kind"], f"{ctx.model_name}: {what} {folder.name}",
                f"{len(ok)} of {len(rows)} member(s) succeeded"
                + (f"; ranked by {primary}" if primary and ok else ""))
    best = ok[0] if ok else None
    page.add("summary", "Summary", tiles([("members", len(rows)), ("succeeded", len(ok)),
                                          *([(f"best {primary}", best.get(primary))]
                                            if best and primary else [])]),
             kv([("best", (best or {}).get("overrides") or (f"job {best.get('job')}" if best
                                                             else None)),
                 ("folder", code(folder)), ("leaderboard", code(board["file"])),
                 ("registered", _registered(board.get("registered")))]))
    labels = [_label(r) for r in rows]
    figures = []
    if primary and ok:
        figures.append((svg.bar_chart(
            "leaderboard", f"{primary} per member (best first)", labels,
            [r.get(primary) if r.get("status") == "succeeded" else None for r in rows],
            horizontal=True, x_label=primary,
            colours=[svg.PALETTE[2] if r is best else svg.PALETTE[0] for r in rows],
            titles=[f"#{r.get('rank') or '-'} {_label(r)}: {svg.fmt(r.get(primary), 4)}"
                    + (f" (failed: {r.get('error')})" if r.get("status") != "succeeded" else "")
                    for r in rows]), "green: the best member; failed members are marked"))
    if any(r.get("seconds") for r in ok):
        figures.append((svg.bar_chart(
            "member-seconds", "Seconds per member", labels,
            [r.get("seconds") if r.get("status") == "succeeded" else None for r in rows],
            horizontal=True, x_label="seconds"), "wall time of each member"))
    if board["kind"] == "backtest" and board.get("months"):
        figures.append((_months_chart(board["months"], primary), "R: retrained and promoted"))
    page.add("leaderboard", "Leaderboard", charts(*figures) if figures else
             note("no member succeeded, so there is nothing to chart; the errors are below"))
    shown = [{**r, "status": badge(r.get("status") or "-",
                                   "ok" if r.get("status") == "succeeded" else "bad")}
             for r in rows]
    columns = ["rank", "job", "overrides", "status", *metric_cols,
               *[c for c in ("worst_batch", "retrains", "promotions", "seconds", "cache_hits",
                             "version", "run_id", "error") if any(r.get(c) is not None
                                                                  for r in rows)]]
    page.add("table", "Members", table(shown, columns))
    return page


def _label(r: dict) -> str:
    return r.get("overrides") or f"job {r.get('job')}"


def _registered(reg: dict | None) -> str | None:
    if not reg:
        return None
    return (f"job {reg.get('job')} as v{reg.get('version')}"
            + (f" ({reg['gate']})" if reg.get("gate") else ""))


def _months_chart(months: list[dict], primary: str | None) -> str:
    """Each policy's metric per batch (the backtest's month table: ``"0.9930 R"`` cells)."""
    policies = [k for k in months[0] if k != "batch"]
    series = []
    for k, p in enumerate(policies):
        values = []
        for m in months:
            cell = str(m.get(p) or "").split()
            try:
                values.append(float(cell[0]) if cell else None)
            except ValueError:
                values.append(None)
        series.append({"label": p, "values": values, "colour": svg.PALETTE[k % len(svg.PALETTE)],
                       "legend": True,
                       "points": [{"title": f"{m['batch']} {p}: {m.get(p)}"} for m in months]})
    metric = (primary or "").removeprefix("mean_") or "metric"
    return svg.line_chart("backtest-months", f"{metric} per batch and policy", series,
                          x_labels=[m["batch"] for m in months], x_label="batch",
                          y_label=metric)
