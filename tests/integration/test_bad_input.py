"""Bad input, end to end: every predictable mistake gives a compact, traceback-free message
that names the file, key or override, says what was expected and how to fix it, exits with
the documented code (2 user error, 1 stage or plugin failure) and loses nothing: the store
and the registry are the same before and after.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import specloop
from specloop import ComponentSpec, Stage, StageError
from specloop.testing import CliResult, ProjectBuilder

STAGES = ("data", "split", "train", "evaluate", "register", "deploy")


# -- helpers ---------------------------------------------------------------------------------
def write_csv(path: Path, rows: int = 200, seed: int = 0) -> Path:
    """A binary-classification CSV: two numeric features, one string feature, a label."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    color = rng.choice(["red", "green", "blue"], rows)
    label = ((x1 - x2 + (color == "red")) + rng.normal(0, 0.5, rows) > 0).astype(int)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x1,x2,color,label\n" + "".join(
        f"{a:.4f},{b:.4f},{c},{t}\n" for a, b, c, t in zip(x1, x2, color, label)))
    return path


def config(**extra) -> dict:
    return {"defaults": [{"data": "mine"}, {"model": "logistic"},
                         {"metrics": "classification"}, {"gate": "default"},
                         {"deploy": "bundle"}, "_self_"],
            "project": {"name": "t", "seed": 0}, **extra}


def make_project(root: Path, **extra) -> ProjectBuilder:
    p = ProjectBuilder(root)
    write_csv(root / "data" / "d.csv")
    p.write_conf("data/mine.yaml", {"kind": "csv", "path": "data/d.csv", "target": "label"})
    p.write_conf("config.yaml", config(**extra))
    return p


def artifacts(p: ProjectBuilder) -> set[str]:
    folder = p.root / ".specloop" / "store" / "artifacts"
    return set(os.listdir(folder)) if folder.is_dir() else set()


def manifests(p: ProjectBuilder) -> dict[str, dict]:
    """Every run's manifest by run id (ids of runs started in the same second do not sort
    by time, so tests pick runs by id, never by position)."""
    runs = p.root / ".specloop" / "store" / "runs"
    return {r: json.loads((runs / r / "manifest.json").read_text()) for r in os.listdir(runs)
            if (runs / r / "manifest.json").is_file()}


def only_new(p: ProjectBuilder, known: set[str]) -> dict:
    """The manifest of the one run started since ``known`` was taken."""
    [doc] = [d for r, d in manifests(p).items() if r not in known]
    return doc


def stage_actions(stdout: str) -> dict[str, str]:
    """``{stage: ran|cached}`` from the table ``specloop run`` prints."""
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in STAGES and parts[1] in ("ran", "cached"):
            out[parts[0]] = parts[1]
    return out


def assert_user_error(res: CliResult, *needles: str, code: int = 2) -> str:
    """Exit code, no traceback, the compact format (expected + fix) and each needle."""
    out = res.output
    assert res.exit_code == code, out
    assert "Traceback" not in out, out
    assert out.count("specloop: ") >= 1 and "\n  fix:" in out, out
    assert "\n  expected:" in out, out
    for needle in needles:
        assert needle in out, f"{needle!r} not in:\n{out}"
    return out


def assert_intact(p: ProjectBuilder, before: set[str]) -> None:
    """No artifact added or removed, v1 still the champion, and a plain run is all cached."""
    assert artifacts(p) == before
    listing = p.cli("registry", "list", "--json")
    assert listing.exit_code == 0, listing.output
    versions = json.loads(listing.stdout)
    assert [v["version"] for v in versions] == [1]
    assert "champion" in versions[0]["aliases"]
    again = p.cli("run")
    assert again.exit_code == 0, again.output
    assert stage_actions(again.stdout) == {s: "cached" for s in STAGES}, again.stdout


@pytest.fixture
def trained(tmp_path) -> tuple[ProjectBuilder, set[str]]:
    """A project after one successful run (v1 is the champion), and its artifacts."""
    p = make_project(tmp_path / "p")
    res = p.cli("run")
    assert res.exit_code == 0, res.output
    assert stage_actions(res.stdout) == {s: "ran" for s in STAGES}
    return p, artifacts(p)


