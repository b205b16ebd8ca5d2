"""The venue's two vaults through a real node, from the SDK (sync and async) and the command
line: shares bought with USDC written as a person writes it, read back with their value at NAV
and their lock-up's end, refused while locked, refused beyond what is held, redeemed for exactly
what they are worth once unlocked. The venues start from genesis files: the default one (no
options vault: its deposits are refused with ``OPTIONS_VAULT_NOT_SET_UP``) and the same with its
``[options_vault]`` example taken in and both lock-ups cut to seconds; its journal, set-up
included, passes the signature audit."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.test_genesis_file import uncommented
from tests.node.conftest import NodeProcess
from tests.unit.client.conftest import Cli, in_process, one_line

from clearhouse.client import ApiRejection, AsyncClient, Client, Wallet, checksummed
from clearhouse.core.errors import InvalidArgument
from clearhouse.core.ids import AssetId
from clearhouse.core.messages import Deposit
from clearhouse.node.dev import dev_key
from clearhouse.node.genesis import default_genesis_text

USDC = 10**6
LOCKUP_NS = 3 * 10**9
FUNDS = 10_000 * USDC


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``clearhouse ARGS`` in this process, through ``main()``."""
    return in_process(monkeypatch, capsys)


def _start(folder: Path, text: str) -> NodeProcess:
    path = folder / "venue.toml"
    path.write_text(text)
    extra = ("--genesis", str(path), "--public-keys", "--ip-rate", "0", "--account-rate", "0")
    return NodeProcess(folder / "node", dev=False, extra=extra).start()


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """The default venue with an options vault, both vaults locking shares for 3 s only."""
    text = uncommented(default_genesis_text(time.time_ns()), "[options_vault]")
    for hour_or_day in ("3_600_000_000_000", "86_400_000_000_000"):
        assert f"lockup_ns = {hour_or_day}\n" in text
        text = text.replace(f"lockup_ns = {hour_or_day}\n", f"lockup_ns = {LOCKUP_NS:_}\n")
    process = _start(tmp_path_factory.mktemp("vaults"), text)
    yield process
    process.kill()


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """The default venue (``clearhouse init``'s file): no options vault."""
    process = _start(tmp_path_factory.mktemp("bare"), default_genesis_text(time.time_ns()))
    yield process
    process.kill()


_deposit_ids = iter(range(1, 10**6))


def funded(url: str, usdc: int = FUNDS) -> Wallet:
    """A new account with ``usdc`` quantums in its subaccount 0, deposited by the venue's
    custody relayer (a genesis venue has no faucet; the default file names the dev relayer)."""
    wallet = Wallet.create()
    with Client(url, Wallet(dev_key("custody-relayer"))) as relayer:
        answer = relayer.submit(Deposit(
            **relayer.common(), deposit_id=next(_deposit_ids), owner=wallet.address,
            subaccount_number=0, asset_id=AssetId("USDC"), amount_quantums=usdc,
        ))  # fmt: skip
    assert answer["status"] == "accepted", answer
    return wallet


def key_file(folder: Path, wallet: Wallet) -> str:
    path = folder / f"{wallet.address}.key"
    path.write_text(wallet.private_key.hex())
    path.chmod(0o600)
    return str(path)


def event(answer: dict[str, Any], kind: str) -> dict[str, Any]:
    [found] = [e for e in answer["events"] if e["type"] == kind]
    return dict(found)


def refused(call: Any) -> ApiRejection:
    with pytest.raises(ApiRejection) as caught:
        call()
    return caught.value


def wait_past(unlocked_at_ns: int) -> None:
    """Until a block after ``unlocked_at_ns`` can be cut (the node's blocks take its clock)."""
    time.sleep(max(0.0, (unlocked_at_ns - time.time_ns()) / 1e9) + 0.5)


# ── The SDK ─────────────────────────────────────────────────────────────────────────────────


