"""Small generated inputs for the suites: a frame, a fitted model, a deploy bundle."""

from __future__ import annotations

import json
import tempfile
from typing import Any

from ._stub_context import StubContext

FEATURES = ("x1", "x2", "color")
MODEL_NODE = {"estimator": "sklearn.linear_model.LogisticRegression"}


def make_frame(rows: int = 200, *, seed: int = 0, shift: float = 0.0,
               task: str = "classification") -> Any:
    """A DataFrame with numeric ``x1``, ``x2``, a string ``color`` and a ``label``.

    Args:
        rows: Number of rows.
        seed: Random seed.
        shift: Moves both numeric features by this much and skews ``color`` (drift).
        task: ``classification`` (a binary label) or ``regression``.

    Returns:
        The frame.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(shift, 1, rows), rng.normal(shift, 1, rows)
    color = rng.choice(["red", "green", "blue"], rows, p=[0.9, 0.05, 0.05] if shift else None)
    signal = 2 * x1 - x2 + (color == "red") * 1.5 + rng.normal(0, 1, rows)
    label = (signal > 0.5).astype(int) if task == "classification" else signal
    return pd.DataFrame({"x1": x1, "x2": x2, "color": color, "label": label})


def numeric_model(frame: Any, task: str) -> Any:
    """A scikit-learn model fitted on the numeric columns of :func:`make_frame` rows.

    Args:
        frame: Rows from :func:`make_frame`.
        task: ``classification`` or ``regression``.

    Returns:
        The fitted estimator.
    """
    from sklearn.linear_model import LinearRegression, LogisticRegression

    est = LogisticRegression() if task == "classification" else LinearRegression()
    return est.fit(frame[["x1", "x2"]], frame["label"])


def register_champion(ctx: StubContext) -> dict:
    """Fit a small ``model/sklearn`` pipeline, save it through the engine's model-artifact
    path into ``ctx.store`` and register it in ``ctx.registry`` as the champion.

    The model component's resolved node becomes ``ctx.spec.components["model"]``, so the
    engine can load the model back exactly as a pipeline does.

    Args:
        ctx: The stand-in context whose project gets the model.

    Returns:
        The registry's record of the new version.
    """
    import specloop_sklearn

    from .._model_artifacts import save_model, version_artifacts
    from .._tabular import signature
    from ._resolve import plugin_manager_for, resolve_config

    resolved = resolve_config("model", "sklearn", MODEL_NODE,
                              pm=plugin_manager_for(specloop_sklearn), key="model")
    ctx.spec.components["model"] = resolved
    component, frame = resolved.build(ctx.run_id), make_frame(80)
    columns = {"features": list(FEATURES), "categorical": ["color"], "target": "label",
               "task": "classification"}
    fitted = component.fit(frame[list(FEATURES)], frame["label"], categorical=["color"],
                           task="classification", seed=ctx.seed)
    key = f"conformance-model-{len(ctx.registry.versions(ctx.model_name)) + 1}"
    sig = json.dumps(signature(frame, columns)).encode()
    save_model(ctx.store, key, resolved, component, fitted, {"signature.json": sig},
               {"stage": "train"})
    version = ctx.registry.register(
        ctx.model_name, model_key=key, metrics={"roc_auc": 0.9}, reference_key=None,
        data_fingerprint="0" * 32, run_id=ctx.run_id, config={}, source={"kind": "run"},
        gate={"passed": True, "checks": [], "summary": "passed (no checks apply)"},
        artifacts=version_artifacts(ctx.store, key, None))
    ctx.registry.set_alias(ctx.model_name, "champion", version["version"],
                           reason="conformance suite", run_id=ctx.run_id)
    return ctx.registry.get(ctx.model_name, version["version"])


def make_bundle(ctx: StubContext | None = None) -> dict:
    """The bundle the engine hands to ``deploy(bundle, ctx)``, built by the engine's own code
    from a champion registered with :func:`register_champion`.

    It has ``name``, ``version`` (the registry record), ``model`` (the bytes, verified),
    ``load_model`` (loads them as a pipeline does), ``model_meta`` (``format``,
    ``trusted_types``, ``component``, ``key``), ``signature`` and ``description``.

    Args:
        ctx: The project to register the model in; it keeps the model, so ``load_model``
            works as long as ``ctx`` is open. Without one, a temporary project is used and
            ``load_model`` returns the fitted model loaded before that project was removed.

    Returns:
        The bundle.
    """
    from .._flow import bundle_for

    if ctx is not None:
        return bundle_for(ctx, register_champion(ctx))
    with tempfile.TemporaryDirectory() as tmp, StubContext(tmp, key="deploy") as own:
        bundle = bundle_for(own, register_champion(own))
        model = bundle["load_model"]()
    return {**bundle, "load_model": lambda: model}
