"""A real node process on a loopback port, for the tests that talk to it over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

POSTGRES_URL = os.environ.get(
    "CLEARHOUSE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
STARTUP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class NodeProcess:
    """``clearhouse serve`` in a child process; ``url`` answers once it is ready."""

    data_dir: Path
    store: str | None = None
    dev: bool = True
    extra: tuple[str, ...] = ()
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> NodeProcess:
        self.port = free_port()
        command = [sys.executable, "-m", "clearhouse", "serve", "--port", str(self.port),
                   "--data", str(self.data_dir), *self.extra]  # fmt: skip
        if self.dev:
            command.append("--dev")
        if self.store is not None:
            command += ["--store", self.store]
        with (self.data_dir.parent / f"{self.data_dir.name}.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"node exited with {self.process.returncode}: {self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"node not ready in {STARTUP_SECONDS} s: {self.log()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM: the graceful path; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout)
        return self.process.returncode

    def log(self) -> str:
        path = self.data_dir.parent / f"{self.data_dir.name}.log"
        return path.read_text(errors="replace")[-4_000:] if path.exists() else ""


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    """A dev node on SQLite in a fresh data directory."""
    process = NodeProcess(tmp_path / "node").start()
    yield process
    process.kill()


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=2):
            return True
    except Exception:
        return False


def fresh_index(url: str, market_id: str = "BTC-PERP") -> int:
    """The market's index once the dev feed has made the oracle fresh (15 s at most)."""
    deadline = time.monotonic() + 15
    while True:
        market = httpx.get(f"{url}/v1/markets/{market_id}", timeout=10).json()
        if market["oracle_status"] == "fresh":
            price: int = market["index_price_quantums"]
            return price
        assert time.monotonic() < deadline, market
        time.sleep(0.05)
