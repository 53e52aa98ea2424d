"""Every built-in component passes the conformance kit, used exactly as a third party would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import specloop_bundle
import specloop_drift
import specloop_gates
import specloop_onnx
import specloop_retrain
import specloop_serve
import specloop_sklearn
import specloop_tabular
import specloop_targets
from specloop_sklearn import SklearnModelConf
from specloop_sklearn._model import SklearnModel

from specloop import (Batch, ComponentSpec, Decision, Interval, RetrainConf, Stage, hookimpl,
                      param)
from specloop.testing.suites import (DataSourceSuite, DeployerSuite, GateSuite, MetricSuite,
                                     ModelSuite, MonitorSuite, RetrainPolicySuite,
                                     StubContext, check_component, make_frame)


class TestCsv(DataSourceSuite):
    kind = "csv"
    plugin = specloop_tabular
    config = {"path": "data/train.csv", "target": "label"}

    def prepare_project(self, root: Path) -> None:
        (root / "data").mkdir()
        make_frame(50).to_csv(root / "data" / "train.csv", index=False)


class TestCsvGlob(DataSourceSuite):
    kind = "csv"
    plugin = specloop_tabular
    config = {"path": "data/incoming/*.csv", "target": "label"}

    def prepare_project(self, root: Path) -> None:
        (root / "data" / "incoming").mkdir(parents=True)
        for i in range(3):
            make_frame(20, seed=i).to_csv(root / "data" / "incoming" / f"b{i}.csv", index=False)


class TestCsvOutsideTheProject(DataSourceSuite):
    """The node comes from a ``config`` fixture: the file lives under ``tmp_path``, outside
    the project, so only a fixture can name it; every generic and stage check uses it."""

    kind = "csv"
    plugin = specloop_tabular

    @pytest.fixture
    def config(self, tmp_path):
        path = tmp_path / "elsewhere" / "b0.csv"
        path.parent.mkdir()
        make_frame(40).to_csv(path, index=False)
        return {"path": str(path), "target": "label"}

    def test_config_is_the_fixture_value(self, tmp_path):
        assert self.config == {"path": str(tmp_path / "elsewhere" / "b0.csv"),
                               "target": "label"}
        assert self.resolve().config.path == str(tmp_path / "elsewhere" / "b0.csv")


def test_a_config_fixture_has_no_value_outside_a_test():
    with pytest.raises(TypeError, match="fixture"):
        TestCsvOutsideTheProject().resolve()


class TestServingLogs(DataSourceSuite):
    kind = "serving_logs"
    plugin = specloop_serve
    config = {"model": "m"}

    def prepare_project(self, root: Path) -> None:
        import time

        from specloop_serve._logs import RequestLogger
        from specloop_serve._settings import LogSettings

        with StubContext(root) as ctx:  # the logs go where the suite's context reads them
            log = RequestLogger(ctx.store, "m", LogSettings(rotate_bytes=500))
            frame = make_frame(30)[["x1", "x2", "color"]]
            for i, row in enumerate(frame.to_dict("records")):
                log.log(time.time(), str(i), 1, [row], [0], None)
                log._flush()
            log.close()


class TestSklearnDataset(DataSourceSuite):
    kind = "sklearn_dataset"
    plugin = specloop_tabular
    config = {"name": "breast_cancer"}


class TestSklearnModel(ModelSuite):
    kind = "sklearn"
    plugin = specloop_sklearn
    config = {"estimator": "sklearn.linear_model.LogisticRegression",
              "preprocessing": {"numeric": "standard"}}


class TestSklearnModelNative(ModelSuite):
    kind = "sklearn"
    plugin = specloop_sklearn
    config = {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
              "params": {"max_iter": 20}, "preprocessing": {"categorical": "native"}}


class TestSklearnModelPickle(ModelSuite):
    kind = "sklearn"
    plugin = specloop_sklearn
    config = {"estimator": "sklearn.ensemble.RandomForestClassifier",
              "params": {"n_estimators": 5}, "allow_pickle": True}


class TestSklearnRegressor(ModelSuite):
    kind = "sklearn"
    plugin = specloop_sklearn
    task = "regression"
    config = {"estimator": "sklearn.linear_model.Ridge"}


class TestSklearnMetrics(MetricSuite):
    kind = "sklearn"
    plugin = specloop_sklearn
    config = {"primary": "roc_auc", "names": ["roc_auc", "f1", "accuracy", "log_loss"]}


class TestSklearnRegressionMetrics(MetricSuite):
    kind = "sklearn"
    plugin = specloop_sklearn
    task = "regression"
    config = {"primary": "r2", "names": ["r2", "mae", "rmse"]}


class TestThresholdGate(GateSuite):
    kind = "threshold"
    plugin = specloop_gates
    config = {"min": {"roc_auc": 0.7}, "beat_champion_by": 0.0}


class TestThresholdGateNoComparison(GateSuite):
    kind = "threshold"
    plugin = specloop_gates
    config = {"beat_champion_by": None}
    rejects_regression = False


class TestBundle(DeployerSuite):
    kind = "bundle"
    plugin = specloop_bundle
    config = {"path": "deploy/champion"}


class TestOnnx(DeployerSuite):
    """The bundle's small scikit-learn model, exported and checked against its pipeline."""

    kind = "onnx"
    plugin = specloop_onnx
    config = {"path": "deploy/onnx", "sample_rows": 50}


