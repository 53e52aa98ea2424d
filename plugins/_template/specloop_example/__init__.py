"""An example specloop plugin: the ``sized_drift`` retraining policy.

``sized_drift`` retrains when enough features drifted, but only on batches large enough for
the drift verdict to be trusted: drift tests on a few dozen rows flag noise.

This module is what the ``specloop.plugins`` entry point imports. It only declares the
component (its schema and a lazy ``"module:Class"`` factory) and the presets it ships, so it
imports nothing heavy; the policy itself lives in :mod:`specloop_example._policy`. Plugins
import only ``specloop`` (and ``specloop.testing`` in tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from specloop import ComponentSpec, Interval, RetrainConf, Stage, hookimpl, param

__version__ = "0.1.0"


@dataclass
class SizedDriftConf(RetrainConf):
    """Retrain on drift, ignoring batches too small to judge.

    Extends :class:`specloop.RetrainConf`, so the training window (``window_batches``,
    ``include_base``) is declared like every other policy's.
    """

    min_rows: int = param(200, check=Interval(int, 1, None),
                          help="batches with fewer rows never trigger a retrain")
    share: float = param(0.3, check=Interval(float, 0, 1, closed="right"),
                         help="retrain when at least this share of features drifted")


@hookimpl
def specloop_register_components():
    """Register the ``retrain/sized_drift`` policy."""
    return [ComponentSpec(Stage.RETRAIN, "sized_drift", "specloop_example._policy:SizedDrift",
                          SizedDriftConf,
                          description="retrain on drift, only for batches with enough rows")]


@hookimpl
def specloop_add_conf_dirs():
    """Ship the ``retrain/sized_drift`` preset (``retrain=sized_drift``)."""
    return [str(Path(__file__).parent / "conf")]
