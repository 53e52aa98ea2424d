"""Bad data is named, not guessed: a duplicate column header or a numeric column with a few
text cells stops the run with exit 2 naming the column and the rows (a declared coercion
accepts it); a challenger whose input signature changed is not promoted by ``run`` and needs
``--force --reason``, also when the champion's recorded signature cannot be read; and
``specloop validate --show | head -1`` ends quietly."""

from __future__ import annotations

import json
import subprocess

import pytest

from rel_helpers import (PY, assert_refused, champion, deployed, make_project, ok, plan_keys,
                         proc_env, query, store_dir, write_csv)


@pytest.fixture
def proj(tmp_path):
    return make_project(tmp_path / "p")


def rewrite_header(path, old: str, new: str) -> None:
    head, body = path.read_text().split("\n", 1)
    path.write_text(head.replace(old, new) + "\n" + body)


def test_a_duplicate_header_stops_the_run_naming_the_column(proj):
    data = proj.root / "data" / "train.csv"
    rewrite_header(data, "x2", "x1")
    res = proj.cli("run")
    assert_refused(res, 2, "more than once in its header", "'x1'", str(data))
    assert not (store_dir(proj.root)).exists() or not query(
        proj.root, "SELECT * FROM versions")


def spoil(path, rows: list[int], column: str = "x2", value: str = "oops") -> None:
    lines = path.read_text().splitlines()
    cols = lines[0].split(",")
    i = cols.index(column)
    for r in rows:
        cells = lines[r].split(",")
        cells[i] = value
        lines[r] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("rows", [[5], [3, 17, 40]])
def test_a_numeric_column_with_a_few_text_cells_is_named_with_its_rows(proj, rows):
    data = proj.root / "data" / "train.csv"
    spoil(data, rows)
    res = proj.cli("run")
    text = assert_refused(res, 2, "column 'x2' holds numbers and", "data.coerce",
                          f"{len(rows)} cell(s) that are not")
    for r in rows:
        assert f"{r} ('oops')" in text, text
    assert not query(proj.root, "SELECT * FROM versions") if (
        proj.root / ".specloop" / "registry.db").exists() else True


def test_a_declared_coercion_accepts_the_text_cells(proj):
    data = proj.root / "data" / "train.csv"
    spoil(data, [3, 17, 40])
    ok(proj.cli("run", "+data.coerce={x2: numeric}"))
    assert champion(proj.root) == 1


def test_an_incoming_batch_with_text_cells_is_named_too(tmp_path):
    p = make_project(tmp_path / "p", batches=1, retrain={"kind": "never"})
    ok(p.cli("run"))
    batch = p.root / "data" / "incoming" / "b0.csv"
    spoil(batch, [7])
    res = p.cli("loop")
    assert_refused(res, 2, "column 'x2' holds numbers", "7 ('oops')", "loop.incoming")
    assert not query(p.root, "SELECT * FROM loop_batches")


# -- the input signature --------------------------------------------------------------------
NO_GATE = "none"  # only the engine's signature rule decides


@pytest.fixture
def with_champion(tmp_path):
    p = make_project(tmp_path / "p", gate=NO_GATE)
    ok(p.cli("run"))
    return p


def new_feature(p) -> None:
    write_csv(p.root / "data" / "train.csv", extra=True)


def test_a_changed_signature_is_not_promoted_by_run(with_champion):
    p = with_champion
    new_feature(p)
    res = p.cli("run")
    ok(res)
    assert "input signature changed (added x3)" in res.stdout
    assert champion(p.root) == 1 and deployed(p.root)["version"] == 1
    assert_refused(p.cli("registry", "promote", "2"), 1, "input signature unchanged")
    assert_refused(p.cli("registry", "promote", "2", "--force"), 2, "--force needs --reason")
    ok(p.cli("registry", "promote", "2", "--force", "--reason", "new feature approved"))
    assert champion(p.root) == 2 and deployed(p.root)["version"] == 2
    [row] = query(p.root, "SELECT * FROM audit WHERE action='force-promote'")
    assert row["reason"] == "new feature approved"


@pytest.mark.parametrize("how", ["tampered", "missing"])
def test_an_unreadable_champion_signature_does_not_switch_the_rule_off(with_champion, how):
    """The champion's recorded signature.json changed or gone: the engine cannot compare
    signatures, so it must not promote a challenger whose inputs changed as if they were
    the same."""
    p = with_champion
    sig = store_dir(p.root) / plan_keys(p.cli("plan", "--json"))["train"] / "signature.json"
    if how == "missing":
        sig.unlink()
    else:
        sig.write_text(json.dumps({"task": "binary", "target": "label", "inputs": []}))
    new_feature(p)
    res = p.cli("run")
    assert champion(p.root) == 1, res.output
    assert deployed(p.root)["version"] == 1
    assert_refused(res, 1, str(sig), how if how == "missing" else "does not match")


def test_validate_show_into_head_ends_quietly(proj):
    res = subprocess.run(f"set -o pipefail; '{PY}' -m specloop.cli validate --show | head -1",
                         shell=True, executable="/bin/bash", cwd=proj.root,
                         capture_output=True, text=True, env=proc_env(), timeout=120)
    assert res.stdout.startswith("spec OK: small")
    assert res.stdout.count("\n") == 1
    assert "Traceback" not in res.stderr and "BrokenPipeError" not in res.stderr, res.stderr
    assert res.stderr == ""


def test_a_reader_that_closed_its_end_gets_no_traceback(proj):
    proc = subprocess.Popen([PY, "-m", "specloop.cli", "validate", "--show"], cwd=proj.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=proc_env())
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert proc.returncode in (0, 141)
    assert "Traceback" not in err and "Exception ignored" not in err, err
