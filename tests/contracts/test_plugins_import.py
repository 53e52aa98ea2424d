"""Each ``specloop.plugins`` entry point imports in a fresh process without heavy libraries,
so listing plugins and validating specs stays fast."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

HEAVY = ("sklearn", "pandas", "scipy", "fastapi", "uvicorn", "starlette")
ENTRY_POINTS = sorted(entry_points(group="specloop.plugins"), key=lambda ep: ep.name)


def test_builtins_are_entry_points():
    names = {ep.name for ep in ENTRY_POINTS}
    assert {"tabular", "sklearn", "gates", "bundle", "drift", "retrain", "serve"} <= names


@pytest.fixture(scope="module")
def reports() -> dict:
    # one process per entry point, started together
    code = ("import json, sys\nfrom importlib.metadata import entry_points\n"
            "ep = [e for e in entry_points(group='specloop.plugins') if e.name == sys.argv[1]][0]\n"
            "ep.load()\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    procs = {ep.name: subprocess.Popen([sys.executable, "-c", code, ep.name], text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for ep in ENTRY_POINTS}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=60)
        out[name] = (proc.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize("name", [ep.name for ep in ENTRY_POINTS])
def test_entry_point_imports_light(name, reports):
    code, stdout, stderr = reports[name]
    assert code == 0, f"plugin {name!r} failed to import:\n{stderr}"
    heavy = json.loads(stdout.strip().splitlines()[-1])
    assert heavy == [], f"importing plugin {name!r} imports {heavy}; import them lazily"
