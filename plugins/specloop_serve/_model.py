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

# JSON types accepted per signature type (bool is not a number here, as in JSON Schema)
_ACCEPT = {"number": (int, float), "integer": (int,), "string": (str,), "boolean": (bool,)}
_JSON_TYPE = {"number": "number", "integer": "integer", "string": "string", "boolean": "boolean"}


class InputError(Exception):
    """A request the server refuses: an HTTP status and FastAPI-style error details."""

    def __init__(self, status: int, msg: str, loc: list | None = None,
                 kind: str = "value_error") -> None:
        super().__init__(msg)
        self.status = status
        self.detail = [{"loc": ["body", *(loc or [])], "msg": msg, "type": kind}]

    def body(self) -> dict:
        """The JSON error body."""
        return {"error": str(self), "detail": self.detail}


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
                {type(row[name]) for row in rows} <= accept for name, accept, _ in self._nullable):
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
                extra = [k for k in row if k not in fset]
                raise InputError(422, f"unexpected feature {extra[0]!r}" +
                                 (f" in record {i}" if not single else "") +
                                 "; the model takes: " + ", ".join(features),
                                 [*loc, extra[0]], "extra_forbidden")
            for name, accept, kind in self.checks:
                value = row[name]
                if value is not None and type(value) not in accept:
                    raise InputError(422, f"feature {name!r}" +
                                     (f" in record {i}" if not single else "") +
                                     f" must be {_article(kind)}, got {_jtype(value)} "
                                     f"{json.dumps(value)[:40]}", [*loc, name], "type_error")
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
        return [classes[i] for i in idx], [dict(zip(labels, p)) for p in proba.tolist()]

    def metadata(self) -> dict:
        """What ``GET /metadata`` returns."""
        r = self.record
        return {"model": self.name, "version": self.version, "alias": self.alias,
                "aliases": r.get("aliases", []), "created_at": r.get("created_at"),
                "run_id": r.get("run_id"), "metrics": r.get("metrics", {}),
                "task": self.contract.signature.get("task"),
                "target": self.contract.signature.get("target"),
                "classes": self._classes, "signature": self.contract.signature,
                "fast_path": self.fast is not None,
                "record_schema": self.contract.json_schema(),
                "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at))}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def load_version(ctx: Any, record: dict, alias: str | None,
                 fast_path: bool = True) -> LoadedModel:
    """Load a registry version for serving: the model through ``specloop.load_model`` (the
    registry's SHA-256 checked first, skops with recorded trusted types), its signature and,
    with ``fast_path``, the compiled scoring path when the pipeline allows one.

    This is the only place the server deserializes a model.
    """
    from specloop import load_model

    from ._fastpath import compile_fast_path

    store = ctx.store
    model = load_model(ctx, record)
    signature = json.loads(store.get(record["model_key"], "signature.json"))
    return LoadedModel(ctx.model_name, int(record["version"]), record, model,
                       Contract(signature), alias,
                       fast=compile_fast_path(model, signature) if fast_path else None)
