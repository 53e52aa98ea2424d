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
