"""The rough edges a person editing YAML meets: every one is a compact message that names the
file and line (or the override), says what was expected and how to fix it, with a
"did you mean" where a spelling is close."""

from __future__ import annotations

from pathlib import Path

import pytest

from specloop.testing import CliResult, ProjectBuilder

from test_bad_input import assert_user_error, make_project


@pytest.fixture
def p(tmp_path: Path) -> ProjectBuilder:
    return make_project(tmp_path / "proj")


def _headline(res: CliResult) -> str:
    return res.output.strip().splitlines()[0]


def test_misspelled_estimator_class_and_module_suggest_the_real_one(p):
    res = p.cli("validate", "model.estimator=sklearn.ensemble.RandomForestClasifier")
    assert_user_error(res, "cannot import estimator", "did you mean: "
                      "sklearn.ensemble.RandomForestClassifier",
                      "fix:          set model.estimator to "
                      "sklearn.ensemble.RandomForestClassifier")
    res = p.cli("validate", "model.estimator=sklearn.ensembel.RandomForestClassifier")
    assert_user_error(res, "did you mean: sklearn.ensemble.RandomForestClassifier")
    res = p.cli("validate", "model.estimator=sklearn.ensemble.NothingLikeIt")
    out = assert_user_error(res, "cannot import estimator", "check the spelling")
    assert "did you mean" not in out


def test_misspelled_estimator_parameter_names_its_key_and_the_real_one(p):
    res = p.cli("validate", "+model.params.max_iters=3")
    assert_user_error(res, "key:          model.params.max_iters", "did you mean: max_iter",
                      "rename it to 'max_iter'", "command line: +model.params.max_iters=3")


def test_unterminated_interpolation_names_the_file_line_and_key(p):
    p.write_conf("data/mine.yaml", {"kind": "csv", "path": "${oc.env:DATA_DIR/d.csv",
                                    "target": "label"})
    res = p.cli("validate")
    out = assert_user_error(res, "malformed interpolation in data.path: ${oc.env:DATA_DIR/d.csv",
                            "key:      data.path", "conf/data/mine.yaml:2",
                            "close the interpolation with '}'")
    assert _headline(res).strip() != "specloop:"
    assert "override" not in out


def test_comma_list_without_m_says_to_sweep_with_m_in_the_users_words(p):
    for override in ("model.params.C=0.1,1.0", "model=logistic,random_forest"):
        res = p.cli("validate", override)
        out = assert_user_error(res, f"'{override}' gives one key several values",
                                f"command line: {override}", "a comma list sweeps only with -m",
                                f"specloop run -m {override}")
        assert "++" not in out and "an override of an existing key" not in out


def test_schema_errors_name_the_line(p):
    p.write_conf("data/mine.yaml", {"kind": "csv", "path": "data/d.csv", "target": "label",
                                    "splt": {"test_size": 0.3}})
    res = p.cli("validate")
    assert_user_error(res, "unknown key 'data.splt'", "conf/data/mine.yaml:4 (group 'data'",
                      "did you mean: split")
    conf = (p.root / "conf" / "config.yaml").read_text().replace("seed: 0", "seed: abc")
    (p.root / "conf" / "config.yaml").write_text(conf)
    line = next(n for n, text in enumerate(conf.splitlines(), 1) if "seed: abc" in text)
    res = p.cli("validate")
    assert_user_error(res, "wrong type for project.seed", f"conf/config.yaml:{line}")


@pytest.mark.slow
def test_plan_explains_against_the_nearest_cached_output_not_the_last_run(p):
    assert p.cli("run").exit_code == 0
    assert p.cli("run", "model=random_forest").exit_code == 0
    res = p.cli("plan", "model.params.C=0.5")  # logistic again, one parameter changed
    assert res.exit_code == 0, res.output
    train = next(line for line in res.stdout.splitlines() if line.startswith("train"))
    assert "model.params.C: 1.0 → 0.5" in train, train
    assert "estimator" not in train and "n_estimators" not in train, train
