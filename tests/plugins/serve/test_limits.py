"""The default limits agree: ``max_rows`` realistic records fit the default body limit.

The fraud example, trained and served with no ``plugins.serve`` settings at all, takes
exactly 10,000 of its own transactions in one request and refuses 10,001 with 413.
"""

from __future__ import annotations

import csv
import json

import pytest

from serving_helpers import Served, specloop
from specloop_serve._settings import BODY_BYTES_PER_ROW, ServeSettings

pytestmark = pytest.mark.slow

_TYPES = {"number": float, "integer": int, "string": str}


def test_the_default_body_limit_follows_max_rows():
    assert ServeSettings().body_limit == 10_000 * BODY_BYTES_PER_ROW
    assert ServeSettings(max_rows=50).body_limit == 50 * BODY_BYTES_PER_ROW
    assert ServeSettings(max_rows=50, max_body_bytes=999).body_limit == 999


def test_max_rows_realistic_fraud_records_are_served_and_one_more_is_413(fraud_project):
    res = specloop("run", cwd=fraud_project)
    assert res.returncode == 0, res.stdout + res.stderr
    res = specloop("serve", "plugins.serve.max_body_bytes=-5", cwd=fraud_project)
    assert res.returncode == 2 and "plugins.serve.max_body_bytes" in res.stderr
    assert "max_rows × 1024" in res.stderr and "Traceback" not in res.stderr
    server = Served(fraud_project)
    try:
        inputs = server.client.json("GET", "/metadata")[1]["signature"]["inputs"]
        assert {f["type"] for f in inputs} == {"number", "integer", "string"}
        with open(fraud_project / "data" / "train.csv", newline="") as fh:
            rows = [{f["name"]: _TYPES[f["type"]](r[f["name"]]) for f in inputs}
                    for _, r in zip(range(10_001), csv.DictReader(fh))]
        assert len(rows) == 10_001
        body = json.dumps(rows[:10_000])  # as a client would send them, spaces included
        assert len(body) > 1_000_000  # what the old 1 MB default refused
        status, raw, headers = server.client.request("POST", "/predict", body,
                                                     {"Content-Type": "application/json"})
        assert status == 200, raw[:300]
        doc = json.loads(raw)
        assert len(doc["predictions"]) == len(doc["probabilities"]) == 10_000
        assert set(doc["predictions"]) <= {0, 1} and headers["x-model-version"] == "1"

        status, raw, _ = server.client.request("POST", "/predict", json.dumps(rows),
                                               {"Content-Type": "application/json"})
        assert status == 413, raw[:300]
        assert json.loads(raw)["error"] == ("the request holds 10001 records; the limit is "
                                            "10000 (plugins.serve.max_rows)")

        # a body over the derived limit names the setting and where its default comes from
        padded = json.dumps([{**rows[0], "merchant_category": "m" * 1100}] * 10_000)
        status, raw, _ = server.client.request("POST", "/predict", padded,
                                               {"Content-Type": "application/json"})
        assert status == 413
        assert "the limit is 10240000 (plugins.serve.max_body_bytes; by default max_rows × " \
               "1024)" in json.loads(raw)["error"]
    finally:
        server.stop()
