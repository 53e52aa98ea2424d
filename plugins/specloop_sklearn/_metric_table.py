"""Metric names → (scikit-learn function, input, greater is better, task). No imports of
scikit-learn here: the table is read while validating a spec."""

# name: (function in sklearn.metrics, "score" | "label" | "value", greater_is_better, task)
METRICS = {
    "roc_auc": ("roc_auc_score", "score", True, "classification"),
    "average_precision": ("average_precision_score", "score", True, "classification"),
    "log_loss": ("log_loss", "proba", False, "classification"),
    "brier": ("brier_score_loss", "score", False, "classification"),
    "accuracy": ("accuracy_score", "label", True, "classification"),
    "balanced_accuracy": ("balanced_accuracy_score", "label", True, "classification"),
    "f1": ("f1_score", "label", True, "classification"),
    "precision": ("precision_score", "label", True, "classification"),
    "recall": ("recall_score", "label", True, "classification"),
    "r2": ("r2_score", "value", True, "regression"),
    "mae": ("mean_absolute_error", "value", False, "regression"),
    "mse": ("mean_squared_error", "value", False, "regression"),
    "rmse": ("root_mean_squared_error", "value", False, "regression"),
    "mape": ("mean_absolute_percentage_error", "value", False, "regression"),
}
