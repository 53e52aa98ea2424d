"""``specloop validate`` beyond the spec (``_spec``, ``_crosscheck``: every command checks
those): what would otherwise surface only once a stage runs. Each component's ``preflight``
(the scikit-learn model validates its estimator's parameters there), and the model's task
against the data's: declared (``data.task``), known from the cached split, or inferred from
the data read once.
"""

from __future__ import annotations

import json
from typing import Any

from ._crosscheck import check_task
from ._runner import plan_run
from ._steps import snapshot
from ._tabular import columns_for


def deep_checks(ctx: Any) -> None:
    """Run every component's preflight and the task check; a ConfigError names the first
    problem."""
    for name, resolved in ctx.spec.components.items():
        check = getattr(ctx.component(name), "preflight", None) if resolved else None
        if callable(check):
            check(ctx.node(name))
    ask = getattr(ctx.component("model"), "task", None)
    if callable(ask) and ask() is not None:  # only then is the data's task worth finding
        check_task(ctx.spec, ctx.component("model"), *data_task(ctx))


def data_task(ctx: Any) -> tuple[str, str]:
    """``(task, target)`` of the project's data, reading the data only when it must."""
    conf = ctx.spec.components["data"].config
    if conf.task != "auto":
        return conf.task, conf.target
    plans = {p.name: p for p in plan_run(ctx)}
    if plans["split"].cached:
        columns = json.loads(ctx.store.get(plans["split"].key, "columns.json"))
    else:
        columns = columns_for(snapshot(ctx, plans["data"].files), conf, ctx.spec.provenance.where)
    return columns["task"], columns["target"]
