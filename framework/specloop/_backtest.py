"""``specloop loop --backtest -m retrain=never,on_drift,on_decay``: each member replays every
incoming batch with its policy as ``specloop loop`` would, in a fresh registry (starting from a
copy of the project's champion) over a copy-on-write store, and never deploys: the project is
never written. Members are ranked by the mean monthly metric of the model serving each month."""

from __future__ import annotations

import math
from contextlib import closing
from pathlib import Path
from typing import Any

from ._cli_records import table
from ._loop import Loop
from ._multirun import SweepJob, multirun, new_sweep_dir
from ._registry import Registry
from ._store import ArtifactStore
from ._sweep import leaderboard, save, show

# the backtest's leaderboard column <- result field, after the metrics
BACKTEST_COLUMNS = {c: c for c in ("seconds", "error", "policy", "worst_batch", "retrains",
                                   "promotions", "batches", "start")}
# what a member's registry copies of the project's champion
COPIED = ("model_key", "metrics", "reference_key", "data_fingerprint", "run_id", "config",
          "gate", "artifacts")


class OverlayStore(ArtifactStore):
    """A copy-on-write view of the project's store ``base``: reads fall through to it (trusted
    by the project's own index), writes stay in ``root`` (recorded in the member's ``index``)."""

    def __init__(self, root: Path, index: Any, base: ArtifactStore) -> None:
        super().__init__(str(root), Path(root), index=index)
        self.base = base

    def _own(self, key: str) -> bool:
        return super().record(key) is not None

    def record(self, key: str) -> dict | None:
        return super().record(key) or self.base.record(key)

    def has(self, key: str) -> bool:
        return super().has(key) if self._own(key) else self.base.has(key)

    def get(self, key: str, name: str, **kw: Any) -> bytes:
        return super().get(key, name, **kw) if self._own(key) else self.base.get(key, name, **kw)


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
            ctx._registry, ctx._store = own, OverlayStore(job_dir / "store", own.index, ctx.store)
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

    @staticmethod
    def objective(result: dict) -> float:
        return math.nan if result.get("mean") is None else float(result["mean"])


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
                 limit: int | None = None) -> int:
    """``specloop loop --backtest``: replay, then the policy leaderboard; exit code 0 when
    every member succeeded, else 1."""
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
    start = next((r.get("start") for r in results if r.get("start")), None)
    if start:
        out(f"every policy started from: {start}")
    out(f"{len(rows) - failed} of {len(rows)} policies replayed; leaderboard: {paths[0]}")
    return 0 if not failed and results else 1
