"""The leaderboards of ``specloop run -m`` and ``loop --backtest -m`` (printed; CSV and JSON in the
sweep folder) and ``sweep.register`` (``best``: the winner once, as ``challenger``; ``all``: as
``specloop run``; ``none``). A backtest member replays the batches as ``specloop loop`` with its
policy, in a fresh registry over a copy-on-write store, never deploying."""

from __future__ import annotations

import csv
import json
import math
from contextlib import closing
from pathlib import Path
from typing import Any

from ._cli_records import table
from ._context import make_context
from ._loop import Loop
from ._multirun import SweepJob, multirun, new_sweep_dir
from ._redact import MASK
from ._registry import Registry
from ._runner import execute
from ._store import ArtifactStore

# leaderboard column <- result field, after the metrics
RUN_COLUMNS = {"seconds": "seconds", "cache_hits": "cache_hits", "version": "model_version",
               "run_id": "run_id", "error": "error"}
BACKTEST_COLUMNS = {c: c for c in ("seconds", "error", "policy", "worst_batch", "retrains",
                                   "promotions", "batches", "start")}
# what a backtest member's registry copies of the project's champion
COPIED = ("model_key", "metrics", "reference_key", "data_fingerprint", "run_id", "config",
          "gate", "artifacts")


def _sort_key(result: dict, primary: str | None, greater: bool) -> tuple:
    if result.get("status") != "succeeded":
        return (2, 0.0, result.get("job", 0))
    value = (result.get("metrics") or {}).get(primary)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (1, 0.0, result.get("job", 0))
    return (0, -value if greater else value, result.get("job", 0))


def leaderboard(results: list[dict],
                columns: dict[str, str] = RUN_COLUMNS) -> tuple[list[dict], list[str]]:
    """Rank sweep results by the primary metric: the rows (best first, failed last) and the
    metric column names (primary first)."""
    ok = [r for r in results if r.get("status") == "succeeded"]
    primary = ok[0]["primary"] if ok else None
    greater = ok[0].get("greater_is_better", True) if ok else True
    secondary = sorted({k for r in ok for k in (r.get("metrics") or {}) if k != primary})
    metric_cols = ([primary] if primary else []) + secondary
    rows = []
    for rank, r in enumerate(sorted(results, key=lambda r: _sort_key(r, primary, greater)), 1):
        metrics = r.get("metrics") or {}
        rows.append({"rank": rank if r.get("status") == "succeeded" else None,
                     "job": r.get("job"), "overrides": " ".join(r.get("overrides") or []),
                     "status": r.get("status"), **{m: metrics.get(m) for m in metric_cols},
                     **{c: r.get(f) for c, f in columns.items()}})
    return rows, metric_cols


def save(sweep_dir: Path, name: str, rows: list[dict], extra: dict | None = None) -> list[Path]:
    """Write ``<name>.csv`` and ``<name>.json`` into the sweep folder; return both paths."""
    csv_path, json_path = (Path(sweep_dir) / f"{name}.{ext}" for ext in ("csv", "json"))
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, list(dict.fromkeys(c for r in rows for c in r)))
        writer.writeheader()
        writer.writerows({k: json.dumps(v) if isinstance(v, (list, dict)) else v
                          for k, v in r.items()} for r in rows)
    json_path.write_text(json.dumps({"rows": rows, **(extra or {})}, indent=2, default=str))
    return [csv_path, json_path]


def show(out: Any, rows: list[dict], metric_cols: list[str], columns: list[str]) -> int:
    """Print the leaderboard (metrics to 4 places, a failed member's error as its status);
    return how many members failed."""
    shown = []
    for r in rows:
        s = {**r, **{m: f"{r[m]:.4f}" if isinstance(r.get(m), (int, float)) else None
                     for m in metric_cols}}
        s["seconds"] = f"{r['seconds']:.1f}" if r.get("seconds") is not None else None
        if r.get("status") != "succeeded":
            s["status"] = f"failed: {r.get('error') or 'unknown error'}"
        shown.append(s)
    out(table(shown, columns))
    return sum(1 for r in rows if r["status"] != "succeeded")


