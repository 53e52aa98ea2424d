"""Every shipped YAML file parses, and every shipped preset composes and validates."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from specloop.testing import ProjectBuilder

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "plugins" / "_template"

CONF_DIRS = sorted({ROOT / "conf", *ROOT.glob("plugins/*/conf"), *ROOT.glob("plugins/*/*/conf"),
                    *ROOT.glob("projects/*/conf")})
YAML_FILES = sorted(p for d in CONF_DIRS for p in d.rglob("*.yaml"))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_there_is_conf():
    assert len(YAML_FILES) > 10


@pytest.mark.parametrize("path", YAML_FILES, ids=_rel)
def test_yaml_parses(path):
    doc = yaml.safe_load(path.read_text())
    assert doc is None or isinstance(doc, dict), f"{_rel(path)} is not a mapping"


# -- presets of the framework and of the built-in and template plugins ------------------------

DEFAULTS = {"data": "breast_cancer", "model": "logistic", "metrics": "classification",
            "gate": "none", "deploy": "none", "monitor": "none", "retrain": "none",
            "store": "local"}


def _presets(conf: Path) -> list[tuple[str, str]]:
    return [(p.parent.name, p.stem) for p in sorted(conf.glob("*/*.yaml"))]


SHARED = [(ROOT / "conf", g, o) for g, o in _presets(ROOT / "conf")]
SHARED += [(d, g, o) for d in sorted(ROOT.glob("plugins/specloop_*/conf")) for g, o in _presets(d)]
SHARED += [(d, g, o) for d in sorted(TEMPLATE.glob("*/conf")) for g, o in _presets(d)]


@pytest.fixture(scope="module")
def minimal(tmp_path_factory) -> ProjectBuilder:
    p = ProjectBuilder(tmp_path_factory.mktemp("minimal") / "project")
    p.write_conf("config.yaml", {"defaults": [{g: o} for g, o in DEFAULTS.items()] + ["_self_"],
                                 "project": {"name": "minimal"}})
    return p


@pytest.fixture(scope="module")
def template_plugin():
    sys.path.insert(0, str(TEMPLATE))
    try:
        import specloop_example
        yield specloop_example
    finally:
        sys.path.remove(str(TEMPLATE))


def test_minimal_project_validates(minimal):
    ctx = minimal.context()
    assert ctx.spec.components["data"].spec.kind == "sklearn_dataset"


@pytest.mark.parametrize("conf,group,option", SHARED,
                         ids=[f"{_rel(d)}:{g}={o}" for d, g, o in SHARED])
def test_shared_preset_composes_and_validates(conf, group, option, minimal, request):
    installed = any(ep.value == "specloop_example" for ep in entry_points(group="specloop.plugins"))
    plugins = [request.getfixturevalue("template_plugin")] \
        if conf.is_relative_to(TEMPLATE) and not installed else []
    override = f"{group}={option}" if group in DEFAULTS else f"+{group}={option}"
    ctx = minimal.context([override], plugins=plugins)
    assert ctx.spec.choices.get(group) == option
    node = yaml.safe_load((conf / group / f"{option}.yaml").read_text()) or {}
    comp = ctx.spec.components.get(group)
    if group in ctx.spec.components and node.get("kind") not in (None, "none"):
        assert comp is not None and comp.spec.kind == node["kind"]


# -- each example project, and each of its own presets ---------------------------------------

PROJECTS = sorted(p.parent.parent for p in ROOT.glob("projects/*/conf/config.yaml"))
PROJECT_PRESETS = [(p, g, o) for p in PROJECTS for g, o in _presets(p / "conf")]


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_project_validates(project):
    ProjectBuilder(project).context()


@pytest.mark.parametrize("project,group,option", PROJECT_PRESETS,
                         ids=[f"{p.name}:{g}={o}" for p, g, o in PROJECT_PRESETS])
def test_project_preset_composes_and_validates(project, group, option):
    defaults = yaml.safe_load((project / "conf" / "config.yaml").read_text()).get("defaults", [])
    chosen = {g for d in defaults if isinstance(d, dict) for g in d}
    ctx = ProjectBuilder(project).context([f"{'' if group in chosen else '+'}{group}={option}"])
    assert ctx.spec.choices.get(group) == option
