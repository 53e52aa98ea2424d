"""pytest fixtures for plugin authors, registered through the ``pytest11`` entry point.

Importing this module has no side effects: fixtures build what they need when used.
"""

from __future__ import annotations

import pytest

from . import ProjectBuilder, make_test_plugin_manager


@pytest.fixture
def specloop_pm():
    """A fresh plugin manager with no entry points loaded; register plugins explicitly."""
    return make_test_plugin_manager()


@pytest.fixture
def specloop_project(tmp_path):
    """A project builder in ``tmp_path`` (see :class:`specloop.testing.ProjectBuilder`)."""
    return ProjectBuilder(tmp_path / "project")
