"""Conformance suites: one pytest class per stage that a plugin author subclasses.

Subclass the suite of your component's stage as ``Test...`` and set three attributes::

    class TestSizedDrift(RetrainPolicySuite):
        kind = "sized_drift"
        plugin = my_plugin          # registered on a fresh plugin manager
        config = {"min_rows": 50}   # a valid node, without ``kind``

Generic checks (:class:`ComponentSuite`) cover registration, lazy loading, validation of
every declared constraint (through the engine's own code path), construction without I/O
and pickling; stage suites add behaviour checks on small generated data.
:func:`check_component` runs the generic checks without pytest.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, ClassVar, Iterator

from ..components import ComponentSpec, Stage
from ..errors import ArtifactError, ConfigError
from . import make_test_plugin_manager

try:  # fixtures need pytest; check_component does not
    import pytest
    _fixture: Any = pytest.fixture
except ImportError:  # pragma: no cover
    _fixture = lambda fn: fn  # noqa: E731

__all__ = ["ComponentSuite", "DataSourceSuite", "ModelSuite", "MetricSuite", "GateSuite",
           "DeployerSuite", "MonitorSuite", "RetrainPolicySuite", "StubContext",
           "check_component", "make_bundle", "make_frame", "resolve_config"]

HEAVY_MODULES = ("sklearn", "pandas", "scipy", "torch", "tensorflow", "matplotlib")
GENERIC_CHECKS = ("test_registered_once", "test_factory_is_lazy", "test_plugin_imports_quickly",
                  "test_valid_config_validates", "test_invalid_values_rejected",
                  "test_unknown_key_rejected", "test_construct_does_no_io", "test_picklable")


# -- helpers ---------------------------------------------------------------------------------

def resolve_config(stage: Stage | str, kind: str, config: dict, *, pm: Any,
                   key: str | None = None) -> Any:
    """Validate a component node exactly as the engine validates a spec's stage node.

    Args:
        stage: The component's stage.
        kind: The component's kind.
        config: The node without ``kind``.
        pm: The plugin manager that provides the component.
        key: The node's key in error messages (default: the stage name).

    Returns:
        The resolved node: ``.spec``, the typed ``.config`` and ``.build()``.

    Raises:
        ConfigError: naming the key of the first problem (``UnknownKindError`` for a kind
            no registered plugin provides).
    """
    from .._config import Provenance
    from .._spec import ValidationContext, resolve_node

    key = key or str(stage)
    prov = Provenance(project_dir=Path("<conformance>"), conf_dirs=[])
    vctx = ValidationContext(key, prov.where, pm.allowed_targets(), False)
    return resolve_node(Stage(stage), {**copy.deepcopy(config), "kind": kind}, key,
                        pm.component_table(), prov, vctx, optional=False)


def _where(key: str) -> str:
    return "conformance suite"


@dataclass
class StubContext:
    """Stands in for the run context: ``project_dir``, ``seed``, ``run_id``, ``say``."""

    project_dir: Path
    seed: int = 0
    run_id: str = "conformance"
    messages: list[str] = field(default_factory=list)
    spec: Any = field(default_factory=lambda: SimpleNamespace(
        provenance=SimpleNamespace(where=_where)))

    def say(self, text: str) -> None:
        """Record a progress line."""
        self.messages.append(text)


def make_frame(rows: int = 200, *, seed: int = 0, shift: float = 0.0,
               task: str = "classification") -> Any:
    """A DataFrame with numeric ``x1``, ``x2``, a string ``color`` and a ``label``.

    Args:
        rows: Number of rows.
        seed: Random seed.
        shift: Moves both numeric features by this much and skews ``color`` (drift).
        task: ``classification`` (a binary label) or ``regression``.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(shift, 1, rows), rng.normal(shift, 1, rows)
    color = rng.choice(["red", "green", "blue"], rows, p=[0.9, 0.05, 0.05] if shift else None)
    signal = 2 * x1 - x2 + (color == "red") * 1.5 + rng.normal(0, 1, rows)
    label = (signal > 0.5).astype(int) if task == "classification" else signal
    return pd.DataFrame({"x1": x1, "x2": x2, "color": color, "label": label})


