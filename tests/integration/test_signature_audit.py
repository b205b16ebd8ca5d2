"""Auditing who sent what: every journaled signature recovers to the key the journal names."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.app.audit import check_signatures, journal_domain
from clearhouse.app.signing import Domain
from clearhouse.client import Wallet
from clearhouse.core.errors import VerificationError
from clearhouse.core.ids import MarketId, Side
from clearhouse.core.messages import AgentSigned, AuthorizeAgent, Command, PlaceOrder
from clearhouse.core.units import NS_PER_MS, NS_PER_SECOND
from clearhouse.node.dev import dev_address
from clearhouse.node.server import start_chain

DOMAIN = Domain(31337, dev_address("custody-contract"))


def _journal(path: Path, *, tamper: str = "") -> SqliteJournal:
    """Genesis (unsigned), an account's order and agent authorization, an agent's order."""
    journal = SqliteJournal(path)
    chain, _, _ = start_chain(journal)
    account, agent, stranger = Wallet.create(), Wallet.create(), Wallet.create()
    now = time.time_ns()
    common = {"signer": account.address, "expiry_ns": now + 60 * NS_PER_SECOND}
    order = PlaceOrder(**common, nonce=now // NS_PER_MS, subaccount_number=0,  # type: ignore[arg-type]
                       market_id=MarketId("BTC-PERP"), side=Side.BUY, size_base_quantums=100_000,
                       price_quantums=50_000_000_000)  # fmt: skip
    authorize = AuthorizeAgent(**common, nonce=now // NS_PER_MS + 1, agent=agent.address,  # type: ignore[arg-type]
                               valid_until_ns=now + 3_600 * NS_PER_SECOND)  # fmt: skip
    by_agent = PlaceOrder(**{**common, "nonce": now // NS_PER_MS}, subaccount_number=0,  # type: ignore[arg-type]
                          market_id=MarketId("BTC-PERP"), side=Side.SELL,
                          size_base_quantums=100_000, price_quantums=70_000_000_000)  # fmt: skip
    order_signature = (stranger if tamper == "order" else account).sign(order, DOMAIN)
    agent_signature = (account if tamper == "agent" else agent).sign(by_agent, DOMAIN)
    items: list[Command | AgentSigned] = [order, authorize, AgentSigned(by_agent, agent.address)]
    signatures = [order_signature, account.sign(authorize, DOMAIN), agent_signature]
    chain.produce(now + NS_PER_SECOND, items, signatures)
    chain.flush()
    return journal


def test_every_signature_recovers_to_its_journaled_signer(tmp_path: Path) -> None:
    audit = check_signatures(_journal(tmp_path / "j.sqlite"), DOMAIN)
    assert audit.checked == 3
    assert audit.unsigned > 0  # the genesis listings


@pytest.mark.parametrize(("tamper", "why"), [("order", "journaled as signed by"),
                                              ("agent", "journaled as signed by")])  # fmt: skip
def test_a_signature_by_another_key_is_found(tmp_path: Path, tamper: str, why: str) -> None:
    with pytest.raises(VerificationError, match=why) as failure:
        check_signatures(_journal(tmp_path / "j.sqlite", tamper=tamper), DOMAIN)
    assert failure.value.height == 2


def test_another_domain_recovers_other_keys(tmp_path: Path) -> None:
    with pytest.raises(VerificationError):
        check_signatures(_journal(tmp_path / "j.sqlite"), Domain(1, DOMAIN.verifying_contract))


def test_the_cli_checks_signatures_after_the_replay(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    _journal(path).close()
    done = subprocess.run(
        [sys.executable, "-m", "clearhouse", "verify", str(path), "--signatures"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "checked 3 signatures" in done.stdout
    tampered = tmp_path / "t.sqlite"
    _journal(tampered, tamper="order").close()
    failed = subprocess.run(
        [sys.executable, "-m", "clearhouse", "verify", str(tampered), "--signatures"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert failed.returncode == 1
    assert "signature check failed" in failed.stderr


def test_a_blanked_signature_fails_at_its_height(tmp_path: Path) -> None:
    """Before: a blank signature counted as one of the node's own commands and passed."""
    path = tmp_path / "j.sqlite"
    _journal(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE commands SET signature = x'' WHERE height = 2 AND idx = 1")
    with pytest.raises(VerificationError, match=r"command 1 .* carries no signature") as failure:
        check_signatures(_journal_at(path), DOMAIN)
    assert failure.value.height == 2
    failed = subprocess.run(
        [sys.executable, "-m", "clearhouse", "verify", str(path), "--signatures"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert failed.returncode == 1
    assert "signature check failed at height 2: command 1" in failed.stderr


def test_the_journal_records_its_domain(tmp_path: Path) -> None:
    _journal(tmp_path / "j.sqlite").close()
    assert journal_domain(_journal_at(tmp_path / "j.sqlite")) == DOMAIN


def _journal_at(path: Path) -> SqliteJournal:
    return SqliteJournal(path)
