"""``specloop report`` on small projects, in-process: a classifier's and a regressor's run
reports, a sweep's leaderboard, secrets kept out, and the user's mistakes (exit 2, a
specloop message, no traceback). The fraud loop's report: test_report_chromium.py."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from specloop.testing import ProjectBuilder

SECRET = "s3cr3t-Value-9f2c"


class Charts(HTMLParser):
    """``{data-chart: number of marks}`` of every chart in a page, and whether it has a script
    or an external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, int] = {}
        self.current: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "script":
            self.external.append("script")
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith("#"):
                self.external.append(f"{tag} {key}={a[key]}")
        if tag == "svg" and "chart" in (a.get("class") or "").split():
            self.current.append(a["data-chart"])
            self.charts[a["data-chart"]] = 0
        elif tag == "svg":
            self.current.append("")
        elif self.current and self.current[-1] and "mark" in (a.get("class") or "").split():
            self.charts[self.current[-1]] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg" and self.current:
            self.current.pop()


def charts_of(html: str) -> Charts:
    parser = Charts()
    parser.feed(html)
    assert parser.external == [], f"the page loads something: {parser.external}"
    assert "@import" not in html and "url(" not in html
    return parser


def report(p: ProjectBuilder, *args: str) -> tuple[int, str, str]:
    """Run ``specloop report ARGS`` in-process; return exit code, output and the page."""
    out = p.root / "out.html"
    out.unlink(missing_ok=True)
    res = p.cli("report", *args, "-o", str(out))
    return res.exit_code, res.output, out.read_text() if out.exists() else ""


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> ProjectBuilder:
    """The small classification project, run once with a secret among its overrides."""
    from conftest import small_csv

    p = ProjectBuilder(tmp_path_factory.mktemp("report") / "proj")
    small_csv(p.root / "data" / "train.csv")
    p.write_conf("data/small.yaml", {"kind": "csv", "path": "data/train.csv",
                                     "target": "label", "drop": ["id"]})
    p.write_conf("config.yaml", {
        "defaults": [{"data": "small"}, {"model": "logistic"}, {"metrics": "classification"},
                     {"gate": "default"}, "_self_"],
        "project": {"name": "small", "seed": 0}})
    res = p.cli("run", f"+store.storage_options.secret={SECRET}",
                f"+plugins.serve.token={SECRET}")
    assert res.exit_code == 0, res.output
    return p


def test_classifier_run_report(classifier):
    code, output, html = report(classifier)
    assert code == 0, output
    assert re.search(r"wrote .*out\.html \(\d+ kB, 4 sections\) in [\d.]+ s", output)
    charts = charts_of(html).charts
    assert charts["roc"] >= 1 and charts["confusion-matrix"] == 4
    run_id = json.loads(classifier.cli("runs", "list", "--json").stdout)[-1]["run"]
    assert f"run {run_id}" in html and "model/sklearn" in html
    assert "data/train.csv" in html and "x1, x2, color" in html  # fingerprint and columns
    assert "roc_auc" in html and "stages" in html.lower()


def test_secrets_stay_out_of_the_report(classifier):
    code, output, html = report(classifier)
    assert code == 0, output
    assert SECRET not in html and SECRET not in output
    assert "+store.storage_options.secret=***" in html  # the overrides, as recorded
    shown = html.replace("&#x27;", "'")
    assert "secret: '***'" in shown and "token: '***'" in shown  # the configuration


def test_the_default_file_is_in_the_project(classifier):
    res = classifier.cli("report")
    assert res.exit_code == 0, res.output
    written = list((classifier.root / ".specloop" / "reports").glob("run-*.html"))
    assert len(written) == 1 and str(written[0]) in res.stdout


def test_regressor_run_report(tmp_path):
    p = ProjectBuilder(tmp_path / "reg")
    p.write_conf("config.yaml", {
        "defaults": [{"data": "diabetes"}, {"model": "ridge"}, {"metrics": "regression"},
                     "_self_"], "project": {"name": "reg", "seed": 1}})
    assert p.cli("run").exit_code == 0
    code, output, html = report(p)
    assert code == 0, output
    charts = charts_of(html).charts
    assert charts["residuals"] == 1 and charts["predicted-vs-actual"] == 1
    assert charts["residual-histogram"] == 1 and "roc" not in charts
    assert "regression" in html


