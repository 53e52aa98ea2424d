"""The scikit-learn model component."""

from __future__ import annotations

import difflib
import importlib
import io
import pickle
from typing import Any

from specloop import ArtifactError, ConfigError

# types skops must be told to trust for a scikit-learn pipeline come from these packages
TRUSTED_PACKAGES = ("sklearn.", "numpy.", "scipy.")
# standard-library containers a fitted estimator may hold (a partial's function is recorded,
# and checked, as a type of its own)
TRUSTED_STDLIB = frozenset({"functools.partial", "collections.OrderedDict",
                            "collections.defaultdict"})


class SklearnModel:
    """Builds ``preprocessing → estimator``, fits it, and (de)serializes it.

    Models are written with skops by default, which loads only the types it is told to
    trust; pickle only when the config says ``allow_pickle: true``.

    Args:
        config: A ``SklearnModelConf``.
    """

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def format(self) -> str:
        """``skops``, or ``pickle`` when the config allows it."""
        return "pickle" if getattr(self.config, "allow_pickle", False) else "skops"

    def _estimator_class(self) -> Any:
        path = self.config.estimator
        module_name, _, name = path.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except (ImportError, ValueError):
            module = None
        if module is not None and isinstance(getattr(module, name, None), type):
            return getattr(module, name)
        close = _close_estimators(module, module_name, name)
        raise ConfigError(f"cannot import estimator {path!r}", key="model.estimator",
                          got=path, expected="an importable class, e.g. "
                          "sklearn.ensemble.RandomForestClassifier",
                          extra=[("did you mean", c) for c in close],
                          fix=f"set model.estimator to {close[0]}" if close
                          else "check the spelling and the module")

    def build(self) -> Any:
        """The unfitted estimator with its parameters (validated by scikit-learn)."""
        cls = self._estimator_class()
        try:
            est = cls(**self.config.params)
        except TypeError as exc:
            valid = sorted(getattr(cls, "_get_param_names", lambda: [])())
            unknown = [k for k in self.config.params if valid and k not in valid]
            key = f"model.params.{unknown[0]}" if unknown else "model.params"
            close = difflib.get_close_matches(unknown[0], valid, n=1) if unknown else []
            raise ConfigError(f"bad parameter for {cls.__name__}: {exc}", key=key,
                              expected="parameters of " + cls.__name__ + (
                                  ": " + ", ".join(valid) if valid else ""),
                              extra=[("did you mean", c) for c in close],
                              fix=f"rename it to {close[0]!r}" if close
                              else "remove or rename the parameter") from None
        validate = getattr(est, "_validate_params", None)
        if callable(validate):
            try:
                validate()
            except (ValueError, TypeError) as exc:
                raise _param_error(exc, cls.__name__) from None
        return est

    def preflight(self, ctx: Any) -> None:
        """Import the estimator and validate its parameters before any stage runs."""
        try:
            self.build()
        except ConfigError as exc:
            if exc.file is None and exc.key:  # scikit-learn's check knows no file: name it
                exc.file = ctx.spec.provenance.where(exc.key)
            raise

    def task(self) -> str | None:
        """``classification`` or ``regression`` for a scikit-learn classifier or regressor
        (``None`` for anything else: a user pipeline, a transformer-only estimator)."""
        from sklearn.base import is_classifier, is_regressor
        from sklearn.pipeline import Pipeline

        est = self.build()
        if isinstance(est, Pipeline):
            est = est.steps[-1][1]
        if is_classifier(est):
            return "classification"
        return "regression" if is_regressor(est) else None

    def allows_type(self, name: str) -> bool:
        """Whether loading may trust type ``name``: scikit-learn, numpy and scipy types,
        and the estimator's own package when the spec names one outside scikit-learn.
        A recorded type outside these is never trusted, whatever the record says."""
        own = self.config.estimator.rsplit(".", 1)[0].split(".")[0] + "."
        return name.startswith(TRUSTED_PACKAGES) or name.startswith(own) or \
            name in TRUSTED_STDLIB

    def pipeline(self, categorical: list[str], numeric: list[str], task: str) -> Any:
        """The full pipeline: column preprocessing, then the estimator."""
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline, make_pipeline
        from sklearn.preprocessing import (MinMaxScaler, OneHotEncoder, OrdinalEncoder,
                                           RobustScaler, StandardScaler)

        pre = self.config.preprocessing
        est = self.build()
        if isinstance(est, Pipeline):  # a user pipeline brings its own preprocessing
            return est
        scalers = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}
        num_steps = ([SimpleImputer(strategy="median")] if pre.impute else []) + \
            ([scalers[pre.numeric]()] if pre.numeric in scalers else [])
        cat_steps = [SimpleImputer(strategy="most_frequent")] if pre.impute else []
        if pre.categorical == "onehot":
            cat_steps.append(OneHotEncoder(handle_unknown="ignore", sparse_output=False))
        else:
            cat_steps.append(OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                            encoded_missing_value=-1))
        transformers = []
        if numeric:
            transformers.append(("num", make_pipeline(*num_steps) if num_steps else "passthrough",
                                 numeric))
        if categorical:
            transformers.append(("cat", make_pipeline(*cat_steps), categorical))
        pre_t = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
        if pre.categorical == "native" and categorical and "categorical_features" in \
                est.get_params():
            n_num = len(numeric)
            est.set_params(categorical_features=list(range(n_num, n_num + len(categorical))))
        return Pipeline([("preprocess", pre_t), ("estimator", est)])

    def fit(self, X: Any, y: Any, *, categorical: list[str], task: str, seed: int) -> Any:
        """Fit the pipeline; a ``random_state`` parameter is seeded from the project seed."""
        numeric = [c for c in X.columns if c not in categorical]
        pipe = self.pipeline(list(categorical), numeric, task)
        params = pipe.get_params()
        for name in params:
            if name.endswith("random_state") and params[name] is None:
                pipe.set_params(**{name: seed})
        pipe.fit(X, y)
        return pipe

    def dumps(self, fitted: Any) -> bytes:
        """Serialize a fitted pipeline in :attr:`format`."""
        if self.format == "pickle":
            buf = io.BytesIO()
            pickle.dump(fitted, buf, protocol=pickle.HIGHEST_PROTOCOL)
            return buf.getvalue()
        import skops.io as sio

        return sio.dumps(fitted)

    def trusted_types(self, data: bytes) -> list[str]:
        """The types beyond skops' defaults that loading ``data`` needs (recorded at save time)."""
        if self.format == "pickle":
            return []
        import skops.io as sio

        return sorted(sio.get_untrusted_types(data=data))

    def loads(self, data: bytes, *, format: str = "skops",
              trusted: list[str] | None = None) -> Any:
        """Deserialize a pipeline written by :meth:`dumps`.

        Args:
            data: The bytes (already verified against their recorded SHA-256).
            format: The recorded format.
            trusted: The types recorded when the model was saved; any other type is refused.

        Raises:
            ConfigError: the format is pickle and ``allow_pickle`` is not set.
            ArtifactError: the bytes hold a type outside ``trusted``, or an unknown format.
        """
        if format == "pickle":
            if not getattr(self.config, "allow_pickle", False):
                raise ConfigError("refusing to load a pickle-format model",
                                  key="model.allow_pickle", got=False,
                                  expected="true to load pickle",
                                  fix="set model.allow_pickle: true, only for files you trust")
            return pickle.loads(data)  # noqa: S301 - allowed by the spec, hash verified
        if format != "skops":
            raise ArtifactError(f"unknown model format {format!r} (expected skops or pickle)")
        import skops.io as sio
        from skops.io.exceptions import UntrustedTypesFoundException

        try:  # skops refuses any type outside its defaults and ``trusted``
            return sio.loads(data, trusted=list(trusted or []))
        except UntrustedTypesFoundException:
            extra = sorted(set(sio.get_untrusted_types(data=data)) - set(trusted or []))
            raise ArtifactError(
                f"the model holds types that were not recorded when it was saved: {extra} "
                f"(recorded: {sorted(trusted or [])}); refusing to load it") from None


