"""``clearhouse vault`` and ``clearhouse options-vault`` before any node answers: an amount or a
share count that cannot be meant is refused in one line with its code and exit code 2, before
anything is signed or sent (the node named is a port nothing listens on, so a request would be
``CONFIG_ERROR``); USDC amounts are read exactly; an exposure is shown beside its cap. What the
node then does (and an amount finer than the venue's quantum) is ``tests/node/test_vaults.py``."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from tests.unit.client.conftest import Cli, one_line

from clearhouse.cli.vault import _against, share_count, usdc_amount
from clearhouse.client import Units, Wallet
from clearhouse.core.errors import InvalidArgument

NOWHERE = ("--url", "http://127.0.0.1:1")


@pytest.fixture
def key(tmp_path: Path) -> str:
    path = tmp_path / "signer.key"
    path.write_text(Wallet.from_hex("22" * 32).private_key.hex())
    path.chmod(0o600)
    return str(path)


@pytest.mark.parametrize(("text", "amount"), [
    ("2500", Decimal(2500)), ("2500.5", Decimal("2500.5")), (" 0.000001 ", Decimal("0.000001")),
    ("1_000", Decimal(1000)),
])  # fmt: skip
def test_an_amount_is_usdc_as_written(text: str, amount: Decimal) -> None:
    assert usdc_amount(text) == amount


@pytest.mark.parametrize("text", ["0", "0.0", "-5", "abc", "NaN", "inf", "1e999999", "", "2,500"])
def test_an_amount_that_is_no_positive_number_is_refused(text: str) -> None:
    with pytest.raises(InvalidArgument):
        usdc_amount(text)


def test_shares_are_a_whole_number_above_zero() -> None:
    assert share_count("2500500000000000") == 2_500_500_000_000_000
    assert share_count(" 1_000 ") == 1_000
    for text in ("0", "-1", "1.5", "1e6", "all", ""):
        with pytest.raises(InvalidArgument):
            share_count(text)


@pytest.mark.parametrize(("group", "args", "says"), [
    ("vault", ["deposit", "0"], "amount must be more than 0 USDC"),
    ("vault", ["deposit", "12.5.1"], "is not a number"),
    ("options-vault", ["deposit", "--", "-100"], "finite number >= 0"),
    ("vault", ["withdraw", "1.5"], "shares must be a whole number"),
    ("options-vault", ["withdraw", "0"], "shares must be more than 0"),
    ("vault", ["show", "--address", "0x12"], "not an address"),
])  # fmt: skip
def test_bad_input_is_one_line_before_any_request(
    cli: Cli, key: str, group: str, args: list[str], says: str
) -> None:
    command, *rest = args
    done = cli(group, command, "--key-file", key, *NOWHERE, *rest)
    assert says in one_line(done, "INVALID_ARGUMENT", 2)


def test_a_deposit_without_a_key_is_refused_and_one_with_a_key_reaches_for_the_node(
    cli: Cli, key: str
) -> None:
    unsigned = cli("options-vault", "deposit", "100", *NOWHERE)
    assert "this command is signed" in one_line(unsigned, "CONFIG_ERROR", 2)
    signed = cli("options-vault", "deposit", "100", "--key-file", key, *NOWHERE)
    assert "cannot reach a node at http://127.0.0.1:1" in one_line(signed, "CONFIG_ERROR", 2)


def test_each_vault_has_deposit_withdraw_and_show(cli: Cli) -> None:
    for group in ("vault", "options-vault"):
        done = cli(group, "--help")
        assert done.code == 0, done.err
        for command in ("deposit", "withdraw", "show"):
            assert command in done.out


def test_an_exposure_is_shown_in_usdc_beside_its_cap() -> None:
    units = Units(markets={}, assets={"USDC": 10**6})
    assert _against(-12_500_000, 200_000_000, units) == "-12.5 of 200 USDC (6.25%)"
    assert _against(0, 1_234_567_000_000, units) == "0 of 1,234,567 USDC (0.00%)"
    assert _against(0, 0, units) == "0 of 0 USDC"
