"""``specloop new project``: a project folder that validates and runs at once.

The folder is written in a temporary sibling and renamed into place, so a refusal or a crash
leaves nothing half-written.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from specloop import ConfigError

from specloop import NAME_PATTERN

TARGET_NAMES = ("target", "label", "y", "class", "outcome")
MIN_ROWS = 10
# what the engine and its commands write inside a project: the store, the registry, sweeps
# and the loop lock (.specloop/), the champion bundle and batch scores (deploy/), a managed
# server's state (.specloop-serve/), Hydra's run folders (outputs/, multirun/)
GITIGNORE = """\
# written by specloop while it runs; never commit them
.specloop/
.specloop-serve/
deploy/
outputs/
multirun/
__pycache__/
"""


def _refuse(message: str, *, key: str, got: Any = None, expected: str | None = None,
            fix: str | None = None, extra: list | None = None) -> ConfigError:
    return ConfigError(message, key=key, got=got, expected=expected, fix=fix, extra=extra)


def check_name(name: str) -> None:
    """Refuse a name that cannot be a folder and a registry model name."""
    if not re.match(NAME_PATTERN, name or ""):
        raise _refuse(f"invalid project name {name!r}", key="NAME", got=name,
                      expected="1-128 letters, digits, '_', '.' or '-', starting with a "
                               "letter or digit (no '/', '\\' or '..')",
                      fix="e.g. specloop new project churn_model")


def target_folder(parent: Path, name: str) -> Path:
    """``parent/name``, refused when it exists and is not an empty folder."""
    if not parent.is_dir():
        raise _refuse(f"no folder {str(parent)!r} to make the project in", key="--dir",
                      got=str(parent), expected="an existing folder",
                      fix=f"mkdir -p {parent}, or pass another --dir")
    path = parent / name
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise _refuse(f"{str(path)!r} already exists and is not empty", key="NAME",
                      got=str(path), expected="a new folder, or an empty one",
                      fix="pick another name or --dir, or remove the folder")
    return path


def infer_task(y: Any) -> str:
    """The engine's rule: classification unless the target is float with more than 20
    distinct values."""
    import pandas as pd

    return "classification" if (not pd.api.types.is_float_dtype(y) or y.nunique() <= 20) \
        else "regression"


def read_csv(path: str, target: str | None, task: str | None) -> dict:
    """Read and check a user's CSV: ``{frame, target, task, drop, notes}``."""
    import pandas as pd

    src = Path(path).expanduser()
    if not src.is_file():
        raise _refuse(f"no CSV file {path!r}", key="--from-csv", got=path,
                      expected="an existing CSV file", fix="check the path")
    try:
        frame = pd.read_csv(src)
    except pd.errors.EmptyDataError:
        raise _refuse(f"the CSV {path!r} is empty", key="--from-csv", got=path,
                      expected="a header line and rows", fix="pass a CSV with data") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise _refuse(f"the file {path!r} cannot be read as CSV", key="--from-csv", got=path,
                      expected="a comma-separated file with a header line",
                      fix="check the file", extra=[("reason", str(exc).strip()[:300])]) from None
    cols = [str(c) for c in frame.columns]
    if frame.empty:
        raise _refuse(f"the CSV {path!r} has no rows", key="--from-csv", got=path,
                      expected=f"a header line and at least {MIN_ROWS} rows",
                      fix="pass a CSV with data")
    if target is None:
        found = [c for c in cols if c.lower() in TARGET_NAMES]
        if len(found) != 1:
            raise _refuse("cannot tell which column is the target", key="--target",
                          expected="--target COL, one of: " + ", ".join(cols[:40]),
                          fix=f"specloop new project ... --from-csv {path} --target <column>",
                          extra=[("note", "found several: " + ", ".join(found))] if found
                          else [])
        target = found[0]
    elif target not in cols:
        close = difflib.get_close_matches(target, cols, n=1)
        raise _refuse(f"the CSV has no column {target!r}", key="--target", got=target,
                      expected="one of: " + ", ".join(cols[:40]),
                      fix=f"--target {close[0]}" if close else "name one of its columns",
                      extra=[("did you mean", close[0])] if close else [])
    y = frame[target]
    labelled = int(y.notna().sum())
    if labelled < MIN_ROWS or y.nunique() < 2:
        raise _refuse(f"the target column {target!r} is not usable", key="--target",
                      got=f"{labelled} labelled rows, {y.nunique()} distinct value(s)",
                      expected=f"at least {MIN_ROWS} labelled rows and two distinct values",
                      fix="pass another --target, or a CSV with more labelled rows")
    inferred = infer_task(y.dropna())
    import pandas as pd

    if task == "regression" and not pd.api.types.is_numeric_dtype(y):
        raise _refuse(f"the target {target!r} is not numeric, so it cannot be regressed",
                      key="--task", got=task, expected="classification for this target",
                      fix="--task classification (or leave --task out)")
    if task == "classification" and inferred == "regression":
        raise _refuse(f"the target {target!r} has {y.nunique()} distinct float values, too "
                      "many to be classes", key="--task", got=task,
                      expected="regression for this target",
                      fix="--task regression (or leave --task out)")
    notes = []
    drop = [c for c in cols if c != target and re.fullmatch(r"(?i)(.*_)?id", c)
            and frame[c].is_unique]
    if drop:
        notes.append("dropped identifier column(s) from the features: " + ", ".join(drop))
    if len(cols) - 1 - len(drop) < 1:
        raise _refuse(f"the CSV {path!r} has no feature column", key="--from-csv",
                      got=", ".join(cols), expected="the target and at least one feature",
                      fix="pass a CSV with feature columns")
    if labelled < len(frame):
        notes.append(f"{len(frame) - labelled} row(s) have no {target!r} value")
    return {"source": src, "target": target, "task": task or inferred, "drop": drop,
            "notes": notes, "inferred": task is None}


