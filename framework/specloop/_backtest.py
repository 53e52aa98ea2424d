"""``specloop loop --backtest -m retrain=never,on_drift,on_decay``: retraining policies,
replayed side by side on the project's own batches.

Each member of the sweep replays every incoming batch with its policy, exactly as
``specloop loop`` would, but in isolation:

* its **registry** is a fresh SQLite file in the member's job folder. If the project has a
  champion, it is copied in (same model artifact, metrics and reference data) so every
  policy starts from the same model; otherwise the member trains the first model itself;
* its **store** is copy-on-write over the project's store: reads fall through to the
  project's artifacts (data, split, the champion's model — nothing is recomputed), writes
  (scores, retrained models) stay in the member's folder;
* it never deploys.

The project's registry, champion, aliases, loop state and deployment are never written.
The policy leaderboard ranks members by the mean monthly primary metric of the model that
was serving each month (the champion scored on the batch before the policy decided), with
the worst month, the number of retrains and of promotions. A second table has one row per
month and one column per policy.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ._multirun import SweepJob
from ._store import ArtifactStore
from ._text import table


class OverlayStore(ArtifactStore):
    """A copy-on-write view of another store: reads fall through to ``base`` (trusted by the
    project's own index), writes stay here (recorded in the member's index).

    Args:
        root: The local folder that receives every write.
        index: The member's artifact index.
        base: The project's store, read when an artifact is not here (never written).
    """

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
    """One policy of a backtest: ``Loop.run`` in an isolated registry and store.

    Args:
        project_dir: The project folder.
        limit: Replay at most this many batches (all when ``None``).
    """

    def __init__(self, project_dir: Path, limit: int | None = None) -> None:
        super().__init__(project_dir)
        self.limit = limit

    def warm_up(self, cfg: Any) -> None:
        """Nothing to share: a backtest never writes the project's store."""

    def member(self, cfg: Any, overrides: list[str], job_dir: Path) -> dict:
        from ._loop import Loop
        from ._registry import Registry

        ctx = self.context(cfg, overrides)
        job_dir.mkdir(parents=True, exist_ok=True)
        log = open(job_dir / "loop.log", "w")
        ctx.echo = lambda text: (log.write(text + "\n"), log.flush())
        project_registry = ctx.registry  # read only: its index vouches for the base store
        try:
            project_store = ctx.store
            name = ctx.model_name
            champion = project_registry.resolve(name, "champion")
            own = Registry(job_dir / "registry.db")
            ctx._registry, ctx._store = own, OverlayStore(job_dir / "store", own.index,
                                                          project_store)
            ctx.spec.components["deploy"] = None  # a backtest never deploys
            if champion is not None:
                start = f"project champion v{champion['version']}"
                copy = own.register(
                    name, model_key=champion["model_key"], metrics=champion["metrics"],
                    reference_key=champion["reference_key"],
                    data_fingerprint=champion["data_fingerprint"], run_id=champion["run_id"],
                    config=champion["config"], gate=champion["gate"],
                    source={"kind": "backtest", "project_version": champion["version"]},
                    reason=f"copy of the project's champion v{champion['version']}",
                    artifacts=champion["artifacts"])
                own.set_alias(name, "champion", copy["version"],
                              reason=f"backtest starts from {start}")
            else:
                start = "trained in the backtest (the project has no champion)"
            loop = Loop(ctx)
            records = loop.run(limit=self.limit)
            primary, greater = loop.metrics_c.primary, loop.metrics_c.greater_is_better
        finally:
            ctx.close()
            project_registry.close()
            log.close()
        return summarize(records, primary, greater, ctx.spec.choices.get("retrain"), start)

    @staticmethod
    def objective(result: dict) -> float:
        return math.nan if result.get("mean") is None else float(result["mean"])


