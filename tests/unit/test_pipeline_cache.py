"""The stage cache, plan reasons and run manifests, through the public kit."""

from __future__ import annotations

import json

from conftest import small_csv


def test_first_run_runs_every_stage_and_registers_a_champion(project):
    result = project.run()
    result.assert_stages(ran=["data", "split", "train", "evaluate", "register", "deploy"])
    m = result.manifest
    assert m["status"] == "succeeded"
    assert m["model_version"] == 1
    assert m["alias_changes"] == [{"alias": "champion", "from": None, "to": 1}]
    assert 0.5 < m["metrics"]["roc_auc"] <= 1.0
    bundle = project.root / "deploy" / "champion"
    assert json.loads((bundle / "metadata.json").read_text())["version"] == 1
    assert {f["name"] for f in json.loads((bundle / "signature.json").read_text())["inputs"]} \
        == {"x1", "x2", "color"}


def test_unchanged_rerun_is_all_cached(project):
    project.run()
    again = project.run()
    again.assert_stages(cached=["data", "split", "train", "evaluate", "register", "deploy"])
    assert again.manifest["model_version"] == 1


def test_model_change_reuses_data_and_split(project):
    project.run()
    result = project.run(["model.params.C=0.5"])
    result.assert_stages(cached=["data", "split"], ran=["train", "evaluate", "register"])
    assert result.manifest["model_version"] == 2


def test_plan_names_the_changed_key_and_runs_nothing(project):
    project.run()
    res = project.cli("plan", "model.params.C=0.25")
    assert res.exit_code == 0, res.output
    lines = {line.split()[0]: line for line in res.stdout.splitlines() if line.strip()}
    assert "cached" in lines["data"] and "cached" in lines["split"]
    assert "model.params.C" in lines["train"] and "0.25" in lines["train"]
    assert "input 'train' changed" in lines["evaluate"]
    # nothing executed: still a single run and a single version
    assert len(list((project.root / ".specloop" / "store" / "runs").iterdir())) == 1


def test_plan_names_a_changed_data_file(project):
    project.run()
    small_csv(project.root / "data" / "train.csv", seed=1)
    res = project.cli("plan", "--json")
    rows = {r["stage"]: r for r in json.loads(res.stdout)}
    assert rows["data"]["action"] == "run"
    assert "data/train.csv changed (md5" in rows["data"]["reason"]


def test_manifest_records_what_a_run_needs_to_be_replayed(project):
    doc = project.run(["model.params.C=2"]).manifest
    for key in ("run_id", "started", "ended", "config", "overrides", "git", "environment",
                "data_fingerprint", "stages", "metrics", "model_version", "alias_changes"):
        assert key in doc, key
    assert doc["overrides"] == ["model.params.C=2"]
    assert doc["environment"]["packages"]["scikit-learn"]
    assert list(doc["data_fingerprint"]) == ["data/train.csv"]
    st = doc["stages"]["train"]
    assert st["component"] == "model/sklearn" and st["distribution"].startswith("specloop ")
    assert st["status"] == "ran" and st["seconds"] >= 0 and len(st["key"]) == 32


def test_lifecycle_hooks_see_every_stage(project):
    result = project.run()
    for stage in ("data", "split", "train", "evaluate", "register", "deploy"):
        result.hooks.assert_called("specloop_after_stage", stage=stage, cached=False)
    (after_run,) = result.hooks.named("specloop_after_run")
    assert after_run["manifest"]["status"] == "succeeded"


def test_runs_list_and_show(project):
    first = project.run().manifest
    res = project.cli("runs", "list", "--json")
    assert [r["run"] for r in json.loads(res.stdout)] == [first["run_id"]]
    shown = project.cli("runs", "show", first["run_id"])
    assert shown.exit_code == 0 and "model version: 1" in shown.stdout
    missing = project.cli("runs", "show", "nope")
    assert missing.exit_code == 2 and "no run 'nope'" in missing.stderr


def test_gate_failure_registers_without_promoting(project):
    result = project.run(["+gate.min.roc_auc=0.9999"])
    assert result.manifest["gate"]["passed"] is False
    assert result.manifest["alias_changes"] == []
    assert not (project.root / "deploy" / "champion").exists()


def test_time_split_and_regression_on_a_bundled_dataset(project):
    result = project.run(["data=diabetes", "model=ridge", "metrics=regression"])
    assert result.manifest["status"] == "succeeded"
    assert "r2" in result.manifest["metrics"]
    timed = project.run(["data.split.method=time", "data.time_column=x2"])
    assert timed.manifest["status"] == "succeeded"


def test_champion_is_never_scored_on_rows_it_trained_on(project):
    """Another seed reshuffles the split, putting some of the champion's training rows into
    the new test set; the gate compares against the champion on the other rows only."""
    from specloop._tabular import from_parquet

    first = project.run().manifest
    res = project.cli("run", "project.seed=1", "model.params.C=0.3")
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.stdout.splitlines() if "re-scored on the" in ln)
    store = project.root / ".specloop" / "store" / "artifacts"
    old_train = from_parquet((store / first["stages"]["split"]["key"] / "train.parquet")
                             .read_bytes())
    runs = sorted((project.root / ".specloop" / "store" / "runs").iterdir())
    second = json.loads((runs[-1] / "manifest.json").read_text())
    new_test = from_parquet((store / second["stages"]["split"]["key"] / "test.parquet")
                            .read_bytes())
    seen = set(map(tuple, old_train.astype(str).to_numpy()))
    unseen = sum(tuple(r) not in seen for r in new_test.astype(str).to_numpy())
    assert 0 < unseen < len(new_test)
    assert f"on the {unseen} of {len(new_test)} test rows" in line