def synthetic(task: str, seed: int = 0) -> tuple[str, list[tuple[str, str]], str]:
    """``(train csv, [(batch name, batch csv)], target)``: a small data set for ``task``
    with three incoming monthly batches; the last one drifts."""
    import numpy as np

    rng = np.random.default_rng(seed)
    target = "label" if task == "classification" else "target"

    def frame(rows: int, start: int, shift: float) -> str:
        amount = rng.lognormal(3.0 + shift, 0.6, rows)
        age = rng.integers(18, 80, rows)
        score = rng.normal(shift, 1.0, rows)
        channel = rng.choice(["web", "store", "app"], rows, p=[0.5, 0.3, 0.2])
        signal = 0.03 * amount - 0.04 * (age - 45) + 1.2 * score + (channel == "app") * 1.5
        if task == "classification":
            y = (signal + rng.normal(0, 1.0, rows) > np.median(signal)).astype(int)
            values = [str(v) for v in y]
        else:
            y = 50 + 10 * signal + rng.normal(0, 5.0, rows)
            values = [f"{v:.3f}" for v in y]
        lines = [f"id,amount,age,score,channel,{target}"]
        lines += [f"{start + i},{a:.2f},{b},{c:.4f},{d},{t}"
                  for i, (a, b, c, d, t) in enumerate(zip(amount, age, score, channel, values))]
        return "\n".join(lines) + "\n"

    train = frame(600, 0, 0.0)
    batches = [(f"2024-0{m}", frame(200, 1000 * m, 0.0 if m < 3 else 1.5)) for m in (1, 2, 3)]
    return train, batches, target


def _yaml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) if not re.fullmatch(r"[\w.-]+", i) else i
                           for i in items) + "]"