class TestObjectStoreFolder(DeployerSuite):
    """A ``config`` fixture again: the bundle goes to a ``file://`` URL under ``tmp_path``."""

    kind = "object_store"
    plugin = specloop_targets

    @pytest.fixture
    def config(self, tmp_path):
        return {"url": f"file://{tmp_path}/bucket/deploy/champion"}


class TestDrift(MonitorSuite):
    kind = "drift"
    plugin = specloop_drift
    config = {"drift_share": 0.5}


class TestDriftDistances(MonitorSuite):
    kind = "drift"
    plugin = specloop_drift
    config = {"method": "psi", "small_sample": 10}


class TestNever(RetrainPolicySuite):
    kind = "never"
    plugin = specloop_retrain
    expected_decisions = {"calm": False, "storm": False, "unlabelled": False}


class TestOnDrift(RetrainPolicySuite):
    kind = "on_drift"
    plugin = specloop_retrain
    expected_decisions = {"calm": False, "storm": True, "unlabelled": False}


class TestOnDecay(RetrainPolicySuite):
    kind = "on_decay"
    plugin = specloop_retrain
    config = {"max_drop": 0.05}
    expected_decisions = {"calm": False, "storm": True, "unlabelled": False}


class TestEvery(RetrainPolicySuite):
    kind = "every"
    plugin = specloop_retrain
    config = {"batches": 3, "window_batches": 4}
    expected_decisions = {"calm": False, "storm": True, "unlabelled": False}


class TestAnyOf(RetrainPolicySuite):
    kind = "any_of"
    plugin = specloop_retrain
    config = {"policies": [{"kind": "on_drift"}, {"kind": "on_decay", "max_drop": 0.05}]}
    expected_decisions = {"calm": False, "storm": True, "unlabelled": False}


# -- the kit catches broken components (check_component, without pytest's collection) --------

@dataclass
class ToyConf(RetrainConf):
    """A toy policy's config."""

    every: int = param(2, check=Interval(int, 1, None))


class ToyPolicy:
    """A well-behaved policy."""

    def __init__(self, config):
        self.config = config

    def decide(self, obs):
        """Retrain every ``every`` batches."""
        return Decision(obs.batches_since_retrain >= self.config.every, "toy")


class WritesFile(ToyPolicy):
    """Does I/O in its constructor."""

    def __init__(self, config):
        super().__init__(config)
        open("state.json", "w").close()


class Unpicklable(ToyPolicy):
    """Holds a lambda."""

    def __init__(self, config):
        super().__init__(config)
        self.callback = lambda: None


class ToyPlugin:
    """A plugin object registering ``retrain/toy`` with the given factory."""

    def __init__(self, factory, times=1):
        self.factory, self.times = factory, times

    @hookimpl
    def specloop_register_components(self):
        """Register it (``times`` times)."""
        return [ComponentSpec(Stage.RETRAIN, "toy", self.factory, ToyConf)] * self.times


def test_check_component_accepts_builtins():
    check_component("retrain/every", specloop_retrain, {"batches": 2})
    check_component("never", specloop_retrain)
    check_component("threshold", specloop_gates, {"beat_champion_by": 0.01})


def test_check_component_needs_a_stage_for_an_ambiguous_kind():
    with pytest.raises(AssertionError, match="stage"):
        check_component("sklearn", specloop_sklearn)


def test_check_component_accepts_a_good_toy():
    check_component("retrain/toy", ToyPlugin(f"{__name__}:ToyPolicy"), {"every": 3})


@pytest.mark.parametrize("plugin,config,failing", [
    (ToyPlugin(f"{__name__}:ToyPolicy", times=2), {}, "test_registered_once"),
    (ToyPlugin(ToyPolicy), {}, "test_factory_is_lazy"),
    (ToyPlugin(f"{__name__}:NoSuchClass"), {}, "test_factory_is_lazy"),
    (ToyPlugin(f"{__name__}:ToyPolicy"), {"every": 0}, "test_valid_config_validates"),
    (ToyPlugin(f"{__name__}:WritesFile"), {}, "test_construct_does_no_io"),
    (ToyPlugin(f"{__name__}:Unpicklable"), {}, "test_picklable"),
], ids=["registered-twice", "eager-factory", "missing-factory", "invalid-config", "io",
        "unpicklable"])
def test_check_component_catches(plugin, config, failing):
    with pytest.raises(AssertionError, match=failing):
        check_component("retrain/toy", plugin, config)


# -- the stage suites catch components that break their contract ------------------------------

@dataclass
class ToySourceConf:
    """A toy data source's config."""

    rows: int = param(20, check=Interval(int, 1, None))


