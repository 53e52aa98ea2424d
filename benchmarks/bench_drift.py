"""Benchmark of specloop's drift statistics against a minimal raw numpy/scipy loop and Evidently.

Usage (from a checkout, no install needed)::

    python benchmarks/bench_drift.py                    # 100k rows x 20 columns
    python benchmarks/bench_drift.py --rows 1000 100000 1000000

Each frame has 14 numeric and 6 categorical columns; the current frame shifts
5 numeric and 2 categorical columns.  Both implementations follow the same
test-selection rules (Evidently's defaults); the raw loop skips PSI.  Timings
are the median of ``--repeats`` rounds after one warm-up run, single-threaded;
each round runs every implementation once, in alternating order, so that load
from other work on the machine falls on all of them alike, and the ratio against
Evidently is paired round by round (median and range).

When ``evidently`` is importable (it is not a dependency of specloop: install it in a
separate environment, e.g. ``pip install evidently``), Evidently's ``DataDriftPreset`` with
its defaults is timed on the same frames too, and its per-column verdicts are compared with
specloop's; ``--no-evidently`` skips it.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT / "plugins"))
sys.path.insert(0, str(_ROOT / "framework"))

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402
from scipy.spatial import distance  # noqa: E402

try:
    from specloop_drift._stats import dataset_drift  # noqa: E402
except ImportError:
    # The statistics modules only need numpy/scipy/pandas: load them as a bare package
    # (without the plugin's __init__, which registers with the framework) when the plugin
    # or the framework cannot be imported in this environment.
    import importlib
    import types

    _pkg = types.ModuleType("_specloop_drift_stats")
    _pkg.__path__ = [str(_ROOT / "plugins" / "specloop_drift")]
    sys.modules[_pkg.__name__] = _pkg
    dataset_drift = importlib.import_module(f"{_pkg.__name__}._stats").dataset_drift

N_NUMERIC = 14
N_CATEGORICAL = 6
SHIFTED_NUMERIC = ("num_00", "num_03", "num_06", "num_09", "num_12")
SHIFTED_CATEGORICAL = ("cat_01", "cat_04")


# --------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------


def _numeric(rng: np.random.Generator, i: int, n: int, shifted: bool) -> np.ndarray:
    kind = i % 4
    if kind == 0:
        x = rng.normal(0.6 if shifted else 0.0, 1.0, n)
    elif kind == 1:
        x = rng.lognormal(0.0, 0.8 if not shifted else 1.1, n)
    elif kind == 2:
        x = rng.uniform(0.0, 10.0 if not shifted else 13.0, n)
    else:
        x = rng.poisson(20 if not shifted else 24, n).astype(np.float64)
    if i % 5 == 1:  # some columns carry missing values
        x[rng.random(n) < 0.02] = np.nan
    return x


def _categorical(rng: np.random.Generator, i: int, n: int, shifted: bool) -> np.ndarray:
    n_levels = (2, 4, 8, 12, 25, 50)[i % 6]
    levels = np.array([f"c{i}_v{j:02d}" for j in range(n_levels)], dtype=object)
    p = np.linspace(1.0, 3.0, n_levels)
    if shifted:
        p = p[::-1] ** 2  # reweight the levels
    p /= p.sum()
    x = levels[rng.choice(n_levels, n, p=p)]
    if shifted and n_levels > 2:
        x[rng.random(n) < 0.1] = f"c{i}_new"  # a category unseen in the reference
    if i % 3 == 2:
        x[rng.random(n) < 0.01] = None
    return x


def make_frames(rows: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    rng = np.random.default_rng(seed)
    ref, cur = {}, {}
    num_cols = [f"num_{i:02d}" for i in range(N_NUMERIC)]
    cat_cols = [f"cat_{i:02d}" for i in range(N_CATEGORICAL)]
    for i, c in enumerate(num_cols):
        ref[c] = _numeric(rng, i, rows, False)
        cur[c] = _numeric(rng, i, rows, c in SHIFTED_NUMERIC)
    for i, c in enumerate(cat_cols):
        ref[c] = _categorical(rng, i, rows, False)
        cur[c] = _categorical(rng, i, rows, c in SHIFTED_CATEGORICAL)
    return pd.DataFrame(ref), pd.DataFrame(cur), num_cols, cat_cols


# --------------------------------------------------------------------------
# Minimal raw numpy/scipy baseline (same selection rules, no PSI)
# --------------------------------------------------------------------------


def _raw_categorical_test(rc: np.ndarray, cc: np.ndarray, small: bool) -> bool:
    nr, nc = rc.sum(), cc.sum()
    if not small:
        return distance.jensenshannon(rc / nr, cc / nc) >= 0.1
    if rc.size > 2:
        with np.errstate(divide="ignore", invalid="ignore"):
            p = stats.chisquare(cc, rc * (nc / nr)).pvalue
        return p < 0.05
    if rc.size < 2:
        return False
    p1, p2 = 1 - rc[0] / nr, 1 - cc[0] / nc
    pooled = (p1 * nr + p2 * nc) / (nr + nc)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / nr + 1 / nc))
    return 2 * stats.norm.sf(abs(z)) < 0.05


def raw_drift(ref: pd.DataFrame, cur: pd.DataFrame, num_cols: list[str], cat_cols: list[str]) -> set[str]:
    flagged = set()
    for c in num_cols:
        r = ref[c].to_numpy(dtype=np.float64)
        k = cur[c].to_numpy(dtype=np.float64)
        r, k = r[np.isfinite(r)], k[np.isfinite(k)]
        small = r.size <= 1000
        values, inv = np.unique(np.concatenate((r, k)), return_inverse=True)
        if values.size <= 5:
            rc = np.bincount(inv[: r.size], minlength=values.size)
            cc = np.bincount(inv[r.size :], minlength=values.size)
            drifted = _raw_categorical_test(rc, cc, small)
        elif small:
            drifted = stats.ks_2samp(r, k).pvalue < 0.05
        else:
            drifted = stats.wasserstein_distance(r, k) / max(np.std(r), 0.001) >= 0.1
        if drifted:
            flagged.add(c)
    for c in cat_cols:
        r = ref[c].to_numpy(dtype=object)
        k = cur[c].to_numpy(dtype=object)
        r, k = r[~pd.isna(r)], k[~pd.isna(k)]
        keys, inv = np.unique(np.concatenate((r, k)), return_inverse=True)
        rc = np.bincount(inv[: r.size], minlength=keys.size)
        cc = np.bincount(inv[r.size :], minlength=keys.size)
        if _raw_categorical_test(rc, cc, r.size <= 1000):
            flagged.add(c)
    return flagged


# --------------------------------------------------------------------------
# Evidently's DataDriftPreset with its defaults (optional)
# --------------------------------------------------------------------------


def evidently_drift(ref: pd.DataFrame, cur: pd.DataFrame, num_cols: list[str],
                    cat_cols: list[str]) -> set[str]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=num_cols, categorical_columns=cat_cols)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its own RuntimeWarnings (e.g. 0/0 in chi-square)
        snapshot = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(cur, data_definition=definition),
            Dataset.from_pandas(ref, data_definition=definition))
    flagged = set()
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config.get("type", "").endswith(":ValueDrift"):
            continue
        # Evidently's p-value methods are named "... p_value" and drift below the
        # threshold; its distances drift at or above it.
        value, threshold = metric["value"], config["threshold"]
        if value < threshold if "p_value" in config["method"] else value >= threshold:
            flagged.add(config["column"])
    return flagged


def _has_evidently() -> bool:
    import importlib.util

    return importlib.util.find_spec("evidently") is not None


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------


def _rounds(fns: dict, repeats: int) -> tuple[dict[str, list[float]], dict[str, object]]:
    """Time every function once per round, alternating the order; one warm-up run each."""
    outs = {name: fn() for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for i in range(repeats):
        for name in names if i % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            outs[name] = fns[name]()
            times[name].append(time.perf_counter() - t0)
    return times, outs


def bench(rows: int, repeats: int, evidently: bool) -> dict:
    ref, cur, num_cols, cat_cols = make_frames(rows)
    columns = num_cols + cat_cols
    fns = {"spec": lambda: dataset_drift(ref, cur, columns=columns, categorical=cat_cols),
           "raw": lambda: raw_drift(ref, cur, num_cols, cat_cols)}
    if evidently:
        fns["evidently"] = lambda: evidently_drift(ref, cur, num_cols, cat_cols)
    times, outs = _rounds(fns, repeats)
    report = outs["spec"]
    paired = [e / s for e, s in zip(times["evidently"], times["spec"])] if evidently else None
    return {
        "rows": rows,
        "spec": statistics.median(times["spec"]),
        "raw": statistics.median(times["raw"]),
        "evidently": statistics.median(times["evidently"]) if evidently else None,
        "paired": paired,
        "spec_flagged": {c["column"] for c in report["columns"] if c["drifted"]},
        "raw_flagged": outs["raw"],
        "evidently_flagged": outs.get("evidently"),
        "methods": sorted({c["method"] for c in report["columns"]}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000], help="rows per frame (several allowed)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median reported)")
    parser.add_argument("--no-evidently", action="store_true",
                        help="skip Evidently even when it is installed")
    args = parser.parse_args(argv)
    evidently = not args.no_evidently and _has_evidently()

    print(f"{N_NUMERIC} numeric + {N_CATEGORICAL} categorical columns, "
          f"{len(SHIFTED_NUMERIC) + len(SHIFTED_CATEGORICAL)} shifted; median of {args.repeats} "
          f"rounds; numpy {np.__version__}, pandas {pd.__version__}; "
          f"load average {os.getloadavg()[0]:.2f}")
    if evidently:
        from importlib.metadata import version

        print(f"Evidently {version('evidently')} DataDriftPreset with its defaults")
    else:
        print("Evidently: "
              + ("skipped (--no-evidently)" if args.no_evidently else "not installed, skipped"))
    print()
    ev_head, ev_rule = ("", "")
    if evidently:
        ev_head = ("| Evidently s | Evidently / specloop (paired, min–max) "
                   "| same set as Evidently ")
        ev_rule = "|---:|---:|:-:"
    print(f"| rows | specloop s | raw s | ratio {ev_head}| flagged (specloop) | flagged (raw) "
          "| same set | methods |")
    print(f"|---:|---:|---:|---:{ev_rule}|---|---|:-:|---|")
    mismatch = False
    for rows in args.rows:
        r = bench(rows, args.repeats, evidently)
        same = r["spec_flagged"] == r["raw_flagged"]
        mismatch |= not same
        ev = ""
        if evidently:
            same_ev = r["spec_flagged"] == r["evidently_flagged"]
            mismatch |= not same_ev
            paired = r["paired"]
            ev = (f"| {r['evidently']:.3f} | {statistics.median(paired):.0f}x "
                  f"({min(paired):.0f}–{max(paired):.0f}) "
                  f"| {'yes' if same_ev else 'NO: ' + ', '.join(sorted(r['evidently_flagged']))} ")
        print(
            f"| {rows:,} | {r['spec']:.3f} | {r['raw']:.3f} | {r['spec'] / r['raw']:.2f} {ev}"
            f"| {len(r['spec_flagged'])}: {', '.join(sorted(r['spec_flagged']))} "
            f"| {len(r['raw_flagged'])}: {', '.join(sorted(r['raw_flagged']))} "
            f"| {'yes' if same else 'NO'} | {', '.join(r['methods'])} |",
            flush=True,
        )
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    return 1 if mismatch else 0


if __name__ == "__main__":
    sys.exit(main())