def test_the_sdk_buys_and_redeems_vault_shares_in_usdc(venue: NodeProcess) -> None:
    wallet = funded(venue.url)
    with Client(venue.url, wallet) as client:
        nonces = client.nonces()
        with pytest.raises(InvalidArgument, match="finer than one quantum"):
            client.deposit_vault_decimal("1.0000001")
        with pytest.raises(InvalidArgument, match=r"not 0\.5"):
            client.deposit_vault_decimal(0.5)  # type: ignore[arg-type]
        assert client.nonces() == nonces  # neither was signed nor sent
        zero = refused(lambda: client.deposit_vault(0))
        assert (zero.status, zero.code) == (400, "AMOUNT_NOT_POSITIVE")

        answer = client.deposit_vault_decimal(Decimal("2500.5"))
        bought = event(answer, "VaultDeposited")
        assert (bought["amount_quote_quantums"], bought["amount_quote"]) == (
            2_500_500_000,
            "2500.5",
        )
        held = client.vault_shares(checksummed(wallet.address))  # either spelling
        assert held["shares"] == bought["shares"] > 0
        assert (held["value_quote_quantums"], held["value_quote"]) == (2_500_500_000, "2500.5")
        assert held["unlocked_at_ns"] == answer["timestamp_ns"] + LOCKUP_NS
        assert held["unlocked_at_ms"] == held["unlocked_at_ns"] // 10**6

        locked = refused(lambda: client.withdraw_vault(held["shares"]))
        assert (locked.status, locked.code) == (422, "VAULT_LOCKED")
        wait_past(held["unlocked_at_ns"])
        more = refused(lambda: client.withdraw_vault(held["shares"] + 1))
        assert (more.status, more.code) == (422, "VAULT_INSUFFICIENT_SHARES")
        paid = event(client.withdraw_vault(held["shares"]), "VaultWithdrawn")
        assert paid["amount_quote_quantums"] == 2_500_500_000  # what it was shown to be worth
        assert client.subaccount()["balances"]["USDC"] == FUNDS
        assert client.vault_shares()["shares"] == 0


def test_the_async_sdk_buys_and_redeems_options_vault_shares(venue: NodeProcess) -> None:
    wallet = funded(venue.url)

    async def run() -> tuple[dict[str, Any], ...]:
        async with AsyncClient(venue.url, wallet) as client:
            before = await client.options_vault()
            answer = await client.deposit_options_vault_decimal("1000")
            held = await client.options_vault_shares()
            try:
                await client.withdraw_options_vault(held["shares"])
            except ApiRejection as error:
                locked = {"status": error.status, "code": error.code}
            wait_past(held["unlocked_at_ns"])
            paid = await client.withdraw_options_vault(held["shares"])
            after = await client.options_vault_shares()
            return before, answer, held, locked, paid, after

    before, answer, held, locked, paid, after = asyncio.run(run())
    assert before["set_up"] and before["caps"] is not None
    bought = event(answer, "OptionsVaultDeposited")
    assert bought["amount_quote_quantums"] == 1_000 * USDC
    assert held["set_up"] and held["shares"] == bought["shares"] > 0
    assert held["value_quote"] == "1000"
    assert held["unlocked_at_ns"] == answer["timestamp_ns"] + LOCKUP_NS
    assert locked == {"status": 422, "code": "VAULT_LOCKED"}
    assert event(paid, "OptionsVaultWithdrawn")["amount_quote_quantums"] == 1_000 * USDC
    assert (after["shares"], after["value_quote_quantums"], after["unlocked_at_ns"]) == (0, 0, 0)


def test_a_venue_without_an_options_vault_refuses_its_deposits(bare: NodeProcess) -> None:
    wallet = funded(bare.url)
    with Client(bare.url, wallet) as client:
        assert client.options_vault()["set_up"] is False
        owner = client.options_vault_shares()
        assert owner == {"set_up": False, "address": wallet.address, "shares": 0,
                         "value_quote_quantums": 0, "value_quote": "0", "unlocked_at_ns": 0,
                         "unlocked_at_ms": 0}  # fmt: skip
        deposit = refused(lambda: client.deposit_options_vault_decimal("100"))
        assert (deposit.status, deposit.code) == (422, "OPTIONS_VAULT_NOT_SET_UP")
        withdraw = refused(lambda: client.withdraw_options_vault(1))
        assert withdraw.code == "OPTIONS_VAULT_NOT_SET_UP"
        assert client.subaccount()["balances"]["USDC"] == FUNDS  # nothing moved


# ── The command line ────────────────────────────────────────────────────────────────────────


def _shown(text: str) -> dict[str, str]:
    """``show``'s rows: label → value (two spaces or more between them)."""
    rows = {}
    for line in text.splitlines():
        label, _, value = line.strip().partition("  ")
        rows[label] = value.strip()
    return rows


