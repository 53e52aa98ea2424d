"""Build a schema instance straight from a plain mapping, when that needs no conversion.

Validation merges a node into its dataclass schema with OmegaConf, which converts values
("3" into an int field), fills defaults and explains every problem. Most nodes of a working
spec need none of that: every key is a field and every value already has its declared type.
For those, :func:`build_exact` constructs the instance directly, which spares importing
OmegaConf and its structured-config machinery (about 0.2 s) on every command. Anything else —
an unknown key, a value of another type, a required value left at ``???``, an annotation it
does not know — returns ``None``, and the OmegaConf path produces the same instance or the
error, so results and messages do not depend on which path ran.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

_NO = object()
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(schema: type) -> dict[str, Any] | None:
    hints = _HINTS.get(schema)
    if hints is None:
        try:
            hints = typing.get_type_hints(schema)
        except Exception:  # an annotation that does not evaluate: let OmegaConf judge
            return None
        _HINTS[schema] = hints
    return hints


def _value(tp: Any, value: Any) -> Any:
    """``value`` as an instance of annotation ``tp``, or ``_NO`` if that needs conversion."""
    if tp is Any:
        return _plain_copy(value)
    if value is None:
        return None if _optional(tp) else _NO
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            out = _value(arg, value)
            if out is not _NO:
                return out
        return _NO
    if tp is bool:
        return value if type(value) is bool else _NO
    if tp is int:
        return value if type(value) is int else _NO
    if tp is float:
        return float(value) if type(value) in (int, float) else _NO
    if tp is str:
        return value if type(value) is str and value != "???" else _NO
    if tp in (dict, list):
        return _plain_copy(value) if type(value) is tp else _NO
    if origin is list:
        (arg,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            return _NO
        out = [_value(arg, v) for v in value]
        return _NO if any(v is _NO for v in out) else out
    if origin is dict:
        kt, vt = typing.get_args(tp) or (str, Any)
        if not isinstance(value, dict) or kt is not str or \
                not all(type(k) is str for k in value):
            return _NO
        out = {k: _value(vt, v) for k, v in value.items()}
        return _NO if any(v is _NO for v in out.values()) else out
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        built = build_exact(tp, value) if isinstance(value, dict) else None
        return _NO if built is None else built
    return _NO


def _optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and \
        type(None) in typing.get_args(tp)


def _plain_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_copy(v) for v in value]
    return value


def build_exact(schema: type, body: dict) -> Any | None:
    """An instance of ``schema`` from ``body`` if no value needs converting, else ``None``."""
    hints = _hints(schema)
    if hints is None:
        return None
    fields = {f.name: f for f in dataclasses.fields(schema)}
    if any(k not in fields or not fields[k].init for k in body):
        return None
    kwargs = {}
    for name, f in fields.items():
        if not f.init:
            return None
        if name in body:
            value = _value(hints[name], body[name])
            if value is _NO:
                return None
            kwargs[name] = value
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            return None  # required and not given: OmegaConf names it
        elif f.default == "???":
            return None
    return schema(**kwargs)
