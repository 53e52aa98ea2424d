"""A compiled fast path for scoring JSON records with a fitted scikit-learn pipeline.

For one row, most of a ``Pipeline.predict_proba`` call is not arithmetic: it is the pandas
DataFrame, the column selection and input validation of every ``ColumnTransformer`` step,
and, for ``HistGradientBoosting``, one native call per tree. :func:`compile_fast_path` reads
the *fitted* pipeline once, when a version is loaded, and turns the steps it knows into plain
numpy operations on the records, in the order scikit-learn applies them, so the numbers are
the same floating-point operations and the results are identical:

- ``ColumnTransformer`` (no sparse or pandas output; columns by name or position; remainder
  ``drop`` or ``passthrough`` of numeric columns), its blocks stacked in ``transformers_`` order;
- per block, ``passthrough`` or a chain of ``SimpleImputer`` (missing values ``nan``, no
  indicator), ``StandardScaler``, ``MinMaxScaler``, ``RobustScaler`` for numeric columns, and
  ``SimpleImputer`` then ``OneHotEncoder`` (``handle_unknown="ignore"``, dense, no ``drop``,
  no infrequent categories) for string columns;
- the final estimator gets the matrix; for up to 16 rows, the trees of a
  ``HistGradientBoosting`` model without native categorical splits are walked in Python
  (each tree's leaf value added in iteration order, as scikit-learn does); larger batches
  and any other estimator are scored by calling the estimator with the matrix.

Anything else makes :func:`compile_fast_path` return ``None`` and the server uses the full
pipeline. Before a compiled path is used, it is checked against the full pipeline on probe
records built from the signature (training categories, an unseen category, nulls, edge
numbers); a single differing bit disables it for that version. At request time a record the
compiled path cannot represent (a null reaching an encoder with nothing to impute it) makes
that call use the full pipeline.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

_NUMERIC = ("number", "integer")


class _Unsupported(Exception):
    """A fitted step (or a record) the compiled path does not reproduce."""


class FastPath:
    """Records → the final estimator's input matrix → predictions, without the pipeline."""

    INLINE_ROWS = 4  # up to this many rows a call is cheap enough to run on the event loop

    def __init__(self, blocks: list[Callable], n_features: int, estimator: Any,
                 trees: _Trees | None) -> None:
        self._blocks = blocks
        self._n_features = n_features
        self._estimator = estimator
        self._trees = trees

    def matrix(self, rows: list[dict]) -> np.ndarray | None:
        """The float64 matrix the final estimator sees, or ``None`` when a record needs the
        full pipeline."""
        try:
            parts = [block(rows) for block in self._blocks]
        except _Unsupported:
            return None
        X = parts[0] if len(parts) == 1 else np.hstack(parts)
        return X if X.shape[1] == self._n_features else None

    def predict_proba(self, rows: list[dict]) -> np.ndarray | None:
        """The estimator's ``predict_proba``, or ``None``: use the full pipeline."""
        X = self.matrix(rows)
        if X is None:
            return None
        if self._trees is not None and len(X) <= self._trees.MAX_ROWS:
            return self._estimator._loss.predict_proba(self._trees.raw(X))
        return self._estimator.predict_proba(X)

    def predict(self, rows: list[dict]) -> np.ndarray | None:
        """The estimator's ``predict``, or ``None``: use the full pipeline."""
        X = self.matrix(rows)
        if X is None:
            return None
        if self._trees is not None and len(X) <= self._trees.MAX_ROWS and \
                not hasattr(self._estimator, "classes_"):
            return self._estimator._loss.link.inverse(self._trees.raw(X).ravel())
        return self._estimator.predict(X)


class _Trees:
    """The trees of a fitted ``HistGradientBoosting`` model as Python tuples, for a few rows.

    One native call per tree (what ``predict_proba`` makes) costs more than walking the trees
    of a handful of rows in Python. The walk mirrors ``_predict_one_from_raw_data`` for
    numeric splits: ``nan`` goes where ``missing_go_to_left`` says, else ``x <= threshold``
    goes left; the raw prediction is the baseline plus each tree's leaf value, added one tree
    at a time in iteration order, in double precision, as ``_raw_predict`` does. Larger
    batches go to the estimator, whose per-call cost is then shared by many rows.
    """

    MAX_ROWS = 16

    def __init__(self, est: Any) -> None:
        nodes: list[tuple] = []
        roots = []
        for iteration in est._predictors:
            for k, predictor in enumerate(iteration):
                n = predictor.nodes
                if n["is_categorical"].any():
                    raise _Unsupported("categorical split")
                off = len(nodes)
                roots.append((off, k))
                for leaf, feat, thr, mleft, left, right, value in zip(
                        n["is_leaf"].tolist(), n["feature_idx"].tolist(),
                        n["num_threshold"].tolist(), n["missing_go_to_left"].tolist(),
                        n["left"].tolist(), n["right"].tolist(), n["value"].tolist()):
                    nodes.append((bool(leaf), feat, thr, bool(mleft), left + off, right + off,
                                  value))
        self.nodes = nodes
        self.roots = roots
        self.k = int(est.n_trees_per_iteration_)
        self.baseline = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)
        if len(self.baseline) != self.k:
            raise _Unsupported("baseline shape")

    def raw(self, X: np.ndarray) -> np.ndarray:
        nodes, roots = self.nodes, self.roots
        base = self.baseline.tolist()
        out = []
        for row in X.tolist():
            acc = list(base)
            for root, k in roots:
                node = nodes[root]
                while not node[0]:
                    x = row[node[1]]
                    if x != x:  # nan
                        node = nodes[node[4] if node[3] else node[5]]
                    elif x <= node[2]:
                        node = nodes[node[4]]
                    else:
                        node = nodes[node[5]]
                acc[k] += node[6]
            out.append(acc)
        return np.asfortranarray(np.array(out, dtype=np.float64).reshape(len(out), self.k))


