"""Each ``specloop.plugins`` entry point imports in a fresh process without heavy libraries,
so listing plugins and validating specs stays fast."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

HEAVY = ("sklearn", "pandas", "scipy", "pyarrow", "s3fs", "botocore", "aiobotocore", "moto",
         "fastapi", "uvicorn", "starlette")
ENTRY_POINTS = sorted(entry_points(group="specloop.plugins"), key=lambda ep: ep.name)


def test_builtins_are_entry_points():
    names = {ep.name for ep in ENTRY_POINTS}
    assert {"tabular", "sklearn", "gates", "bundle", "drift", "retrain", "targets",
            "serve"} <= names


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


def test_s3_drivers_load_only_for_s3_urls(tmp_path):
    """Validating a spec on the s3 stack, and a whole run on a local store, import no S3
    driver: s3fs and botocore load when an s3:// URL is opened, not before."""
    code = ("import sys\nfrom specloop.testing import ProjectBuilder\n"
            "p = ProjectBuilder(__import__('pathlib').Path(sys.argv[1]))\n"
            "p.write_conf('config.yaml', {'defaults': [{'data': 'breast_cancer'}, "
            "{'model': 'logistic'}, {'metrics': 'classification'}, {'store': 'local'}, "
            "{'deploy': 'none'}, '_self_'], 'project': {'name': 'cheap'}})\n"
            "p.context(['+stack=s3']).close()\n"
            "p.run(['deploy=bundle'])\n"
            "print([m for m in ('s3fs', 'botocore', 'aiobotocore', 'moto') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p")], text=True,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_exit_collections_are_skipped_only_by_the_console_script():
    """``gc.freeze`` at exit belongs to the ``specloop`` process, never to a caller of main()."""
    import subprocess
    import sys

    probe = ("import atexit, gc, sys\n"
             "calls = []\n"
             "real = atexit.register\n"
             "atexit.register = lambda f, *a, **k: (calls.append(f), real(f, *a, **k))[1]\n"
             "from specloop import cli\n"
             "sys.argv = ['specloop', 'plugins']\n"
             "try:\n"
             "    cli.main() if sys.argv[0] and MODE == 'main' else cli.console_main()\n"
             "except SystemExit:\n"
             "    pass\n"
             "print(gc.freeze in calls, file=sys.stderr)\n")
    out = {mode: subprocess.run([sys.executable, "-c", f"MODE = {mode!r}\n" + probe],
                                capture_output=True, text=True,
                                timeout=60).stderr.strip().splitlines()[-1]
           for mode in ("main", "console")}
    assert out == {"main": "False", "console": "True"}, out
