"""The scikit-learn metrics component."""

from __future__ import annotations

from typing import Any

from ._metric_table import METRICS


class SklearnMetrics:
    """Computes the named metrics of a fitted model on labelled rows.

    Args:
        config: A ``SklearnMetricsConf``.
    """

    def __init__(self, config: Any) -> None:
        self.config = config
        self.primary = config.primary
        self.greater_is_better = METRICS[config.primary][2]

    def compute(self, model: Any, X: Any, y: Any, *, task: str) -> dict[str, float]:
        """Return ``{name: value}`` for the primary metric and every named one."""
        import numpy as np
        from sklearn import metrics as skm

        names = list(dict.fromkeys([self.primary, *self.config.names]))
        out: dict[str, float] = {}
        y = np.asarray(y)
        proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
        classes = list(getattr(model, "classes_", []))
        binary = proba is not None and proba.shape[1] == 2
        labels = None
        for name in names:
            fn_name, needs, _, _ = METRICS[name]
            fn = getattr(skm, fn_name)
            try:
                if needs == "score":
                    if proba is None:
                        continue
                    if binary:
                        value = fn(y, proba[:, 1])
                    else:
                        value = fn(y, proba, multi_class="ovr", labels=classes) \
                            if name == "roc_auc" else float("nan")
                elif needs == "proba":
                    value = fn(y, proba, labels=classes)
                elif needs == "label":
                    if labels is None:
                        labels = (np.asarray(classes)[(proba[:, 1] >= self.config.threshold)
                                                      .astype(int)] if binary
                                  else model.predict(X))
                    kw = {"zero_division": 0} if name in ("f1", "precision", "recall") else {}
                    if name in ("f1", "precision", "recall") and not binary:
                        kw["average"] = "macro"
                    value = fn(y, labels, **kw)
                else:
                    value = fn(y, model.predict(X))
            except ValueError:  # e.g. one class only in a small batch
                value = float("nan")
            out[name] = float(value)
        return out
