"""Small inline-SVG charts for the HTML report: line, bar, ROC curve, heat-map, histogram
overlay and scatter; numbers in, an ``<svg class="chart" data-chart=NAME>`` string out, every
text escaped. Every data mark carries ``class="mark"``, so the DOM tells an empty chart from
a drawn one. Callers downsample: the helpers draw what they get."""

from __future__ import annotations

import math
from html import escape
from typing import Iterable, Sequence

W, H = 640, 320  # the view box; the page scales it to its column
PAD_L, PAD_R, PAD_T, PAD_B = 64, 20, 48, 52
PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04",
           "#db2777")
REFERENCE, CURRENT = "#64748b", "#ea580c"


def esc(text: object) -> str:
    """``text`` escaped for HTML and SVG text and attributes."""
    return escape(str(text), quote=True)


def fmt(value: object, digits: int = 3) -> str:
    """A number in at most ``digits`` significant digits (``-`` for none / NaN)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e6:
        return f"{int(value):,}".replace(",", " ") if abs(value) >= 1e4 else str(int(value))
    v = float(value)
    if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}" if abs(v) >= 1 else f"{v:.{digits}f}".rstrip("0").rstrip(".")


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]`` (steps of 1, 2 or 5 × 10^k)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, t = [], first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _extent(values: Iterable[float], pad: float = 0.0, zero: bool = False) -> tuple[float, float]:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return 0.0, 1.0
    lo, hi = min(vals), max(vals)
    if zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:
        lo, hi = lo - (abs(lo) * 0.1 or 0.5), hi + (abs(hi) * 0.1 or 0.5)
    span = hi - lo
    return lo - span * pad, hi + span * pad


class Frame:
    """The plot area of one chart: scales from data to view-box coordinates, and the svg
    parts (axes, grid, marks) collected in drawing order."""

    def __init__(self, name: str, title: str, x: tuple[float, float], y: tuple[float, float],
                 *, width: int = W, height: int = H, pad_left: int = PAD_L,
                 pad_bottom: int = PAD_B) -> None:
        self.name, self.title = name, title
        self.width, self.height = width, height
        self.left, self.right = pad_left, width - PAD_R
        self.top, self.bottom = PAD_T, height - pad_bottom
        self.x0, self.x1 = x
        self.y0, self.y1 = y
        self.parts: list[str] = []

    def sx(self, v: float) -> float:
        return self.left + (v - self.x0) / ((self.x1 - self.x0) or 1) * (self.right - self.left)

    def sy(self, v: float) -> float:
        return self.bottom - (v - self.y0) / ((self.y1 - self.y0) or 1) * (self.bottom - self.top)

    def add(self, part: str) -> None:
        self.parts.append(part)

    def axes(self, x_label: str = "", y_label: str = "", *, x_ticks: Sequence | None = None,
             y_ticks: Sequence | None = None, x_tick_labels: Sequence[str] | None = None,
             y_tick_labels: Sequence[str] | None = None, grid: bool = True) -> None:
        """Axis lines, ticks, tick labels, grid lines and axis labels."""
        out = ['<g class="axes" font-size="11" fill="#334155">']
        xt = list(nice_ticks(self.x0, self.x1) if x_ticks is None else x_ticks)
        yt = list(nice_ticks(self.y0, self.y1) if y_ticks is None else y_ticks)
        for i, t in enumerate(yt):
            y = self.sy(t)
            if grid:
                out.append(f'<line x1="{self.left}" x2="{self.right}" y1="{y:.1f}" '
                           f'y2="{y:.1f}" stroke="#e2e8f0"/>')
            label = y_tick_labels[i] if y_tick_labels is not None else fmt(t)
            out.append(f'<text x="{self.left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                       f'{esc(label)}</text>')
        rotate = x_tick_labels is not None and rotates(x_tick_labels)
        for i, t in enumerate(xt):
            x = self.sx(t)
            label = x_tick_labels[i] if x_tick_labels is not None else fmt(t)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.bottom}" '
                       f'y2="{self.bottom + 4}" stroke="#64748b"/>')
            if rotate:
                out.append(f'<text x="{x:.1f}" y="{self.bottom + 14}" text-anchor="end" '
                           f'transform="rotate(-30 {x:.1f} {self.bottom + 14})">'
                           f'{esc(_clip(label, 18))}</text>')
            else:
                out.append(f'<text x="{x:.1f}" y="{self.bottom + 16}" text-anchor="middle">'
                           f'{esc(_clip(label, 24))}</text>')
        out.append(f'<line x1="{self.left}" x2="{self.right}" y1="{self.bottom}" '
                   f'y2="{self.bottom}" stroke="#64748b"/>')
        out.append(f'<line x1="{self.left}" x2="{self.left}" y1="{self.top}" '
                   f'y2="{self.bottom}" stroke="#64748b"/>')
        if x_label:
            out.append(f'<text class="x-label" x="{(self.left + self.right) / 2:.1f}" '
                       f'y="{self.height - 6}" text-anchor="middle" font-size="12">'
                       f'{esc(x_label)}</text>')
        if y_label:
            cy = (self.top + self.bottom) / 2
            out.append(f'<text class="y-label" x="14" y="{cy:.1f}" text-anchor="middle" '
                       f'font-size="12" transform="rotate(-90 14 {cy:.1f})">{esc(y_label)}'
                       '</text>')
        out.append("</g>")
        self.parts.insert(0, "".join(out))

    def legend(self, items: Sequence[tuple[str, str]]) -> None:
        """``(label, colour)`` swatches in the top right corner."""
        x = self.right
        out = ['<g class="legend" font-size="11" fill="#334155">']
        for label, colour in reversed(items):
            text = _clip(label, 28)
            x -= 7 * len(text) + 22
            out.append(f'<rect x="{x:.0f}" y="26" width="10" height="10" '
                       f'fill="{colour}"/><text x="{x + 14:.0f}" y="35">{esc(text)}</text>')
        out.append("</g>")
        self.add("".join(out))

    def svg(self) -> str:
        # drawn at most a third larger than its view box, so text keeps a readable size
        return (f'<svg class="chart" data-chart="{esc(self.name)}" role="img" '
                f'aria-label="{esc(self.title)}" viewBox="0 0 {self.width} {self.height}" '
                f'style="max-width:{self.width * 4 // 3}px" '
                f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif">'
                f'<title>{esc(self.title)}</title>'
                f'<text class="chart-title" x="{self.left}" y="18" font-size="14" '
                f'font-weight="600" fill="#0f172a">{esc(self.title)}</text>'
                + "".join(self.parts) + "</svg>")


def _clip(text: object, n: int) -> str:
    s = str(text)
    return s if len(s) <= n else s[: n - 1] + "…"


def rotates(labels: Sequence[str]) -> bool:
    """Whether :meth:`Frame.axes` turns these x tick labels (too many, or too long)."""
    return len(labels) > 8 or max((len(str(s)) for s in labels), default=0) * len(labels) > 70


def bottom_for(labels: Sequence[str]) -> int:
    """The bottom padding that fits these x tick labels and the axis label below them."""
    return min(110, 44 + int(3.8 * max(len(_clip(s, 18)) for s in labels))) \
        if rotates(labels) else PAD_B


def empty(name: str, title: str, why: str) -> str:
    """A chart with nothing to draw: its title and the reason, and no marks."""
    f = Frame(name, title, (0, 1), (0, 1), height=120)
    f.add(f'<text class="empty" x="{W / 2}" y="70" text-anchor="middle" font-size="12" '
          f'fill="#64748b">{esc(why)}</text>')
    return f.svg()


def _polyline(f: Frame, xs: Sequence[float], ys: Sequence[float], colour: str, label: str,
              *, width: float = 2.0, dash: str | None = None) -> str:
    pts = " ".join(f"{f.sx(x):.1f},{f.sy(y):.1f}" for x, y in zip(xs, ys)
                   if x is not None and y is not None)
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<polyline class="mark series" points="{pts}" fill="none" stroke="{colour}" '
            f'stroke-width="{width}"{dashed}><title>{esc(label)}</title></polyline>')


def line_chart(name: str, title: str, series: Sequence[dict], *, x_labels: Sequence[str],
               x_label: str = "", y_label: str = "", y_range: tuple[float, float] | None = None,
               hlines: Sequence[tuple[float, str]] = (),
               vlines: Sequence[tuple[int, str, str]] = ()) -> str:
    """One or more series over categorical x positions (``x_labels``, e.g. batch ids).

    ``series``: ``{"label", "values" (None for a gap), "colour"?, "points"?: [{"colour",
    "title"}] per value}``. ``hlines``: ``(y, label)`` dashed reference lines; ``vlines``:
    ``(x index, label, colour)`` event markers (a promotion, a rollback)."""
    n = len(x_labels)
    if n == 0 or not any(v is not None for s in series for v in s["values"]):
        return empty(name, title, "no values to draw")
    vals = [v for s in series for v in s["values"] if v is not None] + [y for y, _ in hlines]
    y0, y1 = y_range or _extent(vals, pad=0.08)
    step = max(1, math.ceil(n / 14))
    ticks = list(range(0, n, step))
    shown = [str(x_labels[i]) for i in ticks]
    f = Frame(name, title, (-0.5, n - 0.5), (y0, y1), pad_bottom=bottom_for(shown))
    f.axes(x_label, y_label, x_ticks=ticks, x_tick_labels=shown)
    for y, label in hlines:
        f.add(f'<line class="ref-line" x1="{f.left}" x2="{f.right}" y1="{f.sy(y):.1f}" '
              f'y2="{f.sy(y):.1f}" stroke="#94a3b8" stroke-dasharray="5 4"/>'
              f'<text x="{f.right - 4}" y="{f.sy(y) - 4:.1f}" text-anchor="end" font-size="10" '
              f'fill="#64748b">{esc(label)}</text>')
    for i, label, colour in vlines:
        x = f.sx(i)
        f.add(f'<g class="mark event"><line x1="{x:.1f}" x2="{x:.1f}" y1="{f.top}" '
              f'y2="{f.bottom}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="3 3"/>'
              f'<text x="{x + 3:.1f}" y="{f.top + 10}" font-size="10" fill="{colour}">'
              f'{esc(_clip(label, 22))}</text><title>{esc(label)}</title></g>')
    legend = []
    for k, s in enumerate(series):
        colour = s.get("colour") or PALETTE[k % len(PALETTE)]
        legend.append((s["label"], colour))
        runs: list[list[int]] = [[]]  # a gap (None) breaks the line
        for i, v in enumerate(s["values"]):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(i)
        for run in runs:
            if len(run) > 1:
                f.add(_polyline(f, run, [s["values"][i] for i in run], colour, s["label"]))
        points = s.get("points") or [{}] * n
        for i, v in enumerate(s["values"]):
            if v is None:
                continue
            p = points[i] if i < len(points) else {}
            tip = p.get("title") or f"{x_labels[i]}: {s['label']} {fmt(v)}"
            f.add(f'<circle class="mark point" cx="{f.sx(i):.1f}" cy="{f.sy(v):.1f}" r="4" '
                  f'fill="{p.get("colour") or colour}" stroke="#fff" stroke-width="1">'
                  f'<title>{esc(tip)}</title></circle>')
    if len(series) > 1 or series[0].get("legend"):
        f.legend(legend)
    return f.svg()


def bar_chart(name: str, title: str, labels: Sequence[str], values: Sequence[float | None], *,
              x_label: str = "", y_label: str = "", colours: Sequence[str] | None = None,
              titles: Sequence[str] | None = None, hlines: Sequence[tuple[float, str]] = (),
              horizontal: bool = False, y_range: tuple[float, float] | None = None) -> str:
    """One bar per label (``None``: no bar). ``horizontal`` puts labels on the left (a
    leaderboard); ``colours`` and ``titles`` (tooltips) per bar."""
    if not labels or not any(v is not None for v in values):
        return empty(name, title, "no values to draw")
    colours = list(colours or [PALETTE[0]] * len(labels))
    titles = list(titles or [f"{lab}: {fmt(v)}" for lab, v in zip(labels, values)])
    lo, hi = y_range or _extent([v for v in values if v is not None], pad=0.05, zero=True)
    if horizontal:
        return _hbars(name, title, labels, values, colours, titles, x_label, (lo, hi))
    n = len(labels)
    step = max(1, math.ceil(n / 16))
    ticks = list(range(0, n, step))
    shown = [str(labels[i]) for i in ticks]
    f = Frame(name, title, (-0.5, n - 0.5), (lo, hi), pad_bottom=bottom_for(shown))
    f.axes(x_label, y_label, x_ticks=ticks, x_tick_labels=shown)
    width = (f.right - f.left) / n * 0.7
    base = f.sy(max(lo, min(0.0, hi)))
    for i, v in enumerate(values):
        if v is None:
            continue
        x, y = f.sx(i) - width / 2, f.sy(v)
        f.add(f'<rect class="mark bar" x="{x:.1f}" y="{min(y, base):.1f}" width="{width:.1f}" '
              f'height="{max(abs(base - y), 1):.1f}" fill="{colours[i]}"><title>'
              f'{esc(titles[i])}</title></rect>')
    for y, label in hlines:
        f.add(f'<line class="ref-line" x1="{f.left}" x2="{f.right}" y1="{f.sy(y):.1f}" '
              f'y2="{f.sy(y):.1f}" stroke="#dc2626" stroke-dasharray="5 4"/>'
              f'<text x="{f.right - 4}" y="{f.sy(y) - 4:.1f}" text-anchor="end" font-size="10" '
              f'fill="#dc2626">{esc(label)}</text>')
    return f.svg()


def _hbars(name: str, title: str, labels: Sequence[str], values: Sequence[float | None],
           colours: Sequence[str], titles: Sequence[str], x_label: str,
           extent: tuple[float, float]) -> str:
    n = len(labels)
    row = 24
    height = PAD_T + n * row + 44
    pad = min(290, 16 + int(6.6 * max(len(_clip(lab, 40)) for lab in labels)))
    f = Frame(name, title, extent, (n - 0.5, -0.5), height=height, pad_left=pad,
              pad_bottom=44)
    f.axes(x_label, "", y_ticks=list(range(n)),
           y_tick_labels=[_clip(lab, 40) for lab in labels], grid=False)
    base = f.sx(max(extent[0], min(0.0, extent[1])))
    for i, v in enumerate(values):
        if v is None:
            f.add(f'<text x="{base + 4:.1f}" y="{f.sy(i) + 4:.1f}" font-size="11" '
                  f'fill="#dc2626">failed<title>{esc(titles[i])}</title></text>')
            continue
        x = f.sx(v)
        f.add(f'<rect class="mark bar" x="{min(x, base):.1f}" y="{f.sy(i) - row * 0.35:.1f}" '
              f'width="{max(abs(x - base), 1):.1f}" height="{row * 0.7:.1f}" '
              f'fill="{colours[i]}"><title>{esc(titles[i])}</title></rect>'
              f'<text x="{max(x, base) + 4:.1f}" y="{f.sy(i) + 4:.1f}" font-size="11" '
              f'fill="#0f172a">{esc(fmt(v, 4))}</text>')
    return f.svg()


def roc_chart(name: str, title: str, curves: Sequence[dict]) -> str:
    """ROC curves: ``{"label", "fpr", "tpr", "auc"}`` each (downsampled by the caller); the
    diagonal of a random classifier for reference."""
    if not curves:
        return empty(name, title, "no ROC curve")
    f = Frame(name, title, (0, 1), (0, 1), width=480, height=400)
    ticks = [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    f.axes("false positive rate", "true positive rate", x_ticks=ticks, y_ticks=ticks)
    f.add(f'<line x1="{f.sx(0)}" y1="{f.sy(0)}" x2="{f.sx(1)}" y2="{f.sy(1)}" '
          'stroke="#94a3b8" stroke-dasharray="4 4"/>')
    legend = []
    for k, c in enumerate(curves):
        colour = PALETTE[k % len(PALETTE)]
        label = f"{c['label']} (AUC {fmt(c['auc'])})" if c.get("auc") is not None else c["label"]
        legend.append((label, colour))
        f.add(_polyline(f, c["fpr"], c["tpr"], colour, label))
    f.legend(legend)
    return f.svg()


def heatmap(name: str, title: str, matrix: Sequence[Sequence[float | None]],
            row_labels: Sequence[str], col_labels: Sequence[str], *, x_label: str = "",
            y_label: str = "", cell_text: Sequence[Sequence[str]] | None = None,
            flags: Sequence[Sequence[bool]] | None = None, colour: str = "37, 99, 235",
            vmax: float | None = None) -> str:
    """A matrix as coloured cells (darker: larger); ``cell_text`` is written in the cells,
    ``flags`` outlines flagged cells (a drifted feature). ``None`` cells are grey."""
    rows, cols = len(row_labels), len(col_labels)
    if rows == 0 or cols == 0:
        return empty(name, title, "no cells to draw")
    flat = [v for r in matrix for v in r if v is not None and math.isfinite(v)]
    top = vmax if vmax is not None else (max(flat) if flat else 1.0) or 1.0
    pad = min(200, (34 if y_label else 12) + 7 * max(len(_clip(lab, 26)) for lab in row_labels))
    cell_w = max(28.0, min(110.0, (W - pad - PAD_R) / cols))
    cell_h = max(22.0, min(70.0, 300 / rows))
    width = int(pad + cols * cell_w + PAD_R)
    bottom = bottom_for([str(c) for c in col_labels])
    height = int(PAD_T + rows * cell_h + bottom)
    f = Frame(name, title, (0, cols), (rows, 0), width=max(width, 320), height=height,
              pad_left=pad, pad_bottom=bottom)
    f.right = pad + cols * cell_w
    xt = [c + 0.5 for c in range(cols)]
    f.axes(x_label, y_label, x_ticks=xt, x_tick_labels=list(col_labels),
           y_ticks=[r + 0.5 for r in range(rows)], y_tick_labels=list(row_labels), grid=False)
    for r in range(rows):
        for c in range(cols):
            v = matrix[r][c]
            x, y = f.sx(c), f.sy(r)
            if v is None or not math.isfinite(v):
                fill, dark = "#f1f5f9", False
            else:
                a = max(0.06, min(1.0, v / top))
                fill, dark = f"rgba({colour}, {a:.3f})", a > 0.55
            flagged = bool(flags and flags[r][c])
            stroke = ' stroke="#dc2626" stroke-width="2.5"' if flagged else ' stroke="#fff"'
            text = cell_text[r][c] if cell_text is not None else fmt(v)
            tip = f"{row_labels[r]} × {col_labels[c]}: {text}" + (" (flagged)" if flagged else "")
            f.add(f'<g class="mark cell"><rect x="{x:.1f}" y="{y:.1f}" width="{cell_w:.1f}" '
                  f'height="{cell_h:.1f}" fill="{fill}"{stroke}/>'
                  f'<text x="{x + cell_w / 2:.1f}" y="{y + cell_h / 2 + 4:.1f}" '
                  f'text-anchor="middle" font-size="11" fill="{"#fff" if dark else "#0f172a"}">'
                  f'{esc(_clip(text, 9))}</text><title>{esc(tip)}</title></g>')
    return f.svg()


def histogram_overlay(name: str, title: str, edges: Sequence[float],
                      groups: Sequence[tuple[str, Sequence[float], str]], *, x_label: str = "",
                      y_label: str = "share of rows") -> str:
    """Histograms over the same bin ``edges``, drawn as overlaid translucent step areas:
    ``groups`` is ``(label, share per bin, colour)`` (shares, so groups of different sizes
    compare)."""
    if len(edges) < 2 or not groups:
        return empty(name, title, "no values to draw")
    top = max((v for _, vals, _ in groups for v in vals), default=0) or 1.0
    f = Frame(name, title, (edges[0], edges[-1]), (0, top * 1.08))
    f.axes(x_label, y_label)
    for label, vals, colour in groups:
        d = [f"M{f.sx(edges[0]):.1f},{f.sy(0):.1f}"]
        for i, v in enumerate(vals):
            d.append(f"L{f.sx(edges[i]):.1f},{f.sy(v):.1f}L{f.sx(edges[i + 1]):.1f},"
                     f"{f.sy(v):.1f}")
        d.append(f"L{f.sx(edges[-1]):.1f},{f.sy(0):.1f}Z")
        f.add(f'<path class="mark area" d="{"".join(d)}" fill="{colour}" fill-opacity="0.28" '
              f'stroke="{colour}" stroke-width="1.5"><title>{esc(label)}</title></path>')
    f.legend([(label, colour) for label, _, colour in groups])
    return f.svg()


def grouped_bars(name: str, title: str, categories: Sequence[str],
                 groups: Sequence[tuple[str, Sequence[float], str]], *, x_label: str = "",
                 y_label: str = "share of rows") -> str:
    """Side-by-side bars per category, one per group (``(label, value per category,
    colour)``): a categorical feature's reference and current shares."""
    if not categories or not groups:
        return empty(name, title, "no values to draw")
    n, k = len(categories), len(groups)
    top = max((v for _, vals, _ in groups for v in vals), default=0) or 1.0
    f = Frame(name, title, (-0.5, n - 0.5), (0, top * 1.08),
              pad_bottom=bottom_for([str(c) for c in categories]))
    f.axes(x_label, y_label, x_ticks=list(range(n)), x_tick_labels=list(categories))
    slot = (f.right - f.left) / n * 0.8
    width = slot / k
    for j, (label, vals, colour) in enumerate(groups):
        for i, v in enumerate(vals):
            x = f.sx(i) - slot / 2 + j * width
            f.add(f'<rect class="mark bar" x="{x:.1f}" y="{f.sy(v):.1f}" width="{width:.1f}" '
                  f'height="{max(f.sy(0) - f.sy(v), 0.5):.1f}" fill="{colour}"><title>'
                  f'{esc(f"{categories[i]} ({label}): {fmt(v)}")}</title></rect>')
    f.legend([(label, colour) for label, _, colour in groups])
    return f.svg()


