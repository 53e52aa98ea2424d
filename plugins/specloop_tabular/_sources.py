"""The data source components (pandas is imported here, when a source is used)."""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import os
from pathlib import Path
from typing import Any, Iterator

from specloop import Batch, BatchNotReady, ConfigError


class FileSource:
    """Reads one file, or every file a glob matches (sorted; one loop batch each)."""

    reader = "csv"

    def __init__(self, config: Any) -> None:
        self.config = config

    def _files(self, ctx: Any) -> list[Path]:
        key = f"{_key(ctx)}.path"
        pattern = self.config.path
        full = pattern if os.path.isabs(pattern) else str(ctx.project_dir / pattern)
        files = sorted(Path(p) for p in glob.glob(full)) if glob.has_magic(full) else \
            ([Path(full)] if Path(full).is_file() else [])
        if not files:
            raise ConfigError(f"no data file matches {pattern!r}", key=key,
                              file=ctx.spec.provenance.where(key), got=pattern,
                              expected=f"an existing {self.reader} file (relative to "
                                       f"{ctx.project_dir})",
                              fix="fix the path, or generate the data first")
        return files

    def _dvc(self, ctx: Any):
        """The DVC location when ``rev`` or ``repo`` is set, else ``None`` (workspace files)."""
        if self.config.rev is None and self.config.repo is None:
            return None
        if glob.has_magic(self.config.path):
            key = f"{_key(ctx)}.path"
            raise ConfigError(f"{_key(ctx)}.rev reads one file, not a glob", key=key,
                              file=ctx.spec.provenance.where(key), got=self.config.path,
                              expected="the path of one DVC-tracked file",
                              fix="name one file, or remove data.rev")
        from ._dvc import DvcLocation

        return DvcLocation(ctx, self.config)

    def fingerprint(self, ctx: Any) -> dict[str, str]:
        """``{path: md5}`` of the files read (their content identifies the data).

        At a DVC revision, the md5 is DVC's, read from the revision's ``.dvc`` pointer.
        """
        from specloop import file_md5

        loc = self._dvc(ctx)
        if loc is not None:
            return {self.config.path: loc.md5()}
        return {os.path.relpath(p, ctx.project_dir): file_md5(p) for p in self._files(ctx)}

    def versions(self, ctx: Any, fingerprint: dict[str, str]) -> dict[str, dict]:
        """Per file: DVC's md5, the revision and the commit that hold it (DVC-tracked only)."""
        loc = self._dvc(ctx)
        if loc is not None:
            return {path: loc.record(md5) for path, md5 in fingerprint.items()}
        from ._dvc import workspace_record

        out = {}
        for path, md5 in fingerprint.items():
            rec = workspace_record(ctx, ctx.project_dir / path, md5)
            if rec is not None:
                out[path] = rec
        return out

    def _parse(self, data: bytes, name: str, key: str = "data.path") -> Any:
        """The frame of a file's bytes (read once: the caller hashed these very bytes)."""
        import pandas as pd

        if self.reader == "csv":
            _no_duplicate_header(data, name, self.config.options, key)
        try:
            if self.reader == "csv":
                return pd.read_csv(io.BytesIO(data), **self.config.options)
            return pd.read_parquet(io.BytesIO(data), **self.config.options)
        except (ValueError, OSError, pd.errors.ParserError) as exc:
            if isinstance(exc, pd.errors.EmptyDataError):
                return pd.DataFrame()
            raise ConfigError(f"cannot read {name} as {self.reader}", key=key,
                              file=name, expected=f"a readable {self.reader} file",
                              fix="check the file's format", extra=[("detail", str(exc))]) from None

    def snapshot(self, ctx: Any) -> tuple[Any, dict[str, str]]:
        """Every matched file read once, concatenated in path order, with ``{path: md5}`` of
        exactly the bytes parsed (the same fingerprint :meth:`fingerprint` gives)."""
        import pandas as pd

        loc = self._dvc(ctx)
        if loc is not None:
            data = _verified(loc, self.config.path)
            return self._parse(data, os.path.basename(self.config.path), f"{_key(ctx)}.path"), \
                {self.config.path: hashlib.md5(data).hexdigest()}
        frames, read = [], {}
        for p in self._files(ctx):
            data = p.read_bytes()
            read[os.path.relpath(p, ctx.project_dir)] = hashlib.md5(data).hexdigest()
            frames.append(self._parse(data, str(p), f"{_key(ctx)}.path"))
        return (frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)), read

    def load(self, ctx: Any) -> Any:
        """Every matched file, concatenated in path order."""
        return self.snapshot(ctx)[0]

    def chunks(self, ctx: Any, size: int) -> Iterator[Any]:
        """The rows of every matched file as DataFrames of at most ``size`` rows, read
        incrementally (CSV through pandas' ``chunksize``, Parquet through pyarrow's
        ``iter_batches``), so memory is bounded by ``size`` rather than the file."""
        import pandas as pd

        key = f"{_key(ctx)}.path"
        for path in self._files(ctx):
            try:
                if self.reader == "csv":
                    with pd.read_csv(path, chunksize=size, **self.config.options) as reader:
                        yield from reader
                else:
                    import pyarrow.parquet as pq

                    for batch in pq.ParquetFile(path).iter_batches(batch_size=size):
                        yield batch.to_pandas()
            except (ValueError, OSError, pd.errors.ParserError) as exc:
                if isinstance(exc, pd.errors.EmptyDataError):
                    continue
                raise ConfigError(f"cannot read {path.name} as {self.reader}", key=key,
                                  file=str(path), expected=f"a readable {self.reader} file",
                                  fix="check the file's format",
                                  extra=[("detail", str(exc))]) from None

    def count_rows(self, ctx: Any) -> int | None:
        """The number of rows of the matched files without loading them (for progress)."""
        total = 0
        for path in self._files(ctx):
            if self.reader == "parquet":
                import pyarrow.parquet as pq

                total += pq.ParquetFile(path).metadata.num_rows
                continue
            lines, last = 0, b"\n"
            with open(path, "rb") as fh:
                while block := fh.read(1 << 20):
                    lines += block.count(b"\n")
                    last = block[-1:]
            total += max(lines + (last != b"\n") - 1, 0)  # minus the header
        return total

    def batches(self, ctx: Any) -> list[Batch]:
        """One batch per file, its id the file's stem. A batch reads its file once; a CSV
        whose last line has no newline, or a file that does not parse to its end, is not
        complete yet (:class:`specloop.BatchNotReady`)."""
        from specloop import file_md5

        key = f"{_key(ctx)}.path"
        out = []
        for p in self._files(ctx):
            try:
                out.append(Batch(p.stem, file_md5(p), lambda p=p: self._read_batch(p, key),
                                 p.stat().st_mtime))
            except FileNotFoundError:  # removed since it was listed: not a batch any more
                continue
        return out

    def _read_batch(self, path: Path, key: str) -> tuple[Any, str]:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # removed or being replaced: look again next time
            raise BatchNotReady("the file went away before it was read") from None
        if self.reader == "csv" and data and not data.endswith(b"\n"):
            raise BatchNotReady("its last line has no newline")
        try:
            frame = self._parse(data, str(path), key)
        except ConfigError as exc:
            if "duplicate" in exc.args[0]:
                raise
            raise BatchNotReady(f"not readable as {self.reader}: "
                                f"{dict(exc.extra).get('detail', exc.args[0])}") from None
        return frame, hashlib.md5(data).hexdigest()


