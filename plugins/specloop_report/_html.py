"""The report page: one self-contained HTML file (inline CSS, inline SVG, no script, and a
Content-Security-Policy that forbids loading anything, so a browser proves it needs nothing
from outside). Every text is escaped here or in :mod:`._svg`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from ._svg import esc, fmt

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
:root{--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f8fafc;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg)}
header{background:#0f172a;color:#f8fafc;padding:18px 28px}
header h1{margin:0;font-size:20px}header p{margin:4px 0 0;color:#cbd5e1}
nav{padding:8px 28px;background:#fff;border-bottom:1px solid var(--line);position:sticky;top:0}
nav a{margin-right:14px;color:var(--accent);text-decoration:none}
main{padding:12px 28px 40px;max-width:1280px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 18px;
margin:14px 0}
section h2{margin:0 0 10px;font-size:17px}h3{font-size:14px;margin:14px 0 6px}
.tiles{display:flex;flex-wrap:wrap;gap:10px}
.tile{border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:120px}
.tile b{display:block;font-size:20px}.tile span{color:var(--muted);font-size:12px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:14px}
figure{margin:0}svg.chart{width:100%;height:auto;display:block;background:#fff}
figcaption{color:var(--muted);font-size:12px;margin-top:2px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f5f9;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
pre{background:#f1f5f9;padding:10px;border-radius:6px;overflow:auto;max-height:420px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;word-break:break-all}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;background:#e2e8f0}
.ok{background:#dcfce7;color:#166534}.bad{background:#fee2e2;color:#991b1b}
.warn{background:#ffedd5;color:#9a3412}.note{color:var(--muted)}
details>summary{cursor:pointer;font-weight:600;margin:6px 0}
footer{color:var(--muted);font-size:12px;padding:0 28px 24px}
"""


@dataclass
class Section:
    """One card of the page: an anchor id, a heading and its HTML body."""

    id: str
    title: str
    body: str


@dataclass
class Page:
    """A report: what it is about, and its sections."""

    kind: str
    title: str
    subtitle: str
    sections: list[Section] = field(default_factory=list)

    def add(self, id: str, title: str, *parts: str) -> None:
        self.sections.append(Section(id, title, "".join(parts)))

    def html(self, version: str) -> str:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in self.sections)
        body = "".join(f'<section id="{esc(s.id)}"><h2>{esc(s.title)}</h2>{s.body}</section>'
                       for s in self.sections)
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="specloop {esc(version)}">'
            f"<title>{esc(self.title)}</title><style>{CSS}</style></head>"
            f'<body data-report="{esc(self.kind)}"><header><h1>{esc(self.title)}</h1>'
            f"<p>{esc(self.subtitle)}</p></header><nav>{nav}</nav><main>{body}</main>"
            f"<footer>written by specloop {esc(version)} at {esc(now)}; self-contained: no "
            "scripts, no network</footer></body></html>\n")


def tiles(items: Sequence[tuple[str, Any]]) -> str:
    """Big numbers with a caption each."""
    return '<div class="tiles">' + "".join(
        f'<div class="tile"><b>{esc(fmt(v, 4))}</b><span>{esc(k)}</span></div>'
        for k, v in items) + "</div>"


def charts(*svgs: tuple[str, str] | str) -> str:
    """Charts side by side; each an svg string or ``(svg, caption)``."""
    out = []
    for item in svgs:
        svg, caption = item if isinstance(item, tuple) else (item, "")
        out.append(f"<figure>{svg}" + (f"<figcaption>{esc(caption)}</figcaption>"
                                      if caption else "") + "</figure>")
    return '<div class="charts">' + "".join(out) + "</div>"


def kv(items: Sequence[tuple[str, Any]]) -> str:
    """A definition list of ``(label, value)``; ``None`` values are left out."""
    return '<dl class="kv">' + "".join(
        f"<dt>{esc(k)}</dt><dd>{v if isinstance(v, Raw) else esc(v)}</dd>"
        for k, v in items if v not in (None, "")) + "</dl>"


class Raw(str):
    """HTML already escaped (a badge, a code element) for :func:`kv` and :func:`table`."""


def badge(text: str, tone: str = "") -> Raw:
    return Raw(f'<span class="badge {tone}">{esc(text)}</span>')


def code(text: Any) -> Raw:
    return Raw(f"<code>{esc(text)}</code>")


def table(rows: Sequence[dict], columns: Sequence[str], *, labels: dict | None = None,
          numeric: Sequence[str] = ()) -> str:
    """An HTML table of ``rows`` (dicts) over ``columns``; numbers formatted to 4 digits."""
    if not rows:
        return '<p class="note">(none)</p>'
    labels = labels or {}
    head = "".join(f"<th>{esc(labels.get(c, c))}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            num = c in numeric or (isinstance(v, (int, float)) and not isinstance(v, bool))
            text = v if isinstance(v, Raw) else esc(fmt(v, 4) if num else
                                                     ("" if v is None else v))
            cells.append(f'<td class="num">{text}</td>' if num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>'
            + "".join(body) + "</tbody></table></div>")


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def details(summary: str, body: str, open: bool = False) -> str:
    return f"<details{' open' if open else ''}><summary>{esc(summary)}</summary>{body}</details>"


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'
