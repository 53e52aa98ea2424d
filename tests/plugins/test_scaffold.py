"""The scaffold plugin: ``specloop new``, ``schema``, ``options`` and completion, fast checks
(the end-to-end runs are in test_scaffold_e2e.py, the language server in tests/editor)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from specloop.cli import main

ROOT = Path(__file__).resolve().parents[2]


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- new project: refusals leave nothing behind ------------------------------------------------
def _csv(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


REFUSALS = {
    "bad name": (["my project"], "invalid project name"),
    "dotted name": (["a..b"], "invalid project name"),
    "missing csv": (["p", "--from-csv", "nope.csv"], "no CSV file"),
    "empty csv": (["p", "--from-csv", "@empty"], "is empty"),
    "header only": (["p", "--from-csv", "@header"], "has no rows"),
    "no target": (["p", "--from-csv", "@notarget"], "cannot tell which column is the target"),
    "unknown target": (["p", "--from-csv", "@notarget", "--target", "ab"],
                       "has no column 'ab'"),
    "constant target": (["p", "--from-csv", "@constant"], "is not usable"),
    "regress a string": (["p", "--from-csv", "@strings", "--task", "regression"],
                         "cannot be regressed"),
    "target without csv": (["p", "--target", "y"], "--target needs --from-csv"),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_new_project_refuses_with_exit_2_and_writes_nothing(case, tmp_path, capsys):
    data = tmp_path / "in"
    data.mkdir()
    files = {
        "@empty": _csv(data / "empty.csv", ""),
        "@header": _csv(data / "header.csv", "a,b,label\n"),
        "@notarget": _csv(data / "nt.csv", "a,b,c\n" + "".join(f"{i},{i*2},{i%2}\n"
                                                                  for i in range(30))),
        "@constant": _csv(data / "c.csv", "a,label\n" + "".join(f"{i},1\n" for i in range(30))),
        "@strings": _csv(data / "s.csv", "a,label\n" + "".join(f"{i},{'xy'[i % 2]}\n"
                                                               for i in range(30))),
    }
    args, message = REFUSALS[case]
    args = [files.get(a, a) for a in args]
    parent = tmp_path / "parent"
    parent.mkdir()
    code = main(["new", "project", *args, "--dir", str(parent)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err
    assert listing(parent) == []


def test_new_project_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "keep.txt").write_text("mine")
    assert main(["new", "project", "p", "--dir", str(tmp_path)]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert listing(tmp_path) == ["p", "p/keep.txt"]


def test_new_project_files(tmp_path, capsys):
    (tmp_path / "demo").mkdir()  # an empty folder is fine
    assert main(["new", "project", "demo", "--dir", str(tmp_path)]) == 0
    root = tmp_path / "demo"
    assert listing(tmp_path)[0] == "demo"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    config = (root / "conf" / "config.yaml").read_text()
    assert config.startswith("# yaml-language-server: $schema=../schema/config.schema.json\n")
    assert (root / "conf" / "data" / "train.yaml").read_text().startswith(
        "# yaml-language-server: $schema=../../schema/data.schema.json\n")
    assert "name: demo" in config and "model: logistic" in config
    ignored = (root / ".gitignore").read_text().split()
    assert {".specloop/", "deploy/", "outputs/", "multirun/"} <= set(ignored)
    settings = json.loads((root / ".vscode" / "settings.json").read_text())
    assert settings["yaml.schemas"]["./schema/config.schema.json"] == ["conf/config.yaml"]
    assert settings["yaml.schemas"]["./schema/model.schema.json"] == ["conf/model/*.yaml"]
    for rel in settings["yaml.schemas"]:
        assert (root / rel).is_file(), rel
    assert sorted(p.name for p in (root / "data" / "incoming").iterdir()) == [
        "2024-01.csv", "2024-02.csv", "2024-03.csv"]
    assert main(["validate", "--project", str(root)]) == 0


def test_new_project_from_csv_infers_target_task_and_id(tmp_path, capsys):
    rows = "".join(f"{i},{i * 0.37 % 5:.3f},{'ab'[i % 2]},{(i * 7.3) % 13:.4f}\n"
                   for i in range(60))
    src = _csv(tmp_path / "houses.csv", "customer_id,size,zone,target\n" + rows)
    assert main(["new", "project", "houses", "--from-csv", src, "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "task regression, inferred" in out and "customer_id" in out
    data = (tmp_path / "houses" / "conf" / "data" / "train.yaml").read_text()
    assert "target: target" in data and "task: regression" in data
    assert "drop: [customer_id]" in data and "method: random" in data
    assert (tmp_path / "houses" / "data" / "train.csv").read_text().startswith("customer_id,")
    assert "model: ridge" in (tmp_path / "houses" / "conf" / "config.yaml").read_text()
    assert main(["validate", "--project", str(tmp_path / "houses")]) == 0


# -- options ---------------------------------------------------------------------------------
def test_options_lists_a_group_one_line_each(tmp_path, capsys):
    assert main(["options", "model"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [
        "hist_gradient_boosting", "hist_gradient_boosting_regressor", "logistic",
        "random_forest", "random_forest_regressor", "ridge"]
    assert all(" sklearn " in line and "[plugin sklearn (specloop " in line for line in lines)
    assert main(["options", "gate", "--project", str(ROOT / "projects" / "fraud_detection"),
                 "--json"]) == 0
    rows = {r["option"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["fraud"]["from"] == "project conf/gate/fraud.yaml"
    assert rows["fraud"]["description"].startswith("A fraud model must rank well")
    assert rows["none"] == {"option": "none", "kind": "none",
                            "description": "Switch the gate stage off.", "from": "specloop"}
    assert main(["options", "modle"]) == 2
    assert "did you mean: model" in capsys.readouterr().err


# -- schema ----------------------------------------------------------------------------------
def test_schema_document(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["schema", "--project", str(ROOT / "projects" / "fraud_detection"),
                 "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["$schema"] == "http://json-schema.org/draft-07/schema#"
    defs = doc["definitions"]
    gate_options = doc["properties"]["defaults"]["items"]["patternProperties"]
    model_enum = next(v for k, v in gate_options.items() if "model" in k)["enum"]
    assert "logistic" in model_enum and None in model_enum
    fraud_gate = next(v for k, v in gate_options.items() if "gate" in k)["enum"]
    assert "fraud" in fraud_gate  # the project's own option
    model = defs["node.model"]
    assert model["properties"]["kind"]["enum"] == ["sklearn"]
    sk = model["allOf"][0]["then"]["properties"]
    assert sk["preprocessing"]["anyOf"][0]["properties"]["numeric"]["anyOf"][0]["enum"] == [
        "passthrough", "standard", "minmax", "robust"]
    every = next(b["then"] for b in defs["node.retrain"]["allOf"]
                 if b["if"]["properties"]["kind"]["const"] == "every")
    batches = every["properties"]["batches"]
    assert batches["anyOf"][0] == {"type": "integer", "minimum": 1}
    assert batches["default"] == 3 and "batches between retrains" in batches["description"]
    drift = next(b["then"] for b in defs["node.monitor"]["allOf"]
                 if b["if"]["properties"]["kind"]["const"] == "drift")
    assert drift["properties"]["drift_share"]["anyOf"][0] == {
        "type": "number", "exclusiveMinimum": 0, "maximum": 1}
    serve = doc["properties"]["plugins"]["properties"]["serve"]
    assert "secret" in serve["properties"]["token"]["description"]
    assert doc["properties"]["project"]["properties"]["seed"]["anyOf"][0]["maximum"] == 2**32 - 1
    assert set(doc["properties"]) >= {"defaults", "project", "data", "model", "metrics",
                                      "gate", "store", "deploy", "monitor", "retrain", "loop",
                                      "sweep", "plugins", "allow_python_targets"}
    capsys.readouterr()
    assert main(["schema"]) == 0  # no project: the installed plugins alone, printed
    assert json.loads(capsys.readouterr().out)["definitions"]["group.model"]


# -- completion ------------------------------------------------------------------------------
def test_completion_offers_every_engine_command_and_flag(tmp_path):
    """Completion walks the engine's own parser (specloop.command_parser): what it offers
    follows the engine's commands and options without a copy of them."""
    from specloop_scaffold._completion import _parser

    tree = _parser()
    sub = next(a for a in tree._actions if isinstance(a, argparse._SubParsersAction))
    assert {"run", "plan", "loop", "runs", "registry", "report", "new"} <= set(sub.choices)
    run = sub.choices["run"]
    assert {"--report", "--quiet", "--until", "-m"} <= set(run._option_string_actions)


