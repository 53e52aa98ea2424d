"""The README's quick start, followed as written in a fresh environment, leaves the checkout
clean; the example's generator refuses a Python without what it needs, with the fix."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "projects" / "fraud_detection"


def quick_start_commands() -> list[str]:
    """The ``specloop`` lines of the README's quick start block, comments cut."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.split("  #", 1)[0].strip() for line in block.strip().splitlines()]
    assert lines[0] == "source .venv/bin/activate" and lines[1] == "cd projects/fraud_detection"
    return [line for line in lines if line.startswith("specloop ")]


def _fresh_env(repo: Path) -> None:
    """``repo/.venv``: a new virtual environment with specloop installed by pip from this
    checkout; its dependencies are this environment's (a path file), not reinstalled."""
    venv = repo / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    fresh = venv / "bin" / "python"
    purelib = subprocess.run([str(fresh), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True, check=True)
    (Path(purelib.stdout.strip()) / "_outer_deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(fresh), "install", "-q",
                    "--no-deps", "--no-build-isolation", "-e", str(ROOT)],
                   check=True, capture_output=True)


def _bash(repo: Path, script: str) -> subprocess.CompletedProcess:
    bindir = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and p != bindir)  # only activation puts specloop on PATH
    env = {**{k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}, "PATH": path,
           "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(["bash", "-c", f"set -e\ncd {repo}\nsource .venv/bin/activate\n"
                           + script], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_readme_quick_start_in_a_fresh_environment_leaves_the_checkout_clean(tmp_path):
    repo = tmp_path / "checkout"
    (repo / "projects").mkdir(parents=True)
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    shutil.copytree(EXAMPLE / "conf", repo / "projects" / "fraud_detection" / "conf")
    shutil.copy(EXAMPLE / "generate.py", repo / "projects" / "fraud_detection")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "example"], cwd=repo, check=True)
    _fresh_env(repo)

    # the main job, as the README's first command runs it (smaller data)
    first = _bash(repo, "python projects/fraud_detection/generate.py --rows-per-month 300\n"
                  "specloop loop --project projects/fraud_detection")
    assert first.returncode == 0, first.stderr
    assert "which specloop" not in first.stderr

    commands = quick_start_commands()
    assert len(commands) >= 10
    for command in commands:
        if "stack=s3" in command:  # needs an S3 endpoint: tests/s3 runs that stack
            continue
        if "RUN_ID" in command:
            runs = _bash(repo, "cd projects/fraud_detection\nspecloop runs list --json")
            first_run = json.loads(runs.stdout)[0]["run"]
            command = command.replace("RUN_ID", first_run)
        done = _bash(repo, f"cd projects/fraud_detection\n{command}")
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, command

    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                            cwd=repo, capture_output=True, text=True, check=True).stdout
    assert status == "", f"running the examples left files git would pick up:\n{status}"


def test_generator_refuses_a_python_without_numpy_with_the_fix(tmp_path):
    # -S: no site-packages, so numpy cannot be imported, as in a bare system Python
    done = subprocess.run([sys.executable, "-S", str(EXAMPLE / "generate.py"), "--out",
                           str(tmp_path / "data")], capture_output=True, text=True)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert re.search(r"numpy is not installed for .*python", done.stderr)
    assert ".venv/bin/python projects/fraud_detection/generate.py" in done.stderr
    assert not (tmp_path / "data").exists()
