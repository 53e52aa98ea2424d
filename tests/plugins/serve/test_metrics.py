"""Several workers' ``/metrics`` counters summed through their snapshots."""

from __future__ import annotations

import os

from specloop_serve._metrics import Metrics, SharedMetrics


class _Log:
    def __init__(self, written: int, dropped: int) -> None:
        self.written, self.dropped = written, dropped


def _worker(folder, pid: int, requests: int, preds: list) -> SharedMetrics:
    m = Metrics()
    for _ in range(requests):
        m.request("/predict", 200, 0.002)
    m.request("/predict", 422, 0.0004)
    m.predictions(preds, classified=True)
    shared = SharedMetrics(str(folder), m)
    shared.path = folder / f"worker-{pid}.json"  # two "processes" in one test
    return shared


def test_a_scrape_on_either_worker_sums_both(tmp_path):
    a = _worker(tmp_path, 1, 3, [0, 0, 1])
    b = _worker(tmp_path, 2, 5, [0, 1, 1, 1])
    b.write(_Log(4, 1))
    text = a.render(None, _Log(3, 0))
    assert "specloop_workers 2" in text
    assert 'specloop_requests_total{path="/predict",status="200"} 8' in text
    assert 'specloop_requests_total{path="/predict",status="422"} 2' in text
    assert 'specloop_request_duration_seconds_count{path="/predict"} 10' in text
    assert 'specloop_request_duration_seconds_bucket{path="/predict",le="0.0025"} 10' in text
    assert 'specloop_request_duration_seconds_bucket{path="/predict",le="0.001"} 2' in text
    assert "specloop_predicted_rows_total 7" in text
    assert 'specloop_predictions_total{class="0"} 3' in text
    assert 'specloop_predictions_total{class="1"} 4' in text
    assert "specloop_request_log_rows_total 7" in text
    assert "specloop_request_log_dropped_total 1" in text
    # the other worker sees the same totals once it has the first one's latest snapshot
    assert b.render(None, _Log(4, 1)).split("specloop_uptime")[0] == text.split("specloop_uptime")[0]


def test_a_snapshot_is_replaced_whole_and_a_vanished_file_is_skipped(tmp_path):
    a = _worker(tmp_path, 1, 1, [1])
    a.write(None)
    a.metrics.request("/predict", 200, 0.002)
    (tmp_path / "worker-3.json").write_text("{ torn")  # a reader never sees this from write()
    text = a.render(None, None)
    assert 'specloop_requests_total{path="/predict",status="200"} 2' in text
    assert "specloop_workers 1" in text
    assert not list(tmp_path.glob("*.tmp"))
    assert os.path.exists(tmp_path / "worker-1.json")
