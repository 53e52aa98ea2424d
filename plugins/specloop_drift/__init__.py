"""The ``drift`` monitor: per-feature data drift with Evidently's method choices.

Small samples (the smaller of reference and batch ≤ ``small_sample`` rows) use statistical
tests (Kolmogorov–Smirnov for numeric features, chi-square or a proportions Z-test for
categorical ones); larger ones use distances (Wasserstein normed by the reference's standard
deviation, Jensen–Shannon). PSI is reported for every feature. A feature whose missing rate
changes by ``missing_rate_change`` or more has drifted; below ``min_rows`` a feature is not
judged ("insufficient data"); dates and times are checked for missing values only. The data
set drifts when the share of drifted features among the judged ones reaches ``drift_share``.
numpy and scipy load when a batch is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from specloop import ComponentSpec, Interval, Options, Stage, hookimpl, param


@dataclass
class DriftConf:
    """How drift is measured and when a batch counts as drifted."""

    method: str = param("auto", check=Options("auto", "ks", "chisquare", "z", "wasserstein",
                                              "jensenshannon", "psi"),
                        help="per-feature method (auto: Evidently's choice by type and size)")
    threshold: float | None = param(None, check=Interval(float, 0, None, allow_none=True),
                                    help="per-feature threshold (default: the method's own)")
    drift_share: float = param(0.5, check=Interval(float, 0, 1, closed="right"),
                               help="share of drifted features that makes the batch drifted")
    small_sample: int = param(1000, check=Interval(int, 1, None),
                              help="sample size (the smaller of reference and batch) up to which "
                                   "statistical tests are used")
    psi_bins: int = param(10, check=Interval(int, 2, 100), help="bins for PSI")
    # 30: where the tests' normal approximations start to hold (docs/configuration.md).
    min_rows: int = param(30, check=Interval(int, 1, None),
                          help="fewest rows, and non-missing values, a feature needs on each "
                               "side to be judged; below it: insufficient data")
    missing_rate_change: float = param(0.1, check=Interval(float, 0, 1, closed="right"),
                                       help="change of a feature's missing rate (0.1: ten "
                                            "points) that is drift when significant")


@hookimpl
def specloop_register_components():
    """Register the drift monitor."""
    return [ComponentSpec(Stage.MONITOR, "drift", "specloop_drift._monitor:DriftMonitor",
                          DriftConf, requires=("scipy",), install_hint="pip install scipy",
                          description="per-feature data drift and a data-set verdict")]


@hookimpl
def specloop_add_conf_dirs():
    """Ship the ``monitor/`` presets."""
    return [str(Path(__file__).parent / "conf")]
