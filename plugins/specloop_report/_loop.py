"""The report of the loop: its timeline (the champion's metric per batch, the drift share,
decisions, promotions and rollbacks) from the registry's batch records and alias history,
and per-feature drift: reference and current distributions of each drifted column, recomputed
from the frames the loop stored (the batch) and the champion's recorded training reference."""

from __future__ import annotations

import json
from typing import Any

from specloop import ConfigError

from . import _records as rec
from . import _svg as svg
from ._html import Page, badge, charts, details, note, table, tiles

BINS = 30            # histogram bins of a numeric feature
MAX_CATEGORIES = 12  # categories drawn per categorical feature; the rest is "(other)"
MAX_BATCHES_DRAWN = 12  # batches whose drifted features get distributions (the newest)
OUTCOME_COLOUR = {"kept": svg.PALETTE[0], "promoted": svg.PALETTE[2],
                  "kept champion": svg.PALETTE[1]}


def build(ctx: Any) -> Page:
    batches = rec.loop_batches(ctx)
    if not batches:
        raise ConfigError(f"the loop has processed no batch of model {ctx.model_name!r} yet",
                          key="--loop", expected="batches recorded by 'specloop loop'",
                          fix="run the loop first: specloop loop (or report a run: "
                              "specloop report)")
    name = ctx.model_name
    history = ctx.registry.alias_history(name)
    aliases = ctx.registry.aliases(name)
    primary = batches[-1].get("metric")
    page = Page("loop", f"{name}: the loop", f"{len(batches)} batch(es) processed, "
                f"{batches[0]['batch']} … {batches[-1]['batch']}; champion now "
                f"v{aliases.get('champion', '-')}")
    promotions = [b for b in batches if b.get("outcome") == "promoted"]
    retrains = [b for b in batches if b.get("retrain")]
    rollbacks = [h for h in history if h["alias"] == "champion" and h["action"] == "rollback"]
    page.add("summary", "Summary", tiles([
        ("batches", len(batches)), ("rows scored", sum(b.get("rows") or 0 for b in batches)),
        ("retrains", len(retrains)), ("promotions", len(promotions)),
        ("rollbacks", len(rollbacks)), ("champion now", f"v{aliases.get('champion', '-')}"),
        ("last " + str(primary), batches[-1].get("value"))]))
    page.add("timeline", "Timeline", _timeline(ctx, batches, history, primary))
    page.add("drift", "Drift per feature", _drift(ctx, batches))
    page.add("batches", "Batches", _batch_table(batches))
    page.add("aliases", "Promotions and rollbacks", table(
        [{"at": h["at"], "alias": h["alias"], "action": h["action"],
          "move": (f"v{h['previous']} → " if h["previous"] else "→ ") + f"v{h['version']}",
          "reason": h["reason"]} for h in history],
        ["at", "alias", "action", "move", "reason"]))
    events = ctx.registry.events(name)
    if events:
        page.add("events", "Events", table(
            [{"at": e["at"], "batch": e["batch_id"], "event": e["event"],
              "detail": json.dumps(e["detail"], default=str)} for e in events],
            ["at", "batch", "event", "detail"]))
    return page


def _event_marks(batches: list[dict], history: list[dict]) -> list[tuple[float, str, str]]:
    """Promotions at their batch; rollbacks (made outside the loop) between the batches
    processed before and after them, by time."""
    marks: list[tuple[float, str, str]] = [
        (i, f"v{b['new_version']} promoted", svg.PALETTE[2])
        for i, b in enumerate(batches) if b.get("outcome") == "promoted"]
    times = [b.get("processed_at") for b in batches]
    for h in history:
        if h["alias"] != "champion" or h["action"] != "rollback":
            continue
        before = sum(1 for t in times if t and t <= h["at"])
        if before == 0:  # before the first batch: not on this timeline
            continue
        marks.append((min(before - 0.5, len(batches) - 0.5),
                      f"rollback v{h['previous']} → v{h['version']}", svg.PALETTE[4]))
    return marks