def unmasked(recorded: list[str], given: list[str]) -> list[str]:
    """A member's recorded overrides with each masked secret taken back from the command line
    (a swept value is never a secret: it is written in the sweep's own records)."""
    original = {o.split("=", 1)[0].lstrip("+~"): o for o in given if "=" in o}
    return [original.get(o.split("=", 1)[0].lstrip("+~"), o) if o.endswith("=" + MASK) else o
            for o in recorded]


def run_sweep(project_dir: Path, overrides: list[str], out: Any) -> tuple[int, Path]:
    """``specloop run -m``: the sweep, its leaderboard and the winner's registration; exit
    code 0 when every member succeeded, else 1, and the sweep's folder."""
    sweep_dir, results = multirun(Path(project_dir), overrides)
    rows, metric_cols = leaderboard(results)
    paths = save(sweep_dir, "leaderboard", rows, {"primary": metric_cols[:1], "registered": None})
    failed = show(out, rows, metric_cols, ["rank", "job", "overrides", "status", *metric_cols,
                                           "seconds", "cache_hits", "version"])
    out(f"{len(rows) - failed} of {len(rows)} member(s) succeeded; leaderboard: {paths[0]}")
    best = next((r for r in results if rows[0]["rank"] and r.get("job") == rows[0]["job"]), None)
    if best is not None and best.get("register") == "best":
        # the winner's spec composed again: every stage up to evaluate is a cache hit, and
        # register judges it against the champion on the same test rows
        with closing(make_context(Path(project_dir), unmasked(best["overrides"], overrides),
                                  echo=out)) as ctx:
            doc = execute(ctx, command="sweep-register", alias="challenger")
        version, job, gate = doc["model_version"], best["job"], doc.get("gate")
        registered = {"job": job, "version": version, "gate": (gate or {}).get("summary"),
                      "alias_changes": doc.get("alias_changes", []), "run_id": doc["run_id"]}
        rows[0]["version"] = version
        save(sweep_dir, "leaderboard", rows, {"primary": metric_cols[:1], "registered": registered})
        if registered["alias_changes"]:
            out(f"winner (job {job}) registered as v{version}: challenger → v{version} "
                f"({registered['gate']}); promote it with 'specloop registry promote {version}'")
        elif gate is not None:
            out(f"winner (job {job}) registered as v{version}; the gate kept it from "
                f"challenger: {registered['gate']}")
        else:
            out(f"winner (job {job}) is already registered as v{version}; no alias changed")
    return (0 if not failed and results else 1), sweep_dir


class BacktestJob(SweepJob):
    """One policy of a backtest: ``Loop.run`` (at most ``limit`` batches) in an isolated
    registry and store."""

    def __init__(self, project_dir: Path, limit: int | None = None) -> None:
        super().__init__(project_dir)
        self.limit = limit

    def warm_up(self, cfg: Any) -> None:
        """Nothing to share: a backtest never writes the project's store."""

    def member(self, cfg: Any, overrides: list[str], job_dir: Path) -> dict:
        ctx = self.context(cfg, overrides)
        job_dir.mkdir(parents=True, exist_ok=True)
        # the project's registry is only read: its index vouches for the base store
        with open(job_dir / "loop.log", "w") as log, closing(ctx.registry) as project, \
                closing(ctx):
            ctx.echo = lambda text: (log.write(text + "\n"), log.flush())
            champion = project.resolve(ctx.model_name, "champion")
            own = Registry(job_dir / "registry.db")
            ctx._registry, ctx._store = own, ArtifactStore(str(job_dir / "store"), job_dir,
                                                           index=own.index, base=ctx.store)
            ctx.spec.components["deploy"] = None  # a backtest never deploys
            if champion is not None:
                start = f"project champion v{champion['version']}"
                copy = own.register(
                    ctx.model_name, **{k: champion[k] for k in COPIED},
                    source={"kind": "backtest", "project_version": champion["version"]},
                    reason=f"copy of the project's champion v{champion['version']}")
                own.set_alias(ctx.model_name, "champion", copy["version"],
                              reason=f"backtest starts from {start}")
            else:
                start = "trained in the backtest (the project has no champion)"
            loop = Loop(ctx)
            records = loop.run(limit=self.limit)
        return summarize(records, loop.metrics_c.primary, loop.metrics_c.greater_is_better,
                         ctx.spec.choices.get("retrain"), start)


