"""The data source components (pandas is imported here, when a source is used)."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from specloop import ConfigError


class FileSource:
    """Reads one file, or every file a glob matches (sorted; one loop batch each)."""

    reader = "csv"

    def __init__(self, config: Any) -> None:
        self.config = config

    def _files(self, ctx: Any, key: str = "data.path") -> list[Path]:
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

    def fingerprint(self, ctx: Any) -> dict[str, str]:
        """``{path: md5}`` of the files read (their content identifies the data)."""
        from specloop import file_md5

        return {os.path.relpath(p, ctx.project_dir): file_md5(p) for p in self._files(ctx)}

    def _read(self, path: Path):
        import pandas as pd

        try:
            if self.reader == "csv":
                return pd.read_csv(path, **self.config.options)
            return pd.read_parquet(path, **self.config.options)
        except (ValueError, OSError, pd.errors.ParserError) as exc:
            if isinstance(exc, pd.errors.EmptyDataError):
                return pd.DataFrame()
            raise ConfigError(f"cannot read {path.name} as {self.reader}", key="data.path",
                              file=str(path), expected=f"a readable {self.reader} file",
                              fix="check the file's format", extra=[("detail", str(exc))]) from None

    def load(self, ctx: Any):
        """Every matched file, concatenated in path order."""
        import pandas as pd

        frames = [self._read(p) for p in self._files(ctx)]
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    def chunks(self, ctx: Any, size: int, key: str = "data.path") -> Iterator[Any]:
        """The rows of every matched file as DataFrames of at most ``size`` rows, read
        incrementally (CSV through pandas' ``chunksize``, Parquet through pyarrow's
        ``iter_batches``), so memory is bounded by ``size`` rather than the file."""
        import pandas as pd

        for path in self._files(ctx, key=key):
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

    def count_rows(self, ctx: Any, key: str = "data.path") -> int | None:
        """The number of rows of the matched files without loading them (for progress)."""
        total = 0
        for path in self._files(ctx, key=key):
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

    def batches(self, ctx: Any) -> list[tuple[str, str, Callable[[], Any]]]:
        """One ``(batch_id, md5, load)`` per file; the id is the file's stem."""
        from specloop import file_md5

        out = []
        for p in self._files(ctx, key="loop.incoming.path"):
            out.append((p.stem, file_md5(p), lambda p=p: self._read(p)))
        return out


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

    def batches(self, ctx: Any) -> list[tuple[str, str, Callable[[], Any]]]:
        """A bundled data set is one batch."""
        return [(self.config.name, self.fingerprint(ctx)[f"sklearn:{self.config.name}"],
                 lambda: self.load(ctx))]