def _bash(line: str, words: list[str], cwd: Path) -> list[str]:
    script = subprocess.run(["specloop", "completion", "bash"], capture_output=True,
                            text=True, check=True).stdout
    words_sh = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    code = (f"{script}\nCOMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; "
            f"COMP_WORDS=({words_sh}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); "
            "_specloop_complete; printf '%s\\n' \"${COMPREPLY[@]}\"")
    out = subprocess.run(["bash", "--norc", "--noprofile", "-c", code], capture_output=True,
                         text=True, cwd=cwd, timeout=60)
    assert out.returncode == 0, out.stderr
    return [w for w in out.stdout.splitlines() if w]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion(tmp_path, monkeypatch):
    import os
    import sys

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    if shutil.which("specloop") is None:
        pytest.skip("the specloop script is not on PATH")
    fraud = ROOT / "projects" / "fraud_detection"
    # COMP_WORDS as bash splits them: '=' is a word of its own
    assert "run" in _bash("specloop r", ["specloop", "r"], fraud)
    assert _bash("specloop registry pro", ["specloop", "registry", "pro"], fraud) == ["promote"]
    assert _bash("specloop run model=lo", ["specloop", "run", "model", "=", "lo"], fraud) == [
        "logistic"]
    assert "=fraud" in _bash("specloop run gate=", ["specloop", "run", "gate", "="], fraud)
    assert _bash("specloop run model.preprocessing.num",
                 ["specloop", "run", "model.preprocessing.num"], fraud) == [
        "model.preprocessing.numeric="]
    assert _bash("specloop run model.preprocessing.numeric=st",
                 ["specloop", "run", "model.preprocessing.numeric", "=", "st"], fraud) == [
        "standard"]
    assert _bash("specloop run -m retrain=never,on_d",
                 ["specloop", "run", "-m", "retrain", "=", "never,on_d"], fraud) == [
        "never,on_decay", "never,on_drift"]
    assert _bash("specloop options ", ["specloop", "options", ""], fraud)[:3] == [
        "data", "deploy", "gate"]
    assert _bash("specloop completion ", ["specloop", "completion", ""], fraud) == [
        "bash", "zsh"]
    assert _bash("specloop run --unt", ["specloop", "run", "--unt"], fraud) == ["--until"]
    assert _bash("specloop run --until tr", ["specloop", "run", "--until", "tr"], fraud) == [
        "train"]
    assert "project.seed=" in _bash("specloop run project.", ["specloop", "run", "project."],
                                    fraud)


