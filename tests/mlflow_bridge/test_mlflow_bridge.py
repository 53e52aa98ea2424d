"""The MLflow bridge against a real ``mlflow server``: specloop's runs, versions and alias
moves are visible through MLflow's REST API; a server that is down never stops specloop."""

from __future__ import annotations

import uuid

import pytest

# the server fixtures (a module of their own: a second conftest.py would shadow tests/conftest.py
# for the suites that import helpers from it)
from mlflow_fixtures import _mlflow_installed, dead_url, mlflow_server  # noqa: F401


def mirror_to(project, url: str, **settings) -> dict:
    """Point ``project`` at ``url``; a fresh experiment and registered model for each test."""
    names = {"experiment": f"exp-{uuid.uuid4().hex[:8]}",
             "registered_model": f"model-{uuid.uuid4().hex[:8]}"}
    node = {"tracking_uri": url, **names, **settings}
    conf = project.root / "conf" / "config.yaml"
    import yaml

    doc = yaml.safe_load(conf.read_text())
    doc["plugins"] = {"mlflow": node}
    conf.write_text(yaml.safe_dump(doc, sort_keys=False))
    return names


def tags_of(entity: dict) -> dict:
    return {t["key"]: t["value"] for t in entity.get("data", entity).get("tags", [])}


