"""Conformance suites: one pytest class per stage that a plugin author subclasses.

Subclass the suite of your component's stage as ``Test...`` and set three attributes::

    class TestSizedDrift(RetrainPolicySuite):
        kind = "sized_drift"
        plugin = my_plugin          # registered on a fresh plugin manager
        config = {"min_rows": 50}   # a valid node, without ``kind``

``config`` may instead be a pytest fixture of the class, when the node depends on
``tmp_path``; every check then uses the fixture's value.

Generic checks (:class:`ComponentSuite`) cover registration, lazy loading, validation of
every declared constraint (through the engine's own code path), declared metric names,
construction without I/O and pickling; stage suites add behaviour checks on small generated
data, with components built behind the engine's error boundary and a :class:`StubContext`
standing in for the node context. :func:`check_component` runs the generic checks without
pytest.
"""

from __future__ import annotations

from ._component_suite import ComponentSuite, check_component
from ._resolve import resolve_config
from ._samples import make_bundle, make_frame
from ._stage_suites import (DataSourceSuite, DeployerSuite, GateSuite, MetricSuite, ModelSuite,
                            MonitorSuite, RetrainPolicySuite)
from ._stub_context import StubContext

__all__ = ["ComponentSuite", "DataSourceSuite", "ModelSuite", "MetricSuite", "GateSuite",
           "DeployerSuite", "MonitorSuite", "RetrainPolicySuite", "StubContext",
           "check_component", "make_bundle", "make_frame", "resolve_config"]
