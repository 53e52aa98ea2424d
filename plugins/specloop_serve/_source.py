"""The ``serving_logs`` data source: logged serving traffic as loop batches.

Each sealed log part is one batch (id ``serve-<date>-<part>``, fingerprint its SHA-256), so
``loop.incoming: {kind: serving_logs}`` lets ``specloop loop`` monitor live traffic against
the champion's reference and let the retraining policy decide. The frame holds the logged
feature values (and the target column only if it was logged, which it is not by default:
drift policies work on unlabeled traffic, decay policies need labels).
"""

from __future__ import annotations

import hashlib
from typing import Any

from specloop import Batch

from ._logs import log_parts, read_part


class ServingLogsSource:
    """Reads the request logs that ``specloop serve`` writes to the store."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def _model(self, ctx: Any) -> str:
        return self.config.model or ctx.model_name

    def _frame(self, ctx: Any, paths: list[str]) -> Any:
        import pandas as pd

        recs = [r for p in paths for r in read_part(ctx.store, p)]
        return pd.DataFrame([r["inputs"] for r in recs])

    def fingerprint(self, ctx: Any) -> dict[str, str]:
        """``{part: sha256}`` of the sealed parts."""
        return {p.rsplit("/", 2)[-2] + "/" + p.rsplit("/", 1)[-1]: _sha(ctx.store, p)
                for p in log_parts(ctx.store, self._model(ctx), sealed_only=True)}

    def load(self, ctx: Any) -> Any:
        """Every sealed part, as one frame."""
        from specloop import ConfigError

        paths = log_parts(ctx.store, self._model(ctx), sealed_only=True)
        if not paths:
            raise ConfigError(f"no sealed request logs for model {self._model(ctx)!r} in "
                              f"{ctx.store.root}/logs", key="data.kind",
                              expected="logs written by 'specloop serve'",
                              fix="serve traffic first; parts are sealed when they rotate or "
                                  "the server stops")
        return self._frame(ctx, paths)

    def batches(self, ctx: Any) -> list[Batch]:
        """One batch per sealed part with at least ``min_rows`` rows (sealed parts never
        change: the fingerprint is of the bytes the batch parses)."""
        out = []
        for p in log_parts(ctx.store, self._model(ctx), sealed_only=True):
            date, name = p.rsplit("/", 2)[-2:]
            data = _bytes(ctx.store, p)
            if data.count(b"\n") < self.config.min_rows:
                continue
            sha = hashlib.sha256(data).hexdigest()
            out.append(Batch(f"serve-{date}-{name.removesuffix('.jsonl')}", sha,
                             lambda p=p, sha=sha: (self._frame(ctx, [p]), sha)))
        return out


def _bytes(store: Any, path: str) -> bytes:
    if store.local:
        with open(path, "rb") as fh:
            return fh.read()
    return store.fs.cat_file(path)


def _sha(store: Any, path: str) -> str:
    return hashlib.sha256(_bytes(store, path)).hexdigest()
