"""Server settings: the ``plugins.serve`` node of the spec, plus ``SPECLOOP_SERVE_TOKEN``.

``plugins:`` is the spec's place for plugin-global settings keyed by entry-point name, so the
serving settings live at ``plugins.serve`` rather than in a new root key. The plugin declares
them (``specloop_settings_schema``) and the engine validates them with every other node.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from specloop import Interval, param

#: How ``specloop serve`` hands its options to the uvicorn factory in each worker process.
OPTIONS_ENV = "SPECLOOP_SERVE_OPTIONS"
#: The body allowance per record when ``max_body_bytes`` is not set: a record of a few dozen
#: features with full-precision floats and category names fits in 1 KiB as JSON.
BODY_BYTES_PER_ROW = 1024

_POSITIVE_INT = Interval(int, 1, None)
_POSITIVE = Interval(float, 0, None, closed="neither")


@dataclass
class LogSettings:
    """Request/response logging to the store."""

    enabled: bool = param(True, help="log every request and response to the store")
    flush_records: int = param(1000, check=_POSITIVE_INT,
                               help="flush when this many rows are queued …")
    flush_seconds: float = param(2.0, check=_POSITIVE, help="… or this long after the last "
                                                           "flush")
    rotate_bytes: int = param(64 * 2**20, check=_POSITIVE_INT,
                              help="seal the current part at this size …")
    rotate_seconds: float = param(3600.0, check=_POSITIVE, help="… or at this age")
    max_queue: int = param(100_000, check=_POSITIVE_INT,
                           help="rows queued in memory; beyond it rows are dropped (counted)")


@dataclass
class ServeSettings:
    """``plugins.serve``."""

    token: str | None = param(None, secret=True,
                              help="enables the state-changing /admin routes (prefer "
                                   "SPECLOOP_SERVE_TOKEN)")
    poll_seconds: float = param(1.0, check=_POSITIVE,
                                help="how often the alias is re-read for hot reload")
    max_body_bytes: int | None = param(
        None, check=Interval(int, 1, None, allow_none=True),
        help=f"larger request bodies get 413 (null: max_rows × {BODY_BYTES_PER_ROW} bytes)")
    max_rows: int = param(10_000, check=_POSITIVE_INT,
                          help="more records in one request get 413")
    fast_path: bool = param(True, help="compile supported pipelines to numpy at load")
    log: LogSettings = field(default_factory=LogSettings)

    @property
    def body_limit(self) -> int:
        """The largest ``/predict`` body: ``max_body_bytes``, else ``max_rows`` records of
        ``BODY_BYTES_PER_ROW`` bytes each, so the two limits agree unless both are set."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        return self.max_rows * BODY_BYTES_PER_ROW


def serve_settings(spec: Any) -> ServeSettings:
    """The validated serving settings of a spec (``SPECLOOP_SERVE_TOKEN`` wins over the file)."""
    settings = spec.settings.get("serve") or ServeSettings()
    token = os.environ.get("SPECLOOP_SERVE_TOKEN")
    if token:
        settings.token = token
    return settings