def specloop_cmd(*args: str, cwd: Path, pythonpath: Path | None = None,
                 env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    if pythonpath is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(pythonpath), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "specloop.cli", *args], cwd=cwd,
                          capture_output=True, text=True, env=full_env, timeout=120)


def fake_distribution(folder: Path, dist: str, entry: str, module: str, code: str) -> Path:
    """A plugin module plus a ``*.dist-info`` declaring its entry point, on no real install."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(code))
    info = folder / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[specloop.plugins]\n{entry} = {module}\n")
    return folder


# -- 1. malformed YAML -----------------------------------------------------------------------
def test_malformed_yaml_in_a_group_file_names_file_and_line(trained):
    p, before = trained
    p.write_conf("model/broken.yaml", "kind: sklearn\nparams:\n  C: 1.0\n max_iter: 100\n")
    res = p.cli("run", "model=broken")
    out = assert_user_error(res, "malformed YAML", "broken.yaml, line 4", "fix the syntax")
    assert "where:" in out
    assert_intact(p, before)


def test_malformed_primary_config_names_config_yaml(trained):
    p, before = trained
    good = (p.root / "conf" / "config.yaml").read_text()
    p.write_conf("config.yaml", good + "project: {name: t\n")
    res = p.cli("validate")
    assert_user_error(res, "malformed YAML", "config.yaml, line ")
    p.write_conf("config.yaml", good)
    assert_intact(p, before)


# -- 2. unknown key --------------------------------------------------------------------------
def test_unknown_key_in_component_node_suggests_the_right_one(trained):
    p, before = trained
    res = p.cli("run", "model.paramz.C=2")
    out = assert_user_error(res, "unknown key 'model.paramz'", "command line: model.paramz.C=2",
                            "did you mean: params", "estimator, params, preprocessing")
    assert "rename it to 'params'" in out

    p.write_conf("model/typo.yaml", {"kind": "sklearn", "paramz": {"C": 2.0}})
    res = p.cli("validate", "model=typo")
    assert_user_error(res, "unknown key 'model.paramz'", "typo.yaml", "did you mean: params")
    assert_intact(p, before)


# -- 3. wrong type ---------------------------------------------------------------------------
def test_wrong_type_names_key_value_and_type(trained):
    p, before = trained
    res = p.cli("run", "data.split.test_size=abc")
    assert_user_error(res, "wrong type for data.split.test_size", "key:",
                      "command line: data.split.test_size=abc", "got:", "'abc'", "float")
    assert_intact(p, before)


# -- 4. out-of-range value, invalid estimator parameter --------------------------------------
def test_out_of_range_value(trained):
    p, before = trained
    res = p.cli("run", "data.split.test_size=1.5")
    assert_user_error(res, "invalid value for data.split.test_size",
                      "command line: data.split.test_size=1.5", "1.5",
                      "a float in the range (0, 1)", "set data.split.test_size to")
    assert_intact(p, before)


def test_invalid_estimator_parameter_names_model_params_key(trained):
    p, before = trained
    res = p.cli("run", "model.params.C=-1")
    out = assert_user_error(res, "invalid value for model.params.C", "key:      model.params.C",
                            "-1", "set model.params.C to")
    assert "range" in out  # scikit-learn's own constraint, e.g. a float in (0.0, inf]
    assert "command line: model.params.C=-1" in out  # where it was set
    assert_intact(p, before)


# -- 5. unknown kind -------------------------------------------------------------------------
def test_unknown_kind_suggests_and_lists_kinds(trained):
    p, before = trained
    res = p.cli("run", "model.kind=skleran")
    out = assert_user_error(res, "unknown model kind 'skleran'", "key:          model.kind",
                            "command line: model.kind=skleran", "available:    sklearn",
                            "did you mean: sklearn", "fix:          set model.kind to 'sklearn'")
    assert "model.kind.kind" not in out
    assert_intact(p, before)


# -- 6. unknown top-level key, _target_ ------------------------------------------------------
def test_unknown_top_level_key_in_yaml(trained):
    p, before = trained
    p.write_conf("config.yaml", config(projetc={"description": "x"}))
    res = p.cli("run")
    assert_user_error(res, "unknown top-level key 'projetc'", "config.yaml",
                      "did you mean: project", "rename it to 'project'")
    p.write_conf("config.yaml", config())
    assert_intact(p, before)


def test_unknown_top_level_key_as_override(trained):
    p, before = trained
    res = p.cli("run", "projetc=1")
    out = assert_user_error(res, "unknown top-level key 'projetc'", "command line: projetc=1",
                            "did you mean: project")
    assert "+projetc" not in out  # adding it would only fail validation
    assert_intact(p, before)


def test_target_in_yaml_gets_its_own_message(trained):
    p, before = trained
    p.write_conf("model/hydra_style.yaml", {
        "_target_": "sklearn.linear_model.LogisticRegression", "C": 1.0})
    res = p.cli("run", "model=hydra_style")
    out = assert_user_error(res, "uses '_target_'", "hydra_style.yaml", "kind:",
                            "model.estimator")
    assert "unknown key" not in out
    assert_intact(p, before)


# -- 7. missing data file --------------------------------------------------------------------
def test_missing_data_file(trained):
    p, before = trained
    res = p.cli("run", "data.path=data/nope.csv")
    assert_user_error(res, "no data file matches 'data/nope.csv'", "key:      data.path",
                      "command line: data.path=data/nope.csv", "an existing csv file",
                      "fix the path")
    p.write_conf("data/gone.yaml", {"kind": "csv", "path": "data/gone.csv", "target": "label"})
    res = p.cli("run", "data=gone")
    assert_user_error(res, "no data file matches 'data/gone.csv'", "gone.yaml")
    assert_intact(p, before)


# -- 8. target not in the data ---------------------------------------------------------------
def test_target_column_not_in_data(trained):
    p, before = trained
    res = p.cli("run", "data.target=is_fraud")
    assert_user_error(res, "target column 'is_fraud' is not in the data", "data.target",
                      "command line: data.target=is_fraud", "x1, x2, color, label",
                      "set data.target to the label column")
    assert_intact(p, before)


# -- 9. empty data set -----------------------------------------------------------------------
@pytest.mark.parametrize("content", ["x1,x2,color,label\n", ""], ids=["header-only", "0-bytes"])
def test_empty_data_set(trained, content):
    p, before = trained
    p.write_file("data/empty.csv", content)
    res = p.cli("run", "data.path=data/empty.csv")
    assert_user_error(res, "the data set is empty", "data.path=data/empty.csv",
                      "at least one row")
    assert_intact(p, before)


# -- 10. bad overrides -----------------------------------------------------------------------
def test_override_grammar_error(trained):
    p, before = trained
    res = p.cli("run", "model.params.C=[")
    assert_user_error(res, "bad override", "command line: model.params.C=[",
                      "Hydra's override grammar")
    assert_intact(p, before)


def test_unknown_group_option_lists_options(trained):
    p, before = trained
    res = p.cli("run", "model=nope")
    out = assert_user_error(res, "unknown option 'nope' for config group 'model'",
                            "command line: model=nope", "available:")
    available = next(line for line in out.splitlines() if "available:" in line)
    for option in ("logistic", "random_forest", "hist_gradient_boosting"):
        assert option in available
    assert "conf/model/nope.yaml" in out
    assert_intact(p, before)


def test_override_of_non_existent_key(trained):
    p, before = trained
    res = p.cli("run", "foo.bar=1")
    assert_user_error(res, "unknown top-level key 'foo'", "command line: foo.bar=1", "remove it")
    assert_intact(p, before)


# -- 11. estimator allowlist -----------------------------------------------------------------
def test_estimator_outside_allowlist_is_refused(trained):
    p, before = trained
    res = p.cli("run", "model.estimator=os.system")
    assert_user_error(res, "estimator 'os.system' is outside the allowlist", "model.estimator",
                      "command line: model.estimator=os.system", "'sklearn.'",
                      "allow_python_targets: true")
    assert_intact(p, before)


def test_allow_python_targets_lets_an_import_be_tried(trained, monkeypatch, tmp_path):
    p, before = trained
    p.write_conf("config.yaml", config(allow_python_targets=True))
    res = p.cli("run", "model.estimator=no_such_module_xyz.Model")
    assert_user_error(res, "cannot import estimator 'no_such_module_xyz.Model'",
                      "model.estimator", "an importable class")
    res = p.cli("run", "model.estimator=os.system")  # imports, but is no estimator
    assert res.exit_code in (1, 2) and "Traceback" not in res.output, res.output
    assert "system" in res.output
    assert artifacts(p) == before

    # a real class outside scikit-learn works once allowed, and only then
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "my_estimators.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n\n\n"
        "class MyLogit(LogisticRegression):\n    pass\n")
    monkeypatch.syspath_prepend(str(mods))
    ok = p.cli("run", "model.estimator=my_estimators.MyLogit")
    assert ok.exit_code == 0, ok.output
    assert stage_actions(ok.stdout)["train"] == "ran"
    assert stage_actions(ok.stdout)["data"] == "cached"
    p.write_conf("config.yaml", config())
    refused = p.cli("run", "model.estimator=my_estimators.MyLogit")
    assert_user_error(refused, "outside the allowlist")


# -- 12. a plugin that raises on import ------------------------------------------------------
@pytest.mark.slow
def test_broken_plugin_warns_and_does_not_break_the_host(tmp_path):
    p = make_project(tmp_path / "p")
    ext = fake_distribution(tmp_path / "ext", "mybroken", "broken", "broken_plugin",
                            'raise ImportError("this plugin is broken on purpose")\n')

    listed = specloop_cmd("plugins", cwd=p.root, pythonpath=ext)
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stdout + listed.stderr
    assert "warning: plugin 'broken' (mybroken 0.1) failed to import" in listed.stderr
    assert "SPECLOOP_DISABLE_PLUGINS=broken" in listed.stderr
    assert "broken  (mybroken 0.1)  failed to import: ImportError" in listed.stdout
    assert "model/sklearn" in listed.stdout  # the healthy plugins still load

    run = specloop_cmd("run", cwd=p.root, pythonpath=ext)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert "'broken' (mybroken 0.1)" in run.stderr
    assert stage_actions(run.stdout) == {s: "ran" for s in STAGES}

    unknown = specloop_cmd("validate", "model.kind=gradient_magic", cwd=p.root, pythonpath=ext)
    out = unknown.stdout + unknown.stderr
    assert unknown.returncode == 2, out
    assert "Traceback" not in out
    assert "unknown model kind 'gradient_magic'" in out
    assert "plugin 'broken' (mybroken 0.1) failed to import and may provide it" in out

    disabled = specloop_cmd("plugins", cwd=p.root, pythonpath=ext,
                            env={"SPECLOOP_DISABLE_PLUGINS": "broken"})
    assert disabled.returncode == 0 and "broken" not in disabled.stderr


# -- 13. a component that raises mid-stage ---------------------------------------------------
from dataclasses import dataclass  # noqa: E402


@dataclass
class BoomConf:
    """The exploding model's (empty) configuration."""

    message: str = "the estimator exploded"


