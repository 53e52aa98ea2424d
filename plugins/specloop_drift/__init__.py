"""The ``drift`` monitor: per-feature data drift with Evidently's method choices.

Small reference samples (≤ ``small_sample`` rows) use statistical tests (Kolmogorov–Smirnov
for numeric features, chi-square or a proportions Z-test for categorical ones); larger ones
use distances (Wasserstein normed by the reference's standard deviation, Jensen–Shannon).
PSI is reported for every feature. The data set drifts when the share of drifted features
reaches ``drift_share``. numpy and scipy load when a batch is checked.
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
                              help="reference rows up to which statistical tests are used")
    psi_bins: int = param(10, check=Interval(int, 2, 100), help="bins for PSI")


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
