"""The editor schema checked by a real client: the YAML language server (npm
``yaml-language-server``, installed in tests/editor by ``.ci/run``), driven over stdio as an
editor drives it, validates the example projects, ``specloop new`` projects and every
shipped preset with no diagnostic, and flags typical mistakes, each on its line."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from specloop.cli import main

from lsp_client import YamlLanguageServer, server_missing

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = sorted(p for p in (ROOT / "projects").iterdir() if (p / "conf").is_dir())


@pytest.fixture(scope="module", autouse=True)
def _server_installed():
    reason = server_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the YAML language server must run in CI: {reason}")
        pytest.skip(reason)


def settings_of(project: Path) -> dict:
    return json.loads((project / ".vscode" / "settings.json").read_text())["yaml.schemas"]


def conf_files(project: Path) -> dict[str, str]:
    return {str(p.relative_to(project)): p.read_text()
            for p in sorted((project / "conf").rglob("*.yaml"))}


def diagnose(project: Path, files: dict[str, str], expect: bool = False
             ) -> dict[str, list[dict]]:
    """Each file's diagnostics; ``expect``: every file has a mistake, so wait for each one's."""
    with YamlLanguageServer(project, settings_of(project)) as server:
        server.ready()
        return server.diagnose(files, expect=expect)


def messages(found: dict[str, list[dict]]) -> dict[str, list[str]]:
    return {path: [f"line {d['range']['start']['line'] + 1}: {d['message']}" for d in diags]
            for path, diags in found.items() if diags}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """Projects made by ``specloop new``: each task, and one from a CSV."""
    parent = tmp_path_factory.mktemp("new")
    csv = parent / "in.csv"
    csv.write_text("id,a,b,label\n" + "".join(f"{i},{i % 7},{'xy'[i % 2]},{i % 3}\n"
                                              for i in range(40)))
    for args in (["cls"], ["reg", "--task", "regression"], ["fromcsv", "--from-csv", str(csv)]):
        assert main(["new", "project", *args, "--dir", str(parent)]) == 0
    return {name: parent / name for name in ("cls", "reg", "fromcsv")}


@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_example_projects_have_no_diagnostics(project, tmp_path):
    copy = tmp_path / project.name
    shutil.copytree(project / "conf", copy / "conf")
    assert main(["schema", "--write", "--project", str(copy)]) == 0
    files = conf_files(copy)
    assert "conf/config.yaml" in files and len(files) >= 3
    assert messages(diagnose(copy, files)) == {}


def test_new_projects_have_no_diagnostics(made):
    for name, project in made.items():
        files = conf_files(project)
        assert files["conf/config.yaml"].startswith("# yaml-language-server: $schema=")
        assert messages(diagnose(project, files)) == {}, name


def test_shipped_presets_have_no_diagnostics(made):
    """Every preset the engine and the plugins ship validates against its group's schema."""
    from specloop_scaffold._catalog import Catalog

    files = {}
    for group, options in Catalog(None).options().items():
        for name, option in options.items():
            files[f"conf/{group}/{name}.yaml"] = option.path.read_text()
    assert len(files) > 20
    assert messages(diagnose(made["cls"], files)) == {}


