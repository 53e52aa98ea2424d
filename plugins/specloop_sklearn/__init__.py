"""scikit-learn models and metrics for specloop.

Components: ``model/sklearn`` (any allowed estimator or pipeline, with declared
preprocessing) and ``metrics/sklearn`` (scikit-learn metrics by name, one primary).
scikit-learn is imported only when a model is fitted or a metric computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specloop import ComponentSpec, ConfigError, Options, Stage, hookimpl, param

from ._metric_table import METRICS


@dataclass
class PreprocessingConf:
    """Column preprocessing put in front of the estimator."""

    numeric: str = param("passthrough", check=Options("passthrough", "standard", "minmax",
                                                      "robust"),
                         help="scaling of numeric features")
    categorical: str = param("onehot", check=Options("onehot", "ordinal", "native"),
                             help="encoding of categorical features (native: the estimator's "
                                  "own categorical support)")
    impute: bool = param(True, help="fill missing values (median / most frequent)")


@dataclass
class SklearnModelConf:
    """An estimator by dotted path, its parameters and its preprocessing."""

    estimator: str = param("sklearn.ensemble.HistGradientBoostingClassifier",
                           help="dotted path of an estimator (or a function returning one)")
    params: dict[str, Any] = param(default_factory=dict, help="estimator parameters")
    preprocessing: PreprocessingConf = field(default_factory=PreprocessingConf)
    allow_pickle: bool = param(False, help="persist and load the model with pickle (can run "
                                           "arbitrary code when loaded; default: skops)")

    def validate_spec(self, ctx: Any) -> None:
        """Refuse estimators outside the allowlist unless the spec widens it."""
        if ctx.allow_python_targets:
            return
        if not any(self.estimator.startswith(p) for p in ctx.allowed_targets):
            key = f"{ctx.key}.estimator"
            raise ConfigError(
                f"estimator {self.estimator!r} is outside the allowlist", key=key,
                file=ctx.where(key), got=self.estimator,
                expected="a dotted path starting with " + " or ".join(
                    repr(p) for p in ctx.allowed_targets),
                fix="use a scikit-learn estimator, or set allow_python_targets: true in "
                    "conf/config.yaml to allow any importable class")


@dataclass
class SklearnMetricsConf:
    """Metrics by name and the primary one that gates and policies use."""

    primary: str = param("roc_auc", check=Options(*METRICS), help="the metric that decides")
    names: list[str] = param(default_factory=lambda: ["roc_auc"], help="metrics to compute")
    threshold: float = param(0.5, help="probability threshold for label metrics (binary)")

    def metric_names(self) -> list[str]:
        """What the metrics stage computes (the primary metric first)."""
        return list(dict.fromkeys([self.primary, *self.names]))

    def validate_spec(self, ctx: Any) -> None:
        """Check every metric name against the table."""
        import difflib

        for i, name in enumerate(self.names):
            if name not in METRICS:
                key = f"{ctx.key}.names.{i}"
                close = difflib.get_close_matches(name, list(METRICS), n=1)
                raise ConfigError(f"unknown metric {name!r}", key=key, file=ctx.where(key),
                                  got=name, expected="one of " + ", ".join(METRICS),
                                  fix=f"use {close[0]!r}" if close else "pick a listed metric")


@hookimpl
def specloop_register_components():
    """Register the scikit-learn model and metrics."""
    return [
        ComponentSpec(Stage.MODEL, "sklearn", "specloop_sklearn._model:SklearnModel",
                      SklearnModelConf, requires=("sklearn",),
                      install_hint="pip install scikit-learn",
                      description="any allowed scikit-learn estimator or pipeline"),
        ComponentSpec(Stage.METRICS, "sklearn", "specloop_sklearn._metrics:SklearnMetrics",
                      SklearnMetricsConf, requires=("sklearn",),
                      install_hint="pip install scikit-learn",
                      description="scikit-learn metrics by name, one primary"),
    ]


@hookimpl
def specloop_add_conf_dirs():
    """Ship the ``model/`` and ``metrics/`` presets."""
    return [str(Path(__file__).parent / "conf")]


@hookimpl
def specloop_add_allowed_targets():
    """Model specs may name scikit-learn estimators."""
    return ["sklearn."]


@hookimpl
def specloop_add_preload_modules():
    """What fitting, scoring and saving a model imports (sweep workers import it once)."""
    return ["sklearn.ensemble", "sklearn.linear_model", "sklearn.pipeline", "sklearn.compose",
            "sklearn.preprocessing", "sklearn.impute", "sklearn.metrics", "skops.io"]
