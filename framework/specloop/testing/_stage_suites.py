"""One conformance suite per stage contract: the generic checks plus the stage's behaviour on
small generated data, called the way the engine calls it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

from ..components import Stage
from ..errors import ArtifactError
from ._component_suite import ComponentSuite, skip
from ._samples import make_bundle, make_frame, numeric_model


class DataSourceSuite(ComponentSuite):
    """``data``: ``fingerprint(ctx)``, ``load(ctx)``, optional ``snapshot(ctx)`` and
    ``batches(ctx)``.

    Override :meth:`prepare_project` to write the files the configuration points at (or
    write them from a ``config`` fixture). ``batches`` is called with a context keyed
    ``loop.incoming``, as the loop calls it; the others with one keyed ``data``. A source
    without ``snapshot`` or ``batches`` skips that check.
    """

    stage = Stage.DATA

    def test_load_returns_frame(self, project_dir: Path) -> None:
        """``load`` returns a non-empty DataFrame holding the target column."""
        import pandas as pd

        resolved = self.resolve()
        frame = resolved.build().load(self.context(project_dir))
        assert isinstance(frame, pd.DataFrame) and len(frame) > 0, \
            f"load() returned {type(frame).__name__} {getattr(frame, 'shape', '')}"
        target = getattr(resolved.config, "target", None)
        assert target is None or target in frame.columns, f"no target column {target!r}"

    def test_fingerprint_is_stable(self, project_dir: Path) -> None:
        """``fingerprint`` is a non-empty ``{str: str}`` and the same on every call."""
        comp, ctx = self.component(), self.context(project_dir)
        first = comp.fingerprint(ctx)
        assert isinstance(first, dict) and first and all(
            isinstance(k, str) and isinstance(v, str) for k, v in first.items()), first
        again = comp.fingerprint(ctx)
        assert again == first, f"fingerprint() changed between calls: {first} then {again}"

    def test_snapshot(self, project_dir: Path) -> None:
        """``snapshot`` returns the frame ``load`` gives and the fingerprint ``fingerprint``
        gives (the frame is of exactly the bytes fingerprinted)."""
        import pandas as pd

        comp, ctx = self.component(), self.context(project_dir)
        if not callable(getattr(comp, "snapshot", None)):
            skip("the source has no snapshot(ctx)")
        out = comp.snapshot(ctx)
        assert isinstance(out, tuple) and len(out) == 2, f"snapshot returned {out!r}"
        frame, fingerprint = out
        assert isinstance(frame, pd.DataFrame) and len(frame) > 0, \
            f"snapshot() returned {type(frame).__name__} {getattr(frame, 'shape', '')}"
        listed = comp.fingerprint(ctx)
        assert fingerprint == listed, \
            f"snapshot() fingerprint {fingerprint} differs from fingerprint() {listed}"
        pd.testing.assert_frame_equal(frame, comp.load(ctx))

    def test_batches(self, project_dir: Path) -> None:
        """``batches`` lists :class:`specloop.Batch` objects with unique ids, the same ids
        and fingerprints on every call, and each ``read()`` returns a DataFrame and the
        fingerprint it was listed with (a legacy ``(id, fingerprint, load)`` tuple is read
        as the loop reads it)."""
        import pandas as pd

        from .._plugin_types import Batch, as_batch

        comp, ctx = self.component(), self.context(project_dir, key="loop.incoming")
        if not callable(getattr(comp, "batches", None)):
            skip("the source has no batches(ctx): it cannot be loop.incoming")
        listed = [as_batch(b) for b in comp.batches(ctx)]  # the loop's own reading
        assert listed, "batches() is empty: prepare_project must write data that has batches"
        for b in listed:
            assert isinstance(b, Batch) and isinstance(b.id, str) and b.id, b
            assert isinstance(b.fingerprint, str) and b.fingerprint, b
            assert b.modified is None or isinstance(b.modified, (int, float)), b
        ids = [b.id for b in listed]
        assert len(set(ids)) == len(ids), f"batch ids repeat: {ids}"
        again = [as_batch(b) for b in comp.batches(ctx)]
        first, second = ([(b.id, b.fingerprint) for b in bs] for bs in (listed, again))
        assert second == first, f"batches() changed between calls: {first} then {second}"
        for b in listed:
            out = b.read()
            assert isinstance(out, tuple) and len(out) == 2, f"{b.id}: read() returned {out!r}"
            frame, fingerprint = out
            assert isinstance(frame, pd.DataFrame), f"{b.id}: read() gave {type(frame)}"
            assert fingerprint == b.fingerprint, \
                f"{b.id}: read() fingerprint {fingerprint!r}, listed as {b.fingerprint!r}"


class ModelSuite(ComponentSuite):
    """``model``: ``fit``, ``dumps``, ``loads``, ``format``; optional ``trusted_types(data)``,
    ``allows_type(name)``, ``task()`` and ``preflight(ctx)``.

    Serialization contract: ``format`` names what ``dumps`` writes (not ``pickle`` unless
    the config sets ``allow_pickle: true``); ``trusted_types(data)`` lists the types loading
    needs, recorded at save time, and ``allows_type`` must accept each of them (the engine
    asks it at save and at load, and refuses a record holding any other type);
    ``loads(data, *, format, trusted)`` refuses any type outside ``trusted`` with an
    :class:`~specloop.ArtifactError` (``loads(data)`` alone is still accepted from
    components that record nothing).

    Attributes:
        task: ``classification`` (a binary label) or ``regression``; a ``task()`` that
            answers must answer this.
    """

    stage = Stage.MODEL
    task: ClassVar[str] = "classification"

    def fitted(self) -> tuple[Any, Any, Any]:
        """The component, a model it fitted on :func:`make_frame` rows, and the features.

        Returns:
            ``(component, fitted model, X)``.
        """
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
        assert len(model.predict(X)) == len(X), "predict() gave another number of rows"
        if self.task == "classification":
            assert model.predict_proba(X).shape == (len(X), 2)

    def test_task_matches(self, tmp_path: Path) -> None:
        """``task()`` answers ``classification``, ``regression`` or ``None`` (either), and
        a model that answers is one for the suite's :attr:`task`."""
        ask = getattr(self.component(), "task", None)
        if not callable(ask):
            skip("the component has no task()")
        answer = ask()
        assert answer in ("classification", "regression", None), f"task() gave {answer!r}"
        assert answer in (None, self.task), f"task() is {answer!r}, the suite's {self.task!r}"

    def test_safe_format_by_default(self, tmp_path: Path) -> None:
        """Without ``allow_pickle: true`` the component does not write pickle."""
        from .._model_artifacts import UNSAFE_FORMATS

        comp = self.component()
        if not getattr(comp.config, "allow_pickle", False):
            assert getattr(comp, "format", "bytes") not in UNSAFE_FORMATS, comp.format

    def test_allows_recorded_types(self, tmp_path: Path) -> None:
        """``allows_type`` accepts every type ``trusted_types`` records for a fitted model,
        and refuses a type no model needs (``os.system``)."""
        comp, model, _ = self.fitted()
        describe, allows = getattr(comp, "trusted_types", None), getattr(comp, "allows_type",
                                                                         None)
        if not callable(describe) or not callable(allows):
            skip("the component lacks trusted_types(data) or allows_type(name)")
        recorded = list(describe(comp.dumps(model)))
        refused = [t for t in recorded if allows(t) is not True]
        assert not refused, f"allows_type refuses types trusted_types records: {refused}"
        assert allows("os.system") is False, "allows_type accepts 'os.system'"

    def test_loads_refuses_unrecorded_types(self, tmp_path: Path) -> None:
        """Loading with an empty trusted list fails when saving recorded trusted types."""
        from .._model_artifacts import call_loads, model_files

        comp, model, _ = self.fitted()
        data, meta = model_files(comp, model)
        if not meta["trusted_types"]:
            skip("saving recorded no trusted types")
        try:
            call_loads(comp, data, format=meta["format"], trusted=[])
        except ArtifactError:
            return
        raise AssertionError("loads accepted types outside trusted=[]")

    def test_dumps_loads_round_trip(self, tmp_path: Path) -> None:
        """Loading what was saved, with the recorded format and trusted types, predicts
        exactly as the fitted model does (the engine's own save/load path)."""
        import numpy as np

        from .._model_artifacts import call_loads, model_files

        comp, model, X = self.fitted()
        data, meta = model_files(comp, model)
        assert isinstance(meta["format"], str), f"format is {meta['format']!r}"
        again = call_loads(comp, data, format=meta["format"], trusted=meta["trusted_types"])
        np.testing.assert_array_equal(again.predict(X), model.predict(X))
        if self.task == "classification":
            np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