MISTAKES = {
    # name: (file, its text or (old, new) in conf/config.yaml, the mistake's line in a
    # group file, what the message says)
    "misspelled model kind": ("conf/model/m.yaml", "kind: sklern\n", 1, "sklearn"),
    "misspelled deploy kind": ("conf/config.yaml", ("project:", "deploy:\n  kind: bundel\nproject:"),
                               None, "bundle"),
    "misspelled nested kind": ("conf/retrain/r.yaml", "kind: any_of\npolicies:\n  - kind: on_drif\n",
                               3, "on_drift"),
    "misspelled key": ("conf/model/m.yaml", "kind: sklearn\nestimater: sklearn.svm.SVC\n", 2,
                       "estimater"),
    "misspelled key in config.yaml": ("conf/config.yaml", ("project:", "model:\n  preprocesing: {}\nproject:"),
                                      None, "preprocesing"),
    "unknown top-level key": ("conf/config.yaml", ("project:", "projet:"), None, "projet"),
    "unknown option in defaults": ("conf/config.yaml", ("model: logistic", "model: logistik"),
                                   None, "logistic"),
    "unknown group in defaults": ("conf/config.yaml", ("  - _self_", "  - modle: ridge\n  - _self_"),
                                  None, "modle"),
    "wrong type": ("conf/gate/g.yaml", "kind: threshold\nmin:\n  roc_auc: high\n", 3, "number"),
    "wrong type for a flag": ("conf/model/m.yaml", "kind: sklearn\nallow_pickle: maybe\n", 2,
                              "boolean"),
    "below a minimum": ("conf/retrain/r.yaml", "kind: every\nbatches: 0\n", 2, "minimum"),
    "at an exclusive bound": ("conf/monitor/d.yaml", "kind: drift\ndrift_share: 0\n", 2,
                              "minimum"),
    "out of range in config.yaml": ("conf/config.yaml", ("seed: 0", "seed: -1"), None, "minimum"),
    "not an option": ("conf/model/m.yaml", "kind: sklearn\npreprocessing:\n  numeric: zscore\n",
                      3, "standard"),
    "unknown metric": ("conf/metrics/k.yaml", "kind: sklearn\nprimary: roc-auc\n", 2, "roc_auc"),
    "missing kind": ("conf/model/m.yaml", "estimator: sklearn.svm.SVC\n", 1, "kind"),
    "unknown plugin settings": ("conf/config.yaml", ("project:", "plugins:\n  serv: {}\nproject:"),
                                None, "serv"),
    "bad project name": ("conf/config.yaml", ("name: cls", "name: my model"), None, "pattern"),
}


def test_typical_mistakes_are_flagged(made):
    project = made["cls"]
    config = (project / "conf" / "config.yaml").read_text()
    files, expect = {}, {}
    for i, (name, (path, text, line, says)) in enumerate(MISTAKES.items()):
        if isinstance(text, tuple):
            old, new = text
            assert old in config, name
            text = config.replace(old, new, 1)
        # a file per mistake, in the mistake's group folder (the settings map it)
        stem, suffix = path.rsplit(".", 1)
        files[f"{stem}_{i}.{suffix}" if path != "conf/config.yaml" else f"conf/config_{i}.yaml"] = text
        expect[name] = (list(files)[-1], says, line)
    found = diagnose(project, files, expect=True)
    flagged = 0
    for name, (path, says, line) in expect.items():
        diags = found[path]
        assert diags, f"{name}: no diagnostic for\n{files[path]}"
        assert any(says.lower() in d["message"].lower() for d in diags), (name, diags)
        if line is not None:  # a group file: the diagnostic is on the mistake's line
            assert line - 1 in [d["range"]["start"]["line"] for d in diags], (name, diags)
        flagged += 1
    assert flagged >= 10


def test_mistakes_are_reported_on_their_line(made):
    project = made["cls"]
    files = {
        "conf/model/a.yaml": "kind: sklearn\nparams:\n  C: 1.0\nestimater: x\n",
        "conf/retrain/b.yaml": "kind: any_of\npolicies:\n  - kind: on_drift\n  - kind: every\n"
                               "    batches: -2\n",
    }
    found = diagnose(project, files, expect=True)
    assert [d["range"]["start"]["line"] for d in found["conf/model/a.yaml"]] == [3]
    assert [d["range"]["start"]["line"] for d in found["conf/retrain/b.yaml"]] == [4]


def test_interpolations_and_overrides_are_accepted(made):
    project = made["cls"]
    config = (project / "conf" / "config.yaml").read_text()
    files = {
        "conf/config_i.yaml": config + "model:\n  params:\n    C: 0.5\n"
                              "deploy:\n  path: ${oc.env:OUT,deploy/x}\n"
                              "monitor:\n  drift_share: ${oc.env:SHARE,0.5}\n",
        "conf/stack/mine.yaml": "# @package _global_\ndefaults:\n  - override /store: s3\n"
                                "store:\n  url: s3://bucket/x\n",
        "conf/model/own.yaml": "defaults:\n  - logistic\n  - _self_\nparams:\n  C: 2.0\n",
    }
    # a file whose own defaults list extends another option may leave kind out
    assert messages(diagnose(project, files)) == {}
