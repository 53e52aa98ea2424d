"""Server settings: the ``plugins.serve`` node of the spec, plus ``SPECLOOP_SERVE_TOKEN``.

``plugins:`` is the spec's place for plugin-global settings keyed by entry-point name, so the
serving settings live at ``plugins.serve`` rather than in a new root key.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from typing import Any

from specloop import ConfigError

#: How ``specloop serve`` hands its options to the uvicorn factory in each worker process.
OPTIONS_ENV = "SPECLOOP_SERVE_OPTIONS"


@dataclass
class LogSettings:
    """Request/response logging to the store."""

    enabled: bool = True
    flush_records: int = 1000      # flush when this many rows are queued …
    flush_seconds: float = 2.0     # … or this long after the last flush
    rotate_bytes: int = 64 * 2**20  # seal the current part at this size …
    rotate_seconds: float = 3600.0  # … or at this age
    max_queue: int = 100_000       # rows queued in memory; beyond it rows are dropped (counted)


@dataclass
class ServeSettings:
    """``plugins.serve``."""

    token: str | None = None        # enables the state-changing /admin routes
    poll_seconds: float = 1.0       # how often the alias is re-read for hot reload
    max_body_bytes: int | None = None  # larger request bodies get 413 (None: see body_limit)
    max_rows: int = 10_000          # more records in one request get 413
    fast_path: bool = True          # compile supported pipelines to numpy at load
    log: LogSettings = field(default_factory=LogSettings)

    @property
    def body_limit(self) -> int:
        """The largest ``/predict`` body: ``max_body_bytes``, else ``max_rows`` records of
        ``BODY_BYTES_PER_ROW`` bytes each, so the two limits agree unless both are set."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        return self.max_rows * BODY_BYTES_PER_ROW


#: The body allowance per record when ``max_body_bytes`` is not set: a record of a few dozen
#: features with full-precision floats and category names fits in 1 KiB as JSON.
BODY_BYTES_PER_ROW = 1024

_POSITIVE = {"poll_seconds", "max_body_bytes", "max_rows", "flush_records", "flush_seconds",
             "rotate_bytes", "rotate_seconds", "max_queue"}


def _fill(cls: type, node: Any, key: str, where: Any) -> Any:
    if node is None:
        return cls()
    if not isinstance(node, dict):
        raise ConfigError(f"{key} must be a mapping", key=key, file=where(key), got=node,
                          expected="a mapping of settings", fix=f"write {key} as key: value lines")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for name, value in node.items():
        k = f"{key}.{name}"
        if name not in fields:
            close = difflib.get_close_matches(str(name), list(fields), n=1)
            raise ConfigError(f"unknown key {k!r}", key=k, file=where(k),
                              expected="one of: " + ", ".join(fields),
                              fix=f"rename it to {key}.{close[0]}" if close else "remove it",
                              extra=[("did you mean", close[0])] if close else [])
        default = fields[name].default_factory() if fields[name].default is dataclasses.MISSING \
            else fields[name].default
        if dataclasses.is_dataclass(default):
            values[name] = _fill(type(default), value, k, where)
            continue
        if name == "max_body_bytes" and value is None:
            pass  # derived from max_rows (ServeSettings.body_limit)
        elif name == "max_body_bytes":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not float(value).is_integer() or value <= 0:
                raise ConfigError(f"wrong value for {k}", key=k, file=where(k), got=value,
                                  expected="an integer > 0, or null (max_rows × "
                                           f"{BODY_BYTES_PER_ROW} bytes)",
                                  fix=f"{k}=20000000, or remove the key")
            value = int(value)
        elif name == "token":
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"wrong value for {k}", key=k, file=where(k), got=value,
                                  expected="a non-empty string or null",
                                  fix="set it from the environment: SPECLOOP_SERVE_TOKEN")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"wrong type for {k}", key=k, file=where(k), got=value,
                                  expected="true or false", fix=f"{k}=true")
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok and isinstance(default, int) and not isinstance(default, bool):
                ok = float(value).is_integer()
                value = int(value) if ok else value
            if not ok or (name in _POSITIVE and value <= 0):
                kind = "an integer" if isinstance(default, int) else "a number"
                raise ConfigError(f"wrong value for {k}", key=k, file=where(k), got=value,
                                  expected=f"{kind} > 0", fix=f"{k}={default}")
        values[name] = value
    return cls(**values)


def serve_settings(spec: Any) -> ServeSettings:
    """Validated serving settings of a spec (``SPECLOOP_SERVE_TOKEN`` wins over the file)."""
    settings = _fill(ServeSettings, spec.plugin_settings.get("serve"), "plugins.serve",
                     spec.provenance.where)
    token = os.environ.get("SPECLOOP_SERVE_TOKEN")
    if token:
        settings.token = token
    return settings
