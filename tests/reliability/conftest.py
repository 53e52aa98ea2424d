"""Fixtures of the reliability suite (helpers live in ``rel_helpers``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "s3"))

from rel_helpers import points_plugin  # noqa: E402


@pytest.fixture(scope="session")
def ext(tmp_path_factory) -> Path:
    """The folder of the test plugin distribution ``rel_points`` (see rel_helpers)."""
    return points_plugin(tmp_path_factory.mktemp("ext"))
