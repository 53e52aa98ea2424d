"""The compiled fast path gives exactly what the full scikit-learn pipeline gives, on the
records the server sees; anything it does not reproduce falls back to the pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (FunctionTransformer, MinMaxScaler, OneHotEncoder,
                                   OrdinalEncoder, RobustScaler, StandardScaler)

from specloop_serve._fastpath import _Trees, _agrees, compile_fast_path
from specloop_serve._model import Contract, LoadedModel

COLORS = ["red", "green", "blue", "violet"]
SIZES = ["s", "m", "l"]
SIGNATURE = {"inputs": [
    {"name": "x1", "type": "number", "categorical": False},
    {"name": "n", "type": "integer", "categorical": False},
    {"name": "color", "type": "string", "categorical": True, "values": COLORS},
    {"name": "x2", "type": "number", "categorical": False},
    {"name": "size", "type": "string", "categorical": True, "values": SIZES},
], "target": "y", "task": "classification"}
NUMERIC = ["x1", "n", "x2"]
CATEGORICAL = ["color", "size"]


def _training(rows: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "x1": rng.normal(size=rows), "n": rng.integers(0, 50, rows).astype(float),
        "color": rng.choice(COLORS, rows).astype(object),
        "x2": rng.exponential(3.0, rows), "size": rng.choice(SIZES, rows).astype(object)})
    for col in ("x1", "n", "color", "size"):  # missing values, as a CSV holds them
        X.loc[rng.random(rows) < 0.08, col] = np.nan
    score = X["x1"].fillna(0) + (X["color"] == "red") * 1.5 - X["x2"] / 3
    y = (score + rng.normal(scale=0.7, size=rows) > 0).astype(int).to_numpy()
    y3 = np.digitize(score, [-0.5, 0.7])
    return X, y, y3


def _records(count: int = 400, seed: int = 1) -> list[dict]:
    """Served records: seen and unseen categories, nulls everywhere, odd numbers."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        def pick(values, p_null=0.1, p_unseen=0.1):
            u = rng.random()
            return None if u < p_null else ("unseen-" + str(int(u * 100))
                                             if u < p_null + p_unseen else
                                             str(rng.choice(values)))
        out.append({
            "x1": None if rng.random() < 0.1 else float(rng.normal(scale=2.0)),
            "n": None if rng.random() < 0.1 else int(rng.integers(-5, 80)),
            "color": pick(COLORS), "x2": float(rng.exponential(3.0)),
            "size": pick(SIZES)})
    out.append({"x1": 1e300, "n": 2**40, "color": "red", "x2": -0.0, "size": None})
    return out


def _pre(numeric_steps: list, categorical_steps: list, remainder: str = "drop",
         numeric: list[str] = NUMERIC) -> ColumnTransformer:
    num = make_pipeline(*numeric_steps) if numeric_steps else "passthrough"
    return ColumnTransformer([("num", num, numeric),
                              ("cat", make_pipeline(*categorical_steps), CATEGORICAL)],
                             remainder=remainder)


def _imputed_onehot() -> list:
    return [SimpleImputer(strategy="most_frequent"),
            OneHotEncoder(handle_unknown="ignore", sparse_output=False)]


def _median_imputed_hgb(max_iter: int) -> Pipeline:
    """Median-imputed numbers, imputed one-hot categories, HistGradientBoosting."""
    return Pipeline([("preprocess", _pre([SimpleImputer(strategy="median")], _imputed_onehot())),
                     ("estimator", HistGradientBoostingClassifier(max_iter=max_iter,
                                                                  random_state=0))])


def _assert_same(model, signature=SIGNATURE, records=None) -> None:
    records = records or _records()
    fast = compile_fast_path(model, signature)
    assert fast is not None, "the pipeline should compile"
    contract = Contract(signature)
    classify = signature["task"] == "classification"
    method = "predict_proba" if classify else "predict"
    # one row, the few-row sizes the micro-batcher makes, and a large batch
    for size in (1, 3, 16, 17, len(records)):
        for start in range(0, min(len(records), 5 * size), size):
            batch = records[start:start + size]
            got = getattr(fast, method)(batch)
            want = getattr(model, method)(contract.frame(batch))
            assert got is not None
            np.testing.assert_array_equal(got, want)
            assert got.dtype == want.dtype and got.shape == want.shape


@pytest.mark.parametrize("numeric_steps", [
    [SimpleImputer(strategy="median")],
    [SimpleImputer(strategy="mean"), StandardScaler()],
    [SimpleImputer(strategy="constant", fill_value=-1.0), MinMaxScaler()],
    [SimpleImputer(strategy="median"), MinMaxScaler(feature_range=(-1, 2), clip=True)],
    [SimpleImputer(strategy="median"), RobustScaler()],
    [SimpleImputer(strategy="median"), StandardScaler(with_mean=False)],
], ids=["median", "mean-standard", "constant-minmax", "minmax-clip", "robust",
        "standard-no-mean"])
def test_numeric_steps_match_the_pipeline(numeric_steps):
    X, y, _ = _training()
    model = Pipeline([("preprocess", _pre(numeric_steps, _imputed_onehot())),
                      ("estimator", LogisticRegression(max_iter=500))]).fit(X, y)
    _assert_same(model)


