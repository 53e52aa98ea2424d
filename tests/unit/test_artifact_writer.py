"""The artifact writer process: it stores what the in-process path stores, and a writer that
dies leaves the store as it was and says so."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from specloop import ArtifactError
from specloop._artifact_writer import ArtifactWriter, ModelFile, ParquetFile, write
from specloop._store import ArtifactStore

CRASHY = textwrap.dedent('''
    import os

    from sklearn.linear_model import LogisticRegression

    from specloop._store import ArtifactStore


    class CrashOnLoad(LogisticRegression):
        """Kills whatever process unpickles it: the artifact writer, never the run itself."""

        def __setstate__(self, state):
            os._exit(3)


    class DiesMidWrite(ArtifactStore):
        """A store whose writer dies with the artifact's temporary folder half written."""

        def put(self, key, files, meta=None):
            tmp = self.path("artifacts", f".tmp-{key}-dead")
            os.makedirs(tmp)
            with open(os.path.join(tmp, "model.bin"), "wb") as fh:
                fh.write(b"half")
            os._exit(4)


    class WhoWrites:
        """A model component whose bytes name the process that serialized them."""

        format = "pid"

        def dumps(self, fitted):
            return str(os.getpid()).encode()


    class Refuses:
        """A model component whose serializer raises."""

        format = "skops"

        def dumps(self, fitted):
            raise ValueError("cannot serialize this model")