def summarize(records: list[dict], primary: str, greater: bool, policy: str | None,
              start: str) -> dict:
    """One member's result: per-month values, mean, worst month, retrains, promotions."""
    months = [{"batch": r["batch"], "value": r.get("value"), "retrain": bool(r.get("retrain")),
               **{k: r.get(k) for k in ("outcome", "champion", "new_version", "drift_share",
                                        "reason")}} for r in records]
    values = [m["value"] for m in months if m["value"] is not None]
    mean = sum(values) / len(values) if values else None
    worst = (min(values) if greater else max(values)) if values else None
    return {"status": "succeeded", "policy": policy, "primary": f"mean_{primary}",
            "metric": primary, "greater_is_better": greater,
            "metrics": {f"mean_{primary}": mean, f"worst_{primary}": worst},
            "mean": mean, "worst": worst,
            "worst_batch": next((m["batch"] for m in months if values and m["value"] == worst),
                                None),
            "retrains": sum(1 for m in months if m["retrain"]),
            "promotions": sum(1 for m in months if m["outcome"] == "promoted"),
            "batches": len(months), "start": start, "months": months}


def month_table(results: list[dict], labels: dict[int, str]) -> list[dict]:
    """One row per batch, one column per policy: the value, ``R`` retrained and promoted,
    ``r`` retrained but the champion kept."""
    rows = []
    for b in dict.fromkeys(m["batch"] for r in results for m in r.get("months") or []):
        row: dict[str, Any] = {"batch": b}
        for r in results:
            m = next((m for m in r.get("months") or [] if m["batch"] == b), None)
            mark = "" if m is None or not m["retrain"] else \
                " R" if m["outcome"] == "promoted" else " r"
            row[labels[r["job"]]] = None if m is None else \
                ("n/a" if m["value"] is None else f"{m['value']:.4f}") + mark
        rows.append(row)
    return rows


def run_backtest(project_dir: Path, overrides: list[str], out: Any,
                 limit: int | None = None) -> tuple[int, Path]:
    """``specloop loop --backtest``: replay, then the policy leaderboard; exit code 0 when
    every member succeeded, else 1, and the backtest's folder."""
    project_dir = Path(project_dir).resolve()
    sweep_dir, results = multirun(project_dir, overrides, BacktestJob(project_dir, limit),
                                  new_sweep_dir(project_dir, "backtests"))
    rows, metric_cols = leaderboard(results, BACKTEST_COLUMNS)
    labels = {r["job"]: " ".join(r.get("overrides") or []) or f"job {r['job']}"
              for r in results}
    months = month_table([r for r in results if r.get("status") == "succeeded"], labels)
    paths = save(sweep_dir, "backtest", rows, {"months": months})
    save(sweep_dir, "backtest_months", months)
    failed = show(out, rows, metric_cols, ["rank", "overrides", "status", *metric_cols,
                                           "worst_batch", "retrains", "promotions", "seconds"])
    if months:
        out("")
        out(table(months, list(months[0])))
        out("(R: retrained and promoted that month; r: retrained, champion kept)")
    if start := next((r.get("start") for r in results if r.get("start")), None):
        out(f"every policy started from: {start}")
    out(f"{len(rows) - failed} of {len(rows)} policies replayed; leaderboard: {paths[0]}")
    return (0 if not failed and results else 1), sweep_dir
