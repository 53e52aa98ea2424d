"""Model persistence: skops (the default) against pickle, through the model component.

Fits the scikit-learn model component on synthetic tabular rows (numeric and categorical
features), then times, per format, what the engine does on save (``dumps`` plus recording the
trusted types) and on load (``loads`` with the recorded format and trusted types, which for
skops re-checks the types in the file). Prints a table of medians and file sizes.

    .venv/bin/python benchmarks/bench_model_persistence.py
    .venv/bin/python benchmarks/bench_model_persistence.py --rows 50000 --repeats 9
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from specloop._model_artifacts import call_loads, model_files
from specloop_sklearn import SklearnModelConf
from specloop_sklearn._model import SklearnModel

ESTIMATORS = {
    "hist_gradient_boosting": ("sklearn.ensemble.HistGradientBoostingClassifier",
                               {"max_iter": 100}),
    "random_forest": ("sklearn.ensemble.RandomForestClassifier",
                      {"n_estimators": 100, "max_depth": 12}),
    "logistic": ("sklearn.linear_model.LogisticRegression", {"max_iter": 1000}),
}


def frame(rows: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(8)})
    X["merchant"] = rng.choice([f"m{i}" for i in range(20)], rows)
    X["country"] = rng.choice(["DE", "FR", "US", "GB", "NL"], rows)
    y = ((X["x0"] + X["x1"] * X["x2"] + (X["country"] == "US")) > 0.8).astype(int).to_numpy()
    return X, y


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    X, y = frame(args.rows)
    rows = []
    for name, (estimator, params) in ESTIMATORS.items():
        fitted = None
        for allow_pickle in (False, True):
            comp = SklearnModel(SklearnModelConf(estimator=estimator, params=dict(params),
                                                 allow_pickle=allow_pickle))
            if fitted is None:
                fitted = comp.fit(X, y, categorical=["merchant", "country"],
                                  task="classification", seed=0)
            data, meta = model_files(comp, fitted)
            save = median_seconds(lambda: model_files(comp, fitted), args.repeats)
            load = median_seconds(lambda: call_loads(comp, data, format=meta["format"],
                                                     trusted=meta["trusted_types"]),
                                  args.repeats)
            again = call_loads(comp, data, format=meta["format"], trusted=meta["trusted_types"])
            assert (again.predict(X[:500]) == fitted.predict(X[:500])).all()
            rows.append((name, meta["format"], len(data) / 1024, save * 1000, load * 1000,
                         len(meta["trusted_types"])))
    print(f"rows={args.rows} repeats={args.repeats} (medians)")
    print(f"{'model':<24} {'format':<7} {'size KiB':>9} {'save ms':>9} {'load ms':>9} "
          f"{'trusted types':>13}")
    for r in rows:
        print(f"{r[0]:<24} {r[1]:<7} {r[2]:>9.1f} {r[3]:>9.1f} {r[4]:>9.1f} {r[5]:>13}")


if __name__ == "__main__":
    main()