class BoomPlugin:
    """Registers ``model/boom`` in-process."""

    @specloop.hookimpl
    def specloop_register_components(self):
        return [ComponentSpec(Stage.MODEL, "boom", "boom_component:Boom", BoomConf)]


BOOM_MODULE = '''
class Boom:
    format = "pickle"

    def __init__(self, config):
        self.config = config

    def fit(self, X, y, **kw):
        raise RuntimeError(self.config.message)

    def dumps(self, fitted):
        raise AssertionError("never reached")

    def loads(self, data):
        raise AssertionError("never reached")
'''


def test_component_raising_mid_stage_is_a_stage_error(trained, tmp_path, monkeypatch):
    p, before = trained
    mods = tmp_path / "boommods"
    mods.mkdir()
    (mods / "boom_component.py").write_text(BOOM_MODULE)
    monkeypatch.syspath_prepend(str(mods))
    p.write_conf("model/boom.yaml", {"kind": "boom"})
    p.plugins.append(BoomPlugin())

    known = set(manifests(p))
    with pytest.raises(StageError) as info:
        p.run(["model=boom"])
    err = info.value
    assert err.stage == "train" and err.component == "model/boom"
    assert err.exit_code == 1
    assert isinstance(err.__cause__, RuntimeError)
    text = err.render()
    assert "model/boom failed in fit()" in text and "stage:        train" in text
    assert "RuntimeError: the estimator exploded" in text and "Traceback" not in text

    failed = only_new(p, known)
    assert failed["status"] == "failed"
    assert failed["stages"]["train"]["status"] == "failed"
    assert failed["stages"]["data"]["status"] == "cached"
    assert "RuntimeError" in failed["error"] or "StageError" in failed["error"]
    train_key = failed["stages"]["train"]["key"]
    assert train_key not in artifacts(p)
    assert not [a for a in artifacts(p) if a.startswith(".tmp-")]
    assert artifacts(p) == before

    # the CLI renders it with exit code 1, naming stage, component and distribution
    import specloop._context as session

    real = session.make_plugin_manager
    monkeypatch.setattr(session, "make_plugin_manager",
                        lambda **kw: real(**{**kw, "plugins": [*kw.get("plugins", ()),
                                                                BoomPlugin()]}))
    res = p.cli("run", "model=boom")
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    for needle in ("model/boom failed in fit()", "stage:", "train", "component:", "model/boom",
                   "distribution:", "(registered in-process)",
                   "RuntimeError: the estimator exploded", "SPECLOOP_FULL_ERROR"):
        assert needle in res.output, res.output
    monkeypatch.setattr(session, "make_plugin_manager", real)
    assert_intact(p, before)


