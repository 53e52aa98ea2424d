"""The ``batch`` target: score a data set with the champion into one Parquet file.

Rows are read, scored and written one chunk at a time (a Parquet row group per chunk), so
memory is bounded by ``chunk_size`` whatever the size of the input. A local output file is
written under a temporary name and renamed into place; on an object store the file appears
when its upload completes. The result records the output's SHA-256 and the input files'
fingerprints: ``verify`` re-scores when either changed.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any, Iterator

from specloop import ConfigError, open_url, progress, remote_errors


class BatchScorer:
    """Scores ``input`` with the deployed model version into ``output``."""

    def __init__(self, config: Any) -> None:
        self.config = config

    # -- where -------------------------------------------------------------------------------
    def _remote(self) -> bool:
        return "://" in self.config.output and not self.config.output.startswith("file://")

    def _local_path(self, ctx: Any) -> Path:
        path = Path(self.config.output.removeprefix("file://"))
        return path if path.is_absolute() else ctx.project_dir / path

    def location(self, ctx: Any) -> str:
        """The output file: an absolute path, or the URL."""
        return self.config.output if self._remote() else str(self._local_path(ctx))

    # -- deploy ------------------------------------------------------------------------------
    def deploy(self, bundle: dict, ctx: Any) -> dict:
        """Score every row of the input and return where the scores are, and what they are."""
        source = self.config.input.build()
        features = [f["name"] for f in bundle["signature"]["inputs"]]
        src_ctx = _input_ctx(ctx, self.config.input.key)
        fingerprint = source.fingerprint(src_ctx)  # fails early if the input is missing
        model = bundle["load_model"]()
        classifier = bundle["signature"].get("task") == "classification" and \
            hasattr(model, "predict_proba")
        total = _count(source, src_ctx)
        bar = progress(total=total, desc="score", unit="row", disable=not self.config.progress)
        rows = 0
        if self._remote():
            fs, path = open_url(self.config.output, self.config.storage_options,
                                key="deploy.output")
            with remote_errors(self.config.output, self.config.storage_options,
                               key="deploy.output"):
                fh = fs.open(path, "wb")
                try:
                    rows = self._write(fh, source, src_ctx, model, features, classifier,
                                       bar)
                except BaseException:
                    _discard(fh)  # closing would upload a partial file
                    raise
                fh.close()
            with remote_errors(self.config.output, self.config.storage_options,
                               key="deploy.output"):
                sha = _sha_file(fs.open(path, "rb"))
        else:
            target = self._local_path(ctx)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
            try:
                with open(tmp, "wb") as fh:
                    rows = self._write(fh, source, src_ctx, model, features, classifier,
                                       bar)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            sha = _sha_file(open(target, "rb"))
        bar.close()
        ctx.say(f"deploy: scored {rows} rows with version {bundle['version']['version']} "
                f"into {self.location(ctx)}")
        return {"location": self.location(ctx), "version": bundle["version"]["version"],
                "sha256": hashlib.sha256(bundle["model"]).hexdigest(), "rows": rows,
                "output_sha256": sha, "input": fingerprint}

    def _write(self, fh: Any, source: Any, ctx: Any, model: Any, features: list[str],
               classifier: bool, bar: Any) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = schema = None
        rows = 0
        try:
            for chunk in _chunks(source, ctx, self.config.chunk_size):
                if len(chunk) == 0:
                    continue
                table = self._score(chunk, model, features, classifier)
                if writer is None:
                    schema = table.schema
                    writer = pq.ParquetWriter(fh, schema)
                elif table.schema != schema:  # e.g. an int column that is float in one chunk
                    table = table.cast(schema)
                writer.write_table(table)
                rows += len(chunk)
                bar.update(len(chunk))
            if writer is None:  # an empty input still gives a readable (empty) file
                writer = pq.ParquetWriter(fh, pa.schema([("prediction", pa.float64())]))
        finally:
            if writer is not None:
                writer.close()
        return rows

    def _score(self, chunk: Any, model: Any, features: list[str], classifier: bool) -> Any:
        import pandas as pd
        import pyarrow as pa

        missing = [c for c in features + list(self.config.passthrough) if c not in chunk.columns]
        if missing:
            raise ConfigError(f"the batch input lacks columns the model needs: {missing}",
                              key="deploy.input", expected="every feature of the model's "
                              f"signature ({', '.join(features)}) and each passthrough column",
                              fix="score a file with the training columns, or fix "
                                  "deploy.passthrough")
        X = chunk[features]
        out = pd.DataFrame({c: chunk[c].to_numpy() for c in self.config.passthrough})
        out["prediction"] = model.predict(X)
        if classifier:
            proba = model.predict_proba(X)
            for i, label in enumerate(getattr(model, "classes_", range(proba.shape[1]))):
                out[f"proba_{label}"] = proba[:, i]
        return pa.Table.from_pandas(out, preserve_index=False)

    # -- verify ------------------------------------------------------------------------------
    def verify(self, result: dict, ctx: Any) -> bool:
        """Whether the scores file is intact and was made from the input as it is now (a
        scores file that is gone is ``False``; an input that cannot be read is an error)."""
        try:
            if self._remote():
                fs, path = open_url(result["location"], self.config.storage_options,
                                    key="deploy.output")
                fs.invalidate_cache(path)
                sha = _sha_file(fs.open(path, "rb"))
            else:
                sha = _sha_file(open(result["location"], "rb"))
        except FileNotFoundError:
            return False
        if sha != result.get("output_sha256"):
            return False
        fingerprint = self.config.input.build().fingerprint(
            _input_ctx(ctx, self.config.input.key))
        return fingerprint == result.get("input")


def _input_ctx(ctx: Any, key: str) -> Any:
    """The context of the input's own node (``deploy.input``), so its errors name its keys."""
    node = getattr(getattr(ctx, "run", None), "node", None)
    return node(key) if callable(node) else ctx


def _chunks(source: Any, ctx: Any, size: int) -> Iterator[Any]:
    """The input in chunks; a data component without ``chunks`` is loaded and sliced."""
    if callable(getattr(source, "chunks", None)):
        yield from source.chunks(ctx, size)
        return
    frame = source.load(ctx)
    for start in range(0, len(frame), size):
        yield frame.iloc[start:start + size]


def _count(source: Any, ctx: Any) -> int | None:
    count = getattr(source, "count_rows", None)
    try:
        return count(ctx) if callable(count) else None
    except (OSError, ValueError):
        return None


def _discard(fh: Any) -> None:
    """Abandon an upload in progress: nothing appears at the URL."""
    discard = getattr(fh, "discard", None)
    if callable(discard):
        discard()
    try:
        fh.closed = True  # fsspec files upload on close; this one must not
    except AttributeError:
        pass


def _sha_file(fh: Any) -> str:
    digest = hashlib.sha256()
    with fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