def scatter(name: str, title: str, xs: Sequence[float], ys: Sequence[float], *,
            x_label: str = "", y_label: str = "", hline: float | None = None,
            diagonal: bool = False, colour: str = PALETTE[0]) -> str:
    """Points (downsampled by the caller), with an optional horizontal reference line (zero
    residual) or the diagonal ``y = x`` (a perfect prediction)."""
    pts = [(float(x), float(y)) for x, y in zip(xs, ys)
           if math.isfinite(float(x)) and math.isfinite(float(y))]
    if not pts:
        return empty(name, title, "no points to draw")
    f = Frame(name, title, _extent([p[0] for p in pts], pad=0.04),
              _extent([p[1] for p in pts] + ([hline] if hline is not None else []), pad=0.06))
    f.axes(x_label, y_label)
    if hline is not None:
        f.add(f'<line class="ref-line" x1="{f.left}" x2="{f.right}" y1="{f.sy(hline):.1f}" '
              f'y2="{f.sy(hline):.1f}" stroke="#dc2626" stroke-dasharray="5 4"/>')
    if diagonal:
        lo, hi = max(f.x0, f.y0), min(f.x1, f.y1)
        if hi > lo:
            f.add(f'<line class="ref-line" x1="{f.sx(lo):.1f}" y1="{f.sy(lo):.1f}" '
                  f'x2="{f.sx(hi):.1f}" y2="{f.sy(hi):.1f}" stroke="#94a3b8" '
                  'stroke-dasharray="5 4"/>')
    # one path of tiny circles: a thousand points stay a few dozen kB
    d = "".join(f"M{f.sx(x) - 2:.1f},{f.sy(y):.1f}a2,2 0 1,0 4,0a2,2 0 1,0 -4,0" for x, y in pts)
    f.add(f'<path class="mark points" d="{d}" fill="{colour}" fill-opacity="0.45">'
          f'<title>{len(pts)} points</title></path>')
    return f.svg()