def test_the_command_line_deposits_shows_and_redeems_options_vault_shares(
    cli: Cli, venue: NodeProcess, tmp_path: Path
) -> None:
    wallet = funded(venue.url)
    key = key_file(tmp_path, wallet)
    url = ("--url", venue.url)
    bought = cli("options-vault", "deposit", "2500.5", "--key-file", key, *url)
    assert bought.code == 0, bought.err
    assert f"2,500.5 USDC from {wallet.address}/0 bought " in bought.out
    with Client(venue.url) as reader:
        held = reader.options_vault_shares(wallet.address)
    assert f"bought {held['shares']:,} shares of the options vault" in bought.out

    shown = cli("options-vault", "show", "--key-file", key, *url)
    assert shown.code == 0, shown.err
    rows = _shown(shown.out)
    found = httpx.get(venue.url + "/v1/options-vault", timeout=10).json()
    assert rows["NAV"] == f"{Decimal(found['nav_quote']):,} USDC"
    vega_cap = Decimal(found["caps"]["vega_quantums"]) / USDC
    assert rows["vega (per vol point)"] == f"0 of {vega_cap.normalize():,f} USDC (0.00%)"
    assert "gamma (per 1% move)" in rows and "delta" in rows
    assert rows["owner"] == wallet.address
    assert rows["its shares"] == f"{held['shares']:,}"
    assert rows["their value at NAV"] == "2,500.5 USDC"
    assert rows["redeemable from"].endswith(" UTC")

    locked = cli("options-vault", "withdraw", str(held["shares"]), "--key-file", key, *url)
    assert "locked up" in one_line(locked, "VAULT_LOCKED", 14)
    too_many = cli("options-vault", "withdraw", str(held["shares"] + 1), "--key-file", key, *url)
    one_line(too_many, "VAULT_INSUFFICIENT_SHARES", 14)
    wait_past(held["unlocked_at_ns"])
    redeemed = cli("options-vault", "withdraw", str(held["shares"]), "--key-file", key, *url)
    assert redeemed.code == 0, redeemed.err
    assert f"redeemed for 2,500.5 USDC into {wallet.address}/0" in redeemed.out


def test_the_command_line_reads_anyones_vault_shares_and_refuses_in_one_line(
    cli: Cli, venue: NodeProcess, bare: NodeProcess, tmp_path: Path
) -> None:
    wallet = funded(venue.url)
    key = key_file(tmp_path, wallet)
    assert cli("vault", "deposit", "100", "--key-file", key, "--url", venue.url).code == 0
    shown = cli("vault", "show", "--address", checksummed(wallet.address), "--url", venue.url)
    assert shown.code == 0, shown.err
    rows = _shown(shown.out)
    assert (rows["owner"], rows["their value at NAV"]) == (wallet.address, "100 USDC")
    assert "vega (per vol point)" not in rows  # the market-making vault has no Greeks caps
    short = cli("vault", "deposit", "1000000", "--key-file", key, "--url", venue.url)
    one_line(short, "INSUFFICIENT_FUNDS", 14)
    finer = cli("vault", "deposit", "100.0000001", "--key-file", key, "--url", venue.url)
    assert "finer than one quantum (0.000001): not sent" in one_line(finer, "INVALID_ARGUMENT", 2)

    none = funded(bare.url)
    bare_key = key_file(tmp_path, none)
    refused_line = cli("options-vault", "deposit", "100", "--key-file", bare_key, "--url", bare.url)
    assert "no options vault" in one_line(refused_line, "OPTIONS_VAULT_NOT_SET_UP", 14)
    nothing = cli("options-vault", "show", "--key-file", bare_key, "--url", bare.url)
    assert nothing.code == 0 and "no options vault on this venue" in nothing.out


def test_a_journal_that_set_up_its_options_vault_passes_the_signature_audit(
    venue: NodeProcess,
) -> None:
    """The genesis block's ``SetupOptionsVault`` is the operator's, made by the node (unsigned,
    as its listings are); every user command since is signed."""
    funded(venue.url)  # at least one signed command after genesis
    journal = venue.data_dir / "journal.sqlite"
    command = [sys.executable, "-m", "clearhouse", "verify", str(journal), "--signatures"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^checked [1-9][0-9]* signatures", done.stdout, re.MULTILINE), done.stdout
