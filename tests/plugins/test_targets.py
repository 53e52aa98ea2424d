"""The ``batch`` and ``object_store`` deploy targets: conformance, scoring in chunks, caching,
re-deploys when what was deployed changed, and their bad inputs."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import specloop_tabular
import specloop_targets

from specloop import ConfigError, load_model
from specloop.testing import make_test_plugin_manager
from specloop.testing.suites import DeployerSuite, make_frame

from conftest import small_csv


# -- conformance, used exactly as a third party would ----------------------------------------
class TestBatch(DeployerSuite):
    kind = "batch"
    plugin = specloop_targets
    config = {"input": {"kind": "csv", "path": "data/score.csv", "target": "label"},
              "chunk_size": 7, "passthrough": ["color"]}

    def plugin_manager(self):
        # the input node is a data component: the plugin that provides csv is needed too
        return make_test_plugin_manager([self.plugin, specloop_tabular])

    def prepare_project(self, root):
        (root / "data").mkdir()
        make_frame(50, seed=3).to_csv(root / "data" / "score.csv", index=False)


class TestObjectStoreMemory(DeployerSuite):
    kind = "object_store"
    plugin = specloop_targets
    config = {"url": "memory://specloop-conformance/deploy/champion"}


# -- batch scoring in a project ---------------------------------------------------------------
def _batch(project, **extra):
    small_csv(project.root / "data" / "score.csv", rows=1000, seed=5)
    node = {"kind": "batch", "input": {"kind": "csv", "path": "data/score.csv",
                                       "target": "label"},
            "output": "deploy/scores.parquet", "chunk_size": 64, "passthrough": ["id"], **extra}
    project.write_conf("deploy/scores.yaml", node)
    return ["deploy=scores"]


def test_batch_scores_every_row_in_chunks_like_the_whole_file(project):
    import pandas as pd
    import pyarrow.parquet as pq

    result = project.cli("run", *_batch(project))
    assert result.exit_code == 0, result.stderr
    out = project.root / "deploy" / "scores.parquet"
    pf = pq.ParquetFile(out)
    assert pf.metadata.num_rows == 1000
    assert pf.num_row_groups == math.ceil(1000 / 64)  # one row group per chunk
    scores = pf.read().to_pandas()
    assert list(scores.columns) == ["id", "prediction", "proba_0", "proba_1"]
    # the same model scoring the whole file at once gives the same numbers
    ctx = project.context(["deploy=scores"])
    champion = ctx.registry.resolve("small", "champion")
    model = load_model(ctx, champion)
    frame = pd.read_csv(project.root / "data" / "score.csv")
    features = [f["name"] for f in json.loads(ctx.store.get(champion["model_key"],
                                                            "signature.json"))["inputs"]]
    ctx.close()
    assert (scores["id"] == frame["id"]).all()
    assert (scores["prediction"].to_numpy() == model.predict(frame[features])).all()
    assert abs(scores["proba_1"].to_numpy() - model.predict_proba(frame[features])[:, 1]).max() \
        < 1e-12
    assert "score:" not in result.stderr  # progress bars only on a terminal


def test_batch_is_cached_until_its_input_or_output_changes(project):
    overrides = _batch(project)
    assert project.cli("run", *overrides).exit_code == 0
    again = project.cli("run", *overrides)
    assert again.exit_code == 0 and "deploy    cached" in again.stdout, again.stdout
    small_csv(project.root / "data" / "score.csv", rows=500, seed=9)  # new rows to score
    changed = project.cli("run", *overrides)
    assert "deploy    ran" in changed.stdout, changed.stdout
    import pyarrow.parquet as pq

    out = project.root / "deploy" / "scores.parquet"
    assert pq.ParquetFile(out).metadata.num_rows == 500
    out.write_bytes(out.read_bytes()[:-10])  # a truncated scores file is re-written
    assert "deploy    ran" in project.cli("run", *overrides).stdout
    assert pq.ParquetFile(out).metadata.num_rows == 500


def test_batch_reads_parquet_input(project):
    import pandas as pd
    import pyarrow.parquet as pq

    small_csv(project.root / "data" / "score.csv", rows=300, seed=2)
    pd.read_csv(project.root / "data" / "score.csv").to_parquet(project.root / "data" /
                                                                "score.parquet")
    project.write_conf("deploy/pq.yaml", {
        "kind": "batch", "input": {"kind": "parquet", "path": "data/score.parquet",
                                   "target": "label"}, "chunk_size": 100, "progress": False})
    result = project.cli("run", "deploy=pq")
    assert result.exit_code == 0, result.stderr
    pf = pq.ParquetFile(project.root / "deploy" / "scores.parquet")
    assert pf.metadata.num_rows == 300 and pf.num_row_groups == 3


def test_batch_preset_composes_with_the_projects_target(project):
    small_csv(project.root / "data" / "score.csv", rows=50)
    ctx = project.context(["deploy=batch"])
    assert ctx.spec.components["deploy"].config.input.config.target == "label"
    ctx.close()


# -- bad input ---------------------------------------------------------------------------------
def test_batch_input_file_missing(project):
    overrides = _batch(project)
    (project.root / "data" / "score.csv").unlink()
    result = project.cli("run", *overrides)
    assert result.exit_code == 2, result.stderr
    assert "no data file matches 'data/score.csv'" in result.stderr
    assert "deploy.input.path" in result.stderr and "Traceback" not in result.stderr
    assert not (project.root / "deploy" / "scores.parquet").exists()


@pytest.mark.parametrize("size", [0, -5])
def test_batch_chunk_size_must_be_positive(project, size):
    overrides = _batch(project, chunk_size=size)
    result = project.cli("validate", *overrides)
    assert result.exit_code == 2
    assert "deploy.chunk_size" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(ConfigError) as exc:
        project.context(overrides)
    assert exc.value.key == "deploy.chunk_size"


def test_batch_without_input(project):
    project.write_conf("deploy/noinput.yaml", {"kind": "batch"})
    result = project.cli("validate", "deploy=noinput")
    assert result.exit_code == 2 and "the batch target has no input" in result.stderr
    assert "deploy.input" in result.stderr and "Traceback" not in result.stderr


def test_batch_input_without_the_models_columns(project):
    overrides = _batch(project)
    (project.root / "data" / "score.csv").write_text("id,x1,color\n1,0.5,red\n")
    result = project.cli("run", *overrides)
    assert result.exit_code == 2, result.stderr
    assert "lacks columns the model needs: ['x2']" in result.stderr
    assert "Traceback" not in result.stderr


def test_object_store_republishes_a_tampered_bundle(project, tmp_path):
    url = f"file://{tmp_path}/published/champion"
    project.write_conf("deploy/os.yaml", {"kind": "object_store", "url": url})
    assert project.cli("run", "deploy=os").exit_code == 0
    meta = json.loads((tmp_path / "published" / "champion" / "metadata.json").read_text())
    model = (tmp_path / "published" / "champion" / "model.bin").read_bytes()
    assert meta["files"]["model.bin"] == hashlib.sha256(model).hexdigest()
    assert "deploy    cached" in project.cli("run", "deploy=os").stdout
    (tmp_path / "published" / "champion" / "MODEL_CARD.md").write_text("edited")
    assert "deploy    ran" in project.cli("run", "deploy=os").stdout
    assert (tmp_path / "published" / "champion" / "MODEL_CARD.md").read_text() != "edited"


def test_object_store_url_is_required(project):
    project.write_conf("deploy/os.yaml", {"kind": "object_store"})
    result = project.cli("validate", "deploy=os")
    assert result.exit_code == 2 and "deploy.url" in result.stderr


def test_batch_scores_a_data_component_without_chunks(tmp_path):
    """``sklearn_dataset`` has no ``chunks``: it is loaded, then scored chunk by chunk."""
    import pyarrow.parquet as pq

    from specloop.testing import ProjectBuilder

    p = ProjectBuilder(tmp_path / "bc")
    p.write_conf("config.yaml", {
        "defaults": [{"data": "breast_cancer"}, {"model": "logistic"},
                     {"metrics": "classification"}, "_self_"],
        "project": {"name": "bc"},
        "deploy": {"kind": "batch", "input": {"kind": "sklearn_dataset", "name": "breast_cancer"},
                   "chunk_size": 100, "progress": False}})
    result = p.cli("run")
    assert result.exit_code == 0, result.stderr
    pf = pq.ParquetFile(p.root / "deploy" / "scores.parquet")
    assert pf.metadata.num_rows == 569 and pf.num_row_groups == 6
