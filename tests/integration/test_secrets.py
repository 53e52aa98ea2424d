"""Secrets stay secret: credentials given as overrides or in the spec reach no record and no
printed output — manifests, the registry file, ``runs show``, ``registry show``, ``validate
--show``, ``plan``, sweep folders — while the run still uses them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

SECRET = "s3cr3t-Value-9f2c"
OVERRIDES = [f"+store.storage_options.secret={SECRET}", f"+plugins.serve.token={SECRET}"]


def _everything_written(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and "data" not in p.parts]


def _assert_nowhere(root: Path, *outputs: str) -> None:
    for path in _everything_written(root):
        assert SECRET.encode() not in path.read_bytes(), f"the secret is in {path}"
    for text in outputs:
        assert SECRET not in text, text


@pytest.mark.slow
def test_credentials_never_reach_a_record_or_an_output(project):
    outputs = []
    for args in (("validate", "--show"), ("plan",), ("run",), ("runs", "list"),
                 ("registry", "show"), ("registry", "list", "--json"),
                 ("registry", "history", "--json")):
        res = project.cli(*args[:1], *OVERRIDES, *args[1:]) if args[0] in (
            "validate", "plan", "run") else project.cli(*args)
        assert res.exit_code == 0, res.output
        outputs.append(res.output)
    runs = json.loads(project.cli("runs", "list", "--json").stdout)
    shown = project.cli("runs", "show", runs[-1]["run"], "--json")
    doc = json.loads(shown.stdout)
    assert doc["config"]["store"]["storage_options"]["secret"] == "***"
    assert doc["config"]["plugins"]["serve"]["token"] == "***"
    assert "+store.storage_options.secret=***" in doc["overrides"]
    _assert_nowhere(project.root, shown.output, *outputs)


def test_a_secret_of_the_wrong_type_is_not_echoed(project):
    res = project.cli("validate", "+plugins.serve.token=[1,2]")
    assert res.exit_code == 2 and "plugins.serve.token" in res.stderr
    assert "[1, 2]" not in res.stderr and "***" in res.stderr


@pytest.mark.slow
def test_a_sweep_keeps_its_secrets_out_of_its_folders(project):
    res = project.cli("run", "-m", *OVERRIDES, "model.params.C=0.5,1.0")
    assert res.exit_code == 0, res.output
    sweeps = project.root / ".specloop" / "sweeps"
    assert not list(sweeps.rglob(".hydra")), "Hydra's copies of the config were written"
    _assert_nowhere(project.root, res.output)
    # the winner was registered with the real overrides (a masked one would differ)
    versions = json.loads(project.cli("registry", "list", "--json").stdout)
    assert versions and versions[-1]["config"]["plugins"]["serve"]["token"] == "***"


def test_secrets_come_from_the_environment(project, monkeypatch):
    monkeypatch.setenv("SPECLOOP_TEST_TOKEN", SECRET)
    project.write_conf("config.yaml", (project.root / "conf" / "config.yaml").read_text() +
                       "plugins:\n  serve:\n    token: ${oc.env:SPECLOOP_TEST_TOKEN}\n")
    res = project.cli("validate", "--show")
    assert res.exit_code == 0 and "token: '***'" in res.stdout
    ctx = project.context()
    try:
        assert ctx.settings("serve").token == SECRET  # the run itself has it
    finally:
        ctx.close()
    assert os.environ["SPECLOOP_TEST_TOKEN"] == SECRET


@pytest.mark.slow
def test_any_storage_option_is_a_secret_in_a_sweep_record(project):
    # fsspec's s3 takes its access key as ``key``: no credential word in the name
    res = project.cli("run", "-m", f"+store.storage_options.key={SECRET}",
                      "model.params.C=0.5,1.0")
    assert res.exit_code == 0, res.output
    results = list((project.root / ".specloop" / "sweeps").rglob("result.json"))
    assert len(results) == 2
    for path in results:
        assert "+store.storage_options.key=***" in json.loads(path.read_text())["overrides"]
    _assert_nowhere(project.root, res.output)
