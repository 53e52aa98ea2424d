"""The report's SVG helpers: well-formed SVG, every text escaped, marks where there is data
and none where there is not, scales and downsampling."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from specloop_report import _svg as svg
from specloop_report._html import Page, kv, table
from specloop_report._run import downsample_curve

NS = {"s": "http://www.w3.org/2000/svg"}
EVIL = '<script>alert("x")</script> & \'quoted\''


def parse(text: str) -> ET.Element:
    root = ET.fromstring(text)  # well-formed, or this raises
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("class") == "chart"
    return root


def marks(root: ET.Element) -> list[ET.Element]:
    return [e for e in root.iter() if "mark" in (e.get("class") or "").split()]


def texts(root: ET.Element) -> str:
    return " ".join(t for e in root.iter() for t in (e.text, e.get("aria-label")) if t)


CHARTS = {
    "line": lambda title: svg.line_chart(
        "line", title, [{"label": title, "values": [0.9, None, 0.7, 0.8]}],
        x_labels=["a", title, "c", "d"], x_label=title, y_label=title,
        hlines=[(0.75, title)], vlines=[(2, title, "#000")]),
    "bar": lambda title: svg.bar_chart("bar", title, [title, "b"], [1.0, 2.0], x_label=title,
                                       hlines=[(1.5, title)]),
    "hbar": lambda title: svg.bar_chart("hbar", title, [title, "b"], [0.5, None],
                                        horizontal=True),
    "roc": lambda title: svg.roc_chart("roc", title, [{"label": title, "fpr": [0, 0.1, 1],
                                                       "tpr": [0, 0.8, 1], "auc": 0.9}]),
    "heatmap": lambda title: svg.heatmap("heat", title, [[1, 2], [3, None]], [title, "r"],
                                         ["c1", title], flags=[[True, False], [False, False]]),
    "histogram": lambda title: svg.histogram_overlay(
        "hist", title, [0, 1, 2], [(title, [0.4, 0.6], "#111"), ("b", [0.5, 0.5], "#222")]),
    "grouped": lambda title: svg.grouped_bars("grouped", title, [title, "x"],
                                              [("ref", [0.3, 0.7], "#111"),
                                               ("cur", [0.6, 0.4], "#222")]),
    "scatter": lambda title: svg.scatter("scatter", title, [1, 2, 3], [0.5, -0.2, 0.1],
                                         x_label=title, hline=0.0, diagonal=True),
}


@pytest.mark.parametrize("kind", sorted(CHARTS))
def test_every_chart_is_well_formed_escaped_and_drawn(kind):
    text = CHARTS[kind](EVIL)
    root = parse(text)
    assert "<script" not in text and "alert(&quot;x&quot;)" in text
    assert EVIL in texts(root)  # escaped on the way in, the same text on the way out
    assert root.find("s:title", NS).text == EVIL
    assert marks(root), f"{kind}: no marks"
    assert root.get("viewBox", "").startswith("0 0 ")


@pytest.mark.parametrize("make", [
    lambda: svg.line_chart("e", "t", [{"label": "s", "values": [None, None]}],
                           x_labels=["a", "b"]),
    lambda: svg.bar_chart("e", "t", [], []),
    lambda: svg.roc_chart("e", "t", []),
    lambda: svg.heatmap("e", "t", [], [], []),
    lambda: svg.histogram_overlay("e", "t", [0], []),
    lambda: svg.grouped_bars("e", "t", [], []),
    lambda: svg.scatter("e", "t", [float("nan")], [1.0]),
])
def test_no_data_draws_no_marks_and_says_why(make):
    root = parse(make())
    assert marks(root) == [] and "no " in texts(root)


def test_a_gap_breaks_the_line():
    root = parse(svg.line_chart("l", "t", [{"label": "s", "values": [1, 2, None, 3, 4]}],
                                x_labels=list("abcde")))
    lines = [e for e in marks(root) if e.tag.endswith("polyline")]
    points = [e for e in marks(root) if e.tag.endswith("circle")]
    assert len(lines) == 2 and len(points) == 4


def test_heatmap_outlines_flagged_cells_and_greys_missing_ones():
    text = svg.heatmap("h", "t", [[0.5, None]], ["r"], ["a", "b"], flags=[[True, False]],
                       vmax=1.0)
    cells = marks(parse(text))
    assert len(cells) == 2
    assert cells[0].find("s:rect", NS).get("stroke") == "#dc2626"
    assert cells[1].find("s:rect", NS).get("fill") == "#f1f5f9"


def test_bars_below_zero_hang_from_the_axis():
    root = parse(svg.bar_chart("b", "t", ["up", "down"], [2.0, -1.0]))
    up, down = (e for e in marks(root))
    assert float(up.get("y")) + float(up.get("height")) == pytest.approx(float(down.get("y")),
                                                                         abs=0.2)


@pytest.mark.parametrize("lo, hi, expected", [
    (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1.0]), (0.62, 0.99, [0.7, 0.8, 0.9]),
    (-130, 150, [-100, 0, 100]), (5, 5, [5]),
])
def test_nice_ticks(lo, hi, expected):
    assert svg.nice_ticks(lo, hi) == pytest.approx(expected)


@pytest.mark.parametrize("value, text", [
    (None, "-"), (float("nan"), "-"), (3, "3"), (12345, "12 345"), (0.99523, "0.995"),
    (54.812, "54.8"), (0.0001234, "1.23e-04"), (2.0, "2"), ("v2", "v2"),
])
def test_fmt(value, text):
    assert svg.fmt(value) == text


def test_roc_curves_are_downsampled_keeping_their_ends():
    import numpy as np

    fpr = np.sort(np.random.default_rng(0).random(5000))
    fpr[0], fpr[-1] = 0.0, 1.0
    tpr = np.sqrt(fpr)
    x, y = downsample_curve(fpr, tpr, n=200)
    assert len(x) <= 202 and (x[0], y[0]) == (0.0, 0.0) and (x[-1], y[-1]) == (1.0, 1.0)
    assert x == sorted(x)
    short = downsample_curve([0, 0.5, 1], [0, 0.9, 1])
    assert short == ([0.0, 0.5, 1.0], [0.0, 0.9, 1.0])


def test_the_page_is_self_contained_and_escapes_its_text():
    page = Page("run", EVIL, EVIL)
    page.add("s", EVIL, kv([(EVIL, EVIL)]), table([{"a": EVIL, "n": 1.23456}], ["a", "n"]))
    html = page.html("0.0")
    assert "<script" not in html and html.count("&lt;script&gt;") >= 5
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert 'class="num">1.235<' in html


def test_promotions_and_rollbacks_are_placed_on_the_timeline():
    from specloop_report._loop import _event_marks

    batches = [{"batch": "b1", "processed_at": "2026-01-01T00:00:01"},
               {"batch": "b2", "processed_at": "2026-01-01T00:00:02", "outcome": "promoted",
                "new_version": 2},
               {"batch": "b3", "processed_at": "2026-01-01T00:00:04"}]
    history = [{"alias": "champion", "action": "promote", "version": 2, "previous": 1,
                "at": "2026-01-01T00:00:02"},
               {"alias": "champion", "action": "rollback", "version": 1, "previous": 2,
                "at": "2026-01-01T00:00:03"},   # between b2 and b3
               {"alias": "champion", "action": "rollback", "version": 2, "previous": 1,
                "at": "2026-01-01T00:00:09"},   # after the last batch: at the right edge
               {"alias": "champion", "action": "rollback", "version": 3, "previous": 1,
                "at": "2025-01-01T00:00:00"}]   # before the first batch: not drawn
    marks = _event_marks(batches, history)
    assert [(x, label) for x, label, _ in marks] == [
        (1, "v2 promoted"), (1.5, "rollback v2 → v1"), (2.5, "rollback v1 → v2")]


def test_feature_distributions():
    import numpy as np
    import pandas as pd

    from specloop_report._loop import categorical_chart, numeric_chart

    rng = np.random.default_rng(0)
    counts = numeric_chart("n", "tx in b", pd.Series(rng.poisson(2, 500)),
                           pd.Series(rng.poisson(4, 300)))
    bars = [e for e in marks(parse(counts))]
    assert len(bars) == 2  # reference and current areas
    steps = bars[0].get("d").count("L") // 2  # whole numbers: one bin per value
    assert 5 <= steps <= 31
    wide = numeric_chart("w", "amount in b", pd.Series(rng.lognormal(3, 1, 500)),
                         pd.Series([np.nan] * 10 + list(rng.lognormal(3.5, 1, 300))))
    assert len(marks(parse(wide))) == 2
    many = pd.Series([f"c{i % 20}" for i in range(400)])
    cats = parse(categorical_chart("c", "cat in b", many, many[:100]))
    assert len(marks(cats)) == 2 * 13 and "(other)" in texts(cats)
