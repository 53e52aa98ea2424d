"""The specloop launcher composes each member's config once: the copy Hydra's sweeper
composed to check the batch is the one the member gets."""

from __future__ import annotations

import pickle

from omegaconf import OmegaConf

from specloop._launcher import KeptConfigs, keep_member_configs


class CountingLoader:
    def __init__(self) -> None:
        self.calls = 0

    def load_sweep_config(self, master_config, sweep_overrides):
        self.calls += 1
        return OmegaConf.create({"hydra": {"job": {"id": None}},
                                 "overrides": list(sweep_overrides)})

    def get_sources(self):
        return ["the loader's own sources"]


class Context:
    def __init__(self, loader) -> None:
        self.config_loader = loader


def test_each_member_config_is_composed_once_and_handed_out_as_copies():
    loader = CountingLoader()
    kept = KeptConfigs(loader)
    master = OmegaConf.create({})
    kept.load_sweep_config(master, ["model.C=1"])  # the sweeper's check
    member = kept.load_sweep_config(master, ["model.C=1"])  # the member
    assert loader.calls == 1 and list(member.overrides) == ["model.C=1"]
    member.hydra.job.id = "job_0"  # what the launcher writes into a member's config
    assert kept.load_sweep_config(master, ["model.C=1"]).hydra.job.id is None
    kept.load_sweep_config(master, ["model.C=2"])
    assert loader.calls == 2
    assert kept.get_sources() == ["the loader's own sources"]  # the rest passes through


def test_wrapping_is_idempotent_and_survives_pickling():
    ctx = Context(CountingLoader())
    keep_member_configs(ctx)
    keep_member_configs(ctx)
    assert isinstance(ctx.config_loader, KeptConfigs)
    assert isinstance(ctx.config_loader.loader, CountingLoader)
    ctx.config_loader.load_sweep_config(OmegaConf.create({}), ["a=1"])
    copy = pickle.loads(pickle.dumps(ctx.config_loader))  # as sent to the fork server
    assert list(copy.load_sweep_config(None, ["a=1"]).overrides) == ["a=1"]
    assert copy.loader.calls == 1
