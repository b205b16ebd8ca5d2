"""One real dev node for the SDK's tests (each test trades from its own new wallet, so they
share it safely), started on first use; and the command line run in this process."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from tests.node.conftest import NodeProcess, fresh_index

from clearhouse.cli import main


@pytest.fixture(scope="session")
def node_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process = NodeProcess(tmp_path_factory.mktemp("sdk") / "node").start()
    fresh_index(process.url)  # the dev feed's first prices: orders need a fresh index
    yield process.url
    process.stop()


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


Cli = Callable[..., Outcome]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``clearhouse ARGS`` in this process, through ``main()`` as the console script runs it."""
    return in_process(monkeypatch, capsys)


def in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """The ``cli`` fixture's runner, for a test module elsewhere to make its own fixture of."""
    monkeypatch.delenv("CLEARHOUSE_KEY", raising=False)

    def run(*args: str) -> Outcome:
        monkeypatch.setattr(sys, "argv", ["clearhouse", *args])
        try:
            code = main()
        except SystemExit as done:  # Typer exits on its own once a command returns
            code = done.code if isinstance(done.code, int) else 1
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


def one_line(outcome: Outcome, code: str, exit_code: int) -> str:
    """The error line, checked: one line on stderr, its code, its exit code, no traceback."""
    assert outcome.code == exit_code, outcome
    assert "Traceback" not in outcome.err
    [line] = outcome.err.strip().splitlines()
    assert f"[{code}]" in line, line
    return line
