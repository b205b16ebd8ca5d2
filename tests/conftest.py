"""Shared fixtures. ``tests/`` goes on ``sys.path`` so that test modules can ``import helpers``."""

from __future__ import annotations

import copyreg
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from clearhouse.core.engine import machine

TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from helpers import Venue  # noqa: E402


@pytest.fixture
def venue() -> Venue:
    """The default venue, live: genesis run, prices fresh, four traders with 1M USDC each."""
    return Venue()


def _copy_compiled_engines() -> None:
    """Under the compiled build (``make compiled``), a deep copy (or pickle) of an ``Engine``,
    which some tests take of a whole venue, is rebuilt from a copy of its state: CPython's
    default would call the compiled ``__init__()`` without its venue. (Frozen dataclasses are
    taken care of by ``clearhouse.core.pickling``.)"""
    if machine.__file__ is None or machine.__file__.endswith(".py"):
        return  # the pure build copies engines as it always has
    copyreg.pickle(machine.Engine, _reduce_engine)


def _reduce_engine(engine: machine.Engine) -> tuple[object, ...]:
    return machine.Engine.from_state, (engine.state,)


_copy_compiled_engines()

# No example has a time limit: speed is measured in benchmarks/, and a deadline is a timed test
# that a busy machine (the suite on every core) fails now and then.
settings.register_profile("clearhouse", deadline=None)
settings.load_profile("clearhouse")


# Tests that must have the machine to themselves (``make unit`` runs them after the others,
# one at a time): real node processes and their clients, wall-clock waits and timings, Ray
# and process pools of their own, a browser.
SERIAL_PATHS = (
    "tests/node/",
    "tests/unit/node/",
    "tests/unit/client/",
    "tests/integration/",
    "tests/test_readme.py",
    "tests/scenarios/test_guard_mutations.py",
    "tests/sim/stress/test_montecarlo.py",
    "tests/sim/stress/test_report_browser.py",
    "tests/unit/app/test_signing.py",  # forks a process pool (a threaded worker must not)
)
ROOT = Path(TESTS_DIR).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.relative_to(ROOT).as_posix().startswith(SERIAL_PATHS):
            item.add_marker(pytest.mark.serial)