def _numeric_model(frame: Any, task: str) -> Any:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    est = LogisticRegression() if task == "classification" else LinearRegression()
    return est.fit(frame[["x1", "x2"]], frame["label"])


def make_bundle() -> dict:
    """The bundle the engine hands to ``deploy(bundle, ctx)``, with a tiny skops model."""
    import hashlib

    import skops.io as sio

    model = sio.dumps(_numeric_model(make_frame(80), "classification"))
    version = {"name": "conformance", "version": 1, "created_at": "2024-01-01T00:00:00+00:00",
               "model_key": "0" * 32, "reference_key": "1" * 32, "metrics": {"roc_auc": 0.9},
               "data_fingerprint": "2" * 32, "run_id": "conformance", "config": {},
               "gate": {"passed": True, "checks": [], "summary": "passed"},
               "source": {"kind": "run"}, "aliases": ["champion"]}
    files = {"model.bin": {"sha256": hashlib.sha256(model).hexdigest(), "size": len(model)}}
    inputs = [{"name": n, "type": "number", "categorical": False} for n in ("x1", "x2")]
    return {"name": "conformance", "version": version, "model": model,
            "load_model": lambda: sio.loads(model, trusted=sio.get_untrusted_types(data=model)),
            "model_meta": {"key": "0" * 32, "stage": "train", "component": "model/sklearn",
                           "format": "skops", "trusted_types": [], "files": files},
            "signature": {"inputs": inputs, "target": "label", "task": "classification"},
            "description": "A model built by the conformance suite."}


def _constrained(schema: type, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple, Any]]:
    """``(path, check)`` of every field with a declared check, in nested dataclasses too."""
    for f in dataclasses.fields(schema):
        if f.metadata.get("check") is not None:
            yield (*prefix, f.name), f.metadata["check"]
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        if dataclasses.is_dataclass(default):
            yield from _constrained(type(default), (*prefix, f.name))


def _with(config: dict, path: tuple, value: Any) -> dict:
    out = node = copy.deepcopy(config)
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return out


def _rejection(suite: ComponentSuite, config: dict, what: str) -> ConfigError:
    try:
        suite.resolve(config)
    except ConfigError as exc:
        return exc
    raise AssertionError(f"{what} was accepted; expected a ConfigError")


