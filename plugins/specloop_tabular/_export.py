"""``specloop export dvc``: a ``dvc.yaml`` that runs a project's stages through specloop.

The export writes three files next to ``conf/``:

``dvc.yaml``
    Three DVC stages, each calling ``specloop dvc-stage --until <stage>``: ``data`` (data and
    split), ``train`` (train and evaluate) and ``register`` (register and deploy). Each
    depends on ``conf/``, on the previous stage's marker and on its own params; each writes a
    small marker under ``.specloop/dvc/`` holding the specloop cache keys of its stages
    (``cache: false``: the artifacts themselves stay in specloop's store). The data stage
    also depends on the data files, so DVC notices new data the way specloop does.
``params.yaml``
    The resolved stage nodes of the spec (``project``, ``data``, ``model``, ``metrics``,
    ``gate``, ``deploy``), so ``dvc exp run -S model.params.max_iter=50`` changes a value
    that specloop reads: the exported stages run ``specloop dvc-stage --params params.yaml``.
``dvc.specloop.json``
    The params as exported. ``--params`` turns into overrides only the values that differ
    from this snapshot, i.e. the ones changed through DVC; a change made in ``conf/`` after
    the export is therefore not undone by a stale ``params.yaml`` (re-export to refresh it).

Both tools then agree on what is unchanged: specloop keys its cache on the same config and
data, and DVC sees the same deps, params and markers. ``DVC_NO_ANALYTICS`` stays set.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

from specloop import ConfigError

PARAM_NODES = ("project", "data", "model", "metrics", "gate", "deploy")
SNAPSHOT = "dvc.specloop.json"
MARKERS = ".specloop/dvc"
# DVC stage -> (last specloop stage it runs, the spec nodes it reads)
DVC_STAGES = {
    "data": ("split", ["project.seed", "data"]),
    "train": ("evaluate", ["model", "metrics"]),
    "register": ("deploy", ["gate", "deploy"]),
}


def _params(raw: dict) -> dict:
    out: dict[str, Any] = {}
    for node in PARAM_NODES:
        value = raw.get(node)
        if node == "project":
            value = {"seed": (value or {}).get("seed", 0)}
        if value is not None:
            out[node] = value
    return out


def export_dvc(ctx: Any, *, specloop_cmd: str = "specloop") -> list[Path]:
    """Write ``dvc.yaml``, ``params.yaml`` and the params snapshot for ``ctx``'s project.

    Args:
        ctx: A run context (its composed spec is exported).
        specloop_cmd: How the stages invoke specloop.

    Returns:
        The files written.
    """
    import yaml

    spec = ctx.spec
    project = spec.project_dir
    params = _params(spec.raw)
    data_files = sorted(ctx_fingerprint_paths(ctx))
    stages: dict[str, Any] = {}
    previous: str | None = None
    for name, (until, keys) in DVC_STAGES.items():
        if name == "register" and spec.components.get("gate") is None and \
                spec.components.get("deploy") is None:
            continue
        marker = f"{MARKERS}/{name}.json"
        cmd = [*shlex.split(specloop_cmd), "dvc-stage", "--until", until, "--params",
               "params.yaml", "--write-keys", marker, *spec.overrides]
        deps = ["conf"] + (data_files if name == "data" else []) + \
            ([f"{MARKERS}/{previous}.json"] if previous else [])
        stage: dict[str, Any] = {"cmd": " ".join(shlex.quote(c) for c in cmd), "deps": deps,
                                 "params": [k for k in keys if k.split(".")[0] in params]}
        out = [{marker: {"cache": False}}]
        if name == "train":
            stage["metrics"] = out
        else:
            stage["outs"] = out
        stages[name] = stage
        previous = name
    files = {
        "dvc.yaml": "# Written by `specloop export dvc`: every stage runs specloop.\n"
                    + yaml.safe_dump({"stages": stages}, sort_keys=False),
        "params.yaml": "# Written by `specloop export dvc` from the resolved spec; values "
                       "changed here (dvc exp run -S ...) override conf/.\n"
                       + yaml.safe_dump(params, sort_keys=False),
        SNAPSHOT: json.dumps(params, indent=2, sort_keys=True) + "\n",
    }
    written = []
    for name, text in files.items():
        path = project / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        written.append(path)
    return written


def ctx_fingerprint_paths(ctx: Any) -> list[str]:
    """The data files the data component reads (project-relative), for DVC deps."""
    comp = ctx.spec.components["data"]
    config = comp.config
    if getattr(config, "rev", None) is not None or getattr(config, "repo", None) is not None:
        return []  # read from git history: the revision is a param, not a workspace file
    try:
        files = comp.build().fingerprint(ctx.node("data"))
    except Exception:  # noqa: BLE001 - no file deps then; the run itself reports the problem
        return []
    return [p for p in files if (ctx.project_dir / p).is_file()]


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """``{"a.b": 1}`` from ``{"a": {"b": 1}}`` (lists are leaves)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: value}


def write_keys(path: Path, doc: dict) -> None:
    """The stage keys (and metrics) of a run: the marker DVC tracks for a stage."""
    body = {"stages": {k: v["key"] for k, v in doc["stages"].items()}}
    if doc.get("metrics"):
        body["metrics"] = doc["metrics"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _value(v: Any) -> str:
    """A value in Hydra's override grammar."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{_value(x)}" for k, x in v.items()) + "}"
    return _value(str(v))


def params_overrides(project_dir: Path, params_file: str) -> list[str]:
    """Overrides for the values of ``params_file`` that differ from the export's snapshot.

    Raises:
        ConfigError: when the params file is missing or is not a YAML mapping.
    """
    import yaml

    path = Path(params_file)
    if not path.is_absolute():
        path = Path(project_dir) / path
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"params file {str(path)!r} does not exist", file=str(path),
                          expected="the params.yaml written by 'specloop export dvc'",
                          fix="run 'specloop export dvc' first") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"malformed params file {path.name}", file=str(path),
                          expected="valid YAML", fix="fix the syntax",
                          extra=[("detail", str(exc).splitlines()[0])]) from None
    if not isinstance(params, dict):
        raise ConfigError(f"params file {path.name} is not a mapping", file=str(path),
                          got=type(params).__name__, expected="a YAML mapping of spec nodes",
                          fix="re-run 'specloop export dvc'")
    snapshot_path = path.with_name(SNAPSHOT)
    snapshot = json.loads(snapshot_path.read_text()) if snapshot_path.is_file() else {}
    new, old = flatten("", params), flatten("", snapshot)
    return [f"{k}={_value(v)}" for k, v in new.items() if k not in old or old[k] != v]