def _key(ctx: Any) -> str:
    """The spec key of the source's node (``data``, ``loop.incoming``, ``deploy.input`` …)."""
    return getattr(ctx, "key", None) or "data"


def _no_duplicate_header(data: bytes, name: str, options: dict, key: str) -> None:
    """Refuse a CSV header that names a column twice (pandas would rename the second
    ``amount.1`` and the model would learn from a column nobody declared)."""
    sep = options.get("sep", options.get("delimiter", ","))
    if not isinstance(sep, str) or len(sep) != 1 or options.get("header", 0) != 0:
        return
    first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    names = next(csv.reader([first], delimiter=sep), [])
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{name} names the column(s) {dupes} more than once in its header",
                          key=key, file=name, got=dupes, expected="every column name once",
                          fix="rename or drop the duplicate columns in the file")


def _verified(loc: Any, path: str) -> bytes:
    """The bytes DVC returns, checked against the md5 the cache key was made from."""
    data = loc.read_bytes()
    expected, got = loc.md5(), hashlib.md5(data).hexdigest()
    if expected != got:
        raise ConfigError(f"DVC returned other bytes for {path!r} than its pointer records",
                          key="data.rev", got=got, expected=f"md5 {expected}",
                          fix="run 'dvc fetch' / 'dvc push' so cache and remote agree")
    return data


class CsvSource(FileSource):
    """CSV files."""

    reader = "csv"


class ParquetSource(FileSource):
    """Parquet files."""

    reader = "parquet"


class SklearnDataset:
    """A data set bundled with scikit-learn, as a frame with a ``target`` column."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def fingerprint(self, ctx: Any) -> dict[str, str]:
        """The data set's name and the scikit-learn version that ships it."""
        from importlib.metadata import version

        return {f"sklearn:{self.config.name}": version("scikit-learn")}

    def load(self, ctx: Any):
        """Load the data set as a DataFrame."""
        import sklearn.datasets as ds

        bunch = getattr(ds, f"load_{self.config.name}")(as_frame=True)
        frame = bunch.frame.copy()
        if "target" not in frame.columns:
            frame["target"] = bunch.target
        frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
        return frame

    def batches(self, ctx: Any) -> list[Batch]:
        """A bundled data set is one batch."""
        fingerprint = self.fingerprint(ctx)[f"sklearn:{self.config.name}"]
        return [Batch(self.config.name, fingerprint, lambda: (self.load(ctx), fingerprint))]