def summarize(records: list[dict], primary: str, greater: bool, policy: str | None,
              start: str) -> dict:
    """One member's result: per-month values, mean, worst month, retrains, promotions."""
    months = [{"batch": r["batch"], "value": r.get("value"), "retrain": bool(r.get("retrain")),
               "outcome": r.get("outcome"), "champion": r.get("champion"),
               "new_version": r.get("new_version"), "drift_share": r.get("drift_share"),
               "reason": r.get("reason")} for r in records]
    values = [m["value"] for m in months if m["value"] is not None]
    mean = sum(values) / len(values) if values else None
    worst = (min(values) if greater else max(values)) if values else None
    worst_batch = next((m["batch"] for m in months if values and m["value"] == worst), None)
    return {"status": "succeeded", "policy": policy, "primary": f"mean_{primary}",
            "metric": primary, "greater_is_better": greater,
            "metrics": {f"mean_{primary}": mean, f"worst_{primary}": worst},
            "mean": mean, "worst": worst, "worst_batch": worst_batch,
            "retrains": sum(1 for m in months if m["retrain"]),
            "promotions": sum(1 for m in months if m["outcome"] == "promoted"),
            "batches": len(months), "start": start, "months": months}


def month_table(results: list[dict], labels: dict[int, str]) -> list[dict]:
    """One row per batch, one column per policy: the value, ``R`` retrained and promoted,
    ``r`` retrained but the champion kept."""
    batches: list[str] = []
    for r in results:
        batches += [m["batch"] for m in r.get("months") or [] if m["batch"] not in batches]
    rows = []
    for b in batches:
        row: dict[str, Any] = {"batch": b}
        for r in results:
            m = next((m for m in r.get("months") or [] if m["batch"] == b), None)
            if m is None:
                row[labels[r["job"]]] = None
                continue
            value = "n/a" if m["value"] is None else f"{m['value']:.4f}"
            mark = (" R" if m["outcome"] == "promoted" else " r") if m["retrain"] else ""
            row[labels[r["job"]]] = value + mark
        rows.append(row)
    return rows


def run_backtest(project_dir: Path, overrides: list[str], out: Any,
                 limit: int | None = None) -> int:
    """``specloop loop --backtest``: replay, then the policy leaderboard.

    Returns:
        The exit code: 0 when every member succeeded, 1 otherwise.
    """
    from ._multirun import multirun, new_sweep_dir
    from ._sweep import display, leaderboard, save

    project_dir = Path(project_dir).resolve()
    sweep_dir, results = multirun(project_dir, overrides, BacktestJob(project_dir, limit),
                                  new_sweep_dir(project_dir, "backtests"))
    rows, metric_cols = leaderboard(results)
    by_job = {r["job"]: r for r in results}
    for row in rows:
        r = by_job[row["job"]]
        row.update({"policy": r.get("policy"), "worst_batch": r.get("worst_batch"),
                    "retrains": r.get("retrains"), "promotions": r.get("promotions"),
                    "batches": r.get("batches"), "start": r.get("start")})
        for k in ("version", "run_id", "cache_hits"):
            row.pop(k, None)
    labels = {r["job"]: " ".join(r.get("overrides") or []) or f"job {r['job']}"
              for r in results}
    months = month_table([r for r in results if r.get("status") == "succeeded"], labels)
    paths = save(sweep_dir, "backtest", rows, {"months": months})
    save(sweep_dir, "backtest_months", months)
    shown = display(rows, metric_cols)
    out(table(shown, ["rank", "overrides", "status", *metric_cols, "worst_batch", "retrains",
                       "promotions", "seconds"]))
    if months:
        out("")
        out(table(months, list(months[0])))
        out("(R: retrained and promoted that month; r: retrained, champion kept)")
    failed = [r for r in rows if r["status"] != "succeeded"]
    start = next((r.get("start") for r in results if r.get("start")), None)
    if start:
        out(f"every policy started from: {start}")
    out(f"{len(rows) - len(failed)} of {len(rows)} policies replayed; leaderboard: {paths[0]}")
    return 0 if not failed and results else 1