class MetricSuite(ComponentSuite):
    """``metrics``: ``primary``, ``greater_is_better``, ``compute(model, X, y, *, task)``;
    a schema's optional ``metric_names()`` lists what ``compute`` returns.

    Attributes:
        task: ``classification`` or ``regression`` (what the configuration measures).
    """

    stage = Stage.METRICS
    task: ClassVar[str] = "classification"

    def test_compute_returns_floats(self, tmp_path: Path) -> None:
        """``compute`` returns ``{name: float}`` including a finite primary metric and
        every name ``metric_names()`` declares."""
        resolved = self.resolve()
        comp, frame = resolved.build(), make_frame(task=self.task)
        assert isinstance(comp.primary, str) and isinstance(comp.greater_is_better, bool), \
            f"primary {comp.primary!r}, greater_is_better {comp.greater_is_better!r}"
        out = comp.compute(numeric_model(frame, self.task), frame[["x1", "x2"]],
                           frame["label"], task=self.task)
        assert isinstance(out, dict) and all(type(v) is float for v in out.values()), out
        assert comp.primary in out and math.isfinite(out[comp.primary]), out
        names_of = getattr(resolved.config, "metric_names", None)
        if callable(names_of):
            names = list(names_of())
            assert comp.primary in names, f"metric_names() {names} omits {comp.primary!r}"
            missing = [n for n in names if n not in out]
            assert not missing, f"metric_names() declares {missing}, compute() omits them"


