"""The reference bots and their commands on a real dev node: each action and each refusal is
a log line (refusals with their code); a stopped maker leaves no quote behind, whether stopped
in-process or by SIGTERM; a bot's key comes from a file that must be its owner's alone."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.unit.client.conftest import Cli, one_line

from clearhouse.client import Client, Wallet
from clearhouse.client.bots import MarketMaker, attempt, run

BTC = 100_000_000


@pytest.fixture
def funded(node_url: str) -> Iterator[Client]:
    with Client(node_url, Wallet.create()) as client:
        client.faucet(100_000)
        yield client


def test_a_maker_logs_its_quotes_and_cancels_them_when_it_stops(
    funded: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="clearhouse.bots")
    maker = MarketMaker(funded, "BTC-PERP", size_base_quantums=BTC // 100, levels=2)
    results = maker.step()
    assert [r["status"] for r in results] == ["accepted"] * 4
    assert len(funded.open_orders()) == 4
    run(maker, interval_seconds=0.01, steps=1)  # a second pass, then stop
    assert funded.open_orders() == []
    lines = [r.getMessage() for r in caplog.records]
    assert sum("maker BTC-PERP: quote " in line and ": order " in line for line in lines) == 8
    assert lines[-1].startswith("maker BTC-PERP: cancel all quotes (stopping): done at height")


def test_a_refused_quote_and_a_refused_command_are_logged_with_their_code(
    node_url: str, funded: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="clearhouse.bots")
    healthy = funded.account
    assert healthy is not None
    with Client(node_url, Wallet.create()) as poor:
        poor.faucet(10)
        MarketMaker(poor, "BTC-PERP", size_base_quantums=10 * BTC, levels=1).step()
        assert attempt("liquidate a healthy account", lambda: poor.liquidate(healthy, 0)) is None
    refusals = [r.getMessage() for r in caplog.records if ": refused " in r.getMessage()]
    assert len(refusals) == 3, refusals
    assert all("INSUFFICIENT_MARGIN (422)" in line for line in refusals[:2]), refusals
    assert refusals[2] == "liquidate a healthy account: refused NOT_LIQUIDATABLE (422)"


def clearhouse(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "clearhouse", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def bot_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CLEARHOUSE_KEY"}


def test_the_maker_command_cancels_its_quotes_on_sigterm(node_url: str, tmp_path: Path) -> None:
    wallet = Wallet.create()
    key = tmp_path / "maker.key"
    key.write_text(wallet.private_key.hex())
    key.chmod(0o600)
    process = clearhouse("maker", "BTC-PERP", "--size", "1000000", "--levels", "2",
                         "--faucet", "100000", "--interval", "0.2", "--url", node_url,
                         "--key-file", str(key), env=bot_env())  # fmt: skip
    with Client(node_url, account=wallet.address) as watcher:
        deadline = time.monotonic() + 30
        while len(watcher.open_orders()) < 4:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the maker never quoted"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        assert watcher.open_orders() == []
    assert "SIGTERM received: stopping" in stderr
    assert "cancel all quotes (stopping): done" in stderr


@pytest.mark.parametrize(
    ("mode", "text", "message"),
    [
        (0o644, "11" * 32, "is open to other users (mode 644): chmod 600"),
        (0o600, "not a key", "a private key is 64 hex digits"),
    ],
)
def test_a_bot_refuses_a_bad_key_file_in_one_line(
    tmp_path: Path, mode: int, text: str, message: str
) -> None:
    key = tmp_path / "bot.key"
    key.write_text(text)
    key.chmod(mode)
    process = clearhouse("keeper", "--url", "http://127.0.0.1:1", "--key-file", str(key),
                         env=bot_env())  # fmt: skip
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 2, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("error [CONFIG_ERROR] key file ")
    assert message in stderr and "Traceback" not in stderr + stdout


def test_a_bot_given_two_keys_refuses_to_choose(tmp_path: Path) -> None:
    key = tmp_path / "bot.key"
    key.write_text("11" * 32)
    key.chmod(0o600)
    process = clearhouse("keeper", "--url", "http://127.0.0.1:1", "--key-file", str(key),
                         env={**bot_env(), "CLEARHOUSE_KEY": "22" * 32})  # fmt: skip
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "--key-file or CLEARHOUSE_KEY, not both" in stderr


class _NoFaucet(BaseHTTPRequestHandler):
    """A node without --dev, as far as a bot's start sees it: /v1/info answers, the dev faucet
    route does not exist (404 NOT_FOUND, as the node answers a route it does not serve)."""

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/info":
            self._answer(200, {"chain_id": 1})
        else:
            self._answer(404, {"error": {"code": "NOT_FOUND", "message": "Not Found"}})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer(404, {"error": {"code": "NOT_FOUND", "message": "Not Found"}})

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_bot_asking_a_node_without_a_faucet_for_funds_says_it_needs_a_dev_node(
    cli: Cli,
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoFaucet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        line = one_line(cli("keeper", "--faucet", "100", "--url", url), "NOT_FOUND", 14)
    finally:
        server.shutdown()
        server.server_close()
    assert line.startswith("error [NOT_FOUND] POST /v1/dev/faucet refused (404): ")
    assert f"--faucet needs a dev node (clearhouse serve --dev); {url} has no faucet" in line
