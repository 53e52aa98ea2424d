"""Converting a version to ONNX, checking it against its pipeline, and running it.

An export is an artifact in the store: ``model.onnx`` under a key made of the version's model
bytes (their recorded SHA-256), the conversion settings and the converter's versions, so an
upgrade of skl2onnx or ONNX Runtime exports (and checks) again. It is written only once the
parity check passed, and its record in the registry's artifact index carries that check; it
is read back only through the store's verified ``get`` (the bytes must match the recorded
SHA-256), so the serving process never hands ONNX Runtime bytes nobody recorded.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any, Callable

from specloop import ArtifactError, ConfigError, StageError

from . import OnnxConf

#: Bump when what an export holds, or how it is checked, changes.
EXPORT_VERSION = 1
ONNX_FILE = "model.onnx"
# conversion settings that change the exported bytes or the check they passed
_KEYED = ("dtype", "sample_rows", "atol", "rtol", "target_opset")


def runtime_versions() -> dict[str, str]:
    """The converter's and the runtime's versions (recorded with every export)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("skl2onnx", "onnx", "onnxruntime"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # e.g. onnxruntime-gpu provides the module
            out[name] = __import__(name).__version__
    return out


def model_sha256(version: dict) -> str:
    """The SHA-256 the registry recorded for the version's model file."""
    for rec in version.get("artifacts") or []:
        if rec["role"] == "model" and rec["file"] == "model.bin":
            return rec["sha256"]
    raise ArtifactError(f"version {version.get('version')} has no recorded model hash; an "
                        "ONNX export needs one", fix="register the model again with this "
                        "specloop (specloop run)")


def export_key(version: dict, conf: OnnxConf) -> str:
    """The store key of a version's export under ``conf``."""
    doc = {"export": EXPORT_VERSION, "model_sha256": model_sha256(version),
           "conf": {k: getattr(conf, k) for k in _KEYED}, "versions": runtime_versions()}
    raw = json.dumps(doc, sort_keys=True, default=str).encode()
    return "onnx-" + hashlib.sha256(raw).hexdigest()[:32]


# -- what skl2onnx can convert ---------------------------------------------------------------
def _steps(obj: Any, path: str) -> list[tuple[str, Any]]:
    """Every leaf step of a fitted pipeline, with a readable path (``preprocess › cat``)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline

    join = (lambda name: f"{path} › {name}") if path else (lambda name: name)
    if isinstance(obj, Pipeline):
        return [s for name, step in obj.steps for s in _steps(step, join(name))]
    if isinstance(obj, ColumnTransformer):
        return [s for name, step, _ in obj.transformers_ for s in _steps(step, join(name))]
    if isinstance(obj, FeatureUnion):
        return [s for name, step in obj.transformer_list for s in _steps(step, join(name))]
    return [(path or type(obj).__name__, obj)]


def refusal(model: Any) -> str | None:
    """Why the fitted pipeline cannot be exported faithfully, naming the step, or ``None``."""
    import numpy as np
    from skl2onnx import supported_converters

    try:  # converters registered with skl2onnx.update_registered_converter count too
        from skl2onnx._supported_operators import sklearn_operator_name_map
        known = {cls.__name__ for cls in sklearn_operator_name_map}
    except ImportError:
        known = set()
    known |= set(supported_converters(from_sklearn=True))
    for path, step in _steps(model, ""):
        if isinstance(step, str):  # "passthrough" / "drop"
            continue
        name = type(step).__name__
        if name not in known:
            return (f"step '{path}' ({type(step).__module__}.{name}) has no ONNX converter "
                    "in skl2onnx")
        if np.any(getattr(step, "is_categorical_", None) is not None and
                  np.asarray(step.is_categorical_)):
            return (f"step '{path}' ({name}) uses native categorical splits, which skl2onnx "
                    "does not convert")
        for cats in getattr(step, "categories_", None) or []:
            if getattr(cats, "dtype", None) == object and any(
                    c is None or (isinstance(c, float) and c != c) for c in cats):
                return (f"step '{path}' ({name}) learned a missing value as a category; an "
                        "ONNX string input cannot carry a missing value")
    return None


# -- converting ------------------------------------------------------------------------------
def _tensor_types(signature: dict, dtype: str) -> list:
    from skl2onnx.common.data_types import (DoubleTensorType, FloatTensorType,
                                            StringTensorType)

    number = DoubleTensorType if dtype == "float64" else FloatTensorType
    return [(f["name"], StringTensorType([None, 1]) if f["type"] == "string"
             else number([None, 1])) for f in signature["inputs"]]


def _final(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return _final(steps[-1][1]) if steps else model


def convert(model: Any, signature: dict, conf: OnnxConf, threads: int = 1) -> "OnnxModel":
    """The ONNX model of a fitted pipeline, as an :class:`OnnxModel` (raises a
    :class:`specloop.ConfigError` naming the step that cannot be converted)."""
    from skl2onnx import to_onnx

    model = _string_nulls_as_empty(model)
    why = refusal(model)
    if why:
        raise ConfigError(f"the model cannot be exported to ONNX: {why}", key="deploy.kind",
                          expected="a pipeline of steps skl2onnx converts (see "
                                   "skl2onnx.supported_converters())",
                          fix="choose another model or preprocessing, or another deploy target")
    classifier = signature.get("task") == "classification" and hasattr(model, "predict_proba")
    options = {id(_final(model)): {"zipmap": False}} if classifier else None
    # float64 keeps linear models exact; ONNX Runtime's tree ensembles compute in float32 only
    tried = ["float64", "float32"] if conf.dtype == "auto" else [conf.dtype]
    failure: Exception | None = None
    for dtype in tried:
        try:
            proto = to_onnx(model, initial_types=_tensor_types(signature, dtype),
                            target_opset=conf.target_opset, options=options)
            data = proto.SerializeToString()
            opset = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
            cls = OnnxClassifier if classifier else OnnxModel
            return cls(data, signature, dtype=dtype, opset=opset, threads=threads,
                       classes=list(model.classes_) if classifier else None)
        except Exception as exc:  # noqa: BLE001 - a converter's or runtime's own failure
            failure = exc
    text = f"{type(failure).__name__}: {failure}"
    raise ConfigError("skl2onnx could not convert the model: " + _short(text),
                      key="deploy.kind", expected="a pipeline skl2onnx converts",
                      fix="choose another model or preprocessing, or another deploy target")


def _string_nulls_as_empty(model: Any) -> Any:
    """A copy of the pipeline whose string imputers look for ``""`` instead of ``NaN``: ONNX
    string inputs cannot carry ``NaN``, and :class:`OnnxModel` sends a missing string as
    ``""``, so the imputer then does what the pipeline's does with ``NaN`` (the parity check
    confirms it). skl2onnx converts string imputers only for a string ``missing_values``."""
    import copy

    from sklearn.impute import SimpleImputer

    def string_nan(step: Any) -> bool:
        if not isinstance(step, SimpleImputer):
            return False
        mv = step.missing_values
        return getattr(step.statistics_, "dtype", None) == object and (
            mv is None or (isinstance(mv, float) and mv != mv))

    if not any(string_nan(step) for _, step in _steps(model, "") if not isinstance(step, str)):
        return model
    model = copy.deepcopy(model)
    for _, step in _steps(model, ""):
        if not isinstance(step, str) and string_nan(step):
            step.missing_values = ""
    return model


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + " …"


class OnnxModel:
    """An ONNX model in ONNX Runtime, scored from JSON records or a DataFrame as the
    pipeline it was converted from is."""

    INLINE_ROWS = 4  # up to this many rows a call is cheap enough to run on the event loop

    def __init__(self, data: bytes, signature: dict, *, dtype: str, opset: dict,
                 threads: int = 1, classes: list | None = None) -> None:
        import numpy as np
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = max(int(threads), 1)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        self.session = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        self.data, self.dtype, self.opset = data, dtype, opset
        self.sha256 = hashlib.sha256(data).hexdigest()
        self._np = np.float64 if dtype == "float64" else np.float32
        names = [i.name for i in self.session.get_inputs()]
        self.inputs = [(onnx_name, f["name"], f["type"] == "string")
                       for onnx_name, f in zip(names, signature["inputs"])]
        outs = [o.name for o in self.session.get_outputs()]
        self.classes_ = None if classes is None else np.asarray(classes)
        self._proba = "probabilities" if "probabilities" in outs else None
        self._label = "label" if "label" in outs else outs[0]

    def _feed(self, X: Any) -> dict:
        import numpy as np

        records = isinstance(X, list)
        feed = {}
        for onnx_name, name, string in self.inputs:
            col = [r[name] for r in X] if records else X[name].tolist()
            if string:  # a missing value is an unseen category (as NaN is to a one-hot encoder)
                arr = np.array(["" if v is None or v != v else str(v) for v in col],
                               dtype=object)
            else:
                arr = np.array([np.nan if v is None else v for v in col], dtype=self._np)
            feed[onnx_name] = arr.reshape(-1, 1)
        return feed

    def predict(self, X: Any) -> Any:
        """Labels (classifier) or values (regressor) for records or a DataFrame."""
        import numpy as np

        out = self.session.run([self._label], self._feed(X))[0]
        return np.asarray(out).ravel() if self.classes_ is not None else \
            np.asarray(out, dtype=np.float64).ravel()

    def scores(self, X: Any) -> Any:
        """Per-class probabilities (float64) for records or a DataFrame (classifiers)."""
        import numpy as np

        return np.asarray(self.session.run([self._proba], self._feed(X))[0], dtype=np.float64)


class OnnxClassifier(OnnxModel):
    """An :class:`OnnxModel` of a probabilistic classifier."""

    def predict_proba(self, X: Any) -> Any:
        """Per-class probabilities, as ``predict_proba`` of the pipeline."""
        return self.scores(X)


def _runner(data: bytes, signature: dict, meta: dict, threads: int) -> OnnxModel:
    cls = OnnxClassifier if meta.get("classes") is not None else OnnxModel
    return cls(data, signature, dtype=meta["dtype"], opset=meta["opset"], threads=threads,
               classes=meta.get("classes"))


# -- parity ----------------------------------------------------------------------------------
def test_sample(ctx: Any, version: dict, rows: int, signature: dict) -> tuple[Any, str]:
    """Up to ``rows`` of the version's recorded test rows (seeded sample), read through the
    store's verified reads, and where they came from; probe records built from the signature
    when the version recorded no rows (registered without a split)."""
    import pandas as pd

    ref = version.get("reference_key")
    recorded = {r["file"]: r["sha256"] for r in version.get("artifacts") or []
                if r["role"] == "reference" and r["key"] == ref}
    name = next((n for n in ("test.parquet", "train.parquet") if n in recorded), None)
    if ref is None or name is None:
        return probes(signature, rows), "probe records from the signature (no recorded rows)"
    frame = pd.read_parquet(io.BytesIO(ctx.store.get(ref, name, registered=recorded[name])))
    if len(frame) > rows:
        frame = frame.sample(n=rows, random_state=0).sort_index()
    return frame, f"{name} of {ref}"


def probes(signature: dict, rows: int) -> Any:
    """Records covering every training category and numbers of several signs and scales."""
    import numpy as np
    import pandas as pd

    numbers = [0.0, 1.0, -1.0, 0.5, 2.5, -3.0, 10.0, -10.0, 100.0, 1000.0, 0.01]
    n = min(rows, max(len(numbers), *(len(f.get("values") or []) + 1
                                       for f in signature["inputs"])))
    cols = {}
    for k, f in enumerate(signature["inputs"]):
        if f["type"] == "string":
            values = list(f.get("values") or []) + ["<unseen>"]
            cols[f["name"]] = np.array([values[(i + k) % len(values)] for i in range(n)],
                                       dtype=object)
        elif f["type"] == "boolean":
            cols[f["name"]] = np.array([(i + k) % 2 == 0 for i in range(n)])
        else:
            vals = [numbers[(i + k) % len(numbers)] for i in range(n)]
            cols[f["name"]] = np.array(vals, dtype=np.int64 if f["type"] == "integer"
                                       else float)
    return pd.DataFrame(cols)


def parity(model: Any, onnx_model: OnnxModel, frame: Any, conf: OnnxConf) -> dict:
    """Compare the ONNX model with the pipeline on ``frame``: probabilities within ``atol``
    and the same labels (classifiers), predictions within ``atol + rtol·|y|`` (regressors)."""
    import numpy as np

    features = [name for _, name, _ in onnx_model.inputs]
    X = frame[features]
    doc: dict[str, Any] = {"rows": len(X), "atol": conf.atol}
    if isinstance(onnx_model, OnnxClassifier):
        ref, got = model.predict_proba(X), onnx_model.predict_proba(X)
        diff = _diff(ref, got)
        mism = int(np.sum(np.asarray(model.predict(X)) != onnx_model.predict(X)))
        doc.update(compared="probabilities and labels", max_abs_diff=diff,
                   label_mismatches=mism, passed=bool(diff <= conf.atol and mism == 0))
    else:
        ref = np.asarray(model.predict(X), dtype=np.float64).ravel()
        got = onnx_model.predict(X)
        d = np.abs(ref - got)
        d[np.isnan(ref) & np.isnan(got)] = 0.0
        allowed = conf.atol + conf.rtol * np.abs(ref)
        doc.update(compared="predictions", rtol=conf.rtol, max_abs_diff=_diff(ref, got),
                   rows_outside=int(np.sum(~(d <= allowed))),
                   passed=bool(np.all(d <= allowed)))
    return doc


def _diff(a: Any, b: Any) -> float:
    import numpy as np

    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    d[np.isnan(np.asarray(a, dtype=float)) & np.isnan(np.asarray(b, dtype=float))] = 0.0
    return float(np.nan_to_num(d, nan=np.inf).max()) if d.size else 0.0


def describe(p: dict) -> str:
    """One line about a parity check."""
    head = f"ONNX parity on {p['rows']} test rows: max |Δ| {p['max_abs_diff']:.3g}"
    if "label_mismatches" in p:
        tail = f", {p['label_mismatches']} label(s) differ"
    else:
        tail = f", {p['rows_outside']} row(s) outside atol {p['atol']:g} + rtol {p['rtol']:g}"
    return f"{head} (atol {p['atol']:g}){tail}: {'passed' if p['passed'] else 'FAILED'}"


# -- exports in the store --------------------------------------------------------------------
def ensure_export(ctx: Any, version: dict, signature: dict, conf: OnnxConf,
                  load: Callable[[], Any]) -> tuple[OnnxModel, dict, str]:
    """The version's export under ``conf``: the recorded one when its bytes still match their
    record, else converted, checked and recorded now. Returns the runner, the export's record
    (dtype, opset, parity, versions …) and its key. A failed check raises
    :class:`specloop.StageError` and records nothing."""
    key = export_key(version, conf)
    threads = ctx.spec.project.threads or 1
    with ctx.store.lock(key):
        found = _recorded(ctx, key, signature, threads)
        if found is not None:
            return (*found, key)
        model = load()
        onnx_model = convert(model, signature, conf, threads)
        frame, source = test_sample(ctx, version, conf.sample_rows, signature)
        check = {**parity(model, onnx_model, frame, conf), "sample": source}
        if not check["passed"]:
            raise StageError(f"the ONNX export of v{version['version']} does not match its "
                             f"pipeline: {describe(check)}; nothing was deployed",
                             stage="deploy", component="deploy/onnx")
        meta = {"stage": "onnx-export", "version": version["version"],
                "model_key": version["model_key"], "model_sha256": model_sha256(version),
                "dtype": onnx_model.dtype, "opset": onnx_model.opset,
                "classes": None if onnx_model.classes_ is None
                else [c.item() if hasattr(c, "item") else c for c in onnx_model.classes_],
                "parity": check, **runtime_versions()}
        ctx.store.put(key, {ONNX_FILE: onnx_model.data}, meta)
    return onnx_model, meta, key


def _recorded(ctx: Any, key: str, signature: dict, threads: int) -> tuple | None:
    """The recorded export under ``key`` whose bytes match their record, or ``None`` when
    there is none, or its file is missing or changed (it is then exported again)."""
    record = ctx.store.record(key)
    if record is None or not (record.get("parity") or {}).get("passed"):
        return None
    try:
        data = ctx.store.get(key, ONNX_FILE)
    except ArtifactError:
        return None
    return _runner(data, signature, record, threads), record


def spec_conf(ctx: Any) -> OnnxConf:
    """The spec's ``onnx`` deploy settings, or the defaults when it deploys elsewhere."""
    deploy = ctx.spec.components.get("deploy")
    if deploy is not None and deploy.spec.kind == "onnx":
        return deploy.config
    return OnnxConf()


def load_onnx(ctx: Any, version: dict, signature: dict) -> OnnxModel:
    """What ``specloop serve --runtime onnx`` scores with (see :func:`ensure_export`)."""
    from specloop import load_model

    runner, record, key = ensure_export(ctx, version, signature, spec_conf(ctx),
                                        lambda: load_model(ctx, version))
    runner.record = {"key": key, "sha256": runner.sha256, "dtype": record["dtype"],
                     "opset": record["opset"], "parity": record["parity"]}
    return runner
