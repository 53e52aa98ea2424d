"""Prometheus text-format metrics kept in plain dicts (no client library).

Counters are only touched from the event loop thread, so they need no lock. With several
worker processes each worker writes a snapshot of its counters to a folder the serve command
created (every second, and when it answers a scrape or stops); ``/metrics`` on any worker sums
the snapshots of all of them, so a scrape sees the whole server, at most a second behind for
the other workers.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import time
from pathlib import Path
from typing import Any

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
VALUE_BUCKETS = (-1e3, -1e2, -10.0, -1.0, 0.0, 1.0, 10.0, 1e2, 1e3, 1e4)
PATHS = frozenset({"/predict", "/health", "/ready", "/metadata", "/metrics", "/docs",
                   "/openapi.json", "/admin/reload", "/admin/promote", "/admin/rollback"})


class Histogram:
    """Cumulative-bucket histogram."""

    def __init__(self, buckets: tuple) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out, acc = [], 0
        sep = "," if labels else ""
        for bound, n in zip(self.buckets, self.counts):
            acc += n
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound:g}"}} {acc}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        tag = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{tag} {self.sum:.6f}")
        out.append(f"{name}_count{tag} {self.count}")
        return out

    def snapshot(self) -> dict:
        return {"counts": list(self.counts), "sum": self.sum, "count": self.count}

    def add(self, snap: dict) -> None:
        if len(snap["counts"]) != len(self.counts):
            return
        self.counts = [a + b for a, b in zip(self.counts, snap["counts"])]
        self.sum += snap["sum"]
        self.count += snap["count"]


class Metrics:
    """Request counts by path and status, latency, predictions, reloads, log health."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.classes: dict[str, int] = {}
        self.values = Histogram(VALUE_BUCKETS)
        self.rows = 0
        self.reloads = 0
        self.reload_errors = 0
        self.started = time.time()

    def request(self, path: str, status: int, seconds: float) -> None:
        path = path if path in PATHS else "other"
        key = (path, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get(path)
        if hist is None:
            hist = self.latency[path] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)

    def predictions(self, preds: list, classified: bool) -> None:
        self.rows += len(preds)
        if classified:
            for p in preds:
                if p is None:  # no finite probabilities: no class was predicted
                    continue
                k = str(p)
                self.classes[k] = self.classes.get(k, 0) + 1
        else:
            for p in preds:
                value = float(p)
                if math.isfinite(value):  # an overflowed output has no bucket
                    self.values.observe(value)

    def snapshot(self, logger: Any = None) -> dict:
        """The counters as JSON-able data (what another worker adds up)."""
        return {"requests": [[p, s, n] for (p, s), n in self.requests.items()],
                "latency": {p: h.snapshot() for p, h in self.latency.items()},
                "classes": dict(self.classes), "values": self.values.snapshot(),
                "rows": self.rows, "reloads": self.reloads, "reload_errors": self.reload_errors,
                "started": self.started,
                "log": None if logger is None else {"written": logger.written,
                                                    "dropped": logger.dropped}}

    @classmethod
    def merged(cls, snapshots: list[dict]) -> tuple["Metrics", Any]:
        """One :class:`Metrics` summing ``snapshots``, and the summed log counters."""
        out = cls()
        out.started = min((s["started"] for s in snapshots), default=out.started)
        log = None
        for snap in snapshots:
            for path, status, n in snap["requests"]:
                out.requests[(path, status)] = out.requests.get((path, status), 0) + n
            for path, hist in snap["latency"].items():
                out.latency.setdefault(path, Histogram(LATENCY_BUCKETS)).add(hist)
            for label, n in snap["classes"].items():
                out.classes[label] = out.classes.get(label, 0) + n
            out.values.add(snap["values"])
            out.rows += snap["rows"]
            out.reloads += snap["reloads"]
            out.reload_errors += snap["reload_errors"]
            if snap.get("log") is not None:
                log = log or _LogCounts()
                log.written += snap["log"]["written"]
                log.dropped += snap["log"]["dropped"]
        return out, log

    def render(self, model: Any, logger: Any, workers: int | None = None) -> str:
        lines = ["# HELP specloop_requests_total HTTP requests by path and status code.",
                 "# TYPE specloop_requests_total counter"]
        for (path, status), n in sorted(self.requests.items()):
            lines.append(f'specloop_requests_total{{path="{path}",status="{status}"}} {n}')
        lines += ["# HELP specloop_request_duration_seconds Request latency inside the server.",
                  "# TYPE specloop_request_duration_seconds histogram"]
        for path, hist in sorted(self.latency.items()):
            lines += hist.lines("specloop_request_duration_seconds", f'path="{path}"')
        lines += ["# HELP specloop_predicted_rows_total Rows scored.",
                  "# TYPE specloop_predicted_rows_total counter",
                  f"specloop_predicted_rows_total {self.rows}"]
        if self.classes:
            lines += ["# HELP specloop_predictions_total Predicted rows by class.",
                      "# TYPE specloop_predictions_total counter"]
            for label, n in sorted(self.classes.items()):
                lines.append(f'specloop_predictions_total{{class="{_esc(label)}"}} {n}')
        if self.values.count:
            lines += ["# HELP specloop_prediction_value Distribution of predicted values.",
                      "# TYPE specloop_prediction_value histogram"]
            lines += self.values.lines("specloop_prediction_value", "")
        lines += ["# HELP specloop_model_version The version being served.",
                  "# TYPE specloop_model_version gauge"]
        if model is not None:
            lines.append(f'specloop_model_version{{model="{_esc(model.name)}",'
                         f'alias="{_esc(model.alias or "")}"}} {model.version}')
        lines += ["# HELP specloop_model_reloads_total Hot reloads to another version.",
                  "# TYPE specloop_model_reloads_total counter",
                  f"specloop_model_reloads_total {self.reloads}",
                  "# HELP specloop_model_reload_errors_total Reloads that failed (the old "
                  "version kept serving).",
                  "# TYPE specloop_model_reload_errors_total counter",
                  f"specloop_model_reload_errors_total {self.reload_errors}"]
        if logger is not None:
            lines += ["# HELP specloop_request_log_rows_total Logged rows written to the store.",
                      "# TYPE specloop_request_log_rows_total counter",
                      f"specloop_request_log_rows_total {logger.written}",
                      "# HELP specloop_request_log_dropped_total Rows dropped because the log "
                      "queue was full.",
                      "# TYPE specloop_request_log_dropped_total counter",
                      f"specloop_request_log_dropped_total {logger.dropped}"]
        if workers is not None:
            lines += ["# HELP specloop_workers Worker processes whose counters are summed here.",
                      "# TYPE specloop_workers gauge", f"specloop_workers {workers}"]
        lines += ["# TYPE specloop_uptime_seconds gauge",
                  f"specloop_uptime_seconds {time.time() - self.started:.1f}"]
        return "\n".join(lines) + "\n"


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _LogCounts:
    written = 0
    dropped = 0


class SharedMetrics:
    """The snapshots folder of a server with several workers (see the module docstring).

    Args:
        folder: Created by ``specloop serve`` for this server, removed when it stops.
        metrics: This worker's counters.
    """

    def __init__(self, folder: str, metrics: Metrics) -> None:
        self.folder = Path(folder)
        self.metrics = metrics
        self.path = self.folder / f"worker-{os.getpid()}.json"

    def write(self, logger: Any) -> None:
        """Replace this worker's snapshot (atomically: a reader never sees half of it)."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.metrics.snapshot(logger)))
        os.replace(tmp, self.path)

    def render(self, model: Any, logger: Any) -> str:
        """Prometheus text of every worker's counters summed."""
        self.write(logger)
        snaps = []
        for f in sorted(self.folder.glob("worker-*.json")):
            try:
                snaps.append(json.loads(f.read_text()))
            except (OSError, ValueError):  # a worker's file vanished with its folder
                continue
        merged, log = Metrics.merged(snaps)
        return merged.render(model, log, workers=len(snaps))
