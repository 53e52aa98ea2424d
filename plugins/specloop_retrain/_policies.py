"""The retraining policies: each turns an observation into a decision with a reason."""

from __future__ import annotations

import math
from typing import Any

from specloop import Decision, Observation


class Never:
    """Never retrains."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def decide(self, obs: Observation) -> Decision:
        """Keep the champion."""
        return Decision(False, "policy never retrains")


class OnDrift:
    """Retrains when data drift is detected."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def decide(self, obs: Observation) -> Decision:
        """Decide on the monitor's drift report."""
        if obs.drift is None:
            return Decision(False, "no drift report (no monitor declared)")
        if obs.drift.get("status") == "insufficient data":
            return Decision(False, "drift: insufficient data "
                                   f"({obs.drift.get('reason') or f'{obs.rows} rows'})")
        share = obs.drift["drift_share"]
        fired = share >= self.config.share if self.config.share is not None \
            else bool(obs.drift["drifted"])
        limit = self.config.share if self.config.share is not None else \
            obs.drift.get("threshold_share")
        cols = [c["column"] for c in obs.drift["columns"] if c["drifted"]]
        if fired:
            return Decision(True, f"on_drift: {share:.0%} of features drifted (>= {limit:.0%}): "
                                  + ", ".join(cols[:4]), {"drift_share": share})
        return Decision(False, f"drift {share:.0%} < {limit:.0%}", {"drift_share": share})


class OnDecay:
    """Retrains when the primary metric falls below a floor or drops too far."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def decide(self, obs: Observation) -> Decision:
        """Decide on the champion's metric on this (labelled) batch."""
        if not obs.metrics or obs.primary not in obs.metrics:
            return Decision(False, "no labels in the batch")
        value = obs.metrics[obs.primary]
        if math.isnan(value):
            return Decision(False, f"{obs.primary} undefined on this batch")
        sign = 1 if obs.greater_is_better else -1
        floor = self.config.floor
        if floor is not None and sign * (value - floor) < 0:
            return Decision(True, f"on_decay: {obs.primary} {value:.3f} is below the floor "
                                  f"{floor}")
        ref = obs.champion_metrics.get(obs.primary)
        drop = self.config.max_drop
        if drop is not None and ref is not None and sign * (ref - value) > drop:
            return Decision(True, f"on_decay: {obs.primary} {value:.3f} is {abs(ref - value):.3f} "
                                  f"worse than the champion's {ref:.3f} (max drop {drop})")
        return Decision(False, f"{obs.primary} {value:.3f} holds")


class Every:
    """Retrains every N batches."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def decide(self, obs: Observation) -> Decision:
        """Fire when the champion has seen N batches."""
        if obs.batches_since_retrain >= self.config.batches:
            return Decision(True, f"every: {obs.batches_since_retrain} batches since the "
                                  "last training")
        return Decision(False, f"{obs.batches_since_retrain}/{self.config.batches} batches "
                               "since the last training")


class AnyOf:
    """Retrains when any nested policy fires; the reasons of all that fired are joined."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.policies = [p.build() for p in (config.policies or [])]

    def decide(self, obs: Observation) -> Decision:
        """Ask each nested policy."""
        decisions = [p.decide(obs) for p in self.policies]
        fired = [d for d in decisions if d.retrain]
        if fired:
            return Decision(True, " + ".join(d.reason for d in fired))
        return Decision(False, "; ".join(d.reason for d in decisions) or "no policies")