class ToySource:
    """A well-behaved source: one batch, the same bytes everywhere."""

    def __init__(self, config):
        self.config = config

    def _frame(self):
        return make_frame(self.config.rows)

    def fingerprint(self, ctx):
        return {"toy.csv": "a"}

    def load(self, ctx):
        return self._frame()

    def snapshot(self, ctx):
        return self._frame(), {"toy.csv": "a"}

    def batches(self, ctx):
        return [Batch("b0", "a", lambda: (self._frame(), "a"))]


class SnapshotOfOtherBytes(ToySource):
    def snapshot(self, ctx):
        return self._frame(), {"toy.csv": "b"}


class BatchReadsOtherBytes(ToySource):
    def batches(self, ctx):
        return [Batch("b0", "a", lambda: (self._frame(), "b"))]


class BatchIdsChange(ToySource):
    def batches(self, ctx):
        return [Batch(uuid.uuid4().hex, "a", lambda: (self._frame(), "a"))]


class RefusesItsOwnTypes(SklearnModel):
    def allows_type(self, name):
        return False


class AllowsAnyType(SklearnModel):
    def allows_type(self, name):
        return True


class SaysRegression(SklearnModel):
    def task(self):
        return "regression"


@dataclass
class ToyMetricsConf:
    """Declares two metrics."""

    names: list[str] = param(default_factory=lambda: ["accuracy", "brier"])

    def metric_names(self):
        return list(self.names)


class ComputesOneMetric:
    """Computes only the first metric it declares."""

    primary, greater_is_better = "accuracy", True

    def __init__(self, config):
        self.config = config

    def compute(self, model, X, y, *, task):
        return {"accuracy": float((model.predict(X) == y).mean())}


@dataclass
class ToyGateConf:
    """Reads a metric under a key the node does not have."""

    min: dict[str, float] = param(default_factory=dict)

    def metrics_used(self):
        return {"min.f1": "f1"}


class SpecPlugin:
    """A plugin object registering the given component specs (and scikit-learn targets)."""

    def __init__(self, *specs):
        self.specs = specs

    @hookimpl
    def specloop_register_components(self):
        """Register them."""
        return list(self.specs)

    @hookimpl
    def specloop_add_allowed_targets(self):
        """Model specs may name scikit-learn estimators."""
        return ["sklearn."]


SOURCE = (DataSourceSuite, Stage.DATA, ToySourceConf, {})
MODEL = (ModelSuite, Stage.MODEL, SklearnModelConf,
         {"estimator": "sklearn.linear_model.LogisticRegression"})


def run_check(case, factory, check, tmp_path):
    """Run one check of ``case``'s suite on a component made by ``factory`` (a class name)."""
    suite_cls, stage, schema, config = case
    plugin = SpecPlugin(ComponentSpec(stage, "toy", f"{__name__}:{factory}", schema))
    suite = type("ToySuite", (suite_cls,), {"stage": stage, "kind": "toy", "plugin": plugin,
                                            "config": config})()
    root = tmp_path / "project"
    root.mkdir()
    try:
        getattr(suite, check)(root)
    finally:
        for ctx in suite.__dict__.get("_contexts", []):
            ctx.close()


@pytest.mark.parametrize("case,factory,check", [
    (SOURCE, "ToySource", "test_snapshot"),
    (SOURCE, "ToySource", "test_batches"),
    (MODEL, "SklearnModel", "test_allows_recorded_types"),
    (MODEL, "SklearnModel", "test_task_matches"),
], ids=["snapshot", "batches", "allows-type", "task"])
def test_stage_suites_accept_a_good_toy(case, factory, check, tmp_path):
    run_check(case, factory, check, tmp_path)


@pytest.mark.parametrize("case,factory,check,match", [
    (SOURCE, "SnapshotOfOtherBytes", "test_snapshot", "toy.csv"),
    (SOURCE, "BatchReadsOtherBytes", "test_batches", "listed as 'a'"),
    (SOURCE, "BatchIdsChange", "test_batches", "b0|[0-9a-f]{32}"),
    (MODEL, "RefusesItsOwnTypes", "test_allows_recorded_types", "numpy.dtype"),
    (MODEL, "AllowsAnyType", "test_allows_recorded_types", "os.system"),
    (MODEL, "SaysRegression", "test_task_matches", "regression"),
    ((MetricSuite, Stage.METRICS, ToyMetricsConf, {}), "ComputesOneMetric",
     "test_compute_returns_floats", "brier"),
], ids=["snapshot-of-other-bytes", "batch-reads-other-bytes", "batch-ids-change",
        "refuses-recorded-types", "allows-any-type", "wrong-task", "undeclared-metric"])
def test_stage_suites_catch(case, factory, check, match, tmp_path):
    with pytest.raises(AssertionError, match=match):
        run_check(case, factory, check, tmp_path)


def test_check_component_catches_metrics_used_outside_the_node():
    plugin = SpecPlugin(ComponentSpec(Stage.GATE, "toy", "specloop_gates:ThresholdGate",
                                      ToyGateConf))
    with pytest.raises(AssertionError, match=r"test_metric_declarations.*gate\.min\.f1"):
        check_component("gate/toy", plugin)
    check_component("gate/toy", plugin, {"min": {"f1": 0.5}})
