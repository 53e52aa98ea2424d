"""The composed-spec cache: hits skip Hydra, and anything that changes the result misses."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from specloop import _compose_cache, _config
from specloop._config import compose as _compose
from specloop._manager import make_plugin_manager
from specloop._typecheck import build_exact

PLUGIN_DIRS = make_plugin_manager().conf_dirs()


def compose(project_dir, overrides, _plugin_dirs):
    return _compose(project_dir, overrides, PLUGIN_DIRS)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("SPECLOOP_CACHE_DIR", str(root))
    return root / "compose"


@pytest.fixture
def hydra_calls(monkeypatch):
    calls = []
    real = _config._compose_with_hydra

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(_config, "_compose_with_hydra", counting)
    return calls


def test_second_compose_is_a_hit_with_the_same_result(project, cache, hydra_calls):
    first = compose(project.root, ["model.params.max_iter=20"], [])
    second = compose(project.root, ["model.params.max_iter=20"], [])
    assert len(hydra_calls) == 1
    assert second.config == first.config and second.choices == first.choices
    assert second.overrides == first.overrides == ["model.params.max_iter=20"]
    assert second.provenance.where("model.params.max_iter") == \
        "command line: model.params.max_iter=20"
    assert len(list(cache.glob("*.json"))) == 1


def test_other_overrides_and_edited_yaml_miss(project, cache, hydra_calls):
    compose(project.root, [], [])
    compose(project.root, ["project.seed=3"], [])
    assert len(hydra_calls) == 2
    cfg = project.root / "conf" / "config.yaml"
    cfg.write_text(cfg.read_text().replace("seed: 0", "seed: 5"))
    edited = compose(project.root, [], [])
    assert len(hydra_calls) == 3
    assert edited.config["project"]["seed"] == 5
    new_option = project.root / "conf" / "model" / "other.yaml"
    new_option.parent.mkdir(exist_ok=True)
    new_option.write_text("kind: sklearn\n")
    compose(project.root, [], [])
    assert len(hydra_calls) == 4  # a new file anywhere on the search path is a miss


def test_env_interpolation_is_part_of_the_key(project, cache, hydra_calls, monkeypatch):
    cfg = project.root / "conf" / "config.yaml"
    cfg.write_text(cfg.read_text() + "store:\n  url: ${oc.env:SPECLOOP_TEST_STORE,.specloop}\n")
    monkeypatch.setenv("SPECLOOP_TEST_STORE", "one")
    assert compose(project.root, [], []).config["store"]["url"] == "one"
    assert compose(project.root, [], []).config["store"]["url"] == "one"
    monkeypatch.setenv("SPECLOOP_TEST_STORE", "two")
    assert compose(project.root, [], []).config["store"]["url"] == "two"
    assert len(hydra_calls) == 2


def test_other_resolvers_are_never_cached(project, cache, hydra_calls):
    cfg = project.root / "conf" / "config.yaml"
    cfg.write_text(cfg.read_text().replace("seed: 0", "seed: 0\n  description: ${now:%Y}"))
    compose(project.root, [], [])
    compose(project.root, [], [])
    assert len(hydra_calls) == 2 and not list(cache.glob("*.json"))


def test_switched_off_and_corrupt_entries(project, tmp_path, monkeypatch, hydra_calls):
    monkeypatch.setenv("SPECLOOP_CACHE_DIR", "off")
    compose(project.root, [], [])
    compose(project.root, [], [])
    assert len(hydra_calls) == 2
    monkeypatch.setenv("SPECLOOP_CACHE_DIR", str(tmp_path / "c"))
    compose(project.root, [], [])
    (entry,) = (tmp_path / "c" / "compose").glob("*.json")
    entry.write_text("{not json")
    assert compose(project.root, [], []).config["project"]
    assert len(hydra_calls) == 4
    assert json.loads(entry.read_text())["format"] == _compose_cache.FORMAT  # rewritten


def test_a_bad_spec_is_not_cached_and_still_reported(project, cache):
    from specloop import ConfigError

    with pytest.raises(ConfigError, match="unknown option"):
        compose(project.root, ["model=nope"], [])
    assert not list(cache.glob("*.json"))


def test_cached_command_does_not_import_hydra(project, cache):
    """An unchanged ``specloop run`` decides "all cached" without Hydra or OmegaConf."""
    project.cli("run")
    code = ("import sys; from specloop.cli import main; rc = main(['run', '--project', "
            f"{str(project.root)!r}]); "
            "print('LOADED', sorted(m for m in ('hydra', 'omegaconf', 'sklearn', 'yaml') "
            "if m in sys.modules)); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ,
                              "SPECLOOP_CACHE_DIR": str(cache.parent)})
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout
    assert "cached" in out.stdout


# -- building schema instances without OmegaConf ---------------------------------------------
@dataclasses.dataclass
class Inner:
    ratio: float = 0.5
    names: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Outer:
    size: int = 1
    label: str | None = None
    flag: bool = False
    inner: Inner = dataclasses.field(default_factory=Inner)
    extra: dict = dataclasses.field(default_factory=dict)
    required: str = "???"


@pytest.mark.parametrize("body", [
    {"required": "x"},
    {"required": "x", "size": 3, "label": None, "flag": True, "extra": {"a": [1, 2]}},
    {"required": "x", "inner": {"ratio": 1, "names": ["a", "b"]}},
])
def test_build_exact_matches_omegaconf(body):
    from omegaconf import OmegaConf

    expected = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Outer), body))
    assert build_exact(Outer, body) == expected
    assert isinstance(build_exact(Outer, body).inner.ratio, float)


@pytest.mark.parametrize("body", [
    {},                                        # required value missing
    {"required": "x", "size": "3"},            # needs a conversion
    {"required": "x", "size": True},           # a bool is not an int here
    {"required": "x", "sizee": 3},             # unknown key
    {"required": "x", "inner": {"ratio": "a"}},
    {"required": "x", "label": 5},
])
def test_build_exact_leaves_conversions_and_errors_to_omegaconf(body):
    assert build_exact(Outer, body) is None
