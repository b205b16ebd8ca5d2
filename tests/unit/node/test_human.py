"""Units as exact decimal strings, milliseconds, side names, and EIP-55 addresses."""

from __future__ import annotations

from decimal import Context, Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.node.errors import ApiError
from clearhouse.node.human import Scales, address, addresses_in, annotate, checksummed, ms, units

# The test vectors of EIP-55 itself.
EIP55 = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]


def test_units_are_exact_decimal_strings() -> None:
    assert units(6_123_450_000, 10**5) == "61234.5"
    assert units(61_234_500_000, 10**6) == "61234.5"
    assert units(1, 10**18) == "0.000000000000000001"
    assert units(-2_500_000, 10**6) == "-2.5"
    assert units(0, 10**6) == "0"
    assert units(10**6, 10**6) == "1"
    assert units(10**30, 1) == "1" + "0" * 30  # no exponent, whatever the size


@given(st.integers(-(10**40), 10**40), st.integers(0, 18))
def test_units_round_trip_to_the_integer(quantums: int, decimals: int) -> None:
    text = units(quantums, 10**decimals)
    assert "e" not in text.lower()
    assert Decimal(text).scaleb(decimals, Context(prec=100)) == quantums  # exact, no rounding


@given(st.integers(-(10**60), 10**60), st.integers(0, 40))
def test_units_by_integers_match_exact_decimal_division(quantums: int, decimals: int) -> None:
    """The power-of-ten fast path formats as the exact Decimal quotient, normalized."""
    with localcontext(Context(prec=200)):  # the division exact too, not at 28 digits
        exact = (Decimal(quantums) / Decimal(10**decimals)).normalize()
    expected = format(exact, "f")
    assert units(quantums, 10**decimals) == ("0" if expected in ("-0", "0.0") else expected)


def test_milliseconds_round_toward_the_past() -> None:
    assert ms(1_700_000_000_123_999_999) == 1_700_000_000_123
    assert ms(-1) == -1


def test_annotate_adds_companions_by_name_and_keeps_every_field() -> None:
    scales = Scales(quote=10**6, assets={"USDC": 10**6, "BTC": 10**8}, markets={"BTC-PERP": 10**8})
    event = {"market_id": "BTC-PERP", "price_quantums": 61_234_500_000,
             "size_base_quantums": 150_000_000, "taker_side": -1, "timestamp_ns": 5 * 10**6,
             "nested": [{"fee_quote_quantums": 1}], "tick_quantums": 7}  # fmt: skip
    out = annotate(event, scales)
    flat = {k: v for k, v in event.items() if k != "nested"}
    assert {k: out[k] for k in flat} == flat
    assert out["nested"][0]["fee_quote_quantums"] == 1
    assert out["price"] == "61234.5"
    assert out["size_base"] == "1.5"
    assert out["taker_side_name"] == "sell"
    assert out["timestamp_ms"] == 5
    assert out["nested"][0]["fee_quote"] == "0.000001"
    assert "tick" not in out  # no unit known: no companion rather than a wrong one
    transfer = annotate({"asset_id": "BTC", "amount_quantums": 10**8}, scales)
    assert transfer["amount"] == "1"


def test_an_existing_field_is_never_overwritten() -> None:
    out = annotate({"price_quantums": 10**6, "price": "kept"}, Scales(quote=10**6))
    assert out["price"] == "kept"


@pytest.mark.parametrize("mixed", EIP55)
def test_checksums_match_the_eip55_vectors(mixed: str) -> None:
    assert checksummed(mixed.lower()) == mixed
    assert address(mixed) == mixed.lower()
    assert address(mixed.lower()) == mixed.lower()
    assert address("0x" + mixed[2:].upper()) == mixed.lower()  # no checksum to check


def test_a_wrong_checksum_is_refused_with_its_code() -> None:
    wrong = EIP55[0][:3] + EIP55[0][3].swapcase() + EIP55[0][4:]
    with pytest.raises(ApiError) as refused:
        address(wrong)
    assert refused.value.code == "BAD_ADDRESS_CHECKSUM"
    assert refused.value.detail["expected"] == EIP55[0]


def test_addresses_in_a_command_body_are_normalized_wherever_they_are() -> None:
    body = {"signer": EIP55[1], "nested": [{"agent": EIP55[2]}], "market_id": "BTC-PERP"}
    assert addresses_in(body) == {
        "signer": EIP55[1].lower(), "nested": [{"agent": EIP55[2].lower()}],
        "market_id": "BTC-PERP",
    }  # fmt: skip
