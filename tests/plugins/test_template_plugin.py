"""plugins/_template works as a separately installed distribution."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import pip_install_target

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "plugins" / "_template"
_SCRIPT = Path(sys.executable).with_name("specloop")
SPECLOOP = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "specloop.cli"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    # build from a copy: setuptools leaves build/ and *.egg-info/ in the source folder
    source = tmp_path_factory.mktemp("src") / "_template"
    shutil.copytree(TEMPLATE, source, ignore=shutil.ignore_patterns(
        "build", "dist", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("site")
    pip_install_target(source, target)
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("SPECLOOP_PLUGINS", None)
    env.pop("SPECLOOP_DISABLE_PLUGINS", None)
    return env


@pytest.mark.slow
def test_specloop_plugins_lists_the_template(installed):
    out = subprocess.run([*SPECLOOP, "plugins", "--json"], capture_output=True, text=True,
                         env=installed, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    example = rows["example"]
    assert example["distribution"] == "specloop-example 0.1.0"
    assert example["status"] == "loaded"
    assert [(c["stage"], c["kind"]) for c in example["components"]] == [
        ("retrain", "sized_drift")]
    text = subprocess.run([*SPECLOOP, "plugins"], capture_output=True, text=True,
                          env=installed, timeout=120)
    assert "example  (specloop-example 0.1.0)" in text.stdout
    assert "retrain/sized_drift" in text.stdout


@pytest.mark.slow
def test_template_conformance_passes(installed, tmp_path):
    # run from a neutral folder, against the installed copy, not the source tree
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_conformance.py").write_text(
        (TEMPLATE / "tests" / "test_conformance.py").read_text())
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(tests)], capture_output=True, text=True, env=installed,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout
