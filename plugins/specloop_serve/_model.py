"""A loaded model version and its request contract, derived from the signature.

``load_version`` is the one place the server turns a registry version into a model object;
it goes through the project's model component (``loads`` on the bytes the store verified),
the same path the pipeline and the loop use.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from ._request import InputError

# JSON types accepted per signature type (bool is not a number here, as in JSON Schema)
_ACCEPT = {"number": (int, float), "integer": (int,), "string": (str,), "boolean": (bool,)}
_JSON_TYPE = {"number": "number", "integer": "integer", "string": "string", "boolean": "boolean"}
# integer features reach the model as int64
INT_MIN, INT_MAX = -2**63, 2**63 - 1
FLOAT_EXACT = 2**53  # the largest whole number up to which every float is exact
# number features stay within float32, the precision scikit-learn's tree models compute in;
# beyond it a pipeline's arithmetic (scaling, products) can overflow to infinity
FLOAT32_MAX = 3.4028234663852886e38
_BOUNDS = {"integer": (INT_MIN, INT_MAX), "number": (-FLOAT32_MAX, FLOAT32_MAX)}


@dataclass
class Contract:
    """Feature names and per-feature type checks, precomputed from a signature."""

    signature: dict
    features: list[str] = field(init=False)
    checks: list[tuple[str, tuple, str]] = field(init=False)

    def __post_init__(self) -> None:
        inputs = self.signature["inputs"]
        self.features = [f["name"] for f in inputs]
        self._set = frozenset(self.features)
        self.checks = [(f["name"], _ACCEPT[f["type"]], f["type"]) for f in inputs]
        self._nullable = [(name, frozenset((*accept, type(None))), kind)
                          for name, accept, kind in self.checks]
        self._bounded = [(f["name"], *_BOUNDS[f["type"]]) for f in inputs
                         if f["type"] in _BOUNDS]

    def rows(self, body: Any, max_rows: int) -> list[dict]:
        """The records of a parsed JSON body, checked; raises :class:`InputError`."""
        if isinstance(body, dict):
            rows = [body]
            single = True
        elif isinstance(body, list):
            if not body:
                raise InputError(422, "the request holds an empty list; send one record or a "
                                      "non-empty list of records", kind="empty_list")
            if len(body) > max_rows:
                raise InputError(413, f"the request holds {len(body)} records; the limit is "
                                      f"{max_rows} (plugins.serve.max_rows)", kind="too_many_rows")
            rows = body
            single = False
        else:
            raise InputError(422, "the body must be a JSON object (one record) or a list of "
                                  f"objects, not {_jtype(body)}", kind="type_error")
        features, fset = self.features, self._set
        if all(type(row) is dict and len(row) == len(features) and row.keys() == fset
               for row in rows) and all(
                {type(row[name]) for row in rows} <= accept for name, accept, _ in self._nullable
        ) and all(lo <= v <= hi for name, lo, hi in self._bounded for row in rows
                  if (v := row[name]) is not None):
            return rows  # the common case, checked a column at a time
        for i, row in enumerate(rows):  # find the first bad field, for the message
            loc = [] if single else [i]
            if type(row) is not dict:
                raise InputError(422, f"record {i} must be a JSON object, not {_jtype(row)}",
                                 loc, "type_error")
            if len(row) != len(features) or row.keys() != fset:
                missing = [f for f in features if f not in row]
                if missing:
                    raise InputError(422, f"missing feature {missing[0]!r}" + (
                        f" (and {len(missing) - 1} more: {', '.join(missing[1:4])})"
                        if len(missing) > 1 else "") + (f" in record {i}" if not single else ""),
                        [*loc, missing[0]], "missing")
                extra = _short(next(k for k in row if k not in fset))
                raise InputError(422, f"unexpected feature {extra!r}" +
                                 (f" in record {i}" if not single else "") +
                                 "; the model takes: " + ", ".join(features),
                                 [*loc, extra], "extra_forbidden")
            where = "" if single else f" in record {i}"
            for name, accept, kind in self.checks:
                value = row[name]
                if value is None:
                    continue
                if kind == "integer" and type(value) is float and value.is_integer():
                    # 3.0 is an integer in JSON Schema too; beyond 2**53 a float is not exact
                    # (the parser also reads an integer below the int64 range as one)
                    if abs(value) > FLOAT_EXACT:
                        raise _out_of_range(name, where, value, [*loc, name])
                    row[name] = int(value)
                    continue
                if type(value) not in accept:
                    raise InputError(422, f"feature {name!r}{where} must be {_article(kind)}, "
                                          f"got {_jtype(value)}{_preview(value)}",
                                     [*loc, name], "type_error")
                if kind in _BOUNDS and not _BOUNDS[kind][0] <= value <= _BOUNDS[kind][1]:
                    raise _out_of_range(name, where, value, [*loc, name], kind)
        return rows

    def frame(self, rows: list[dict]) -> Any:
        """The checked records as a DataFrame with the training dtypes."""
        import numpy as np
        import pandas as pd

        cols = {}
        for f in self.signature["inputs"]:
            name = f["name"]
            values = [r[name] for r in rows]
            kind = f["type"]
            if kind == "string":  # null is a missing value (NaN), as pandas reads it
                arr = np.array([np.nan if v is None else v for v in values], dtype=object) \
                    if None in values else np.array(values, dtype=object)
            elif kind == "number" or None in values:
                arr = np.array(values, dtype=float)
            elif kind == "integer":
                arr = np.array(values, dtype=np.int64)
            else:
                arr = np.array(values, dtype=bool)
            cols[name] = arr
        return pd.DataFrame(cols, copy=False)

    def json_schema(self) -> dict:
        """JSON Schema of one record (for OpenAPI and ``/metadata``)."""
        props, example = {}, {}
        for f in self.signature["inputs"]:
            prop: dict[str, Any] = {"type": _JSON_TYPE[f["type"]], "nullable": True,
                                    "title": f["name"]}
            if f["type"] in _BOUNDS:
                prop["minimum"], prop["maximum"] = _BOUNDS[f["type"]]
            if f.get("categorical") and f.get("values"):
                shown = f["values"][:20]
                prop["description"] = "categorical; values seen in training: " + ", ".join(
                    shown) + (" …" if len(f["values"]) > 20 else "")
                raw = f["values"][0]
                example[f["name"]] = raw if f["type"] == "string" else int(float(raw))
            else:
                example[f["name"]] = {"number": 0.0, "integer": 0, "boolean": False,
                                      "string": ""}[f["type"]]
            props[f["name"]] = prop
        return {"type": "object", "title": "Record", "properties": props,
                "required": list(self.features), "additionalProperties": False,
                "example": example}


def _out_of_range(name: str, where: str, value: Any, loc: list,
                  kind: str = "integer") -> InputError:
    if kind == "number":
        what = f"a number from {-FLOAT32_MAX:g} to {FLOAT32_MAX:g} (the float32 range)"
        got = f"{value:g}"
    else:
        what = f"a 64-bit integer from {INT_MIN} to {INT_MAX}" + (
            "" if type(value) is int else " written as an integer (no fraction or exponent)")
        got = str(value)
    return InputError(422, f"feature {name!r}{where} must be {what}, got {got}", loc,
                      "number_out_of_range")


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _preview(value: Any) -> str:
    """A short rendering of a scalar for a message; containers (which may nest a thousand
    levels deep) are named, never serialized."""
    if isinstance(value, (dict, list)):
        return ""
    return " " + json.dumps(_short(value, 40) if isinstance(value, str) else value,
                            ensure_ascii=False)


def _article(kind: str) -> str:
    return {"number": "a number", "integer": "an integer", "string": "a string",
            "boolean": "true or false"}[kind]


def _jtype(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(value),
                                                                          type(value).__name__)


@dataclass
class LoadedModel:
    """One registry version, loaded: what every request during its reign uses."""

    name: str
    version: int
    record: dict
    model: Any
    contract: Contract
    alias: str | None
    loaded_at: float = field(default_factory=time.time)
    fast: Any = None  # a compiled FastPath when the pipeline's steps allow one
    runtime: str = "sklearn"  # or "onnx": ``model`` and ``fast`` are the ONNX Runtime session

    @property
    def classes(self) -> list | None:
        """Class labels for a classifier with probabilities, else ``None``."""
        if self.contract.signature.get("task") == "classification" and \
                hasattr(self.model, "predict_proba"):
            return list(getattr(self.model, "classes_", []))
        return None

    def __post_init__(self) -> None:
        classes = self.classes
        self._classes = None if classes is None else [_plain(c) for c in classes]
        self._labels = None if classes is None else [str(c) for c in self._classes]

    def cheap(self, n: int) -> bool:
        """Whether scoring ``n`` rows is a compiled call of a few tens of microseconds."""
        return self.fast is not None and n <= self.fast.INLINE_ROWS

    def predict(self, rows: list[dict]) -> tuple[list, list | None]:
        """Predictions (and per-class probabilities for classifiers) for checked records.

        For a classifier the prediction is the class with the highest probability, which is
        what scikit-learn's ``predict`` returns for its probabilistic classifiers; computing
        both from one ``predict_proba`` call halves the work per request.
        """
        fast = self.fast
        if self._classes is None:
            out = fast.predict(rows) if fast is not None else None
            if out is None:
                out = self.model.predict(self.contract.frame(rows))
            return out.tolist(), None
        proba = fast.predict_proba(rows) if fast is not None else None
        if proba is None:
            proba = self.model.predict_proba(self.contract.frame(rows))
        idx = proba.argmax(axis=1).tolist()
        labels, classes = self._labels, self._classes
        preds = [classes[i] for i in idx]
        finite = _finite_rows(proba)
        if finite is not None:  # extreme inputs overflowed: no class is the most probable
            preds = [p if ok else None for p, ok in zip(preds, finite)]
        return preds, [dict(zip(labels, p)) for p in proba.tolist()]

    def metadata(self) -> dict:
        """What ``GET /metadata`` returns."""
        r = self.record
        return {"model": self.name, "version": self.version, "alias": self.alias,
                "aliases": r.get("aliases", []), "created_at": r.get("created_at"),
                "run_id": r.get("run_id"), "metrics": r.get("metrics", {}),
                "task": self.contract.signature.get("task"),
                "target": self.contract.signature.get("target"),
                "classes": self._classes, "signature": self.contract.signature,
                "fast_path": self.fast is not None and self.runtime == "sklearn",
                "runtime": self.runtime,
                **({"onnx": getattr(self.model, "record", None)} if self.runtime == "onnx"
                   else {}),
                "record_schema": self.contract.json_schema(),
                "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at))}


def _finite_rows(proba: Any) -> list[bool] | None:
    """Per row, whether every probability is finite; ``None`` when all are (the usual case)."""
    import numpy as np

    ok = np.isfinite(proba).all(axis=1)
    return None if ok.all() else ok.tolist()


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def load_version(ctx: Any, record: dict, alias: str | None,
                 fast_path: bool = True, runtime: str = "sklearn") -> LoadedModel:
    """Load a registry version for serving: the model through ``specloop.load_model`` (the
    registry's SHA-256 checked first, skops with recorded trusted types), its signature and,
    with ``fast_path``, the compiled scoring path when the pipeline allows one.

    With ``runtime="onnx"`` the version's ONNX export is scored in ONNX Runtime instead
    (``specloop_onnx.load_onnx``: the recorded export, read only if its bytes match their
    recorded SHA-256, else converted and parity-checked now); it takes records directly, so
    it stands in for both the model and the compiled path.

    This is the only place the server deserializes a model.
    """
    from specloop import load_model

    from ._fastpath import compile_fast_path

    store = ctx.store
    signature = json.loads(store.get(record["model_key"], "signature.json"))
    if runtime == "onnx":
        from specloop_onnx import load_onnx

        onnx_model = load_onnx(ctx, record, signature)
        return LoadedModel(ctx.model_name, int(record["version"]), record, onnx_model,
                           Contract(signature), alias, fast=onnx_model, runtime="onnx")
    model = load_model(ctx, record)
    return LoadedModel(ctx.model_name, int(record["version"]), record, model,
                       Contract(signature), alias,
                       fast=compile_fast_path(model, signature) if fast_path else None)