def test_hist_gradient_boosting_trees_match_the_pipeline_bit_for_bit():
    X, y, _ = _training()
    model = _median_imputed_hgb(40).fit(X, y)
    assert compile_fast_path(model, SIGNATURE)._trees is not None
    _assert_same(model)


def test_passthrough_numbers_reach_native_missing_value_handling():
    X, y, y3 = _training()
    model = Pipeline([("preprocess", _pre([], _imputed_onehot())),
                      ("estimator", HistGradientBoostingClassifier(max_iter=30,
                                                                   random_state=0))]).fit(X, y3)
    fast = compile_fast_path(model, SIGNATURE)
    assert fast is not None and fast._trees is not None and fast._trees.k == 3
    _assert_same(model)


def test_regressors_match_the_pipeline():
    X, _, _ = _training()
    target = X["x2"].to_numpy() * 2 + X["x1"].fillna(0).to_numpy()
    signature = {**SIGNATURE, "task": "regression"}
    for est in (HistGradientBoostingRegressor(max_iter=30, random_state=0), Ridge()):
        model = Pipeline([("preprocess", _pre([SimpleImputer(), StandardScaler()],
                                              _imputed_onehot())),
                          ("estimator", est)]).fit(X, target)
        _assert_same(model, signature)


def test_remainder_passthrough_and_positional_columns():
    X, y, _ = _training()
    pre = ColumnTransformer([("num", SimpleImputer(strategy="median"), [0, 1]),
                             ("cat", make_pipeline(*_imputed_onehot()), CATEGORICAL)],
                            remainder="passthrough")
    records = [{**r, "x2": 0.5 if r["x2"] is None else r["x2"]} for r in _records()]
    model = Pipeline([("preprocess", pre), ("estimator", LogisticRegression(max_iter=500))])
    model.fit(X, y)
    _assert_same(model, records=records)


def test_unsupported_steps_fall_back_to_the_pipeline():
    X, y, _ = _training()
    ordinal = Pipeline([("preprocess", _pre(
        [SimpleImputer()], [SimpleImputer(strategy="most_frequent"),
                            OrdinalEncoder(handle_unknown="use_encoded_value",
                                           unknown_value=-1)])),
        ("estimator", LogisticRegression(max_iter=500))]).fit(X, y)
    custom = Pipeline([("preprocess", _pre([SimpleImputer(), FunctionTransformer(np.tanh)],
                                           _imputed_onehot())),
                       ("estimator", LogisticRegression(max_iter=500))]).fit(X, y)
    bare = LogisticRegression(max_iter=500).fit(X[["x2"]].to_numpy(), y)
    for model in (ordinal, custom):
        assert compile_fast_path(model, SIGNATURE) is None
        loaded = LoadedModel("m", 1, {}, model, Contract(SIGNATURE), None)
        records = _records(50)
        preds, probas = loaded.predict(records)
        want = model.predict_proba(Contract(SIGNATURE).frame(records))
        assert [[p[str(c)] for c in (0, 1)] for p in probas] == want.tolist()
        assert preds == model.classes_[want.argmax(axis=1)].tolist()
    assert compile_fast_path(bare, SIGNATURE) is None


def test_a_null_with_no_imputer_in_front_of_the_encoder_uses_the_pipeline():
    X, y, _ = _training()
    Xf = X.fillna({"color": "red", "size": "m"})
    model = Pipeline([("preprocess", _pre(
        [SimpleImputer()], [OneHotEncoder(handle_unknown="ignore", sparse_output=False)])),
        ("estimator", LogisticRegression(max_iter=500))]).fit(Xf, y)
    fast = compile_fast_path(model, SIGNATURE)
    assert fast is not None
    row = {"x1": 0.1, "n": 3, "color": None, "x2": 1.0, "size": "m"}
    assert fast.predict_proba([row]) is None  # this call takes the full pipeline
    loaded = LoadedModel("m", 1, {}, model, Contract(SIGNATURE), None, fast=fast)
    _, probas = loaded.predict([row])
    want = model.predict_proba(Contract(SIGNATURE).frame([row]))[0]
    assert [probas[0]["0"], probas[0]["1"]] == want.tolist()


def test_the_probe_check_rejects_a_compiled_path_that_differs():
    X, y, _ = _training()
    model = _median_imputed_hgb(20).fit(X, y)
    fast = compile_fast_path(model, SIGNATURE)
    assert fast is not None and _agrees(fast, model, SIGNATURE)
    trees: _Trees = fast._trees
    first_tree = range(trees.roots[0][0], trees.roots[1][0])
    for i in first_tree:  # every leaf of the first tree, off by 1e-9
        trees.nodes[i] = (*trees.nodes[i][:6], trees.nodes[i][6] + 1e-9)
    assert not _agrees(fast, model, SIGNATURE)


def test_a_null_category_reaches_the_model_as_missing_and_is_imputed():
    X, y, _ = _training()
    model = Pipeline([("preprocess", _pre([SimpleImputer()], _imputed_onehot())),
                      ("estimator", LogisticRegression(max_iter=500))]).fit(X, y)
    imputer = model[0].named_transformers_["cat"][0]
    mode = dict(zip(CATEGORICAL, imputer.statistics_))
    row = {"x1": 0.1, "n": 3, "color": None, "x2": 1.0, "size": None}
    frame = Contract(SIGNATURE).frame([row, {**row, **mode}])
    proba = model.predict_proba(frame)
    assert proba[0].tolist() == proba[1].tolist()
