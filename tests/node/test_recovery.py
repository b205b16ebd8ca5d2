"""Starting a node on an existing journal: from its snapshot plus replay when it can, from
genesis when the snapshot is unusable, and not at all when a block in the middle is corrupt."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.node.conftest import NodeProcess, free_port

from clearhouse.client import Client, Wallet


def _recovered(log: str) -> dict[str, object]:
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    found = [line for line in lines if line.get("message") == "recovered"]
    assert found, log
    return found[-1]


def _run_a_while(node: NodeProcess, orders: int) -> int:
    with Client(node.url, Wallet.create()) as client:
        client.faucet(100_000)
        market = client.market("BTC-PERP")
        while market["oracle_status"] != "fresh":  # status and index read from one answer
            time.sleep(0.05)
            market = client.market("BTC-PERP")
        index = market["index_price_quantums"]
        for n in range(orders):
            price = (index * 95 // 100 // 100_000 - n) * 100_000
            client.place_order("BTC-PERP", "buy", size_base_quantums=100_000, price_quantums=price)
        height: int = client.latest_block()["height"]
        return height


def test_a_restart_resumes_from_the_snapshot_and_agrees_with_a_replay(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "node", extra=("--snapshot-every", "5")).start()
    _run_a_while(node, orders=12)
    assert node.stop() == 0  # graceful: a final snapshot at the head
    node.start()
    recovered = _recovered(node.log())
    assert int(recovered["from_snapshot"]) > 0  # type: ignore[call-overload]
    head = httpx.get(node.url + "/v1/blocks/latest").json()
    node.stop()
    verified = subprocess.run(
        [sys.executable, "-m", "clearhouse", "verify", str(node.data_dir / "journal.sqlite")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    journal = sqlite3.connect(node.data_dir / "journal.sqlite")
    (root,) = journal.execute(
        "SELECT state_root FROM blocks WHERE height = ?", (head["height"],)
    ).fetchone()
    assert "0x" + root.hex() == head["state_root"]
    assert "verified" in verified.stdout


def test_an_unreadable_snapshot_costs_a_replay_from_genesis(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "node", extra=("--snapshot-every", "3")).start()
    _run_a_while(node, orders=4)
    node.kill()
    journal = sqlite3.connect(node.data_dir / "journal.sqlite")
    with journal:
        journal.execute("UPDATE snapshots SET body = x'00'")
    journal.close()
    node.start()
    assert _recovered(node.log())["from_snapshot"] == 0
    assert httpx.get(node.url + "/health").json()["status"] == "ok"
    node.kill()


def test_a_corrupt_block_in_the_middle_stops_the_node(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "node", extra=("--snapshot-every", "0")).start()
    _run_a_while(node, orders=3)
    node.stop()
    journal = sqlite3.connect(node.data_dir / "journal.sqlite")
    with journal:
        journal.execute("UPDATE commands SET body = CAST(REPLACE(CAST(body AS TEXT), "
                        "'\"side\":1', '\"side\":-1') AS BLOB) WHERE height > 2")  # fmt: skip
    journal.close()
    started = subprocess.run(
        [sys.executable, "-m", "clearhouse", "serve", "--dev", "--port", str(free_port()), "--data",
         str(node.data_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert started.returncode == 1  # VERIFICATION_FAILED's exit code
    (failure,) = [x for x in started.stderr.splitlines() if not x.startswith("{")]
    assert failure.startswith("error [VERIFICATION_FAILED]")
    assert "commands hash" in failure or "state root" in failure


def _serve(*arguments: str, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearhouse", "serve", "--port", str(free_port()), "--data",
         str(data), *arguments],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_venue_without_dev_keys_must_name_its_roles(tmp_path: Path) -> None:
    nameless = _serve(data=tmp_path / "a")
    assert nameless.returncode == 2
    assert "--operator, --relayer and --publisher" in nameless.stderr
    too_few = _serve("--operator", "0x" + "01" * 20, "--relayer", "0x" + "02" * 20,
                     "--publisher", "0x" + "03" * 20, data=tmp_path / "b")  # fmt: skip
    assert too_few.returncode == 2
    assert "CONFIG_ERROR" in too_few.stderr
    both = _serve("--dev", "--operator", "0x" + "01" * 20, "--relayer", "0x" + "02" * 20,
                  *("--publisher", "0x" + "03" * 20) * 3, data=tmp_path / "c")  # fmt: skip
    assert both.returncode == 2
    assert "--dev runs its own publishers" in both.stderr
    domainless = _serve("--operator", "0x" + "01" * 20, "--relayer", "0x" + "02" * 20,
                        *("--publisher", "0x" + "03" * 20) * 3, data=tmp_path / "d")  # fmt: skip
    assert domainless.returncode == 2
    assert "give --chain-id and --verifying-contract" in domainless.stderr  # not the dev domain
    assert not (tmp_path / "d" / "journal.sqlite").exists()


def test_a_venue_lists_the_roles_it_was_given(tmp_path: Path) -> None:
    publishers = ["0x" + f"{n:02x}" * 20 for n in (3, 4, 5)]
    roles = ("--operator", "0x" + "01" * 20, "--relayer", "0x" + "0A" * 20,
             *(arg for p in publishers for arg in ("--publisher", p)),
             "--chain-id", "8453", "--verifying-contract", "0x" + "0C" * 20)  # fmt: skip
    node = NodeProcess(tmp_path / "node", dev=False, extra=roles)
    try:
        node.start()
        info = httpx.get(node.url + "/v1/info").json()
        market = httpx.get(node.url + "/v1/markets/BTC-PERP").json()
    finally:
        node.kill()
    assert info["operator"] == "0x" + "01" * 20
    assert (info["chain_id"], info["verifying_contract"]) == (8453, "0x" + "0c" * 20)
    assert info["custody_relayer"] == "0x" + "0a" * 20
    assert market["oracle_status"] != "fresh"  # nobody has reported: no feed without --dev
    journal = sqlite3.connect(node.data_dir / "journal.sqlite")
    (genesis,) = journal.execute(
        "SELECT body FROM commands WHERE height = 1 AND idx = 0"
    ).fetchone()
    assert all(p in genesis.decode() for p in publishers)
