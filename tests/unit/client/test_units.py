"""Human units convert to quantums exactly, or are refused: never rounded."""

from __future__ import annotations

from decimal import Decimal

import pytest

from clearhouse.client.units import MarketUnits, Units, from_quantums, listed_assets, to_quantums
from clearhouse.core.errors import InvalidArgument

BTC_PERP = MarketUnits("BTC-PERP", base_quantums_per_unit=10**8, quote_quantums_per_unit=10**6,
                       tick_quantums=100_000, step_base_quantums=10_000)  # fmt: skip


def test_a_price_on_the_tick_and_a_size_on_the_step_convert_exactly_both_ways() -> None:
    assert BTC_PERP.price_quantums(Decimal("61234.5")) == 61_234_500_000
    assert BTC_PERP.price_quantums("61234.50") == 61_234_500_000
    assert BTC_PERP.price_quantums(61234) == 61_234_000_000
    assert BTC_PERP.size_base_quantums(Decimal("0.01")) == 1_000_000
    assert BTC_PERP.price(61_234_500_000) == Decimal("61234.5")
    assert str(BTC_PERP.price(61_234_500_000)) == "61234.500000"
    assert BTC_PERP.size(1_000_000) == Decimal("0.01")


def test_a_price_off_the_tick_is_refused_naming_the_two_nearest() -> None:
    with pytest.raises(InvalidArgument, match=r"off its grid.*61234.500000 or 61234.600000"):
        BTC_PERP.price_quantums(Decimal("61234.55"))


def test_a_size_off_the_step_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"size 0\.01005000 is off its grid"):
        BTC_PERP.size_base_quantums(Decimal("0.01005"))


@pytest.mark.parametrize("price", ["61234.5000001", Decimal("1e-7"), "0.0000005"])
def test_a_price_finer_than_a_quantum_is_refused(price: object) -> None:
    with pytest.raises(InvalidArgument, match="finer than one quantum"):
        BTC_PERP.price_quantums(price)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0.1, 61234.5, True, None, b"1"])
def test_a_float_or_other_type_is_refused_as_it_cannot_be_exact(value: object) -> None:
    with pytest.raises(InvalidArgument, match="must be a Decimal, a str or an int"):
        BTC_PERP.price_quantums(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["-1", "NaN", "Infinity", "abc", "1,5"])
def test_a_negative_or_non_finite_or_unreadable_value_is_refused(value: str) -> None:
    with pytest.raises(InvalidArgument):
        BTC_PERP.price_quantums(value)


def test_huge_amounts_stay_exact() -> None:
    amount = Decimal("123456789012345678901234567890.123456")
    assert to_quantums(amount, 10**6) == 123456789012345678901234567890123456
    assert from_quantums(123456789012345678901234567890123456, 10**6) == amount


def test_a_scale_that_is_no_power_of_ten_divides_exactly_or_refuses() -> None:
    assert to_quantums("0.5", 4) == 2
    assert from_quantums(3, 4) == Decimal("0.75")
    with pytest.raises(InvalidArgument, match="finer than one quantum"):
        to_quantums("0.1", 4)


def test_units_from_the_node_read_markets_and_assets() -> None:
    market = {"market_id": "BTC-PERP", "params": {"base_quantums_per_unit": 10**8,
              "tick_quantums": 100_000, "step_base_quantums": 10_000}}  # fmt: skip
    units = Units.from_node([market], {"USDC": 10**6, "BTC": 10**8})
    assert units.market("BTC-PERP") == BTC_PERP
    assert units.amount_quantums("USDC", "12.5") == 12_500_000
    assert units.amount("BTC", 1) == Decimal("0.00000001")
    with pytest.raises(InvalidArgument, match="no market 'ETH-PERP'"):
        units.market("ETH-PERP")
    with pytest.raises(InvalidArgument, match="no asset 'DOGE'"):
        units.amount("DOGE", 1)
    with pytest.raises(InvalidArgument, match="quote asset USDC"):
        Units.from_node([market], {"BTC": 10**8})


def test_asset_scales_come_from_the_info_when_listed_else_from_the_genesis_block() -> None:
    listed = {"assets": [{"asset_id": "USDC", "quantums_per_unit": 10**6}]}
    assert listed_assets(listed, None) == {"USDC": 10**6}
    genesis = {"commands": [
        {"type": "ListOracle", "body": {}},
        {"type": "ListAsset", "body": {"params": {"asset_id": "USDC", "quantums_per_unit": 100}}},
    ]}  # fmt: skip
    assert listed_assets({"chain_id": 1}, genesis) == {"USDC": 100}
