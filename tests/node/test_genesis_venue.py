"""A venue from its genesis file (issue 13's done-when): its own signing domain, so a command
signed for the dev domain is another key's, and its journal records that domain, so that
``verify --signatures`` checks against it and fails at the first blanked signature."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
from tests.node.conftest import NodeProcess

from clearhouse.app.signing import Domain
from clearhouse.client import Client, Wallet
from clearhouse.core.codec import encode_command
from clearhouse.core.ids import AssetId
from clearhouse.core.messages import AuthorizeAgent, Deposit
from clearhouse.node.dev import dev_address

CHAIN_ID = 424_242
CONTRACT = "0x" + "ab" * 20
DEV_DOMAIN = Domain(31337, dev_address("custody-contract"))


def _clearhouse(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clearhouse", *args],
                          capture_output=True, text=True, check=False)  # fmt: skip


def _genesis(path: Path) -> tuple[Path, dict[str, Any]]:
    """``clearhouse init``'s file in a domain of its own, and its roles' keys."""
    assert _clearhouse("init", str(path)).returncode == 0
    text = path.read_text()
    text = text.replace("chain_id = 31337", f"chain_id = {CHAIN_ID}")
    text = re.sub(r'verifying_contract = "0x[0-9a-f]{40}"', f'verifying_contract = "{CONTRACT}"',
                  text)  # fmt: skip
    path.write_text(text)
    return path, tomllib.loads(path.with_name(f"{path.stem}.keys.toml").read_text())["keys"]


def test_a_genesis_venue_refuses_dev_domain_signatures_and_its_audit_finds_a_blank(
    tmp_path: Path,
) -> None:
    genesis, keys = _genesis(tmp_path / "venue.toml")
    node = NodeProcess(tmp_path / "node", dev=False, extra=("--genesis", str(genesis))).start()
    try:
        info = httpx.get(node.url + "/v1/info", timeout=10).json()
        assert (info["chain_id"], info["verifying_contract"]) == (CHAIN_ID, CONTRACT)
        wallets = [Wallet.create() for _ in range(3)]
        with Client(node.url, Wallet(bytes.fromhex(keys["custody_relayer"][2:]))) as relayer:
            for number, wallet in enumerate(wallets, start=1):
                # A key that holds nothing is refused (ACCOUNT_NOT_FUNDED): each deposits.
                relayer.submit(Deposit(**relayer.common(), deposit_id=number,
                                       owner=wallet.address, subaccount_number=0,
                                       asset_id=AssetId("USDC"), amount_quantums=1))  # fmt: skip
        for wallet in wallets:
            with Client(node.url, wallet) as client:
                assert client.domain == Domain(CHAIN_ID, CONTRACT)
                command = AuthorizeAgent(**client.common(), agent=Wallet.create().address,  # type: ignore[arg-type]
                                         valid_until_ns=time.time_ns() + 3_600 * 10**9)  # fmt: skip
                body = {"command": json.loads(encode_command(command)),
                        "signature": "0x" + wallet.sign(command, DEV_DOMAIN).hex()}  # fmt: skip
                refused = httpx.post(node.url + "/v1/commands", json=body, timeout=15)
                assert refused.status_code == 403, refused.text
                assert refused.json()["error"]["code"] == "AGENT_NOT_AUTHORIZED"
                assert client.submit(command)["status"] == "accepted"  # the venue's domain
    finally:
        assert node.stop() == 0
    journal = tmp_path / "node" / "journal.sqlite"
    done = _clearhouse("verify", str(journal), "--signatures")
    assert done.returncode == 0, done.stderr
    assert "checked 6 signatures" in done.stdout  # three deposits, three authorizations
    assert f"chain {CHAIN_ID}" in done.stdout
    with sqlite3.connect(journal) as db:
        signed = db.execute("SELECT height, idx FROM commands WHERE length(signature) > 0 "
                            "ORDER BY height, idx").fetchall()  # fmt: skip
        assert len(signed) == 6
        for height, index in signed[1:]:
            db.execute("UPDATE commands SET signature = x'' WHERE height = ? AND idx = ?",
                       (height, index))  # fmt: skip
    failed = _clearhouse("verify", str(journal), "--signatures")
    assert failed.returncode == 1
    height, index = signed[1]
    assert f"signature check failed at height {height}: command {index} " in failed.stderr
    assert "carries no signature" in failed.stderr