def compile_fast_path(model: Any, signature: dict) -> FastPath | None:
    """A :class:`FastPath` for ``model`` if every step is supported and the compiled path
    reproduces the full pipeline on probe records; else ``None``."""
    try:
        fast = _compile(model, signature)
    except _Unsupported:
        return None
    except Exception:  # an unexpected fitted layout: the full pipeline stays the path
        return None
    return fast if _agrees(fast, model, signature) else None


def _compile(model: Any, signature: dict) -> FastPath:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    types = {f["name"]: f["type"] for f in signature["inputs"]}
    if not isinstance(model, Pipeline) or len(model.steps) != 2:
        raise _Unsupported("not a preprocessing + estimator pipeline")
    pre, est = model.steps[0][1], model.steps[1][1]
    if not isinstance(pre, ColumnTransformer) or _output_config(pre) or \
            getattr(pre, "sparse_output_", False):
        raise _Unsupported("preprocessing")
    if hasattr(est, "feature_names_in_"):
        raise _Unsupported("the estimator was fitted on named columns")
    names = list(getattr(pre, "feature_names_in_", []))
    blocks = []
    for _, trans, cols in pre.transformers_:
        if isinstance(trans, str) and trans == "drop":
            continue
        cols = _column_names(cols, names)
        if not cols:
            continue
        if isinstance(trans, str) and trans != "passthrough":
            raise _Unsupported(trans)
        kinds = {types.get(c) for c in cols}
        steps = [] if isinstance(trans, str) else (
            [s for _, s in trans.steps] if isinstance(trans, Pipeline) else [trans])
        if kinds <= set(_NUMERIC):
            blocks.append(_numeric_block(cols, steps))
        elif kinds == {"string"}:
            blocks.append(_categorical_block(cols, steps))
        else:
            raise _Unsupported("column types")
    if not blocks:
        raise _Unsupported("no columns")
    trees = None
    if type(est).__name__ in ("HistGradientBoostingClassifier",
                              "HistGradientBoostingRegressor") and \
            getattr(est, "_preprocessor", None) is None and \
            getattr(est, "is_categorical_", None) is None:
        trees = _Trees(est)
    return FastPath(blocks, int(est.n_features_in_), est, trees)


def _output_config(step: Any) -> bool:
    conf = getattr(step, "_sklearn_output_config", None) or {}
    return conf.get("transform", "default") != "default"


def _column_names(cols: Any, names: list[str]) -> list[str]:
    if isinstance(cols, str):
        return [cols]
    out = []
    for c in list(cols):
        if isinstance(c, (str, np.str_)):
            out.append(str(c))
        elif isinstance(c, (int, np.integer)) and not isinstance(c, bool) and names:
            out.append(names[int(c)])
        else:
            raise _Unsupported("column selector")
    return out


def _numeric_block(cols: list[str], steps: list) -> Callable:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import (FunctionTransformer, MinMaxScaler, RobustScaler,
                                       StandardScaler)

    ops: list[Callable[[np.ndarray], np.ndarray]] = []
    for step in steps:
        if _output_config(step):
            raise _Unsupported("pandas output")
        if type(step) is SimpleImputer:
            stats = _imputer_statistics(step, len(cols))
            stats = stats.astype(np.float64)
            ops.append(lambda X, s=stats: np.where(np.isnan(X), s, X))
        elif type(step) is StandardScaler:
            mean = step.mean_ if step.with_mean else None
            scale = step.scale_ if step.with_std else None
            ops.append(lambda X, m=mean, s=scale: _center_scale(X, m, s))
        elif type(step) is RobustScaler:
            center = step.center_ if step.with_centering else None
            scale = step.scale_ if step.with_scaling else None
            ops.append(lambda X, m=center, s=scale: _center_scale(X, m, s))
        elif type(step) is FunctionTransformer and step.func is None and not step.validate:
            continue  # what a fitted ColumnTransformer holds for "passthrough"
        elif type(step) is MinMaxScaler:
            lo, hi = step.feature_range
            ops.append(lambda X, s=step.scale_, m=step.min_, c=step.clip, lo=lo, hi=hi:
                       _minmax(X, s, m, c, lo, hi))
        else:
            raise _Unsupported(type(step).__name__)

    def block(rows: list[dict]) -> np.ndarray:
        X = np.array([[r[c] for c in cols] for r in rows], dtype=np.float64)
        for op in ops:
            X = op(X)
        return X

    return block