def test_sweep_report(classifier):
    res = classifier.cli("run", "-m", "hydra/launcher=basic", "model.params.C=0.01,1.0")
    assert res.exit_code == 0, res.output
    code, output, html = report(classifier, "--sweep")
    assert code == 0, output
    charts = charts_of(html).charts
    assert charts["leaderboard"] == 2 and charts["member-seconds"] == 2
    assert "model.params.C=0.01" in html and "model.params.C=1.0" in html
    code, output, html = report(classifier, "--sweep", "project.seed=0")  # an override
    assert code == 0 and 'data-chart="leaderboard"' in html, output
    folder = next((classifier.root / ".specloop" / "sweeps").iterdir())
    code, output, again = report(classifier, "--sweep", str(folder))
    assert code == 0 and 'data-chart="leaderboard"' in again


def user_error(p: ProjectBuilder, *args: str) -> str:
    code, output, html = report(p, *args)
    assert code == 2, output
    assert output.startswith("specloop: ") and "Traceback" not in output and html == ""
    return output


def test_unknown_run_id(classifier):
    out = user_error(classifier, "--run", "20990101-000000-000abcd")
    assert "no run '20990101-000000-000abcd' is recorded" in out and "newest:" in out


def test_no_loop_records_yet(classifier):
    out = user_error(classifier, "--loop")
    assert "the loop has processed no batch" in out and "specloop loop" in out


def test_no_sweep_yet_and_a_wrong_sweep_folder(tmp_path, classifier):
    empty = ProjectBuilder(tmp_path / "fresh")
    empty.write_conf("config.yaml", (classifier.root / "conf" / "config.yaml").read_text())
    empty.write_conf("data/small.yaml", (classifier.root / "conf" / "data" / "small.yaml")
                     .read_text())
    assert "no sweep yet" in user_error(empty, "--sweep")
    assert "no successful run yet" in user_error(empty)
    assert "no sweep folder" in user_error(classifier, "--sweep", str(tmp_path / "nope"))
    (tmp_path / "notasweep").mkdir()
    assert "holds no leaderboard" in user_error(classifier, "--sweep",
                                                str(tmp_path / "notasweep"))


def test_not_a_project(tmp_path):
    p = ProjectBuilder(tmp_path / "nothing")
    p.root.mkdir()
    assert "no spec found" in user_error(p)


def test_an_unwritable_output(classifier, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = classifier.cli("report", "-o", str(blocker / "sub" / "out.html"))
    assert res.exit_code == 2 and "cannot write the report" in res.stderr
    assert "Traceback" not in res.output


def test_a_tampered_manifest_is_refused(tmp_path):
    from conftest import small_csv

    p = ProjectBuilder(tmp_path / "t")
    small_csv(p.root / "data" / "train.csv", rows=120)
    p.write_conf("config.yaml", {
        "defaults": [{"model": "logistic"}, {"metrics": "classification"}, "_self_"],
        "data": {"kind": "csv", "path": "data/train.csv", "target": "label", "drop": ["id"]},
        "project": {"name": "t"}})
    assert p.cli("run").exit_code == 0
    manifest = next((p.root / ".specloop" / "store" / "runs").glob("*/manifest.json"))
    manifest.write_text(manifest.read_text().replace('"succeeded"', '"forged"'))
    code, output, html = report(p)
    assert code == 2 and "does not match the SHA-256" in output and html == ""


def test_multiclass_run_report(tmp_path):
    p = ProjectBuilder(tmp_path / "iris")
    p.write_conf("config.yaml", {
        "defaults": [{"model": "logistic"}, {"metrics": "classification"}, "_self_"],
        "data": {"kind": "sklearn_dataset", "name": "iris", "target": "target"},
        "project": {"name": "iris"}})
    assert p.cli("run").exit_code == 0
    code, output, html = report(p)
    assert code == 0, output
    charts = charts_of(html).charts
    assert charts["confusion-matrix"] == 9 and charts["roc"] == 3  # one curve per class
    assert "2 vs rest" in html


def test_report_flag_writes_the_report_of_what_the_command_did(classifier, tmp_path):
    res = classifier.cli("run", "--report", str(tmp_path / "run.html"), "model.params.C=0.3")
    assert res.exit_code == 0, res.output
    assert f"report: {tmp_path / 'run.html'}" in res.stdout
    run_id = res.stdout.split("run ", 1)[1].split()[0]
    assert f"run {run_id}" in (tmp_path / "run.html").read_text()  # this run, not another

    res = classifier.cli("run", "-m", "hydra/launcher=basic", "model.params.C=0.02,0.2",
                         "--report")
    assert res.exit_code == 0, res.output
    page = res.stdout.split("report: ", 1)[1].split()[0]
    assert "/sweeps/" not in page and "sweep-" in page
    assert charts_of(open(page).read()).charts["leaderboard"] == 2

    res = classifier.cli("run", "--report", "model.params.C=0.3",
                         "+plugins.disable=[report]")
    assert res.exit_code == 2 and "no installed plugin writes reports" in res.output
    assert "Traceback" not in res.output
