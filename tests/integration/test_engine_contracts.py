"""The engine's contract with plugins, end to end through the real command line and real
entry points (a plugin distribution on the path, as an installed one would be):

* one error boundary: a plugin's exception, wherever the engine calls it (data source,
  batches, model fit/dumps/loads, constructor, schema check, retraining policy, deploy
  verify, lifecycle hook), is exit 1 naming the component and its distribution, never a
  traceback and never a silent fallback;
* self-describing model artifacts: a champion saved by one model component is judged and
  replaced by a challenger of another, in both directions, and a champion whose component
  is not installed is a clear error with the install hint;
* cross-stage validation: mistakes between nodes are exit 2 at ``specloop validate``;
* values survive composition exactly (``class_weight: {0: 1, 1: 5}``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from specloop.testing import ProjectBuilder

PLUGIN = '''
import json
import os

import numpy as np
import pandas as pd
from dataclasses import dataclass

from specloop import (ComponentSpec, ConfigError, Decision, Stage, StageError, hookimpl,
                      param)


def fault(where):
    if os.environ.get("FAULT") == where:
        raise RuntimeError(f"injected fault in {where}")


class Linear:
    """A least-squares scorer on the numeric features: a model nobody else can load."""

    def __init__(self, columns, weights, classes):
        self.columns, self.weights, self.classes_ = columns, weights, np.asarray(classes)

    def _score(self, X):
        A = np.c_[X[self.columns].to_numpy(float), np.ones(len(X))]
        return 1 / (1 + np.exp(-(A @ np.asarray(self.weights))))

    def predict_proba(self, X):
        p = self._score(X)
        return np.c_[1 - p, p]

    def predict(self, X):
        return self.classes_[(self._score(X) >= 0.5).astype(int)]


@dataclass
class LinearConf:
    ridge: float = param(0.0, help="unused")

    def validate_spec(self, ctx):
        fault("validate_spec")


class LinearModel:
    format = "json"

    def __init__(self, config):
        fault("init")
        self.config = config

    def task(self):
        return "classification"

    def fit(self, X, y, *, categorical, task, seed):
        fault("fit")
        cols = [c for c in X.columns if c not in categorical]
        A = np.c_[X[cols].to_numpy(float), np.ones(len(X))]
        w, *_ = np.linalg.lstsq(A, np.asarray(y, float) * 4 - 2, rcond=None)
        return Linear(cols, w.tolist(), sorted(set(np.asarray(y).tolist())))

    def dumps(self, fitted):
        fault("dumps")
        return json.dumps({"columns": fitted.columns, "weights": fitted.weights,
                           "classes": fitted.classes_.tolist()}).encode()

    def loads(self, data, *, format, trusted):
        fault("loads")
        doc = json.loads(data)
        return Linear(doc["columns"], doc["weights"], doc["classes"])


@dataclass
class FaultyCsvConf:
    path: str = param("???")
    target: str = param("label")


class FaultyCsv:
    def __init__(self, config):
        self.config = config

    def fingerprint(self, ctx):
        fault("fingerprint")
        import hashlib
        data = (ctx.project_dir / self.config.path).read_bytes()
        return {self.config.path: hashlib.md5(data).hexdigest()}

    def load(self, ctx):
        fault("load")
        return pd.read_csv(ctx.project_dir / self.config.path)

    def batches(self, ctx):
        fault("batches")
        from specloop import Batch
        files = sorted((ctx.project_dir / "data" / "new").glob("*.csv"))

        def read(p):
            fault("read")
            import hashlib
            data = p.read_bytes()
            import io
            return pd.read_csv(io.BytesIO(data)), hashlib.md5(data).hexdigest()

        import hashlib
        return [Batch(p.stem, hashlib.md5(p.read_bytes()).hexdigest(), lambda p=p: read(p))
                for p in files]


@dataclass
class FaultyPolicyConf:
    window_batches: int | None = None
    include_base: bool = True


class FaultyPolicy:
    def __init__(self, config):
        self.config = config

    def decide(self, obs):
        fault("decide")
        return Decision(True, "always")


@dataclass
class FaultyTargetConf:
    path: str = param("deploy/faulty.json")


class FaultyTarget:
    def __init__(self, config):
        self.config = config

    def deploy(self, bundle, ctx):
        fault("deploy")
        path = ctx.project_dir / self.config.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"version": bundle["version"]["version"]}))
        return {"location": str(path), "version": bundle["version"]["version"]}

    def verify(self, result, ctx):
        fault("verify")
        return os.path.exists(result["location"])


@hookimpl
def specloop_register_components():
    return [
        ComponentSpec(Stage.MODEL, "linear", "altplugin:LinearModel", LinearConf),
        ComponentSpec(Stage.DATA, "faulty_csv", "altplugin:FaultyCsv", FaultyCsvConf),
        ComponentSpec(Stage.RETRAIN, "faulty", "altplugin:FaultyPolicy", FaultyPolicyConf),
        ComponentSpec(Stage.DEPLOY, "faulty", "altplugin:FaultyTarget", FaultyTargetConf),
    ]


@hookimpl
def specloop_after_stage(stage):
    fault(f"hook:{stage}")
'''


def _csv(path: Path, rows: int = 300, seed: int = 0, shift: float = 0.0) -> Path:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(shift, 1, rows), rng.normal(0, 1, rows)
    color = rng.choice(["red", "green", "blue"], rows)
    y = ((2 * x1 - x2 + (color == "red") + rng.normal(0, 1, rows)) > 0.5).astype(int)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x1,x2,color,label\n" + "".join(
        f"{a:.4f},{b:.4f},{c},{t}\n" for a, b, c, t in zip(x1, x2, color, y)))
    return path


@pytest.fixture
def alt(tmp_path):
    """A project and a plugin distribution ('altplugin 0.1') on the path of its commands."""
    ext = tmp_path / "ext"
    ext.mkdir()
    (ext / "altplugin.py").write_text(textwrap.dedent(PLUGIN))
    info = ext / "altplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: altplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[specloop.plugins]\nalt = altplugin\n")
    p = ProjectBuilder(tmp_path / "proj")
    _csv(p.root / "data" / "train.csv")
    p.write_conf("data/small.yaml", {"kind": "csv", "path": "data/train.csv", "target": "label"})
    p.write_conf("model/linear.yaml", {"kind": "linear"})
    p.write_conf("deploy/faulty.yaml", {"kind": "faulty"})
    p.write_conf("retrain/faulty.yaml", {"kind": "faulty"})
    p.write_conf("config.yaml", {
        "defaults": [{"data": "small"}, {"model": "logistic"}, {"metrics": "classification"},
                     {"gate": "default"}, {"deploy": "bundle"}, {"retrain": "never"},
                     "_self_"],
        "project": {"name": "alt", "seed": 0},
        "loop": {"incoming": {"path": "data/new/*.csv"}, "settle_seconds": 0}})

    def cli(*args: str, fault: str | None = None, with_plugin: bool = True):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        env.pop("FAULT", None)
        env.pop("SPECLOOP_FULL_ERROR", None)
        if fault:
            env["FAULT"] = fault
        if with_plugin:
            env["PYTHONPATH"] = os.pathsep.join([str(ext), env.get("PYTHONPATH", "")])
        return subprocess.run([sys.executable, "-m", "specloop.cli", *args], cwd=p.root,
                              env=env, capture_output=True, text=True, timeout=300)

    p.cli_with = cli
    return p


def _plugin_failure(res, *needles: str) -> None:
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "Traceback" not in out, out
    for needle in ("altplugin 0.1", "injected fault", *needles):
        assert needle in res.stderr, out


# -- self-describing model artifacts -----------------------------------------------------------
@pytest.mark.slow
def test_a_plugin_model_replaces_an_sklearn_champion_and_the_reverse(alt):
    cli = alt.cli_with
    assert cli("run").returncode == 0  # v1: scikit-learn (skops)
    # v2 from the plugin, judged against the sklearn champion re-scored on other test rows
    res = cli("run", "model=linear", "data.split.test_size=0.3", "gate.beat_champion_by=null")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "alias champion: v1 → v2" in res.stdout
    hist = json.loads(cli("registry", "show", "2", "--json").stdout)
    assert hist["model"]["format"] == "json" and hist["model"]["component"]["kind"] == "linear"
    # the loop scores with the plugin's champion, loaded by the plugin's own component
    _csv(alt.root / "data" / "new" / "2024-01.csv", rows=120, seed=3)
    res = cli("loop", "retrain=never")
    assert res.returncode == 0 and "processed 1 batch(es)" in res.stdout, res.stderr
    # and back: an sklearn challenger judged against the plugin's champion
    res = cli("run", "model.params.C=0.5", "data.split.test_size=0.25",
              "gate.beat_champion_by=null")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "alias champion: v2 → v3" in res.stdout
    assert json.loads(cli("registry", "show", "3", "--json").stdout)["model"]["format"] == "skops"
    # a champion whose component is not installed: the install hint, not a traceback
    assert cli("registry", "promote", "2", "--force", "--reason", "back to linear",
               "--no-deploy").returncode == 0
    _csv(alt.root / "data" / "new" / "2024-02.csv", rows=120, seed=4)
    res = cli("loop", "retrain=never", with_plugin=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "saved by component model/linear (altplugin 0.1), which is not installed" in \
        res.stderr and "pip install 'altplugin==0.1'" in res.stderr
    assert "Traceback" not in res.stderr


# -- one error boundary --------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("fault,args,needles", [
    ("fit", ("run", "model=linear"), ("model/linear failed in fit()", "stage:", "train")),
    ("dumps", ("run", "model=linear"), ("model/linear failed in dumps()",)),
    ("init", ("run", "model=linear"), ("model/linear failed in its constructor",)),
    ("validate_spec", ("validate", "model=linear"), ("schema of component model/linear",)),
    ("fingerprint", ("plan", "data.kind=faulty_csv"),
     ("data/faulty_csv failed in fingerprint()",)),
    ("hook:train", ("run",), ("plugin 'alt' failed in the hook specloop_after_stage",)),
])
def test_a_plugin_exception_is_exit_1_naming_component_and_distribution(alt, fault, args,
                                                                       needles):
    _plugin_failure(alt.cli_with(*args, fault=fault), *needles)


@pytest.mark.slow
def test_loop_paths_and_verify_go_through_the_boundary(alt):
    cli = alt.cli_with
    assert cli("run", "model=linear", "deploy=faulty").returncode == 0
    _csv(alt.root / "data" / "new" / "2024-01.csv", rows=120, seed=3)
    _plugin_failure(cli("loop", "deploy=faulty", fault="loads"),
                    "model/linear failed in loads()")
    _plugin_failure(cli("loop", "deploy=faulty", "retrain=faulty", fault="decide"),
                    "retrain/faulty failed in decide()")
    _plugin_failure(cli("loop", "deploy=faulty", "+loop.incoming.kind=faulty_csv",
                        fault="batches"), "data/faulty_csv failed in batches()")
    _plugin_failure(cli("loop", "deploy=faulty", "+loop.incoming.kind=faulty_csv",
                        fault="read"), "data/faulty_csv failed in reading a batch")
    # verify raising is an error, never "deployed again"
    before = (alt.root / "deploy" / "faulty.json").stat().st_mtime_ns
    _plugin_failure(cli("plan", "model=linear", "deploy=faulty", fault="verify"),
                    "deploy/faulty failed in verify()")
    assert (alt.root / "deploy" / "faulty.json").stat().st_mtime_ns == before
    res = cli("loop", "deploy=faulty")  # nothing was lost: the batch is processed now
    assert res.returncode == 0 and "processed 1 batch(es)" in res.stdout, res.stderr


# -- cross-stage validation ------------------------------------------------------------------------
def _user_error(res, *needles: str) -> str:
    out = res.output
    assert res.exit_code == 2, out
    assert "Traceback" not in out
    for needle in needles:
        assert needle in res.stderr, out
    return res.stderr


def test_a_gate_on_a_metric_never_computed_is_refused_at_validate(project):
    _user_error(project.cli("validate", "+gate.min.rocauc=0.9"),
                "gate.min.rocauc reads the metric 'rocauc'", "did you mean", "roc_auc",
                "one of the computed metrics")


def test_a_classifier_on_a_continuous_target_is_refused_at_validate(project, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    (project.root / "data" / "price.csv").write_text("x,price\n" + "".join(
        f"{a:.4f},{100 + 30 * a + rng.normal():.3f}\n" for a in x))
    project.write_conf("data/price.yaml", {"kind": "csv", "path": "data/price.csv",
                                           "target": "price"})
    err = _user_error(project.cli("validate", "data=price", "metrics=regression"),
                      "is a classification model", "'price' is a regression target")
    assert "LogisticRegression" in err
    _user_error(project.cli("validate", "data=price", "metrics=regression", "model=random_forest"),
                "RandomForestClassifier")
    ok = project.cli("validate", "data=price", "metrics=regression",
                     "model=random_forest_regressor", "~gate")
    assert ok.exit_code == 0, ok.output
    # and the reverse: a regressor on classes
    _user_error(project.cli("validate", "model=hist_gradient_boosting_regressor"),
                "is a regression model", "'label' is a classification target")


@pytest.mark.parametrize("seed", ["4294967296", "-1"])
def test_a_seed_out_of_range_is_refused_at_validate(project, seed):
    _user_error(project.cli("validate", f"project.seed={seed}"), "project.seed",
                "an int in the range [0, 4294967295]")


def test_integer_dict_keys_survive_composition(project):
    """``class_weight: {0: 1, 1: 5}`` reaches the estimator with int keys, every time."""
    project.write_conf("model/weighted.yaml", "kind: sklearn\n"
                       "estimator: sklearn.linear_model.LogisticRegression\n"
                       "params:\n  class_weight: {0: 1, 1: 5}\n")
    for _ in range(2):  # validate, then run: the same composition both times
        assert project.cli("validate", "model=weighted").exit_code == 0
    res = project.cli("run", "model=weighted")
    assert res.exit_code == 0, res.output
    ctx = project.context(["model=weighted"])
    try:
        model = ctx.component("model").build()
        assert model.class_weight == {0: 1, 1: 5}
        assert all(type(k) is int for k in model.class_weight)
    finally:
        ctx.close()


def test_a_partly_labelled_batch_is_measured_and_retrained_on_its_labelled_rows(alt):
    cli = alt.cli_with
    assert cli("run").returncode == 0
    path = _csv(alt.root / "data" / "new" / "2024-01.csv", rows=200, seed=5)
    lines = path.read_text().splitlines()
    # every third row's label is not known yet
    path.write_text("\n".join([lines[0], *(ln.rsplit(",", 1)[0] + "," if i % 3 == 0 else ln
                                           for i, ln in enumerate(lines[1:]))]) + "\n")
    res = cli("loop", "retrain=every", "retrain.batches=1")
    assert res.returncode == 0, res.stdout + res.stderr
    from specloop._registry import Registry

    batch = Registry(alt.root / ".specloop" / "registry.db").processed_batches("alt")["2024-01"]
    assert batch["rows"] == 200 and batch["labelled"] == 133
    assert batch["value"] is not None and batch["retrain"] is True, batch
    assert batch["new_version"] == 2 and batch["outcome"] in ("promoted", "kept champion")
    assert batch["challenger_value"] is not None, batch
