"""Every built-in component passes the conformance kit, used exactly as a third party would."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import specloop_bundle
import specloop_drift
import specloop_gates
import specloop_retrain
import specloop_serve
import specloop_sklearn
import specloop_tabular

from specloop import ComponentSpec, Decision, Interval, RetrainConf, Stage, hookimpl, param
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
