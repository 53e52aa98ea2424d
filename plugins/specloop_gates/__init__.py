"""Promotion gates for specloop: ``threshold`` (absolute bounds on metrics, and "must beat
the champion by at least delta on the primary metric")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specloop import ComponentSpec, Interval, Stage, hookimpl, param


@dataclass
class ThresholdGateConf:
    """Absolute bounds and a margin over the champion."""

    min: dict[str, float] = param(default_factory=dict, help="metric: lowest accepted value")
    max: dict[str, float] = param(default_factory=dict, help="metric: highest accepted value")
    beat_champion_by: float | None = param(
        0.0, check=Interval(float, None, None, allow_none=True),
        help="the candidate's primary metric must beat the champion's by at least this "
             "(null: no comparison)")

    def metrics_used(self) -> dict[str, str]:
        """``{key under the gate node: metric name}`` of every metric a bound reads."""
        return {**{f"min.{m}": m for m in self.min}, **{f"max.{m}": m for m in self.max}}


class ThresholdGate:
    """Checks a candidate's metrics; the result says every check and one summary line."""

    def __init__(self, config: ThresholdGateConf) -> None:
        self.config = config

    def check(self, candidate: dict, champion: dict | None, *, primary: str,
              greater_is_better: bool = True) -> dict[str, Any]:
        """Return ``{"passed", "checks": [...], "summary"}``."""
        checks = []
        for name, low in self.config.min.items():
            v = candidate.get(name)
            ok = v is not None and not math.isnan(v) and v >= low
            checks.append({"check": f"{name} >= {low}", "value": v, "passed": ok})
        for name, high in self.config.max.items():
            v = candidate.get(name)
            ok = v is not None and not math.isnan(v) and v <= high
            checks.append({"check": f"{name} <= {high}", "value": v, "passed": ok})
        delta = self.config.beat_champion_by
        if delta is not None and champion is not None and primary in champion:
            v, c = candidate.get(primary, float("nan")), champion[primary]
            margin = (v - c) if greater_is_better else (c - v)
            ok = not math.isnan(margin) and margin >= delta
            checks.append({"check": f"{primary} beats champion by >= {delta}",
                           "value": v, "champion": c, "passed": ok})
        failed = [c for c in checks if not c["passed"]]
        if not checks:
            summary = "passed (no checks apply)"
        elif failed:
            summary = "failed: " + "; ".join(_say(c) for c in failed)
        else:
            summary = "passed: " + "; ".join(_say(c) for c in checks)
        return {"passed": not failed, "checks": checks, "summary": summary}


def _say(c: dict) -> str:
    v = "n/a" if c["value"] is None else f"{c['value']:.4f}"
    if "champion" in c:
        return f"{c['check']} ({v} vs {c['champion']:.4f})"
    return f"{c['check']} ({v})"


@hookimpl
def specloop_register_components():
    """Register the threshold gate."""
    return [ComponentSpec(Stage.GATE, "threshold", "specloop_gates:ThresholdGate",
                          ThresholdGateConf,
                          description="absolute metric bounds and a margin over the champion")]


@hookimpl
def specloop_add_conf_dirs():
    """Ship the ``gate/`` presets."""
    return [str(Path(__file__).parent / "conf")]
