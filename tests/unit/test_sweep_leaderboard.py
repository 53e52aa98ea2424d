"""The sweep leaderboard and the fraud project's Optuna search space."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from specloop._sweep import leaderboard, month_table, save, summarize

ROOT = Path(__file__).resolve().parents[2]


def _ok(job, auc, f1, greater=True, primary="roc_auc"):
    return {"job": job, "overrides": [f"model.params.C={job}"], "status": "succeeded",
            "metrics": {primary: auc, "f1": f1}, "primary": primary,
            "greater_is_better": greater, "seconds": 1.0, "cache_hits": 2}


def test_rows_sorted_by_the_primary_metric_failed_last(tmp_path):
    results = [_ok(0, 0.8, 0.9), {"job": 1, "overrides": ["model.params.C=-1"],
                                  "status": "failed", "error": "invalid value for C"},
               _ok(2, 0.9, 0.1), _ok(3, 0.85, 0.5)]
    rows, cols = leaderboard(results)
    assert cols == ["roc_auc", "f1"]
    assert [r["job"] for r in rows] == [2, 3, 0, 1]
    assert [r["rank"] for r in rows] == [1, 2, 3, None]
    assert rows[-1]["status"] == "failed" and rows[-1]["error"] == "invalid value for C"
    csv_path, json_path = save(tmp_path, "leaderboard", rows)
    with open(csv_path) as fh:
        table = list(csv.DictReader(fh))
    assert [t["job"] for t in table] == ["2", "3", "0", "1"]
    assert json.loads(json_path.read_text())["rows"] == rows


def test_a_metric_to_minimize_sorts_ascending():
    rows, _ = leaderboard([_ok(0, 3.0, 0, False, "rmse"), _ok(1, 1.0, 0, False, "rmse")])
    assert [r["job"] for r in rows] == [1, 0]


def test_backtest_summary_and_month_table():
    records = [{"batch": "m1", "value": 0.9, "retrain": False, "outcome": "kept"},
               {"batch": "m2", "value": 0.6, "retrain": True, "outcome": "promoted"},
               {"batch": "m3", "value": None, "retrain": True, "outcome": "kept champion"}]
    s = summarize(records, "roc_auc", True, "on_decay", "project champion v3")
    assert s["mean"] == 0.75 and s["worst"] == 0.6 and s["worst_batch"] == "m2"
    assert (s["retrains"], s["promotions"], s["batches"]) == (2, 1, 3)
    assert s["metrics"] == {"mean_roc_auc": 0.75, "worst_roc_auc": 0.6}
    table = month_table([{"job": 0, **s}], {0: "retrain=on_decay"})
    assert [r["retrain=on_decay"] for r in table] == ["0.9000", "0.6000 R", "n/a r"]


def _fraud_hydra(override: str):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from specloop._config import conf_search_dirs, searchpath_override
    from specloop._manager import make_plugin_manager

    project = ROOT / "projects" / "fraud_detection"
    search = conf_search_dirs(make_plugin_manager().conf_dirs())
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(project / "conf"), version_base=None):
            return compose("config", overrides=[override, searchpath_override(search)],
                           return_hydra_config=True).hydra
    finally:
        GlobalHydra.instance().clear()


def test_the_fraud_projects_slurm_launcher_config_composes():
    launcher = _fraud_hydra("hydra/launcher=slurm").launcher
    assert launcher._target_ == \
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.partition, launcher.timeout_min, launcher.cpus_per_task) == ("cpu", 60, 4)
    assert list(launcher.setup) == ["export OMP_NUM_THREADS=4"]


def test_the_fraud_projects_optuna_search_space_composes():
    sweeper = _fraud_hydra("hydra/sweeper=fraud_search").sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert sweeper.direction == "maximize" and sweeper.storage is None
    assert dict(sweeper.params) == {"model.params.learning_rate": "interval(0.02, 0.3)",
                                    "model.params.max_iter": "choice(50, 100, 200)"}


def test_a_failed_trial_is_the_worst_value_for_optuna():
    import math

    from specloop._multirun import SweepJob

    job = SweepJob(ROOT)
    ok = _ok(0, 0.9, 0.5)
    assert job.sweeper_value(ok, {"direction": "maximize"}) == 0.9
    assert job.sweeper_value({"status": "failed"}, {"direction": "maximize"}) == -math.inf
    assert job.sweeper_value({"status": "failed"}, {"direction": "minimize"}) == math.inf
    nan = {**ok, "metrics": {"roc_auc": math.nan}}
    assert job.sweeper_value(nan, {"direction": "maximize"}) == -math.inf
