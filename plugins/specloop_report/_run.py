"""The report of one run: its model card (metrics, ROC curve and confusion matrix for a
classifier, residuals for a regressor, recomputed from the version's recorded test rows and
the model loaded the one safe way), its data fingerprint and its lineage."""

from __future__ import annotations

import json
from typing import Any

import yaml

from specloop import redact

from . import _records as rec
from . import _svg as svg
from ._html import Page, badge, charts, code, details, kv, note, pre, table, tiles

MAX_CURVE_POINTS = 200   # ROC points kept (the curve's shape needs far fewer than the rows)
MAX_SCATTER_POINTS = 1000
MAX_CLASSES = 12         # confusion matrix and ROC curves beyond this are left out


def build(ctx: Any, run_id: str | None) -> Page:
    row = rec.pick_run(ctx, run_id)
    doc = rec.manifest(ctx, row)
    v = rec.version(ctx, doc.get("model_version"))
    page = Page("run", f"{doc.get('project') or ctx.model_name}: run {doc['run_id']}",
                f"{doc['command']} · {doc['status']} · started {doc.get('started')}"
                + (f" · model version {v['version']}" if v else ""))
    metrics = doc.get("metrics") or (v or {}).get("metrics") or {}
    page.add("summary", "Summary", _summary(ctx, doc, v, metrics))
    page.add("model", "Model card", *_model_card(ctx, doc, v, metrics))
    page.add("data", "Data", _data(ctx, doc, v))
    page.add("lineage", "Lineage", _lineage(ctx, doc, v))
    return page


def _summary(ctx: Any, doc: dict, v: dict | None, metrics: dict) -> str:
    items = [(k, x) for k, x in metrics.items() if isinstance(x, (int, float))]
    status = doc["status"]
    return tiles(items[:8]) + kv([
        ("status", badge(status, "ok" if status == "succeeded" else "bad")),
        ("command", doc["command"]), ("started", doc.get("started")),
        ("ended", doc.get("ended")),
        ("model version", f"v{v['version']}" + (f" ({', '.join(v['aliases'])})"
                                                 if v.get("aliases") else "") if v else None),
        ("gate", (doc.get("gate") or (v or {}).get("gate") or {}).get("summary")),
        ("error", redact(ctx, doc["error"]) if doc.get("error") else None)])


def _model_card(ctx: Any, doc: dict, v: dict | None, metrics: dict) -> list[str]:
    if v is None:
        return [note("this run registered no model version (it stopped before register, or "
                     "failed), so there is no model card"),
                table([{"metric": k, "value": x} for k, x in metrics.items()],
                      ["metric", "value"])]
    model = next((a for a in v["artifacts"] if a["role"] == "model" and a["file"] == "model.bin"),
                 None)
    gate = v.get("gate") or {}
    parts = [kv([
        ("version", f"v{v['version']}"), ("aliases", ", ".join(v["aliases"]) or "-"),
        ("registered", v.get("created_at")),
        ("source", _source_text(v.get("source") or {})),
        ("format", (model or {}).get("format")),
        ("saved by", _component_text((model or {}).get("component"))),
        ("sha256", code(model["sha256"]) if model else None),
        ("trusted types", ", ".join((model or {}).get("trusted_types") or []) or None),
        ("gate", gate.get("summary"))])]
    if gate.get("checks"):
        parts.append(table([{"check": c.get("check", json.dumps(c, default=str)),
                             "passed": badge("pass" if c.get("passed", True) else "FAIL",
                                             "ok" if c.get("passed", True) else "bad"),
                             "value": c.get("value"), "champion": c.get("champion")}
                            for c in gate["checks"]], ["check", "passed", "value", "champion"]))
    parts.append("<h3>Metrics on the test rows</h3>")
    parts.append(table([{"metric": k, "this run": x, "registered": v["metrics"].get(k)}
                        for k, x in metrics.items()], ["metric", "this run", "registered"]))
    parts.append(_evaluation(ctx, v))
    history = [h for h in ctx.registry.alias_history(ctx.model_name)
               if v["version"] in (h["version"], h["previous"])]
    parts.append("<h3>Alias history of this version</h3>")
    parts.append(table([{"at": h["at"], "alias": h["alias"], "action": h["action"],
                         "move": (f"v{h['previous']} → " if h["previous"] else "→ ")
                         + f"v{h['version']}", "reason": h["reason"]} for h in history],
                       ["at", "alias", "action", "move", "reason"]))
    return parts