def test_runs_versions_and_aliases_are_mirrored(project, mlflow_server):
    api = mlflow_server
    names = mirror_to(project, api.url)
    model = names["registered_model"]

    first = project.run()
    run_id = first.manifest["run_id"]
    (mrun,) = api.runs(names["experiment"], f"tags.`specloop.run_id` = '{run_id}'")
    assert mrun["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in mrun["data"]["params"]}
    assert params["model.kind"] == "sklearn" and params["project.name"] == "small"
    metrics = {m["key"]: m["value"] for m in mrun["data"]["metrics"]}
    assert metrics and metrics == pytest.approx(first.manifest["metrics"])
    tags = tags_of(mrun)
    assert tags["specloop.status"] == "succeeded" and tags["specloop.command"] == "run"
    assert tags["specloop.stage.train.key"] == first.manifest["stages"]["train"]["key"]
    assert tags["specloop.model_artifact"].startswith("file://")
    assert "specloop.data_fingerprint" in tags and "specloop.specloop_version" in tags

    (v1,) = [v for v in api.versions(model)
             if {t["key"]: t["value"] for t in v["tags"]}["specloop.version"] == "1"]
    assert v1["run_id"] == mrun["info"]["run_id"]
    assert v1["source"] == "specloop://small/versions/1"
    vtags = {t["key"]: t["value"] for t in v1["tags"]}
    assert vtags["specloop.version"] == "1" and len(vtags["specloop.sha256"]) > 64
    assert api.alias(model, "champion")["version"] == v1["version"]

    # MLflow's client prints nothing into specloop's output
    quiet = project.cli("run", "model.params.C=0.5", "-q")
    assert quiet.exit_code == 0 and "mlflow" not in (quiet.stdout + quiet.stderr).lower()

    # a second version, forced to champion, then rolled back: MLflow follows
    assert project.cli("run", "model.params.C=0.05").exit_code == 0
    assert len(api.versions(model)) == 3
    promoted = project.cli("registry", "promote", "3", "--force", "--reason", "hotfix",
                           "--no-deploy")
    assert promoted.exit_code == 0, promoted.stderr
    champion = api.alias(model, "champion")
    assert {t["key"]: t["value"] for t in champion["tags"]}["specloop.version"] == "3"
    back = project.cli("registry", "rollback", "--reason", "bad canary", "--no-deploy")
    assert back.exit_code == 0, back.stderr
    ctx = project.context()
    try:
        expected = ctx.registry.aliases("small")["champion"]  # the record decides
    finally:
        ctx.close()
    assert expected != 3
    champion = api.alias(model, "champion")
    ctags = {t["key"]: t["value"] for t in champion["tags"]}
    assert ctags["specloop.version"] == str(expected)
    assert ctags["specloop.champion.previous"] == "3"
    assert ctags["specloop.champion.action"] == "rollback"
    assert ctags["specloop.champion.reason"] == "bad canary"

    # mirroring again (a retry, a re-run of the hook) adds nothing
    import specloop_mlflow

    ctx = project.context()
    try:
        specloop_mlflow.specloop_after_run(run=ctx, manifest=first.manifest)
        specloop_mlflow.specloop_after_register(run=ctx, version=ctx.registry.get("small", 1))
        specloop_mlflow.specloop_after_alias_change(
            run=ctx, name="small", alias="champion", version=expected, previous=3,
            action="rollback",
            reason="bad canary")
    finally:
        ctx.close()
    assert len(api.runs(names["experiment"], f"tags.`specloop.run_id` = '{run_id}'")) == 1
    assert len(api.versions(model)) == 3


def test_a_server_that_is_down_is_one_warning_and_sync_catches_up(project, dead_url,
                                                                    mlflow_server):
    with_password = dead_url.replace("//", "//ops:s3cret@")
    mirror_to(project, with_password, timeout=2, retries=0)
    result = project.cli("run")
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "mlflow" in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("specloop: warning: mlflow: could not mirror")
    assert dead_url in lines[0] and "connection refused" in lines[0]
    assert "record is committed" in lines[0] and "specloop mlflow sync" in lines[0]
    assert "s3cret" not in result.stderr + result.stdout
    ctx = project.context()
    try:
        assert ctx.registry.get("small", 1)["version"] == 1  # specloop's record is whole
        assert ctx.registry.aliases("small") == {"champion": 1}
    finally:
        ctx.close()

    # the server is back (here: another one): sync mirrors what the record holds, once
    names = mirror_to(project, mlflow_server.url)
    for _ in range(2):
        synced = project.cli("mlflow", "sync", "--project", str(project.root))
        assert synced.exit_code == 0, synced.stderr
        assert "1 runs, 1 versions, 1 aliases" in synced.stdout
    assert len(mlflow_server.runs(names["experiment"])) == 1
    (v1,) = mlflow_server.versions(names["registered_model"])
    assert mlflow_server.alias(names["registered_model"], "champion")["version"] == v1["version"]


def test_sync_needs_a_tracking_uri(project):
    result = project.cli("mlflow", "sync", "--project", str(project.root))
    assert result.exit_code == 2 and "plugins.mlflow.tracking_uri" in result.stderr


def test_fail_error_names_the_plugin_after_the_record_committed(project, dead_url):
    mirror_to(project, dead_url, timeout=2, retries=0, fail="error")
    result = project.cli("run")
    assert result.exit_code == 1
    assert "mlflow" in result.stderr and "record is committed" in result.stderr
    assert "specloop-mlflow" in result.stderr
    ctx = project.context()
    try:
        assert ctx.registry.get("small", 1)["version"] == 1
    finally:
        ctx.close()


def test_settings_are_checked(project):
    mirror_to(project, "http://127.0.0.1:1", fail="maybe")
    result = project.cli("validate")
    assert result.exit_code == 2 and "plugins.mlflow.fail" in result.stderr


def test_log_model_uploads_the_verified_files(project, mlflow_server):
    api = mlflow_server
    names = mirror_to(project, api.url, log_model=True)
    run_id = project.run().manifest["run_id"]
    (mrun,) = api.runs(names["experiment"], f"tags.`specloop.run_id` = '{run_id}'")
    listed = api.get("artifacts/list", run_id=mrun["info"]["run_id"], path="specloop-model")
    uploaded = {f["path"].rsplit("/", 1)[-1] for f in listed.get("files", [])}
    (v1,) = api.versions(names["registered_model"])
    vtags = {t["key"]: t["value"] for t in v1["tags"]}
    assert uploaded and uploaded == set(__import__("json").loads(vtags["specloop.sha256"]))
    assert v1["source"].endswith("/specloop-model")
