"""``specloop new plugin``: an installable third-party plugin made from the plugin template
(``plugins/_template``, shipped as ``specloop_scaffold.template``), renamed: distribution,
package, entry point, the component's kind and its preset.
"""

from __future__ import annotations

import keyword
import os
import re
import shutil
import tempfile
from importlib.metadata import entry_points, version
from importlib.resources import files
from pathlib import Path

from specloop import ConfigError

SKIP = {"__pycache__", "build", "dist"}


def names(raw: str) -> dict[str, str]:
    """The plugin's names from what the user typed (``key_drift``, ``key-drift`` or
    ``specloop-key-drift``)."""
    ident = re.sub(r"^specloop[-_]", "", (raw or "").strip()).replace("-", "_")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", ident) or keyword.iskeyword(ident) \
            or ident.endswith("_") or "__" in ident:
        raise ConfigError(f"invalid plugin name {raw!r}", key="NAME", got=raw,
                          expected="lower-case letters, digits and '_' or '-', starting with "
                                   "a letter (it names the package specloop_NAME)",
                          fix="e.g. specloop new plugin key_drift")
    return {"ident": ident, "dist": "specloop-" + ident.replace("_", "-"),
            "package": "specloop_" + ident, "entry_point": ident, "kind": ident,
            "camel": "".join(p.capitalize() for p in ident.split("_"))}


def _check_free(n: dict[str, str]) -> None:
    """Refuse names an installed plugin already takes (its entry point, or the kind)."""
    taken = {ep.name: ep for ep in entry_points(group="specloop.plugins")}
    if n["entry_point"] in taken:
        ep = taken[n["entry_point"]]
        raise ConfigError(f"a plugin named {n['entry_point']!r} is already installed",
                          key="NAME", got=n["entry_point"],
                          expected="a name no installed plugin uses: not "
                                   + ", ".join(sorted(taken)),
                          fix="pick another name",
                          extra=[("installed", f"{ep.value} ({ep.dist.name if ep.dist else '?'})")])
    from ._catalog import Catalog

    kinds = Catalog(None).table.kinds("retrain")
    if n["kind"] in kinds or n["kind"] == "none":
        raise ConfigError(f"the retrain kind {n['kind']!r} is already registered", key="NAME",
                          got=n["kind"], expected="a kind other than " + ", ".join(kinds),
                          fix="pick another name")


def _rename(text: str, n: dict[str, str]) -> str:
    major, minor = (int(p) for p in version("specloop").split(".")[:2])
    text = text.replace("specloop-example", n["dist"]).replace("specloop_example", n["package"])
    text = text.replace("SizedDrift", n["camel"]).replace("sized_drift", n["kind"])
    text = text.replace("An example specloop plugin", "A specloop plugin")
    text = re.sub(r"(?m)^example = ", f"{n['entry_point']} = ", text)
    text = re.sub(r'"specloop[<>=!~][^"]*"', f'"specloop>={major}.{minor},<{major}.{minor + 1}"',
                  text)
    return text


def _pyproject(text: str, n: dict[str, str]) -> str:
    body = _rename(text, n).split("\n")
    while body and body[0].startswith("#"):  # the template's copy-me note
        body.pop(0)
    return (f"# {n['dist']}: a specloop plugin, registered through the specloop.plugins entry "
            "point.\n" + "\n".join(body))


def readme(n: dict[str, str]) -> str:
    """The plugin's README."""
    return f"""\
# {n['dist']}

A specloop plugin. It adds the retraining policy `retrain/{n['kind']}`: retrain when enough
features drifted, but only on batches with enough rows for the drift verdict to mean
something. Replace it with your own component.

```yaml
# conf/config.yaml of a project
defaults:
  - monitor: drift
  - retrain: {n['kind']}      # the preset this plugin ships
  - _self_

retrain:
  min_rows: 1000
```

## Layout

```
pyproject.toml                        # the entry point: specloop.plugins → {n['entry_point']} = "{n['package']}"
{n['package']}/__init__.py            # hooks: the ComponentSpec (schema + lazy factory), conf dir
{n['package']}/_policy.py             # the component itself, imported only when used
{n['package']}/conf/retrain/*.yaml    # presets, found through specloop_add_conf_dirs
tests/test_conformance.py             # subclasses specloop.testing.suites.RetrainPolicySuite
```

Declare the component's configuration as a dataclass with
`param(..., check=Interval(...) | Options(...), help=...)`: specloop checks the values, the
conformance suite tests every declared constraint, and `specloop schema` puts the fields,
ranges and help texts into the editor schema of every project that installs the plugin.
Keep `__init__.py` light (import heavy libraries inside the component's methods);
constructors only store the config; import only `specloop` and `specloop.testing`.

## Test

```console
pip install -e '.[test]'
pytest
specloop plugins        # lists "{n['entry_point']} ({n['dist']} 0.1.0)" and retrain/{n['kind']}
```

`tests/test_conformance.py` runs specloop's conformance suite for retraining policies:
registration, lazy loading, every declared constraint, an unknown key, construction without
I/O, pickling, and the policy's decisions on calm, stormy and unlabelled batches. For another
stage, subclass `DataSourceSuite`, `ModelSuite`, `MetricSuite`, `GateSuite`,
`DeployerSuite` or `MonitorSuite` from `specloop.testing.suites`.
"""


def _copy(src, dst: Path, n: dict[str, str], top: bool = True) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        name = entry.name
        if name in SKIP or name.endswith((".pyc", ".egg-info")) or (
                top and name in ("README.md", "__init__.py")):
            continue
        target_name = _rename(name, n)
        if entry.is_dir():
            _copy(entry, dst / target_name, n, top=False)
        elif name == "pyproject.toml" and top:
            (dst / name).write_text(_pyproject(entry.read_text(encoding="utf-8"), n))
        else:
            (dst / target_name).write_text(_rename(entry.read_text(encoding="utf-8"), n))


def new_plugin(raw_name: str, *, parent: Path) -> tuple[Path, dict[str, str]]:
    """Make the plugin folder ``parent/specloop-NAME``; returns its path and names."""
    n = names(raw_name)
    _check_free(n)
    if not parent.is_dir():
        raise ConfigError(f"no folder {str(parent)!r} to make the plugin in", key="--dir",
                          got=str(parent), expected="an existing folder",
                          fix=f"mkdir -p {parent}, or pass another --dir")
    path = parent / n["dist"]
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ConfigError(f"{str(path)!r} already exists and is not empty", key="NAME",
                          got=str(path), expected="a new folder, or an empty one",
                          fix="pick another name or --dir, or remove the folder")
    tmp = Path(tempfile.mkdtemp(prefix=f".{n['dist']}.", suffix=".partial", dir=parent))
    try:
        _copy(files("specloop_scaffold.template"), tmp, n)
        (tmp / "README.md").write_text(readme(n))
        if path.exists():
            path.rmdir()
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path, n