def _zsh(line: str, cwd: Path) -> list[str]:
    """What the zsh script offers for ``line``: its ``_specloop`` function run in a real zsh,
    with ``compadd`` and ``_files`` standing in for the completion system's output."""
    import os
    import sys

    specloop = str(Path(sys.executable).with_name("specloop"))
    script = subprocess.run([specloop, "completion", "zsh"], capture_output=True, text=True,
                            check=True).stdout
    code = (f"{script}\n"
            "compadd() { local on=0; for a in \"$@\"; do (( on )) && print -r -- \"$a\"; "
            "[[ $a == -- ]] && on=1; done; }\n_files() { print -r -- '<files>'; }\n"
            f"LBUFFER='{line}'; _specloop")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["zsh", "-f", "-c", code], capture_output=True, text=True, cwd=cwd,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return [w for w in out.stdout.splitlines() if w]


def test_zsh_completion():
    if shutil.which("zsh") is None:
        if os.environ.get("CI"):
            pytest.fail("zsh is missing (.ci/run installs it)")
        pytest.skip("zsh is not installed")
    fraud = ROOT / "projects" / "fraud_detection"
    assert "run" in _zsh("specloop r", fraud)
    assert _zsh("specloop registry pro", fraud) == ["promote"]
    assert _zsh("specloop run model=lo", fraud) == ["model=logistic"]
    assert _zsh("specloop run -m retrain=never,on_d", fraud) == [
        "retrain=never,on_decay", "retrain=never,on_drift"]
    assert _zsh("specloop run --unt", fraud) == ["--until"]
