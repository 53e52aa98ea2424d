"""Tabular plumbing the engine owns, the same for every data component's DataFrame: feature
selection, checks, splitting, signatures, frames as Parquet bytes. pandas is imported inside
the functions: planning imports this module and never needs it (~0.3 s)."""

from __future__ import annotations

import io
from typing import Any

from .errors import ConfigError, StageError


def to_parquet(frame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def from_parquet(data: bytes):
    import pandas as pd

    return pd.read_parquet(io.BytesIO(data))


def columns_for(frame, conf: Any, where: Any, key: str = "data") -> dict[str, Any]:
    """Target, features, categorical columns and task from a data config (a ConfigError when
    the data is empty or lacks a column the config names)."""
    import pandas as pd

    cols = list(frame.columns)
    if len(frame) == 0:
        raise ConfigError("the data set is empty", key=key, file=where(key),
                          expected="at least one row", fix="check the data file or its filters")
    if conf.target not in cols:
        raise ConfigError(f"target column {conf.target!r} is not in the data", key=f"{key}.target",
                          file=where(f"{key}.target"), got=conf.target,
                          expected="one of the columns: " + ", ".join(map(str, cols[:30])),
                          fix=f"set {key}.target to the label column")
    for list_key in ("features", "drop", "categorical"):
        missing = [c for c in (getattr(conf, list_key) or []) if c not in cols]
        if missing:
            raise ConfigError(f"{key}.{list_key} names columns that are not in the data",
                              key=f"{key}.{list_key}", file=where(f"{key}.{list_key}"),
                              got=missing, expected="columns of the data: " + ", ".join(cols[:30]),
                              fix="fix the column names")
    excluded = {conf.target, *conf.drop, *([conf.time_column] if conf.time_column else [])}
    features = list(conf.features) if conf.features else [c for c in cols if c not in excluded]
    if not features:
        raise ConfigError("no feature columns are left", key=f"{key}.features",
                          file=where(f"{key}.features"), expected="at least one feature",
                          fix="list features, or drop fewer columns")
    check_frame(frame, features, conf, where, key)
    categorical = list(conf.categorical) if conf.categorical is not None else [
        c for c in features if not pd.api.types.is_numeric_dtype(frame[c])
        or pd.api.types.is_bool_dtype(frame[c])]
    task = conf.task
    if task == "auto":
        y = frame[conf.target]
        task = "classification" if (not pd.api.types.is_float_dtype(y) or y.nunique() <= 20) \
            else "regression"
    return {"target": conf.target, "features": features, "categorical": categorical,
            "task": task, "time_column": conf.time_column}


def check_frame(frame, features: list[str], conf: Any, where: Any, key: str) -> None:
    """Refuse data the model would misread: duplicate column names, and numeric feature
    columns with a few text cells (unless ``coerce`` declares how to read them)."""
    import pandas as pd

    duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if duplicated:
        raise ConfigError(f"the data has duplicate column names: {duplicated}", key=key,
                          file=where(key), expected="every column name once",
                          fix="rename or drop the duplicate columns in the data")
    for name, kind in (getattr(conf, "coerce", None) or {}).items():
        if name not in frame.columns or kind != "numeric":
            raise ConfigError(f"cannot coerce {name!r} to {kind!r}", key=f"{key}.coerce.{name}",
                              file=where(f"{key}.coerce"), got=kind,
                              expected="a column of the data, coerced to 'numeric'",
                              fix=f"use {key}.coerce: {{<column>: numeric}}")
        frame[name] = pd.to_numeric(frame[name], errors="coerce")  # bad cells: missing values
    # a few text cells make a numeric column text: it would pass for one category per number
    for name in (n for n in features if n not in (conf.categorical or []) and n in frame.columns):
        if pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(frame[name]):
            continue
        values = frame[name].dropna()
        head = pd.to_numeric(values.head(200), errors="coerce")
        if len(values) == 0 or head.notna().mean() < 0.9:
            continue  # text, not numbers
        bad = values[pd.to_numeric(values, errors="coerce").isna()]
        if len(bad) == 0 or len(bad) > 0.05 * len(values):
            continue
        rows = ", ".join(f"{int(i) + 1} ({v!r})" for i, v in bad.head(5).items())
        raise ConfigError(f"column {name!r} holds numbers and {len(bad)} cell(s) that are not",
                          key=f"{key}.coerce", file=where(key),
                          got=f"data rows {rows}" + (" …" if len(bad) > 5 else ""),
                          expected=f"numbers in every cell of {name!r}, or a declared coercion",
                          fix=f"fix those cells, or set {key}.coerce: {{{name}: numeric}} to "
                              "read them as missing values")


def split_frame(frame, columns: dict, split: Any, seed: int):
    """Split into (train, test) frames keeping features, target and the time column."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    keep = [*columns["features"], columns["target"]]
    keep += [columns["time_column"]] if columns["time_column"] not in (None, "", *keep) else []
    frame = frame[keep]  # a copy already; renumbering rows below never copies again
    if split.method == "time":
        if not columns["time_column"]:
            raise ConfigError("a time split needs data.time_column", key="data.split.method",
                              expected="data.time_column set", fix="set data.time_column, or "
                              "use data.split.method=stratified")
        frame = frame.sort_values(columns["time_column"], kind="stable").reset_index(drop=True)
        cut = int(round(len(frame) * (1 - split.test_size)))
        return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)
    y = frame[columns["target"]]
    stratify = y if split.method == "stratified" and columns["task"] == "classification" and \
        y.value_counts().min() >= 2 else None
    try:
        train, test = train_test_split(frame, test_size=split.test_size, random_state=seed,
                                       stratify=stratify)
    except ValueError as exc:
        raise StageError(f"cannot split the data: {exc}", stage="split") from exc
    for part in (train, test):  # renumbered in place: reset_index would copy
        part.index = pd.RangeIndex(len(part))
    return train, test


def predictions(model: Any, X: Any):
    """``model``'s predictions for the rows of ``X`` as a frame, with a ``proba_<class>``
    column per class when the model has ``predict_proba``."""
    import pandas as pd

    scores = pd.DataFrame({"prediction": model.predict(X)})
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        for i, label in enumerate(getattr(model, "classes_", range(proba.shape[1]))):
            scores[f"proba_{label}"] = proba[:, i]
    return scores


def signature(frame, columns: dict) -> dict:
    """The model's input signature: feature names, types and (categorical) values seen."""
    import pandas as pd

    types, fields = pd.api.types, []
    for name in columns["features"]:
        s = frame[name]
        if name in columns["categorical"]:
            fields.append({"name": name, "type": "integer" if types.is_numeric_dtype(s) else
                           "string", "categorical": True,
                           "values": sorted(map(str, s.dropna().unique()))[:200]})
        else:
            fields.append({"name": name, "type": "integer" if types.is_integer_dtype(s) else
                           "boolean" if types.is_bool_dtype(s) else "number",
                           "categorical": False})
    return {"inputs": fields, "target": columns["target"], "task": columns["task"]}
