"""Retraining policies for specloop: ``never``, ``on_drift``, ``on_decay``, ``any_of``.

Every policy extends :class:`specloop.RetrainConf`, so each declares its training window
(``window_batches``, ``include_base``) the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specloop import ComponentSpec, Interval, RetrainConf, Stage, hookimpl, param


@dataclass
class NeverConf(RetrainConf):
    """Never retrain."""


@dataclass
class OnDriftConf(RetrainConf):
    """Retrain when the monitor's data-drift verdict says so."""

    share: float | None = param(None, check=Interval(float, 0, 1, allow_none=True),
                                help="retrain when at least this share of features drifted "
                                     "(default: the monitor's own verdict)")


@dataclass
class OnDecayConf(RetrainConf):
    """Retrain when the primary metric on a labelled batch decays."""

    floor: float | None = param(None, help="retrain when the metric is worse than this")
    max_drop: float | None = param(0.05, check=Interval(float, 0, None, allow_none=True),
                                   help="retrain when the metric is worse than the champion's "
                                        "own evaluation by more than this")


@dataclass
class AnyOfConf(RetrainConf):
    """Retrain when any of the nested policies says so."""

    policies: Any = None


@dataclass
class EveryConf(RetrainConf):
    """Retrain on a schedule: every N batches."""

    batches: int = param(3, check=Interval(int, 1, None), help="batches between retrains")


@hookimpl
def specloop_register_components():
    """Register the retraining policies."""
    mod = "specloop_retrain._policies"
    return [
        ComponentSpec(Stage.RETRAIN, "never", f"{mod}:Never", NeverConf,
                      description="never retrain"),
        ComponentSpec(Stage.RETRAIN, "on_drift", f"{mod}:OnDrift", OnDriftConf,
                      description="retrain when data drift is detected"),
        ComponentSpec(Stage.RETRAIN, "on_decay", f"{mod}:OnDecay", OnDecayConf,
                      description="retrain when the primary metric falls"),
        ComponentSpec(Stage.RETRAIN, "every", f"{mod}:Every", EveryConf,
                      description="retrain every N batches"),
        ComponentSpec(Stage.RETRAIN, "any_of", f"{mod}:AnyOf", AnyOfConf,
                      nested={"policies": Stage.RETRAIN},
                      description="retrain when any nested policy fires"),
    ]


@hookimpl
def specloop_add_conf_dirs():
    """Ship the ``retrain/`` presets."""
    return [str(Path(__file__).parent / "conf")]
