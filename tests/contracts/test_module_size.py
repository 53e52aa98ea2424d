"""No module of the engine or of a built-in plugin grows past 450 lines: a module that does
is doing more than one thing (docs/architecture.md, the module map)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(p for folder in ("framework", "plugins") for p in (ROOT / folder).rglob("*.py")
                 if "node_modules" not in p.parts)


def test_there_are_modules():
    assert len(MODULES) > 50


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_at_most_450_lines(path):
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= 450, f"{path.relative_to(ROOT)} has {lines} lines; split it by concept"