def _source_text(src: dict) -> str:
    if src.get("kind") == "loop":
        return (f"retrained by the loop on batch {src.get('batch')} (window "
                f"{', '.join(src.get('window') or [])}"
                + (", plus the original training rows" if src.get("include_base") else "")
                + ")")
    return src.get("kind") or "-"


def _component_text(comp: dict | None) -> str | None:
    if not comp:
        return None
    return (f"{comp.get('stage')}/{comp.get('kind')} v{comp.get('version')} "
            f"({comp.get('distribution') or comp.get('plugin')})")


def _evaluation(ctx: Any, v: dict) -> str:
    """Charts recomputed from the version's recorded test rows and its model."""
    test_bytes = rec.version_file(ctx, v, "reference", "test.parquet")
    cols_bytes = rec.version_file(ctx, v, "reference", "columns.json")
    if test_bytes is None or cols_bytes is None:
        return note("no test rows are recorded with this version (the loop keeps a retrained "
                    "model's training window, not a test split), so its curves are not drawn; "
                    "the loop report shows how it did on each batch")
    import specloop

    columns = json.loads(cols_bytes)
    test = rec.frame(test_bytes)
    model = specloop.load_model(ctx, v)
    X, y = test[columns["features"]], test[columns["target"]]
    if columns.get("task") == "regression":
        return _regression(model, X, y, columns["target"])
    return _classification(model, X, y, columns["target"])


def _classification(model: Any, X: Any, y: Any, target: str) -> str:
    import numpy as np
    from sklearn.metrics import auc, confusion_matrix, roc_curve

    pred = model.predict(X)
    classes = list(getattr(model, "classes_", sorted(set(y) | set(pred))))
    shown = classes[:MAX_CLASSES]
    cm = confusion_matrix(y, pred, labels=shown)
    totals = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, totals, out=np.zeros(cm.shape, float), where=totals > 0)
    texts = [[f"{int(n)}" for n in r] for r in cm]
    matrix = svg.heatmap("confusion-matrix", "Confusion matrix (test rows)", share.tolist(),
                         [str(c) for c in shown], [str(c) for c in shown],
                         x_label="predicted", y_label=f"actual {target}", cell_text=texts,
                         vmax=1.0)
    curves = []
    if hasattr(model, "predict_proba") and len(classes) >= 2:
        proba = model.predict_proba(X)
        positives = classes[1:2] if len(classes) == 2 else shown
        for c in positives:
            k = classes.index(c)
            fpr, tpr, _ = roc_curve(np.asarray(y) == c, proba[:, k])
            if np.isnan(tpr).any() or np.isnan(fpr).any():
                continue
            label = f"{target} = {c}" if len(classes) == 2 else f"{c} vs rest"
            curves.append({"label": label, "auc": float(auc(fpr, tpr)),
                           **dict(zip(("fpr", "tpr"), downsample_curve(fpr, tpr)))})
    roc = svg.roc_chart("roc", "ROC curve (test rows)", curves) if curves else svg.empty(
        "roc", "ROC curve", "the model has no predict_proba")
    counts = ", ".join(f"{c}: {int((np.asarray(y) == c).sum())}" for c in shown)
    return "<h3>Evaluation on the recorded test rows</h3>" + charts(
        (roc, f"{len(y)} test rows; curve kept to at most {MAX_CURVE_POINTS} points"),
        (matrix, f"share of each actual class (row); the cells give counts. Classes: {counts}"))


def downsample_curve(fpr: Any, tpr: Any, n: int = MAX_CURVE_POINTS) -> tuple[list, list]:
    """At most ``n`` points of a ROC curve, evenly along its length, ends kept."""
    import numpy as np

    fpr, tpr = np.asarray(fpr, float), np.asarray(tpr, float)
    if len(fpr) <= n:
        return fpr.round(4).tolist(), tpr.round(4).tolist()
    length = np.concatenate([[0], np.cumsum(np.hypot(np.diff(fpr), np.diff(tpr)))])
    idx = np.unique(np.searchsorted(length, np.linspace(0, length[-1], n)).clip(0, len(fpr) - 1))
    idx = np.unique(np.concatenate([[0], idx, [len(fpr) - 1]]))
    return fpr[idx].round(4).tolist(), tpr[idx].round(4).tolist()