''')


@pytest.fixture
def crashy(tmp_path, monkeypatch):
    """A module the writer process can import too (it gets this process's ``sys.path``)."""
    folder = tmp_path / "crashy_mod"
    folder.mkdir()
    (folder / "crashy_estimators.py").write_text(CRASHY)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("SPECLOOP_ARTIFACT_WRITER", "process")
    import crashy_estimators

    return crashy_estimators


def _frame(rows: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x1": rng.normal(size=rows), "x2": rng.normal(size=rows),
                         "color": rng.choice(["red", "green", "blue"], rows),
                         "label": rng.integers(0, 2, rows)})


def _fitted(project):
    ctx = project.context()
    try:
        comp = ctx.spec.components["model"].build()
    finally:
        ctx.close()
    frame = _frame()
    X, y = frame.drop(columns="label"), frame["label"]
    return comp, comp.fit(X, y, categorical=["color"], task="classification", seed=0), X


def _leftovers(root: Path) -> list[str]:
    folder = root / "artifacts"
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp-")) \
        if folder.exists() else []


def test_the_writer_process_stores_what_the_in_process_path_stores(project, tmp_path):
    comp, fitted, X = _fitted(project)
    frame = _frame()
    files = {"model.bin": ModelFile(comp, fitted), "frame.parquet": ParquetFile(frame),
             "signature.json": b"{}"}
    there = ArtifactStore(str(tmp_path / "child"), tmp_path)
    here = ArtifactStore(str(tmp_path / "parent"), tmp_path)

    writer = ArtifactWriter([comp], process=True)
    assert not writer.in_process
    try:
        record = writer.put(there, "k", files, {"stage": "train"})
    finally:
        writer.close()
    expected = write(here, "k", files, {"stage": "train"})

    assert record == there.meta("k")  # the reply is the _meta.json it committed
    assert record["format"] == expected["format"] == "skops"
    assert record["trusted_types"] == expected["trusted_types"]
    assert record["stage"] == "train"
    # Parquet and plain bytes are byte-identical; skops names its members by object id, so
    # its bytes differ from any other save, but the model it holds is the same
    for name in ("frame.parquet", "signature.json"):
        assert record["files"][name] == expected["files"][name]
    data = there.get("k", "model.bin")  # verified against the SHA-256 the child recorded
    loaded = comp.loads(data, format=record["format"], trusted=record["trusted_types"])
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    assert _leftovers(tmp_path / "child") == []


def test_a_model_that_does_not_pickle_is_written_in_this_process(crashy, tmp_path):
    import os

    store = ArtifactStore(str(tmp_path / "s"), tmp_path)
    writer = ArtifactWriter(process=True)
    try:
        writer.put(store, "there", {"model.bin": ModelFile(crashy.WhoWrites(), [1])}, {})
        unpicklable = ModelFile(crashy.WhoWrites(), [lambda: None])
        writer.put(store, "here", {"model.bin": unpicklable}, {})
    finally:
        writer.close()
    assert store.get("here", "model.bin") == str(os.getpid()).encode()
    assert store.get("there", "model.bin") != str(os.getpid()).encode()
    assert store.meta("here")["format"] == "pid"


def test_an_error_in_the_writer_process_is_raised_here_with_its_type(crashy, tmp_path):
    store = ArtifactStore(str(tmp_path / "s"), tmp_path)
    writer = ArtifactWriter(process=True)
    try:
        with pytest.raises(ValueError, match="cannot serialize this model") as info:
            writer.put(store, "k", {"model.bin": ModelFile(crashy.Refuses(), [1, 2])}, {})
        assert any("artifact writer process" in note for note in info.value.__notes__)
        # the child is still serving: the next artifact is written
        assert writer.put(store, "k2", {"a.txt": b"a"}, {})["files"]["a.txt"]["size"] == 1
    finally:
        writer.close()
    assert not store.has("k") and store.has("k2")


def test_a_writer_process_that_dies_raises_and_leaves_nothing_half_written(crashy, tmp_path):
    store = ArtifactStore(str(tmp_path / "s"), tmp_path)
    writer = ArtifactWriter(process=True)
    est = crashy.CrashOnLoad()
    try:
        with pytest.raises(ArtifactError) as info:
            writer.put(store, "k", {"model.bin": ModelFile(object(), est)}, {})
        assert writer.in_process  # the dead child is gone; later writes happen here
        assert writer.put(store, "k2", {"a.txt": b"a"}, {})["files"]["a.txt"]["size"] == 1
    finally:
        writer.close()
    err = info.value
    assert "exited with status 3 while writing artifact k" in err.render()
    assert "nothing was stored" in err.render()
    assert err.path == store.path("artifacts", "k")
    assert not store.has("k") and _leftovers(tmp_path / "s") == []


def test_a_writer_killed_mid_write_leaves_no_temporary_folder(crashy, tmp_path):
    store = crashy.DiesMidWrite(str(tmp_path / "s"), tmp_path)
    writer = ArtifactWriter(process=True)
    try:
        with pytest.raises(ArtifactError, match="exited with status 4"):
            writer.put(store, "k", {"model.bin": b"whole"}, {})
    finally:
        writer.close()
    assert not store.has("k") and _leftovers(tmp_path / "s") == []


def test_a_run_whose_writer_process_dies_fails_clearly_and_keeps_the_store(crashy, project,
                                                                            monkeypatch):
    monkeypatch.setenv("SPECLOOP_ARTIFACT_WRITER", "process")  # whatever this process imported
    res = project.cli("run", "model.estimator=crashy_estimators.CrashOnLoad",
                      "allow_python_targets=true")
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert "artifact writer process exited with status 3" in res.stderr, res.stderr
    assert "nothing was stored" in res.stderr

    root = project.root / ".specloop"
    manifest = json.loads(next((root / "runs").glob("*/manifest.json")).read_text())
    assert manifest["status"] == "failed"
    train_key = manifest["stages"]["train"]["key"]
    assert not (root / "artifacts" / train_key).exists()
    assert _leftovers(root) == []
    for stage in ("data", "split"):  # written before the crash, complete and verified
        key = manifest["stages"][stage]["key"]
        assert (root / "artifacts" / key / "_meta.json").exists()
    ctx = project.context()
    try:
        assert ctx.registry.resolve(ctx.model_name, "champion") is None
    finally:
        ctx.close()

    run = project.run()  # the same store serves the next run; data and split are reused
    run.assert_stages(cached=["data", "split"], ran=["train", "evaluate", "register"])


def test_thread_mode_writes_in_process(project, monkeypatch):
    monkeypatch.setenv("SPECLOOP_ARTIFACT_WRITER", "thread")
    assert ArtifactWriter().in_process
    run = project.run()
    run.assert_stages(ran=["data", "split", "train", "evaluate", "register"])


def test_a_child_only_while_the_encoders_imports_are_ahead(monkeypatch):
    import sys

    from specloop import _artifact_writer as aw

    monkeypatch.setattr(aw, "_children", 0)
    monkeypatch.delitem(sys.modules, "pyarrow", raising=False)
    monkeypatch.delitem(sys.modules, "skops.io", raising=False)
    assert aw._child_pays_off(model=True, parquet=True)
    monkeypatch.setitem(sys.modules, "pyarrow", object())
    assert aw._child_pays_off(model=True, parquet=False)
    monkeypatch.setitem(sys.modules, "skops.io", object())
    # everything the child would import is here already (a member forked after warm-up)
    assert not aw._child_pays_off(model=True, parquet=True)
    monkeypatch.delitem(sys.modules, "skops.io")
    # a process that started a child once (basic launcher, the loop) writes in process after
    monkeypatch.setattr(aw, "_children", 1)
    assert not aw._child_pays_off(model=True, parquet=True)
    assert ArtifactWriter([object()]).in_process