class GateSuite(ComponentSuite):
    """``gate``: ``check(candidate, champion, *, primary, greater_is_better)``; a schema's
    optional ``metrics_used()`` is checked by the generic checks.

    Attributes:
        primary: The primary metric's name.
        good_candidate: Metrics the configuration accepts.
        worse_champion: A champion that :attr:`good_candidate` clearly beats.
        rejects_regression: Whether the gate refuses a candidate worse than the champion.
    """

    stage = Stage.GATE
    primary: ClassVar[str] = "roc_auc"
    good_candidate: ClassVar[dict] = {"roc_auc": 0.99}
    worse_champion: ClassVar[dict] = {"roc_auc": 0.5}
    rejects_regression: ClassVar[bool] = True

    def judge(self, candidate: dict, champion: dict | None) -> dict:
        """Run the gate and check the shape of its result.

        Args:
            candidate: The candidate's metrics.
            champion: The champion's metrics, or ``None``.

        Returns:
            The gate's result.
        """
        out = self.component().check(candidate, champion, primary=self.primary,
                                      greater_is_better=True)
        assert isinstance(out["passed"], bool) and isinstance(out["checks"], list), out
        assert isinstance(out["summary"], str) and out["summary"], out
        return out

    def test_good_candidate_passes(self, tmp_path: Path) -> None:
        """A good candidate passes against no champion and against a worse one."""
        alone = self.judge(self.good_candidate, None)
        assert alone["passed"], f"{self.good_candidate} without a champion: {alone}"
        beats = self.judge(self.good_candidate, self.worse_champion)
        assert beats["passed"], f"{self.good_candidate} against {self.worse_champion}: {beats}"

    def test_worse_candidate_rejected(self, tmp_path: Path) -> None:
        """A candidate clearly worse than the champion fails (if :attr:`rejects_regression`)."""
        out = self.judge(self.worse_champion, self.good_candidate)
        assert out["passed"] is not self.rejects_regression, out


class DeployerSuite(ComponentSuite):
    """``deploy``: ``deploy(bundle, ctx) -> dict`` then ``verify(result, ctx) -> bool``.

    The bundle is :func:`make_bundle`'s: a champion registered in the stand-in project,
    built by the engine's own code. The result goes through the registry's record of the
    deployment (JSON) before ``verify`` sees it, as in a later run.
    """

    stage = Stage.DEPLOY

    def test_deploy_then_verify(self, project_dir: Path) -> None:
        """A deployment returns ``{"location": str, …}`` and verifies from its record;
        deploying again over it verifies too."""
        comp, ctx = self.component(), self.context(project_dir)
        for _ in range(2):
            bundle = make_bundle(ctx)
            result = comp.deploy(bundle, ctx)
            assert isinstance(result, dict) and isinstance(result.get("location"), str), result
            version = bundle["version"]["version"]
            ctx.registry.record_deployment(ctx.model_name, ctx.key, version, result)
            recorded = ctx.registry.deployment(ctx.model_name, ctx.key)["result"]
            assert comp.verify(recorded, ctx) is True, recorded


class MonitorSuite(ComponentSuite):
    """``monitor``: ``check(reference, current, *, columns, categorical)``."""

    stage = Stage.MONITOR

    def report(self, current: Any) -> dict:
        """Check ``current`` against a fixed reference and the shape of the report.

        Args:
            current: Rows from :func:`make_frame`.

        Returns:
            The monitor's report.
        """
        cols = ["x1", "x2", "color"]
        out = self.component().check(make_frame(400)[cols], current[cols], columns=cols,
                                     categorical=["color"])
        assert 0.0 <= out["drift_share"] <= 1.0 and isinstance(out["drifted"], bool), out
        assert all({"column", "drifted"} <= set(c) for c in out["columns"]), out["columns"]
        return out

    def test_identical_frames_do_not_drift(self, tmp_path: Path) -> None:
        """The reference compared with itself has not drifted."""
        out = self.report(make_frame(400))
        assert not out["drifted"], f"the reference drifted from itself: {out}"

    def test_shifted_frame_drifts(self, tmp_path: Path) -> None:
        """A strongly shifted frame has drifted."""
        out = self.report(make_frame(400, seed=1, shift=3.0))
        assert out["drifted"], f"a frame shifted by 3 standard deviations did not drift: {out}"


class RetrainPolicySuite(ComponentSuite):
    """``retrain``: ``decide(Observation) -> Decision``.

    Attributes:
        expected_decisions: Optional ``{"calm" | "storm" | "unlabelled": retrain?}``.
    """

    stage = Stage.RETRAIN
    expected_decisions: ClassVar[dict[str, bool]] = {}

    @staticmethod
    def observations() -> dict[str, Any]:
        """A calm batch, a drifted and decayed one, and one without labels or monitor.

        Returns:
            ``{"calm" | "storm" | "unlabelled": Observation}``.
        """
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
