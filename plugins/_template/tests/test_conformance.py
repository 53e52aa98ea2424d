"""The plugin passes specloop's conformance suite for retraining policies."""

from __future__ import annotations

import specloop_example
from specloop import Decision, Observation
from specloop.testing.suites import RetrainPolicySuite


class TestSizedDrift(RetrainPolicySuite):
    kind = "sized_drift"
    plugin = specloop_example
    config = {"min_rows": 50, "share": 0.3}
    # the suite's observations have 100 rows each
    expected_decisions = {"calm": False, "storm": True, "unlabelled": False}


def test_small_batches_never_retrain():
    policy = TestSizedDrift().component()
    drift = {"drift_share": 1.0, "drifted": True, "columns": [{"column": "x", "drifted": True}]}
    obs = Observation("tiny", 10, drift, None, {"roc_auc": 0.9}, "roc_auc", True, 1)
    assert policy.decide(obs) == Decision(False, "batch of 10 rows is below min_rows=50")
