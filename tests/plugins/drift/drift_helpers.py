"""Helpers shared by the drift monitor's tests."""

from __future__ import annotations

from typing import Any

import numpy as np

SEED = 20240611

# What every column result carries (docs/configuration.md, the drift monitor's report).
COLUMN_KEYS = {"column", "type", "verdict", "drifted", "reason", "method", "statistic_name",
               "statistic", "p_value", "threshold", "psi", "n_reference", "n_current",
               "n_missing_current", "missing_rate_reference", "missing_rate_current"}


def cats(rng: np.random.Generator, n: int, levels: list, p: list | None = None) -> np.ndarray:
    """``n`` draws of ``levels`` as an object array."""
    return rng.choice(np.array(levels, dtype=object), size=n, p=p)


def assert_plain(obj: Any) -> None:
    """Only JSON-native Python types, recursively (no numpy scalars, no NaN or infinity)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert type(k) is str
            assert_plain(v)
    elif isinstance(obj, list):
        for v in obj:
            assert_plain(v)
    else:
        assert obj is None or type(obj) in (str, int, float, bool), (obj, type(obj))
        assert not (type(obj) is float and not np.isfinite(obj)), obj


def drift_monitor(**config: Any) -> Any:
    """The ``drift`` monitor built from ``config`` exactly as the engine builds it."""
    import specloop_drift
    from specloop import Stage
    from specloop.testing import make_test_plugin_manager
    from specloop.testing.suites import resolve_config

    pm = make_test_plugin_manager([specloop_drift])
    return resolve_config(Stage.MONITOR, "drift", config, pm=pm).build()
