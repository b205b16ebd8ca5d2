"""Shared fixtures. ``tests/`` goes on ``sys.path`` so that test modules can ``import helpers``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from helpers import Venue  # noqa: E402


@pytest.fixture
def venue() -> Venue:
    """The default venue, live: genesis run, prices fresh, four traders with 1M USDC each."""
    return Venue()
