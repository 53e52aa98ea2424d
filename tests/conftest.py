"""Shared fixtures: small projects built in a temporary folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from specloop.testing import ProjectBuilder

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# composed specs are cached per user; the suite keeps its own cache (child processes inherit it)
os.environ.setdefault("SPECLOOP_CACHE_DIR", tempfile.mkdtemp(prefix="specloop-test-cache-"))


def pip_install_target(source: Path, target: Path) -> None:
    """``pip install --target`` of a distribution's source folder: a local build with the
    environment's setuptools, else an isolated build."""
    base = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-input",
            "--disable-pip-version-check", "--target", str(target)]
    done = subprocess.run([*base, "--no-build-isolation", str(source)], capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        done = subprocess.run([*base, str(source)], capture_output=True, text=True,
                              timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def small_csv(path: Path, rows: int = 300, seed: int = 0, shift: float = 0.0) -> Path:
    """A binary-classification CSV with numeric and string features."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1, rows)
    x2 = rng.normal(0, 1, rows)
    color = rng.choice(["red", "green", "blue"], rows)
    logits = 2 * x1 - x2 + (color == "red") * 1.5
    y = (logits + rng.normal(0, 1, rows) > 0.5).astype(int)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["id,x1,x2,color,label"] + [f"{i},{a:.4f},{b:.4f},{c},{t}"
                                          for i, (a, b, c, t) in enumerate(zip(x1, x2, color, y))]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def project(tmp_path) -> ProjectBuilder:
    """A small classification project with data, model, metrics, gate and a bundle deploy."""
    p = ProjectBuilder(tmp_path / "proj")
    small_csv(p.root / "data" / "train.csv")
    p.write_conf("data/small.yaml", {"kind": "csv", "path": "data/train.csv", "target": "label",
                                     "drop": ["id"]})
    p.write_conf("config.yaml", {
        "defaults": [{"data": "small"}, {"model": "logistic"}, {"metrics": "classification"},
                     {"gate": "default"}, {"deploy": "bundle"}, "_self_"],
        "project": {"name": "small", "seed": 0},
    })
    return p


@pytest.fixture
def fraud_project(tmp_path) -> Path:
    """A copy of projects/fraud_detection with its data generated."""
    dst = tmp_path / "fraud_detection"
    src = ROOT / "projects" / "fraud_detection"
    shutil.copytree(src, dst, ignore=lambda d, names: [n for n in names if Path(d) == src and n in
                                                       (".specloop", "data", "deploy")])
    import subprocess

    subprocess.run([sys.executable, str(dst / "generate.py")], check=True, capture_output=True)
    return dst
