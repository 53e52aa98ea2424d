"""Sweep leaderboards and ``sweep.register``.

A leaderboard has one row per member: its overrides, status, the primary and secondary
metrics, duration and cache hits, sorted by the primary metric (failed members last, with
their error). It is printed and saved as ``leaderboard.csv`` and ``leaderboard.json`` in the
sweep folder.

``sweep.register`` decides what reaches the registry:

* ``best`` (default): members stop after ``evaluate``; after the sweep the winner's model is
  registered once and, if it passes the gate against the champion, gets the ``challenger``
  alias. The champion is never moved by a sweep: promote the challenger deliberately
  (``specloop registry promote VERSION``).
* ``all``: every member registers, and a member that passes the gate becomes champion (as
  ``specloop run`` does).
* ``none``: nothing is registered.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from ._redact import MASK
from ._text import table


def _sort_key(result: dict, primary: str | None, greater: bool) -> tuple:
    if result.get("status") != "succeeded":
        return (2, 0.0, result.get("job", 0))
    value = (result.get("metrics") or {}).get(primary)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (1, 0.0, result.get("job", 0))
    return (0, -value if greater else value, result.get("job", 0))


def leaderboard(results: list[dict]) -> tuple[list[dict], list[str]]:
    """Rank sweep results by the primary metric.

    Returns:
        The rows (best first, failed last) and the metric column names (primary first).
    """
    ok = [r for r in results if r.get("status") == "succeeded"]
    primary = ok[0]["primary"] if ok else None
    greater = ok[0].get("greater_is_better", True) if ok else True
    secondary = sorted({k for r in ok for k in (r.get("metrics") or {}) if k != primary})
    metric_cols = ([primary] if primary else []) + secondary
    rows = []
    for rank, r in enumerate(sorted(results, key=lambda r: _sort_key(r, primary, greater)), 1):
        metrics = r.get("metrics") or {}
        rows.append({
            "rank": rank if r.get("status") == "succeeded" else None,
            "job": r.get("job"),
            "overrides": " ".join(r.get("overrides") or []),
            "status": r.get("status"),
            **{m: metrics.get(m) for m in metric_cols},
            "seconds": r.get("seconds"),
            "cache_hits": r.get("cache_hits"),
            "version": r.get("model_version"),
            "run_id": r.get("run_id"),
            "error": r.get("error"),
        })
    return rows, metric_cols


def save(sweep_dir: Path, name: str, rows: list[dict], extra: dict | None = None) -> list[Path]:
    """Write ``<name>.csv`` and ``<name>.json`` into the sweep folder; return both paths."""
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for r in rows:
        columns += [c for c in r if c not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (json.dumps(v) if isinstance(v, (list, dict)) else v)
                         for k, v in r.items()})
    csv_path, json_path = sweep_dir / f"{name}.csv", sweep_dir / f"{name}.json"
    csv_path.write_text(buf.getvalue())
    json_path.write_text(json.dumps({"rows": rows, **(extra or {})}, indent=2, default=str))
    return [csv_path, json_path]


def display(rows: list[dict], metric_cols: list[str]) -> list[dict]:
    """Rows formatted for the terminal table."""
    out = []
    for r in rows:
        shown = dict(r)
        for m in metric_cols:
            shown[m] = f"{r[m]:.4f}" if isinstance(r.get(m), (int, float)) else None
        shown["seconds"] = f"{r['seconds']:.1f}" if r.get("seconds") is not None else None
        if r.get("status") != "succeeded":
            shown["status"] = f"failed: {r.get('error') or 'unknown error'}"
        out.append(shown)
    return out


def unmasked(recorded: list[str], given: list[str]) -> list[str]:
    """A member's recorded overrides with each masked secret taken back from the command line
    (a swept value is never a secret: it is written in the sweep's own records)."""
    original = {o.split("=", 1)[0].lstrip("+~"): o for o in given if "=" in o}
    return [original.get(o.split("=", 1)[0].lstrip("+~"), o) if o.endswith("=" + MASK) else o
            for o in recorded]


def register_winner(project_dir: Path, winner: dict, echo: Any = None,
                    overrides: list[str] = ()) -> dict:
    """Register the winner of a ``sweep.register: best`` sweep as ``challenger``.

    The winner's spec is composed again from its overrides; every stage up to ``evaluate``
    is a cache hit, so only ``register`` runs: the gate judges it against the champion on
    the same test rows, and a pass sets the ``challenger`` alias.

    Returns:
        The manifest of that registration run.
    """
    from ._runner import execute
    from ._context import make_context

    ctx = make_context(project_dir, unmasked(winner["overrides"], overrides), echo=echo)
    try:
        return execute(ctx, command="sweep-register", alias="challenger")
    finally:
        ctx.close()


def run_sweep(project_dir: Path, overrides: list[str], out: Any) -> int:
    """``specloop run -m``: the sweep, its leaderboard and the winner's registration.

    Returns:
        The exit code: 0 when every member succeeded, 1 otherwise.
    """
    from ._multirun import multirun

    sweep_dir, results = multirun(Path(project_dir), overrides)
    rows, metric_cols = leaderboard(results)
    ok = [r for r in rows if r["status"] == "succeeded"]
    best = next((r for r in results if ok and r.get("job") == ok[0]["job"]), None)
    paths = save(sweep_dir, "leaderboard", rows, {"primary": metric_cols[:1], "registered": None})
    out(table(display(rows, metric_cols),
               ["rank", "job", "overrides", "status", *metric_cols, "seconds", "cache_hits",
                "version"]))
    failed = [r for r in rows if r["status"] != "succeeded"]
    out(f"{len(rows) - len(failed)} of {len(rows)} member(s) succeeded; leaderboard: "
        f"{paths[0]}")
    if best is not None and best.get("register") == "best":
        doc = register_winner(Path(project_dir), best, echo=out, overrides=overrides)
        registered = {"job": best["job"], "version": doc["model_version"],
                      "gate": (doc.get("gate") or {}).get("summary"),
                      "alias_changes": doc.get("alias_changes", []), "run_id": doc["run_id"]}
        rows[0]["version"] = doc["model_version"]
        save(sweep_dir, "leaderboard", rows, {"primary": metric_cols[:1],
                                              "registered": registered})
        version, job = registered["version"], registered["job"]
        if registered["alias_changes"]:
            out(f"winner (job {job}) registered as v{version}: challenger → v{version} "
                f"({registered['gate']}); promote it with 'specloop registry promote {version}'")
        elif doc.get("gate") is not None:
            out(f"winner (job {job}) registered as v{version}; the gate kept it from "
                f"challenger: {registered['gate']}")
        else:
            out(f"winner (job {job}) is already registered as v{version}; no alias changed")
    return 0 if not failed and results else 1
