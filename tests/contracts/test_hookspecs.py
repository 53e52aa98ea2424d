"""Every hookspec is named, documented and listed in the hook reference (docs/hooks.md)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from specloop import hookspecs

ROOT = Path(__file__).resolve().parents[2]


def _specs() -> dict[str, object]:
    return {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(fn, "specloop_spec")}


SPECS = _specs()


def test_there_are_hookspecs():
    assert "specloop_register_components" in SPECS


def test_only_hookspecs_are_public_functions():
    plain = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
             if fn.__module__ == hookspecs.__name__ and not name.startswith("_")
             and name not in SPECS]
    assert plain == [], "functions in hookspecs.py must be marked @hookspec"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_name_has_prefix(name):
    assert name.startswith("specloop_")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_docstring(name):
    doc = inspect.getdoc(SPECS[name]) or ""
    assert doc.strip(), f"{name} has no docstring"
    assert "Args:" in doc or "Returns:" in doc, f"{name}'s docstring has no Args:/Returns:"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_in_hook_reference(name):
    doc = ROOT / "docs" / "hooks.md"
    assert doc.is_file(), "docs/hooks.md is missing"
    headings = set(re.findall(r"^##\s+`?(\w+)`?\s*$", doc.read_text(), flags=re.M))
    assert name in headings, f"docs/hooks.md has no '## {name}' section"


def test_reference_lists_no_unknown_hooks():
    doc = ROOT / "docs" / "hooks.md"
    if not doc.is_file():
        pytest.skip("docs/hooks.md is missing (reported by test_in_hook_reference)")
    headings = re.findall(r"^##\s+`?(specloop_\w+)`?\s*$", doc.read_text(), flags=re.M)
    assert sorted(set(headings) - set(SPECS)) == []
