"""Declarative parameter constraints for component schemas, and the engine's own nodes
(``project``, ``store``, ``loop``, ``sweep``) declared the same way.

A component declares its configuration as a dataclass. OmegaConf checks key names and types
when the YAML node is merged into it; the constraints declared here check *values*, using one
error template in the style of scikit-learn's ``InvalidParameterError``::

    @dataclass
    class SplitConf:
        method: str = param("stratified", check=Options("stratified", "random", "time"))
        test_size: float = param(0.2, check=Interval(float, 0, 1, closed="neither"))

The conformance kit (:mod:`specloop.testing`) derives invalid values from the same
declarations, so every constraint a plugin declares is also tested.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .errors import ConfigError

__all__ = ["Interval", "Options", "param", "check_constraints", "SplitConf", "DataConf",
           "RetrainConf", "ProjectConf", "StoreConf", "LoopConf", "SweepConf", "ENGINE_NODES",
           "ROOT_KEYS", "NAME_PATTERN"]


class Interval:
    """A numeric range.

    Args:
        type: ``int`` or ``float`` (an int is accepted where a float is expected).
        low: The lower bound, or ``None`` for unbounded.
        high: The upper bound, or ``None`` for unbounded.
        closed: ``"both"``, ``"left"``, ``"right"`` or ``"neither"``.
        allow_none: Whether ``None`` is an accepted value.
    """

    def __init__(self, type: type, low: float | None, high: float | None, *,
                 closed: str = "both", allow_none: bool = False) -> None:
        self.type, self.low, self.high, self.closed = type, low, high, closed
        self.allow_none = allow_none

    def accepts(self, value: Any) -> bool:
        """Return whether ``value`` lies in the interval."""
        if value is None:
            return self.allow_none
        kinds = int if self.type is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or (
                isinstance(value, float) and math.isnan(value)):
            return False
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        below = self.low is not None and (value < self.low or value == self.low and not left)
        above = self.high is not None and (value > self.high or value == self.high and not right)
        return not (below or above)

    def describe(self) -> str:
        """Return the ``expected`` text, e.g. ``an int in the range [1, inf)``."""
        lo = "-inf" if self.low is None else self.low
        hi = "inf" if self.high is None else self.high
        lb = "[" if self.closed in ("both", "left") and self.low is not None else "("
        rb = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        return (f"{'an int' if self.type is int else 'a float'} in the range {lb}{lo}, {hi}{rb}"
                + (" or None" if self.allow_none else ""))

    def invalid_values(self) -> list[Any]:
        """Return values outside the interval (used by the conformance kit)."""
        out: list[Any] = ["not-a-number"]
        if self.low is not None:
            out.append(self.low - 1 if self.closed in ("both", "left") else self.low)
        if self.high is not None:
            out.append(self.high + 1 if self.closed in ("both", "right") else self.high)
        return out


class Options:
    """A closed set of accepted values.

    Args:
        *values: The accepted values.
        allow_none: Whether ``None`` is an accepted value.
    """

    def __init__(self, *values: Any, allow_none: bool = False) -> None:
        self.values = tuple(values)
        self.allow_none = allow_none

    def accepts(self, value: Any) -> bool:
        """Return whether ``value`` is one of the options."""
        return (value is None and self.allow_none) or value in self.values

    def describe(self) -> str:
        """Return the ``expected`` text, e.g. ``one of 'a', 'b'``."""
        text = "one of " + ", ".join(repr(v) for v in self.values)
        return text + (" or None" if self.allow_none else "")

    def invalid_values(self) -> list[Any]:
        """Return a value that is not an option (used by the conformance kit)."""
        return ["__not_an_option__"]


def param(default: Any = dataclasses.MISSING, *, check: Interval | Options | None = None,
          help: str = "", default_factory: Any = dataclasses.MISSING,
          secret: bool = False) -> Any:
    """Declare a schema field with an optional value constraint and a help text.

    A default of ``"???"`` marks the field required, as in OmegaConf.

    Args:
        default: The default value (omit for a required field).
        check: An :class:`Interval` or :class:`Options` the value must satisfy.
        help: One line shown in the docs and by ``specloop plugins``.
        default_factory: For mutable defaults (lists, dicts).
        secret: The value is a credential: it is redacted in manifests, the registry, logs
            and everything specloop prints (pass it through an environment variable,
            ``${oc.env:NAME}``, rather than in a committed file).

    Returns:
        A :func:`dataclasses.field`.
    """
    meta = {"check": check, "help": help, "secret": secret}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def check_constraints(obj: Any, prefix: str, where: Any = None) -> None:
    """Check every declared constraint of a schema instance, recursively.

    Args:
        obj: A dataclass instance.
        prefix: The dotted key of ``obj`` in the spec, e.g. ``data.split``.
        where: A callable ``key -> str`` naming where a key was set (for the message).

    Raises:
        ConfigError: naming the first key whose value violates its constraint.
    """
    if not dataclasses.is_dataclass(obj):
        return
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}.{f.name}" if prefix else f.name
        check = f.metadata.get("check")
        if check is not None and not check.accepts(value):
            raise ConfigError(
                f"invalid value for {key}", key=key,
                got="***" if f.metadata.get("secret") else value,
                file=where(key) if where else None, expected=check.describe(),
                fix=f"set {key} to {check.describe()}",
                extra=[("about", f.metadata["help"])] if f.metadata.get("help") else [])
        if dataclasses.is_dataclass(value):
            check_constraints(value, key, where)


# -- schemas the engine itself reads ---------------------------------------------------------

@dataclasses.dataclass
class SplitConf:
    """How the data stage splits rows into training and test sets."""

    method: str = param("stratified", check=Options("stratified", "random", "time"),
                        help="stratified (on the target), random, or time (last rows by "
                             "time_column)")
    test_size: float = param(0.2, check=Interval(float, 0, 1, closed="neither"),
                             help="fraction of rows held out for evaluation")


@dataclasses.dataclass
class DataConf:
    """Fields every tabular data component shares; component schemas extend it.

    The engine, not the component, selects features and splits, so every data source
    behaves the same way downstream.
    """

    target: str = param("???", help="the label column (required)")
    features: list[str] | None = param(None, help="feature columns (default: every other column)")
    drop: list[str] = param(default_factory=list, help="columns never used as features")
    categorical: list[str] | None = param(
        None, help="categorical feature columns (default: every non-numeric column)")
    time_column: str | None = param(None, help="orders rows in time (time split, loop batches)")
    task: str = param("auto", check=Options("auto", "classification", "regression"),
                      help="classification or regression (auto: from the target's values)")
    coerce: dict[str, str] = param(
        default_factory=dict,
        help="column: numeric — read a column as numbers, bad cells becoming missing values "
             "(without it, a numeric column with a few text cells is an error)")
    split: SplitConf = param(default_factory=SplitConf)


@dataclasses.dataclass
class RetrainConf:
    """Fields every retraining policy shares: the training window used when it fires."""

    window_batches: int | None = param(
        None, check=Interval(int, 1, None, allow_none=True),
        help="train on the last N incoming batches (default: all seen so far)")
    include_base: bool = param(True, help="also train on the project's original training data")


# -- the engine's own nodes ------------------------------------------------------------------
ROOT_KEYS = ("project", "data", "model", "metrics", "gate", "store", "deploy", "monitor",
             "retrain", "loop", "sweep", "plugins", "allow_python_targets")
# a model or alias name: no path separator, no ``..`` (also a JSON Schema ``pattern``)
NAME_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


@dataclasses.dataclass
class ProjectConf:
    """The ``project:`` node."""

    name: str = param("project", help="model name in the registry")
    seed: int = param(0, check=Interval(int, 0, 2**32 - 1),  # what numpy's RandomState takes
                      help="the seed every stage derives its randomness from")
    description: str = param("", help="one line for the model card")
    threads: int | None = param(None, check=Interval(int, 1, None, allow_none=True),
                                help="threads native libraries (OpenMP, BLAS) may use while "
                                     "stages run (default: their own choice)")


@dataclasses.dataclass
class StoreConf:
    """The ``store:`` node: where artifacts, manifests and the registry live."""

    url: str = param(".specloop/store", help="artifact store: a folder (relative to the "
                                             "project) or an fsspec URL (s3://bucket/prefix)")
    registry: str | None = param(None, help="the registry's SQLite file: a path or "
                                            "sqlite:///PATH (default: .specloop/registry.db "
                                            "in the project, never inside the store)")
    storage_options: dict[str, Any] = param(default_factory=dict, secret=True,
                                            help="passed to fsspec (endpoint, credentials …)")


@dataclasses.dataclass
class LoopConf:
    """The ``loop:`` node: incoming batches and how a challenger is judged."""

    evaluate_on: str = param("recent", check=Options("recent", "window"),
                             help="judge challenger and champion on a holdout of the recent "
                                  "batches, or of the whole training window")
    holdout: float = param(0.25, check=Interval(float, 0, 1, closed="neither"),
                           help="fraction of each window part held out to judge models")
    settle_seconds: float = param(1.0, check=Interval(float, 0, None),
                                  help="a batch changed less than this long ago is read only "
                                       "if it stays unchanged for this long (else it is "
                                       "still being written: left for a later pass)")


@dataclasses.dataclass
class SweepConf:
    """The ``sweep:`` node (used by multirun)."""

    register: str = param("best", check=Options("best", "all", "none"))


ENGINE_NODES = {"project": ProjectConf, "store": StoreConf, "sweep": SweepConf, "loop": LoopConf}