def write_project(root: Path, name: str, task: str, data: dict) -> None:
    """Write the project's files into ``root`` (an empty folder)."""
    from ._jsonschema import build, modeline, vscode_settings, write_project_schema

    model, metrics = ("logistic", "classification") if task == "classification" else \
        ("ridge", "regression")
    (root / "conf" / "data").mkdir(parents=True)
    (root / "data" / "incoming").mkdir(parents=True)
    split = "" if task == "classification" else "split:\n  method: random\n"
    drop = f"drop: {_yaml_list(data['drop'])}\n" if data["drop"] else ""
    (root / "conf" / "data" / "train.yaml").write_text(
        f"{modeline('conf/data/train.yaml')}\n"
        f"# The training data: {data['describe']}.\n"
        f"kind: csv\npath: data/train.csv\ntarget: {data['target']}\ntask: {task}\n"
        f"{drop}{split}")
    (root / "conf" / "config.yaml").write_text(f"""\
{modeline('conf/config.yaml')}
# {name}: a {task} model trained on data/train.csv, then the loop on data/incoming/*.csv.
# `specloop options GROUP` lists what a group offers; `specloop validate --show` prints the
# composed spec.
defaults:
  - data: train                 # conf/data/train.yaml
{f"  - model: {model}":<32}# `specloop options model` for the others
  - metrics: {metrics}
  - gate: default               # a candidate must not lose to the champion
  - store: local                # artifacts in .specloop/store, registry in .specloop/
  - deploy: bundle              # the champion as a folder in deploy/champion
  - monitor: drift
  - retrain: drift_or_decay
  - _self_

project:
  name: {name}
  seed: 0

loop:
  incoming:
    path: data/incoming/*.csv   # one batch per file, in name order; the rest comes from data
""")
    if data.get("source") is not None:
        shutil.copyfile(data["source"], root / "data" / "train.csv")
        (root / "data" / "incoming" / ".gitkeep").write_text("")
    else:
        (root / "data" / "train.csv").write_text(data["train"])
        for batch, text in data["batches"]:
            (root / "data" / "incoming" / f"{batch}.csv").write_text(text)
    (root / ".gitignore").write_text(GITIGNORE)
    document = build(root)
    write_project_schema(root, document)
    (root / ".vscode").mkdir()
    (root / ".vscode" / "settings.json").write_text(
        json.dumps(vscode_settings(document), indent=2) + "\n")
    (root / "README.md").write_text(readme(name, task, model, data))


def readme(name: str, task: str, model: str, data: dict) -> str:
    """The project's README."""
    incoming = ("three monthly batches (2024-01 … 2024-03); the last one drifts, so the "
                "loop retrains" if data.get("source") is None else
                "empty for now: put new batches here as CSV files with the same columns")
    return f"""\
# {name}

A specloop project: a {task} model on `{data['target']}` with a gate, a deployed bundle,
drift monitoring and retraining.

```bash
specloop validate        # compose and check the spec; nothing runs
specloop run             # data → split → train → evaluate → register → deploy
specloop loop            # score, monitor and retrain on data/incoming/*.csv
specloop registry history
```

`specloop` must be on your `PATH`: activate the environment it is installed in first
(`source .venv/bin/activate`).

## Layout

| path | what |
|---|---|
| `conf/config.yaml` | the spec: one option per config group, then this project's own keys |
| `conf/data/train.yaml` | the data node: `data/train.csv`, target `{data['target']}` |
| `data/train.csv` | {data['describe']} |
| `data/incoming/` | {incoming} |
| `schema/` | the JSON Schema of this project's config (`specloop schema --write` renews it) |
| `.vscode/settings.json` | points the YAML language server at `schema/` |

What the commands write (`.specloop/`, `deploy/`, `outputs/`, `multirun/`) is ignored by git.

## Change it

```bash
specloop options model                 # the model presets
specloop run model={'random_forest' if task == 'classification' else 'random_forest_regressor'}
specloop plan model.params.{'C' if task == 'classification' else 'alpha'}=0.5       # what would re-run, and why
```

Every YAML file names its schema on its first line, so an editor with the YAML language
server checks kinds, keys, types and ranges as you type. After installing a plugin, run
`specloop schema --write` to add its components to the schema. Shell completion:
`source <(specloop completion bash)` (or `zsh`).
"""


def new_project(name: str, *, parent: Path, task: str | None = None,
                from_csv: str | None = None, target: str | None = None) -> tuple[Path, list]:
    """Make the project ``parent/name``; returns its path and notes for the user."""
    check_name(name)
    if target is not None and from_csv is None:
        raise _refuse("--target needs --from-csv", key="--target", got=target,
                      fix="add --from-csv PATH, or leave --target out")
    path = target_folder(parent, name)
    if from_csv is not None:
        data = read_csv(from_csv, target, task)
        task = data["task"]
        data["describe"] = f"a copy of {Path(from_csv).name}"
        notes = [*data["notes"]]
        if data["inferred"]:
            notes.append(f"task {task}, inferred from the target {data['target']!r} "
                         "(--task to choose)")
        notes.append("data/incoming/ is empty: put new batches there for specloop loop")
    else:
        task = task or "classification"
        train, batches, tgt = synthetic(task)
        data = {"train": train, "batches": batches, "target": tgt, "drop": ["id"],
                "describe": f"600 generated rows ({task}, target {tgt})"}
        notes = ["data: generated; --from-csv PATH to start from your own"]
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=path.parent))
    try:
        write_project(tmp, name, task, data)
        if path.exists():
            path.rmdir()  # an empty folder, checked above
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path, notes