def _close_estimators(module: Any, module_name: str, name: str) -> list[str]:
    """Estimator classes spelled like ``module_name.name``: in that module when it imports,
    else in the scikit-learn module whose name is closest."""
    if module is None:
        if not module_name.startswith("sklearn."):
            return []
        import sklearn

        near = difflib.get_close_matches(module_name.removeprefix("sklearn."),
                                         sklearn.__all__, n=1)
        if not near:
            return []
        module_name = f"sklearn.{near[0]}"
        module = importlib.import_module(module_name)
    names = [n for n in getattr(module, "__all__", dir(module))
             if isinstance(getattr(module, n, None), type)]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.8)
    return [f"{module_name}.{n}" for n in close]


def _param_error(exc: Exception, cls_name: str) -> ConfigError:
    import re

    text = str(exc)
    m = re.match(r"The '(\w+)' parameter of \w+ must be (.*)\. Got (.*) instead\.", text)
    if not m:
        return ConfigError(f"invalid parameters for {cls_name}", key="model.params",
                           expected="valid estimator parameters", fix=text)
    name, expected, got = m.groups()
    return ConfigError(f"invalid value for model.params.{name}", key=f"model.params.{name}",
                       got=got, expected=expected,
                       fix=f"set model.params.{name} to {expected}")
