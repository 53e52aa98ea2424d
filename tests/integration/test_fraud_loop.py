"""The main job: the fraud-detection loop end to end, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SPECLOOP = str(Path(sys.executable).with_name("specloop"))


def specloop(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([SPECLOOP, *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=600)


def _lines(out: str) -> dict[str, str]:
    return {line.split()[0]: line for line in out.splitlines() if line.startswith("2024-")}


@pytest.mark.slow
def test_new_fraud_pattern_triggers_retrain_and_promotion_and_loop_resumes(fraud_project):
    res = specloop("loop", cwd=fraud_project)
    assert res.returncode == 0, res.stderr
    months = _lines(res.stdout)
    assert list(months) == ["2024-07", "2024-08", "2024-09", "2024-10", "2024-11", "2024-12"]
    assert "keep" in months["2024-07"] and "keep" in months["2024-08"]
    assert "retrain: on_decay" in months["2024-09"] and months["2024-09"].endswith("promoted")
    value = lambda line: float(line.split("roc_auc ")[1].split()[0])  # noqa: E731
    assert value(months["2024-09"]) < 0.8            # the champion misses the new pattern
    assert value(months["2024-10"]) > 0.95           # the promoted challenger recovers
    assert "(champion v2)" in months["2024-10"]

    again = specloop("loop", cwd=fraud_project)        # resumes: nothing processed twice
    assert again.returncode == 0 and "processed 0 batch(es)" in again.stdout
    hist = json.loads(specloop("registry", "history", "--json", cwd=fraud_project).stdout)
    champ = [(h["previous"], h["version"]) for h in hist["aliases"] if h["alias"] == "champion"]
    assert champ == [(None, 1), (1, 2)]
    bundle = json.loads((fraud_project / "deploy" / "champion" / "metadata.json").read_text())
    assert bundle["version"] == 2
    tree = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
    assert bundle["model_format"] == "skops" and tree in bundle["model_trusted_types"]

    # the loop wrote a manifest for its run, so the retrained version's card names its source
    card = json.loads(specloop("registry", "show", "2", "--json", cwd=fraud_project).stdout)
    assert card["run"]["command"] == "loop" and card["run"]["status"] == "succeeded"
    assert card["source"]["batch"] == "2024-09" and card["config_from"] == "run manifest"
    assert card["model"]["format"] == "skops" and tree in card["model"]["trusted_types"]
    shown = specloop("registry", "show", "2", cwd=fraud_project).stdout
    assert "retrained by the loop on batch 2024-09" in shown and "(loop, succeeded" in shown
    runs = json.loads(specloop("runs", "list", "--json", cwd=fraud_project).stdout)
    assert [r["command"] for r in runs] == ["run", "loop", "loop"]
    assert runs[1]["run"] == card["run_id"] and runs[1]["version"] == 2


@pytest.mark.slow
def test_loop_resumes_after_a_partial_run(fraud_project):
    first = specloop("loop", "--limit", "2", cwd=fraud_project)
    assert first.returncode == 0 and "processed 2 batch(es)" in first.stdout
    rest = specloop("loop", cwd=fraud_project)
    assert list(_lines(rest.stdout)) == ["2024-09", "2024-10", "2024-11", "2024-12"]


@pytest.mark.slow
def test_multirun_with_the_basic_launcher(fraud_project):
    res = specloop("run", "-m", "hydra/launcher=basic", "model=logistic,hist_gradient_boosting",
                   cwd=fraud_project)
    assert res.returncode == 0, res.stderr
    assert "model=logistic" in res.stdout and "model=hist_gradient_boosting" in res.stdout
    assert "2 of 2 member(s) succeeded" in res.stdout
    runs = json.loads(specloop("runs", "list", "--json", cwd=fraud_project).stdout)
    runs = [r for r in runs if r["command"] == "run"]  # not the winner's registration
    assert len(runs) == 2 and all(r["status"] == "succeeded" for r in runs)
    # the second job reused the first job's data and split stages
    shown = json.loads(specloop("runs", "show", runs[1]["run"], "--json", cwd=fraud_project).stdout)
    assert shown["stages"]["split"]["status"] == "cached"
