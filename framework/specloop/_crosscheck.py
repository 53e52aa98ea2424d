"""Checks that span stages, so a mistake between two nodes fails before anything runs, through
small optional contracts of a component's schema or of the component:

* a metrics schema's ``metric_names()`` lists what the metrics stage computes, and a gate's
  (or any other stage's) ``metrics_used()`` maps its keys to the metric names it reads: a
  gate on a metric that is never computed would block every promotion;
* a model component's ``task()`` says whether it is a ``classification`` or ``regression``
  model (``None``: either): a classifier on a continuous target, or the reverse, is refused
  with both named, by ``specloop validate`` and before ``train`` fits anything.
"""

from __future__ import annotations

import difflib
from typing import Any

from .errors import ConfigError

METRIC_READERS = ("gate", "retrain", "monitor", "deploy")


def check_stages(spec: Any) -> None:
    """Refuse a stage node that reads a metric the metrics stage does not compute."""
    names_of = getattr(spec.components["metrics"].config, "metric_names", None)
    if not callable(names_of):
        return
    computed = list(dict.fromkeys(names_of()))
    for stage in METRIC_READERS:
        resolved = spec.components.get(stage)
        used = getattr(resolved.config, "metrics_used", None) if resolved else None
        for subkey, metric in (used() if callable(used) else {}).items():
            if metric in computed:
                continue
            key = f"{resolved.key}.{subkey}"
            close = difflib.get_close_matches(str(metric), computed, n=1)
            raise ConfigError(
                f"{key} reads the metric {metric!r}, which the metrics stage does not compute",
                key=key, file=spec.provenance.where(key), got=metric,
                expected="one of the computed metrics: " + ", ".join(computed),
                fix=(f"use {close[0]!r}" if close else
                     f"add {metric!r} to metrics.names, or remove {key}"),
                extra=[("did you mean", close[0])] if close else [])


def check_task(spec: Any, model: Any, task: str, target: str) -> None:
    """Refuse a ``model`` (built; its optional ``task()`` is asked) that does not fit the data's
    ``task`` on ``target``: a classifier on a continuous target, or a regressor on classes."""
    ask = getattr(model, "task", None)
    wants = ask() if callable(ask) else None
    if wants is None or wants == task:
        return
    resolved = spec.components["model"]
    what = getattr(resolved.config, "estimator", resolved.spec.kind)
    raise ConfigError(
        f"model {what!r} is a {wants} model, but the target {target!r} is a {task} target",
        key="model", file=spec.provenance.where("model"), got=what,
        expected=f"a {task} model for {target!r} (set in {spec.provenance.where('data.target')})",
        fix=f"pick a {task} model (model=<option>), or set data.task if the target's task "
            "was inferred wrongly")
