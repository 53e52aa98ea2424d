"""Prometheus text-format metrics kept in plain dicts (one process; no client library).

Counters are only touched from the event loop thread, so they need no lock.
"""

from __future__ import annotations

import bisect
import time
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
                k = str(p)
                self.classes[k] = self.classes.get(k, 0) + 1
        else:
            for p in preds:
                self.values.observe(float(p))

    def render(self, model: Any, logger: Any) -> str:
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
        lines += ["# TYPE specloop_uptime_seconds gauge",
                  f"specloop_uptime_seconds {time.time() - self.started:.1f}"]
        return "\n".join(lines) + "\n"


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