def _timeline(ctx: Any, batches: list[dict], history: list[dict], primary: str | None) -> str:
    labels = [b["batch"] for b in batches]
    marks = _event_marks(batches, history)
    points = [{"colour": OUTCOME_COLOUR.get(b.get("outcome"), svg.PALETTE[0]) if b.get("retrain")
               else svg.PALETTE[0],
               "title": f"{b['batch']}: {primary} {svg.fmt(b.get('value'))} (champion "
                        f"v{b.get('champion')}); {'retrain' if b.get('retrain') else 'keep'}: "
                        f"{b.get('reason')}"} for b in batches]
    series = [{"label": "champion on the batch", "values":
               [b.get("value") for b in batches], "points": points, "colour": svg.PALETTE[0]}]
    if any(b.get("challenger_value") is not None for b in batches):
        series.append({"label": "challenger on holdout", "colour": svg.PALETTE[2],
                       "values": [b.get("challenger_value") for b in batches]})
        series.append({"label": "champion on holdout", "colour": svg.PALETTE[1],
                       "values": [b.get("champion_value") for b in batches]})
    metric = svg.line_chart("timeline-metric", f"{primary} per batch", series, x_labels=labels,
                            x_label="batch", y_label=str(primary),
                            vlines=[m for m in marks])
    monitor = getattr(ctx.spec.components.get("monitor"), "config", None)
    share = getattr(monitor, "drift_share", None)
    drifted = [b.get("drift_status") == "drift" for b in batches]
    bars = svg.bar_chart(
        "timeline-drift", "Drift share per batch", labels,
        [b.get("drift_share") for b in batches], x_label="batch",
        y_label="share of drifted features", y_range=(0, 1),
        colours=[svg.PALETTE[4] if d else svg.PALETTE[5] for d in drifted],
        titles=[f"{b['batch']}: {svg.fmt(b.get('drift_share'))} "
                f"({', '.join(b.get('drifted_columns') or []) or 'no feature drifted'})"
                for b in batches],
        hlines=[(share, f"data-set drift at {svg.fmt(share)}")] if share is not None else [])
    decisions = sum(1 for b in batches if b.get("retrain"))
    return charts(
        (metric, "blue points: kept; green: retrained and promoted; orange: retrained, champion "
                 "kept. Dashed lines: promotions and rollbacks"),
        (bars, f"{decisions} retrain decision(s); red bars: the data set drifted"))


def _drift(ctx: Any, batches: list[dict]) -> str:
    columns = list(dict.fromkeys(c["column"] for b in batches
                                 for c in b.get("drift_columns") or []))
    if not columns:
        return note("no monitor recorded per-feature drift (monitor: none?)")
    matrix, texts, flags = [], [], []
    for b in batches:
        by = {c["column"]: c for c in b.get("drift_columns") or []}
        row, trow, frow = [], [], []
        for col in columns:
            c = by.get(col) or {}
            stat, thr = c.get("statistic"), c.get("threshold")
            ratio = None
            if stat is not None and thr:  # a p-value drifts below its threshold, others above
                ratio = thr / max(stat, 1e-12) if c.get("statistic_name") == "p_value" \
                    else stat / thr
            row.append(None if ratio is None else min(ratio, 2.0))
            trow.append(svg.fmt(stat) if stat is not None else (c.get("verdict") or "-"))
            frow.append(bool(c.get("drifted")))
        matrix.append(row)
        texts.append(trow)
        flags.append(frow)
    heat = svg.heatmap("drift-matrix", "Drift statistic per batch and feature", matrix,
                       [b["batch"] for b in batches], columns, x_label="feature",
                       y_label="batch", cell_text=texts, flags=flags, colour="234, 88, 12",
                       vmax=2.0)
    parts = [charts((heat, "each cell: the method's statistic; colour: statistic against its "
                           "threshold; outlined red: the feature drifted"))]
    drifted = [b for b in batches if b.get("drifted_columns")]
    if not drifted:
        return "".join(parts) + note("no feature drifted in any batch")
    references: dict[int, Any] = {}
    shown = drifted[-MAX_BATCHES_DRAWN:]
    if len(shown) < len(drifted):
        parts.append(note(f"distributions for the newest {len(shown)} of {len(drifted)} "
                          "batches with drifted features"))
    for n, b in enumerate(reversed(shown)):
        parts.append(details(f"{b['batch']}: {', '.join(b['drifted_columns'])} drifted "
                             f"(reference: champion v{b.get('champion')}'s training rows)",
                             _batch_distributions(ctx, b, references), open=n == 0))
    return "".join(parts)


def _reference(ctx: Any, number: int, cache: dict) -> tuple[Any, dict] | None:
    """The champion's recorded training reference and columns (verified), once per version."""
    if number not in cache:
        v = rec.version(ctx, number)
        data = rec.version_file(ctx, v, "reference", "train.parquet") if v else None
        cols = rec.version_file(ctx, v, "reference", "columns.json") if v else None
        cache[number] = None if data is None or cols is None else (rec.frame(data),
                                                                   json.loads(cols))
    return cache[number]