def _regression(model: Any, X: Any, y: Any, target: str) -> str:
    import numpy as np

    pred = np.asarray(model.predict(X), float)
    actual = np.asarray(y, float)
    resid = actual - pred
    idx = np.arange(len(pred))
    if len(idx) > MAX_SCATTER_POINTS:
        idx = np.sort(np.random.default_rng(0).choice(len(idx), MAX_SCATTER_POINTS, replace=False))
    scatter = svg.scatter("residuals", "Residuals vs predicted (test rows)", pred[idx].round(4),
                          resid[idx].round(4), x_label=f"predicted {target}",
                          y_label="actual − predicted", hline=0.0)
    fitted = svg.scatter("predicted-vs-actual", "Predicted vs actual (test rows)",
                         actual[idx].round(4), pred[idx].round(4), x_label=f"actual {target}",
                         y_label=f"predicted {target}", diagonal=True, colour=svg.PALETTE[2])
    counts, edges = np.histogram(resid, bins=30)
    hist = svg.histogram_overlay("residual-histogram", "Residual distribution", edges.tolist(),
                                 [("residuals", (counts / max(len(resid), 1)).tolist(),
                                   svg.PALETTE[0])], x_label="actual − predicted")
    shown = f"{len(idx)} of {len(pred)} test rows" if len(idx) < len(pred) else \
        f"{len(pred)} test rows"
    return "<h3>Evaluation on the recorded test rows</h3>" + charts(
        (scatter, shown), (fitted, shown),
        (hist, f"mean residual {svg.fmt(float(resid.mean()))}, "
               f"std {svg.fmt(float(resid.std()))}"))


def _data(ctx: Any, doc: dict, v: dict | None) -> str:
    fp = doc.get("data_fingerprint")
    rows = [{"file": k, "md5": code(x)} for k, x in fp.items()] if isinstance(fp, dict) else \
        [{"file": "(data key)", "md5": code(fp)}] if fp else []
    split = (doc.get("stages") or {}).get("split") or {}
    meta = rec.artifact_meta(ctx, split.get("key"))
    cols_bytes = rec.version_file(ctx, v, "reference", "columns.json") if v else None
    if cols_bytes is None:
        cols_bytes = rec.indexed_file(ctx, split.get("key"), "columns.json")
    columns = json.loads(cols_bytes) if cols_bytes else {}
    parts = ["<h3>Fingerprint of the data read</h3>",
             table(rows, ["file", "md5"]) if rows else note("no data fingerprint recorded")]
    if doc.get("data_versions"):
        parts.append(kv([(k, json.dumps(x, default=str)) for k, x in
                         doc["data_versions"].items()]))
    parts.append("<h3>Split and columns</h3>")
    parts.append(kv([
        ("training rows", meta.get("train_rows")), ("test rows", meta.get("test_rows")),
        ("split key", code(split["key"]) if split.get("key") else None),
        ("version's data fingerprint", code(v["data_fingerprint"])
         if v and v.get("data_fingerprint") else None),
        ("task", columns.get("task")), ("target", columns.get("target")),
        ("features", ", ".join(columns.get("features") or []) or None),
        ("categorical", ", ".join(columns.get("categorical") or []) or None)]))
    return "".join(parts)


def _lineage(ctx: Any, doc: dict, v: dict | None) -> str:
    stages = [{"stage": name, "component": s.get("component"),
               "distribution": s.get("distribution"),
               "status": badge(s.get("status") or "-",
                               {"ran": "ok", "cached": "", "failed": "bad"}.get(
                                   s.get("status"), "warn")),
               "seconds": s.get("seconds"), "key": code(s.get("key") or "-"),
               "inputs": ", ".join(f"{k}" for k in (s.get("inputs") or {}))}
              for name, s in (doc.get("stages") or {}).items()]
    env = doc.get("environment") or {}
    git = doc.get("git") or {}
    overrides = redact(ctx, list(doc.get("overrides") or []))
    config = redact(ctx, doc.get("config") or (v or {}).get("config") or {})
    packages = [{"package": k, "version": x} for k, x in (env.get("packages") or {}).items() if x]
    return "".join([
        kv([("run id", code(doc["run_id"])), ("specloop", doc.get("specloop_version")),
            ("overrides", " ".join(overrides) or "(none)"),
            ("choices", ", ".join(f"{k}={x}" for k, x in (doc.get("choices") or {}).items())
             or None),
            ("seed", doc.get("seed")),
            ("git", (git.get("commit") or "") + (" (dirty)" if git.get("dirty") else "")
             or None),
            ("python", f"{env.get('python', '?')} on {env.get('platform', '?')}")]),
        "<h3>Stages</h3>",
        table(stages, ["stage", "component", "distribution", "status", "seconds", "key",
                       "inputs"]),
        details("Package versions", table(packages, ["package", "version"])),
        details("Configuration (secrets masked)",
                pre(yaml.safe_dump(config, sort_keys=False, default_flow_style=False)))])
