"""Shared fixtures: namespace clean-up and root detection."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import nslib


@pytest.fixture(scope="session", autouse=True)
def _remove_leftover_namespaces():
    """Delete any namespace of this run that a crashed test left behind."""
    yield
    for name in nslib.leftovers():
        nslib.delete(name)