def _center_scale(X: np.ndarray, center: Any, scale: Any) -> np.ndarray:
    if center is not None:
        X = X - center
    if scale is not None:
        X = X / scale
    return X


def _minmax(X: np.ndarray, scale: Any, shift: Any, clip: bool, lo: float, hi: float):
    X = X * scale
    X += shift
    if clip:
        np.clip(X, lo, hi, out=X)
    return X


def _imputer_statistics(step: Any, n: int) -> np.ndarray:
    missing = step.missing_values
    if not (isinstance(missing, float) and math.isnan(missing)) or step.add_indicator:
        raise _Unsupported("imputer settings")
    stats = np.asarray(step.statistics_)
    if len(stats) != n or any(_is_missing(v) for v in stats.tolist()):
        raise _Unsupported("an imputer with an all-missing column")
    return stats


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _categorical_block(cols: list[str], steps: list) -> Callable:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    fill: list | None = None
    *head, enc = steps if steps else [None]
    for step in head:
        if type(step) is not SimpleImputer or fill is not None or _output_config(step):
            raise _Unsupported("categorical step")
        fill = _imputer_statistics(step, len(cols)).tolist()
    if type(enc) is not OneHotEncoder or _output_config(enc) or enc.handle_unknown != "ignore" \
            or enc.drop_idx_ is not None or getattr(enc, "_infrequent_enabled", False) or \
            enc.sparse_output or np.dtype(enc.dtype) != np.float64:
        raise _Unsupported("encoder")
    lookups, offsets, total = [], [], 0
    for cats in enc.categories_:
        values = cats.tolist()
        if any(not isinstance(v, str) for v in values):
            raise _Unsupported("non-string categories")
        lookups.append({v: i for i, v in enumerate(values)})
        offsets.append(total)
        total += len(values)
    plan = list(zip(cols, lookups, offsets, fill if fill is not None else [None] * len(cols)))

    def block(rows: list[dict]) -> np.ndarray:
        X = np.zeros((len(rows), total), dtype=np.float64)
        for i, r in enumerate(rows):
            for name, lookup, off, default in plan:
                value = r[name]
                if value is None:
                    if default is None:
                        raise _Unsupported("a null with no imputer")
                    value = default
                j = lookup.get(value)
                if j is not None:
                    X[i, off + j] = 1.0
        return X

    return block


def _probe_rows(signature: dict, nulls: bool) -> list[dict]:
    """Records that exercise every branch: each training category, an unseen one, nulls
    (when ``nulls``), zeros, negatives, large and fractional numbers."""
    numbers = [0, 1, -1, 2.5, -3.75, 1e6, 1e-9, 17, 123456] + ([None] if nulls else [])
    rows = []
    for i in range(48):
        row = {}
        for j, f in enumerate(signature["inputs"]):
            kind = f["type"]
            if kind == "string":
                seen = list(f.get("values") or []) + ["\x00unseen"] + ([None] if nulls else [])
                row[f["name"]] = seen[(i + j) % len(seen)]
            elif kind == "integer":
                v = numbers[(i + 2 * j) % len(numbers)]
                row[f["name"]] = None if v is None else int(v)
            elif kind == "number":
                row[f["name"]] = numbers[(i + 3 * j) % len(numbers)]
            else:
                row[f["name"]] = [True, False, None][(i + j) % (3 if nulls else 2)]
        rows.append(row)
    return rows


def _agrees(fast: FastPath, model: Any, signature: dict) -> bool:
    """Whether the compiled path gives bit-identical answers to the full pipeline (or fails
    where it fails) on probe records, with and without nulls."""
    from ._model import Contract

    contract = Contract(signature)
    method = "predict_proba" if hasattr(model, "predict_proba") and \
        signature.get("task") == "classification" else "predict"
    checked = 0
    for nulls in (False, True):
        rows = _probe_rows(signature, nulls)
        for batch in ([rows[0]], rows[1:17], rows):
            got, got_exc = _outcome(lambda: getattr(fast, method)(batch))
            if got_exc is None and got is None:
                continue  # these records take the full pipeline anyway
            want, want_exc = _outcome(lambda: getattr(model, method)(contract.frame(batch)))
            if got_exc is not None or want_exc is not None:
                if got_exc is not want_exc:
                    return False
                continue
            got, want = np.asarray(got), np.asarray(want)
            if got.shape != want.shape or got.dtype != want.dtype or \
                    not np.array_equal(got, want, equal_nan=got.dtype.kind == "f"):
                return False
            checked += 1
    return checked > 0


def _outcome(call: Callable) -> tuple[Any, type | None]:
    try:
        return call(), None
    except Exception as exc:
        return None, type(exc)