@functools.lru_cache(maxsize=None)
def _import_report(module: str) -> dict:
    code = ("import json, sys, time, specloop\nt = time.perf_counter()\n"
            f"import {module}\nt = time.perf_counter() - t\n"
            f"print(json.dumps({{'seconds': t, 'heavy': [m for m in {HEAVY_MODULES!r} "
            "if m in sys.modules]}))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, f"importing {module} failed:\n{proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the suites ------------------------------------------------------------------------------

class ComponentSuite:
    """Generic checks every component passes; subclass a stage suite, not this one.

    Attributes:
        stage: The component's stage (set by each stage suite).
        kind: The component's kind.
        plugin: The plugin module or object that registers it.
        config: A valid node for it, without ``kind``.
        import_budget: Seconds the plugin module may take to import (in a fresh process).
        construct_budget: Seconds the constructor may take.
    """

    stage: ClassVar[Stage]
    kind: ClassVar[str]
    plugin: ClassVar[Any]
    config: ClassVar[dict] = {}
    import_budget: ClassVar[float] = 2.0
    construct_budget: ClassVar[float] = 0.5

    def prepare_project(self, root: Path) -> None:
        """Override to write the files the component reads into the project folder."""

    @_fixture
    def project_dir(self, tmp_path: Path) -> Path:
        """A project folder prepared by :meth:`prepare_project` (override for more)."""
        root = tmp_path / "project"
        root.mkdir()
        self.prepare_project(root)
        return root

    def plugin_manager(self) -> Any:
        """A fresh plugin manager with only :attr:`plugin` registered."""
        return make_test_plugin_manager([self.plugin])

    def resolve(self, config: dict | None = None) -> Any:
        """Validate ``config`` (default: :attr:`config`) as the engine does."""
        return resolve_config(self.stage, self.kind, self.config if config is None else config,
                              pm=self.plugin_manager())

    def component(self) -> Any:
        """Build the component from the validated :attr:`config`."""
        return self.resolve().build()

    def context(self, project_dir: Path) -> StubContext:
        """A run context stand-in rooted at ``project_dir``."""
        return StubContext(Path(project_dir))

    def test_registered_once(self, tmp_path: Path) -> None:
        """The plugin registers ``stage/kind`` exactly once and the table finds it."""
        pm = self.plugin_manager()
        own = [s for impl in pm.hook.specloop_register_components.get_hookimpls()
               if impl.plugin is self.plugin for s in (impl.function() or [])]
        n = sum((str(s.stage), s.kind) == (str(self.stage), self.kind) for s in own)
        assert n == 1, f"{self.stage}/{self.kind} is registered {n} times"
        assert pm.component_table().get(self.stage, self.kind).kind == self.kind

    def test_factory_is_lazy(self, tmp_path: Path) -> None:
        """The factory is a ``"module:attr"`` string that resolves to a callable."""
        spec = self.plugin_manager().component_table().get(self.stage, self.kind)
        assert isinstance(spec.factory, str) and ":" in spec.factory, \
            f"the factory must be a lazy 'module:attr' string, not {spec.factory!r}"
        assert callable(spec.load_factory())

    def test_plugin_imports_quickly(self, tmp_path: Path) -> None:
        """The plugin module imports fast and without heavy libraries, in a fresh process."""
        if isinstance(self.plugin, ModuleType):
            name, report = self.plugin.__name__, _import_report(self.plugin.__name__)
            assert not report["heavy"], f"importing {name} imports {report['heavy']}"
            assert report["seconds"] < self.import_budget, \
                f"importing {name} took {report['seconds']:.2f}s"

    def test_valid_config_validates(self, tmp_path: Path) -> None:
        """The schema is a dataclass and :attr:`config` validates."""
        resolved = self.resolve()
        assert dataclasses.is_dataclass(resolved.spec.schema), "the schema must be a dataclass"
        assert isinstance(resolved.config, resolved.spec.schema)

    def test_invalid_values_rejected(self, tmp_path: Path) -> None:
        """Each declared ``Interval``/``Options`` rejects values outside it, naming the key."""
        for path, check in _constrained(self.resolve().spec.schema):
            key = ".".join((str(self.stage), *path))
            for bad in check.invalid_values():
                error = _rejection(self, _with(self.config, path, bad), f"{key}={bad!r}")
                assert error.key == key, f"{key}={bad!r} was rejected naming {error.key!r}"

    def test_unknown_key_rejected(self, tmp_path: Path) -> None:
        """An unknown key is rejected with a ConfigError naming it."""
        error = _rejection(self, {**self.config, "no_such_key": 1}, "an unknown key")
        assert error.key == f"{self.stage}.no_such_key", error.key

    def test_construct_does_no_io(self, tmp_path: Path) -> None:
        """The constructor creates no files and is cheap (work belongs in the methods)."""
        resolved = self.resolve()
        factory, empty, cwd = resolved.spec.load_factory(), tmp_path / "empty", os.getcwd()
        empty.mkdir()
        os.chdir(empty)
        try:
            start = time.perf_counter()
            factory(resolved.config)
            elapsed = time.perf_counter() - start
        finally:
            os.chdir(cwd)
        assert not list(empty.iterdir()), "the constructor created files"
        assert elapsed < self.construct_budget, f"the constructor took {elapsed:.2f}s"

    def test_picklable(self, tmp_path: Path) -> None:
        """The component and its config survive pickling (multirun launchers need it)."""
        resolved = self.resolve()
        assert pickle.loads(pickle.dumps(resolved.config)) == resolved.config
        assert type(pickle.loads(pickle.dumps(resolved.build()))) is type(resolved.build())


class DataSourceSuite(ComponentSuite):
    """``data``: ``fingerprint(ctx)``, ``load(ctx)``, ``batches(ctx)``.

    Override :meth:`prepare_project` to write the files :attr:`config` points at.
    """

    stage = Stage.DATA

    def test_load_returns_frame(self, project_dir: Path) -> None:
        """``load`` returns a non-empty DataFrame holding the target column."""
        import pandas as pd

        resolved = self.resolve()
        frame = resolved.build().load(self.context(project_dir))
        assert isinstance(frame, pd.DataFrame) and len(frame) > 0
        target = getattr(resolved.config, "target", None)
        assert target is None or target in frame.columns, f"no target column {target!r}"

    def test_fingerprint_is_stable(self, project_dir: Path) -> None:
        """``fingerprint`` is a non-empty ``{str: str}`` and the same on every call."""
        comp, ctx = self.component(), self.context(project_dir)
        first = comp.fingerprint(ctx)
        assert isinstance(first, dict) and first and all(
            isinstance(k, str) and isinstance(v, str) for k, v in first.items()), first
        assert comp.fingerprint(ctx) == first

    def test_batches(self, project_dir: Path) -> None:
        """``batches`` returns stable ``(id, fingerprint, loader)`` triples."""
        import pandas as pd

        comp, ctx = self.component(), self.context(project_dir)
        batches = list(comp.batches(ctx))
        assert batches and all(isinstance(i, str) and isinstance(f, str) and callable(load)
                               for i, f, load in batches), batches
        assert isinstance(batches[0][2](), pd.DataFrame)
        assert [b[:2] for b in comp.batches(ctx)] == [b[:2] for b in batches]


class ModelSuite(ComponentSuite):
    """``model``: ``fit``, ``dumps``, ``loads`` and an optional ``preflight(ctx)``.

    Serialization contract: ``format`` names what ``dumps`` writes (not ``pickle`` unless
    the config sets ``allow_pickle: true``); an optional ``trusted_types(data)`` lists the
    types loading needs, recorded at save time; ``loads(data, *, format, trusted)`` refuses
    any type outside ``trusted`` with an :class:`~specloop.ArtifactError` (``loads(data)``
    alone is still accepted from components that record nothing).

    Attributes:
        task: ``classification`` (a binary label) or ``regression``.
    """

    stage = Stage.MODEL
    task: ClassVar[str] = "classification"

    def fitted(self) -> tuple[Any, Any, Any]:
        """The component, a model it fitted on :func:`make_frame` rows, and the features."""
        comp, frame = self.component(), make_frame(task=self.task)
        X = frame[["x1", "x2", "color"]]
        return comp, comp.fit(X, frame["label"], categorical=["color"], task=self.task,
                              seed=0), X

    def test_preflight_and_fit(self, project_dir: Path) -> None:
        """``preflight`` accepts the config; the fitted model predicts (and ``predict_proba``)."""
        check = getattr(self.component(), "preflight", None)
        if callable(check):
            check(self.context(project_dir))
        _, model, X = self.fitted()
        assert len(model.predict(X)) == len(X)
        if self.task == "classification":
            assert model.predict_proba(X).shape == (len(X), 2)

    def test_safe_format_by_default(self, tmp_path: Path) -> None:
        """Without ``allow_pickle: true`` the component does not write pickle."""
        from .._model_artifacts import UNSAFE_FORMATS

        comp = self.component()
        if not getattr(comp.config, "allow_pickle", False):
            assert getattr(comp, "format", "bytes") not in UNSAFE_FORMATS, comp.format

    def test_loads_refuses_unrecorded_types(self, tmp_path: Path) -> None:
        """Loading with an empty trusted list fails when saving recorded trusted types."""
        from .._model_artifacts import call_loads, model_files

        comp, model, _ = self.fitted()
        data, meta = model_files(comp, model)
        if meta["trusted_types"]:
            with pytest.raises(ArtifactError):
                call_loads(comp, data, format=meta["format"], trusted=[])

    def test_dumps_loads_round_trip(self, tmp_path: Path) -> None:
        """Loading what was saved, with the recorded format and trusted types, predicts
        exactly as the fitted model does (the engine's own save/load path)."""
        import numpy as np

        from .._model_artifacts import call_loads, model_files

        comp, model, X = self.fitted()
        data, meta = model_files(comp, model)
        assert isinstance(data, bytes) and isinstance(meta["format"], str)
        again = call_loads(comp, data, format=meta["format"], trusted=meta["trusted_types"])
        np.testing.assert_array_equal(again.predict(X), model.predict(X))
        if self.task == "classification":
            np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


class MetricSuite(ComponentSuite):
    """``metrics``: ``primary``, ``greater_is_better``, ``compute(model, X, y, *, task)``.

    Attributes:
        task: ``classification`` or ``regression`` (what :attr:`config` measures).
    """

    stage = Stage.METRICS
    task: ClassVar[str] = "classification"

    def test_compute_returns_floats(self, tmp_path: Path) -> None:
        """``compute`` returns ``{name: float}`` including a finite primary metric."""
        import math

        comp, frame = self.component(), make_frame(task=self.task)
        assert isinstance(comp.primary, str) and isinstance(comp.greater_is_better, bool)
        out = comp.compute(_numeric_model(frame, self.task), frame[["x1", "x2"]],
                           frame["label"], task=self.task)
        assert isinstance(out, dict) and all(type(v) is float for v in out.values()), out
        assert comp.primary in out and math.isfinite(out[comp.primary]), out


class GateSuite(ComponentSuite):
    """``gate``: ``check(candidate, champion, *, primary, greater_is_better)``.

    Attributes:
        primary: The primary metric's name.
        good_candidate: Metrics :attr:`config` accepts.
        worse_champion: A champion that :attr:`good_candidate` clearly beats.
        rejects_regression: Whether the gate refuses a candidate worse than the champion.
    """

    stage = Stage.GATE
    primary: ClassVar[str] = "roc_auc"
    good_candidate: ClassVar[dict] = {"roc_auc": 0.99}
    worse_champion: ClassVar[dict] = {"roc_auc": 0.5}
    rejects_regression: ClassVar[bool] = True

    def judge(self, candidate: dict, champion: dict | None) -> dict:
        """Run the gate and check the shape of its result."""
        out = self.component().check(candidate, champion, primary=self.primary,
                                      greater_is_better=True)
        assert isinstance(out["passed"], bool) and isinstance(out["checks"], list), out
        assert isinstance(out["summary"], str) and out["summary"], out
        return out

    def test_good_candidate_passes(self, tmp_path: Path) -> None:
        """A good candidate passes against no champion and against a worse one."""
        assert self.judge(self.good_candidate, None)["passed"]
        assert self.judge(self.good_candidate, self.worse_champion)["passed"]

    def test_worse_candidate_rejected(self, tmp_path: Path) -> None:
        """A candidate clearly worse than the champion fails (if :attr:`rejects_regression`)."""
        out = self.judge(self.worse_champion, self.good_candidate)
        assert out["passed"] is not self.rejects_regression, out


class DeployerSuite(ComponentSuite):
    """``deploy``: ``deploy(bundle, ctx)`` then ``verify(result, ctx)``."""

    stage = Stage.DEPLOY

    def test_deploy_then_verify(self, project_dir: Path) -> None:
        """Deployments verify after their result went through JSON (the store), twice."""
        comp, ctx = self.component(), self.context(project_dir)
        for _ in range(2):
            result = json.loads(json.dumps(comp.deploy(make_bundle(), ctx), default=str))
            assert comp.verify(result, ctx) is True, result


class MonitorSuite(ComponentSuite):
    """``monitor``: ``check(reference, current, *, columns, categorical)``."""

    stage = Stage.MONITOR

    def report(self, current: Any) -> dict:
        """Check ``current`` against a fixed reference and the shape of the report."""
        cols = ["x1", "x2", "color"]
        out = self.component().check(make_frame(400)[cols], current[cols], columns=cols,
                                     categorical=["color"])
        assert 0.0 <= out["drift_share"] <= 1.0 and isinstance(out["drifted"], bool), out
        assert all({"column", "drifted"} <= set(c) for c in out["columns"]), out["columns"]
        return out

    def test_identical_frames_do_not_drift(self, tmp_path: Path) -> None:
        """The reference compared with itself has not drifted."""
        assert not self.report(make_frame(400))["drifted"]

    def test_shifted_frame_drifts(self, tmp_path: Path) -> None:
        """A strongly shifted frame has drifted."""
        assert self.report(make_frame(400, seed=1, shift=3.0))["drifted"]


class RetrainPolicySuite(ComponentSuite):
    """``retrain``: ``decide(Observation) -> Decision``.

    Attributes:
        expected_decisions: Optional ``{"calm" | "storm" | "unlabelled": retrain?}``.
    """

    stage = Stage.RETRAIN
    expected_decisions: ClassVar[dict[str, bool]] = {}

    @staticmethod
    def observations() -> dict[str, Any]:
        """A calm batch, a drifted and decayed one, and one without labels or monitor."""
        from .. import Observation

        def drift(share: float) -> dict:
            return {"drift_share": share, "drifted": share >= 0.5, "threshold_share": 0.5,
                    "columns": [{"column": "x1", "drifted": share > 0},
                                {"column": "x2", "drifted": share >= 1}]}

        base = {"rows": 100, "champion_metrics": {"roc_auc": 0.9}, "primary": "roc_auc",
                "greater_is_better": True}
        return {"calm": Observation("b1", drift=drift(0.0), metrics={"roc_auc": 0.9},
                                    batches_since_retrain=1, **base),
                "storm": Observation("b2", drift=drift(1.0), metrics={"roc_auc": 0.5},
                                     batches_since_retrain=50, **base),
                "unlabelled": Observation("b3", drift=None, metrics=None,
                                          batches_since_retrain=2, **base)}

    def test_decide(self, tmp_path: Path) -> None:
        """Every observation gets a Decision with a one-line reason."""
        from .. import Decision

        comp = self.component()
        for name, obs in self.observations().items():
            d = comp.decide(obs)
            assert isinstance(d, Decision) and isinstance(d.retrain, bool), (name, d)
            assert isinstance(d.reason, str) and d.reason.strip(), (name, d)
            assert d.retrain == self.expected_decisions.get(name, d.retrain), (name, d)


# -- without pytest --------------------------------------------------------------------------

def check_component(spec_or_kind: ComponentSpec | str, plugin: Any, config: dict | None = None,
                    *, stage: Stage | str | None = None) -> None:
    """Run the generic conformance checks of one component, without pytest.

    Args:
        spec_or_kind: A :class:`specloop.ComponentSpec`, ``"stage/kind"``, or a kind that
            ``plugin`` registers for one stage only.
        plugin: The plugin module or object that registers it.
        config: A valid node for it, without ``kind``.
        stage: The stage, when ``spec_or_kind`` is a bare kind registered for several.

    Raises:
        AssertionError: naming the first check that failed and why.
    """
    if isinstance(spec_or_kind, ComponentSpec):
        stage, kind = spec_or_kind.stage, spec_or_kind.kind
    elif "/" in spec_or_kind:
        stage, kind = spec_or_kind.split("/", 1)
    else:
        kind = spec_or_kind
        stages = [st for (st, k) in make_test_plugin_manager([plugin]).component_table().specs
                  if k == kind and stage in (None, st, Stage(st))]
        if len(stages) != 1:
            raise AssertionError(f"kind {kind!r} is registered for stages {stages}; "
                                 "pass stage= or 'stage/kind'")
        stage = stages[0]
    suite = type("CheckComponent", (ComponentSuite,), {
        "stage": Stage(stage), "kind": kind, "plugin": plugin, "config": dict(config or {})})()
    with tempfile.TemporaryDirectory() as tmp:
        for name in GENERIC_CHECKS:
            (Path(tmp) / name).mkdir()
            try:
                getattr(suite, name)(Path(tmp) / name)
            except Exception as exc:
                why = str(exc) if isinstance(exc, AssertionError) else \
                    f"raised {type(exc).__name__}: {exc}"
                raise AssertionError(f"{stage}/{kind}: {name} failed: {why}") from exc