def _batch_distributions(ctx: Any, b: dict, references: dict) -> str:
    ref = _reference(ctx, b.get("champion"), references)
    current = rec.batch_frame(ctx, b)
    if ref is None or current is None:
        return note("the reference or the batch's stored frame is no longer in the store, so "
                    "its distributions cannot be drawn")
    reference, columns = ref
    by = {c["column"]: c for c in b.get("drift_columns") or []}
    figures = []
    for col in b["drifted_columns"]:
        if col not in reference.columns or col not in current.columns:
            continue
        c = by.get(col, {})
        categorical = col in (columns.get("categorical") or []) or c.get("type") == "categorical"
        chart = (categorical_chart if categorical else numeric_chart)(
            f"drift-{b['batch']}-{col}", f"{col} in {b['batch']}", reference[col], current[col])
        caption = "; ".join(x for x in (
            c.get("reason"), f"PSI {svg.fmt(c['psi'])}" if c.get("psi") is not None else None,
            f"missing {svg.fmt(c.get('missing_rate_reference'))} → "
            f"{svg.fmt(c.get('missing_rate_current'))}"
            if c.get("missing_rate_current") else None,
            f"{c.get('n_reference')} reference vs {c.get('n_current')} current values") if x)
        figures.append((chart, caption))
    return charts(*figures) if figures else note("no drifted column is in both frames")


def numeric_chart(name: str, title: str, ref: Any, cur: Any) -> str:
    """Reference and current shares per bin over shared edges (whole numbers with few values
    get one bin each; otherwise 30 bins between the 0.5th and 99.5th percentiles, the tails
    counted in the end bins)."""
    import numpy as np
    import pandas as pd

    r = pd.to_numeric(ref, errors="coerce").dropna().to_numpy(float)
    c = pd.to_numeric(cur, errors="coerce").dropna().to_numpy(float)
    both = np.concatenate([r, c])
    if both.size == 0:
        return svg.empty(name, title, "no values")
    lo, hi = float(both.min()), float(both.max())
    if np.all(both == np.round(both)) and hi - lo <= BINS:
        edges = np.arange(lo - 0.5, hi + 1.5)
    else:
        lo, hi = (float(x) for x in np.quantile(both, [0.005, 0.995]))
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, BINS + 1)
    groups = []
    for label, vals, colour in (("reference", r, svg.REFERENCE), ("current", c, svg.CURRENT)):
        counts, _ = np.histogram(np.clip(vals, edges[0], edges[-1]), bins=edges)
        groups.append((f"{label} ({len(vals)})", (counts / max(len(vals), 1)).round(5).tolist(),
                       colour))
    return svg.histogram_overlay(name, title, edges.round(6).tolist(), groups,
                                 x_label=title.split(" in ")[0])


def categorical_chart(name: str, title: str, ref: Any, cur: Any) -> str:
    """Shares per category (the most frequent ones; the rest as "(other)")."""
    r = ref.astype("string").fillna("(missing)").value_counts(normalize=True)
    c = cur.astype("string").fillna("(missing)").value_counts(normalize=True)
    order = (r.add(c, fill_value=0)).sort_values(ascending=False).index.tolist()
    cats = order[:MAX_CATEGORIES]
    rest = order[MAX_CATEGORIES:]
    groups = []
    for label, s, colour in (("reference", r, svg.REFERENCE), ("current", c, svg.CURRENT)):
        vals = [float(s.get(k, 0.0)) for k in cats]
        if rest:
            vals.append(float(s.reindex(rest).fillna(0).sum()))
        groups.append((label, [round(x, 5) for x in vals], colour))
    return svg.grouped_bars(name, title, [str(k) for k in cats] + (["(other)"] if rest else []),
                            groups, x_label=title.split(" in ")[0])


def _batch_table(batches: list[dict]) -> str:
    rows = []
    for b in batches:
        decision = "retrain" if b.get("retrain") else "keep"
        tone = {"promoted": "ok", "kept champion": "warn"}.get(b.get("outcome"), "")
        rows.append({
            "batch": b["batch"], "rows": b.get("rows"), "labelled": b.get("labelled"),
            "drift share": b.get("drift_share"),
            "drifted": ", ".join(b.get("drifted_columns") or []),
            str(b.get("metric")): b.get("value"), "champion": f"v{b.get('champion')}",
            "decision": badge(decision, "warn" if b.get("retrain") else ""),
            "outcome": badge(b.get("outcome") or "-", tone),
            "new version": f"v{b['new_version']}" if b.get("new_version") else "",
            "reason": b.get("reason"), "gate": b.get("gate"),
            "processed": b.get("processed_at")})
    metric = str(batches[-1].get("metric"))
    return table(rows, ["batch", "rows", "labelled", "drift share", "drifted", metric,
                        "champion", "decision", "outcome", "new version", "reason", "gate",
                        "processed"])