# -- tampering -------------------------------------------------------------------------------
def test_tampered_artifact_is_refused_with_both_hashes(trained):
    p, before = trained
    [first] = manifests(p).values()
    train_key = first["stages"]["train"]["key"]
    folder = p.root / ".specloop" / "store" / "artifacts" / train_key
    ctx = p.context()
    recorded = ctx.store.meta(train_key)["files"]["model.bin"]["sha256"]  # specloop's record
    ctx.close()
    blob = bytearray((folder / "model.bin").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (folder / "model.bin").write_bytes(bytes(blob))
    actual = hashlib.sha256(bytes(blob)).hexdigest()

    known = set(manifests(p))
    res = p.cli("run", "metrics.threshold=0.3")  # evaluate re-runs and must load the model
    out = res.output
    assert res.exit_code == 1, out
    assert "Traceback" not in out
    assert "does not match the SHA-256 specloop recorded" in out
    assert str(folder / "model.bin") in out or f"{train_key}/model.bin" in out
    assert recorded in out and actual in out
    assert only_new(p, known)["status"] == "failed"
    listing = json.loads(p.cli("registry", "list", "--json").stdout)
    assert [v["version"] for v in listing] == [1] and "champion" in listing[0]["aliases"]


# -- 14. an interrupted run ------------------------------------------------------------------
SLOW_PLUGIN = '''
import os
import time

from specloop import ComponentSpec, Stage, hookimpl
from specloop_sklearn import SklearnModelConf
from specloop_sklearn._model import SklearnModel


class SlowModel(SklearnModel):
    def fit(self, X, y, **kw):
        time.sleep(float(os.environ.get("SLOW_FIT_SECONDS", "0")))
        return super().fit(X, y, **kw)


@hookimpl
def specloop_register_components():
    return [ComponentSpec(Stage.MODEL, "slow", "slow_plugin:SlowModel", SklearnModelConf)]
'''


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_run_leaves_store_and_registry_consistent(tmp_path):
    p = make_project(tmp_path / "p")
    p.write_conf("model/slow.yaml", {"kind": "slow",
                                     "estimator": "sklearn.linear_model.LogisticRegression",
                                     "params": {"C": 1.0, "max_iter": 1000}})
    ext = fake_distribution(tmp_path / "ext", "myslow", "slow", "slow_plugin", SLOW_PLUGIN)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SLOW_FIT_SECONDS": "60",
           "PYTHONPATH": os.pathsep.join([str(ext), *filter(None, [os.environ.get("PYTHONPATH")])])}
    runs = p.root / ".specloop" / "store" / "runs"
    with open(tmp_path / "out.txt", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "specloop.cli", "run", "model=slow"],
                                cwd=p.root, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, (tmp_path / "out.txt").read_text()
                assert time.monotonic() < deadline, "the run never reached the train stage"
                docs = [json.loads(m.read_text()) for m in runs.glob("*/manifest.json")] \
                    if runs.is_dir() else []
                st = docs[0]["stages"] if docs else {}
                if st.get("train", {}).get("status") == "pending" and \
                        st["data"]["status"] == "ran" and st["split"]["status"] == "ran":
                    break
                time.sleep(0.05)
            time.sleep(0.3)
            proc.send_signal(signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    [killed] = manifests(p).values()
    assert killed["status"] == "running"
    train_key = killed["stages"]["train"]["key"]
    art = p.root / ".specloop" / "store" / "artifacts"

    def recorded() -> set:
        db = sqlite3.connect(p.root / ".specloop" / "registry.db")
        try:
            return {r[0] for r in db.execute("select key from artifacts")}
        finally:
            db.close()

    on_disk = {n for n in os.listdir(art) if not n.startswith(".")}
    assert on_disk == recorded() and train_key not in on_disk  # nothing half written
    listing = p.cli("registry", "list", "--json")
    assert listing.exit_code == 0 and json.loads(listing.stdout) == []
    assert "interrupted" in p.cli("runs", "list").stdout  # its process is gone

    # what a crash at a worse moment could leave: a temp folder, and files under the key
    # that specloop never recorded
    (art / f".tmp-{train_key}-999999-deadbeef").mkdir()
    (art / f".tmp-{train_key}-999999-deadbeef" / "model.bin").write_bytes(b"partial")
    (art / train_key).mkdir()
    (art / train_key / "model.bin").write_bytes(b"partial")

    rerun = specloop_cmd("run", "model=slow", cwd=p.root, pythonpath=ext,
                         env={"SLOW_FIT_SECONDS": "0"})
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    actions = stage_actions(rerun.stdout)
    assert actions["data"] == "cached" and actions["split"] == "cached"
    assert actions["train"] == "ran" and actions["evaluate"] == "ran"
    assert {n for n in os.listdir(art) if not n.startswith(".")} == recorded()
    assert not [n for n in os.listdir(art) if n.startswith(".tmp-")]  # the leftover is gone
    assert (art / train_key / "model.bin").read_bytes() != b"partial"
    docs = manifests(p)
    assert docs[killed["run_id"]]["status"] == "running"
    assert [d["status"] for d in docs.values() if d["run_id"] != killed["run_id"]] == ["succeeded"]
    versions = json.loads(p.cli("registry", "list", "--json").stdout)
    assert [v["version"] for v in versions] == [1]


def test_registry_check_reports_a_registry_file_it_cannot_open(project):
    p = project
    p.cli("validate")
    db = p.root / ".specloop" / "registry.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(b"not a database at all")
    res = p.cli("registry", "check", "--json")
    assert res.exit_code == 1, res.output
    rows = json.loads(res.stdout)
    assert rows[0]["status"] == "failed" and "not a readable SQLite database" in rows[0]["detail"]
    assert "Traceback" not in res.output
    assert db.read_bytes() == b"not a database at all"  # nothing replaced it


def test_a_registry_left_inside_the_store_by_specloop_0_1_is_named(project):
    p = project
    legacy = p.root / ".specloop" / "store" / "registry.db"
    legacy.parent.mkdir(parents=True)
    sqlite3.connect(legacy).execute("CREATE TABLE versions (x)").connection.commit()
    res = p.cli("plan")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "lies inside the artifact store" in res.stderr and "mv " in res.stderr
    assert not (p.root / ".specloop" / "registry.db").exists()  # nothing started beside it
