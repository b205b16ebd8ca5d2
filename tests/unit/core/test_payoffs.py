"""Piecewise-linear payoffs settle to hand-computed values, exactly, and price as the sum of
their decomposition into cash, a forward and calls."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.core import option_math
from clearhouse.core.payoffs import (
    Payoff,
    butterfly,
    call,
    call_spread,
    collar,
    put,
    put_spread,
    straddle,
)

USDC = 1_000_000
K = 60_000 * USDC

HAND_COMPUTED = [
    # payoff, settlement price, value per contract (quote quantums), by hand
    (call(K), 65_000 * USDC, 5_000 * USDC),
    (call(K), 55_000 * USDC, 0),
    (put(K), 55_000 * USDC, 5_000 * USDC),
    (put(K), 65_000 * USDC, 0),
    (call_spread(K, 70_000 * USDC), 65_000 * USDC, 5_000 * USDC),
    (call_spread(K, 70_000 * USDC), 90_000 * USDC, 10_000 * USDC),
    (put_spread(50_000 * USDC, K), 55_000 * USDC, 5_000 * USDC),
    (put_spread(50_000 * USDC, K), 10_000 * USDC, 10_000 * USDC),
    (straddle(K), 52_500 * USDC, 7_500 * USDC),
    (straddle(K), 61_234 * USDC, 1_234 * USDC),
    (butterfly(55_000 * USDC, K, 65_000 * USDC), K, 5_000 * USDC),
    (butterfly(55_000 * USDC, K, 65_000 * USDC), 57_000 * USDC, 2_000 * USDC),
    (butterfly(55_000 * USDC, K, 65_000 * USDC), 80_000 * USDC, 0),
    (collar(55_000 * USDC, 65_000 * USDC), 40_000 * USDC, 55_000 * USDC),
    (collar(55_000 * USDC, 65_000 * USDC), 61_000 * USDC, 61_000 * USDC),
    (collar(55_000 * USDC, 65_000 * USDC), 99_000 * USDC, 65_000 * USDC),
    (call(K), K, 0),  # at the strike exactly
    (call(K), K + 1, 1),  # one quantum in the money
]


@pytest.mark.parametrize(("payoff", "settlement", "expected"), HAND_COMPUTED)
def test_settles_to_the_hand_computed_value(payoff: Payoff, settlement: int, expected: int) -> None:
    assert payoff.problems() == ()
    assert payoff.value(settlement) == expected


@given(st.integers(1, 200_000 * USDC))
def test_payoffs_are_the_sum_of_their_legs(settlement: int) -> None:
    low, high = 55_000 * USDC, 65_000 * USDC
    legs = call(low).value(settlement) - call(high).value(settlement)
    assert call_spread(low, high).value(settlement) == legs
    both = call(K).value(settlement) + put(K).value(settlement)
    assert straddle(K).value(settlement) == both
    wings = (
        call(low).value(settlement) - 2 * call(K).value(settlement) + call(high).value(settlement)
    )
    assert butterfly(low, K, high).value(settlement) == wings


def test_pricing_by_decomposition_matches_black76() -> None:
    forward, t, vol, d = 61_000.0 * USDC, 0.25, 0.6, 0.99
    for strike in (40_000 * USDC, K, 80_000 * USDC):
        direct_put = option_math.price(is_call=False, forward=forward, strike=float(strike),
                                       expiry_years=t, volatility=vol, discount=d)  # fmt: skip
        assert put(strike).price(forward=forward, expiry_years=t, volatility=vol,
                                 discount=d) == pytest.approx(direct_put, rel=1e-9)  # fmt: skip


def test_invalid_payoffs_name_their_problem() -> None:
    assert Payoff(0, 0, ((K, 1), (K, -1))).problems()  # repeated strike
    assert Payoff(0, 0, ((K, 0),)).problems()  # no slope change
    assert Payoff(0, 0, ((-5, 1),)).problems()  # negative strike
    assert Payoff(0, 0, tuple((K + i, 1 if i % 2 else -1) for i in range(40))).problems()


def test_which_payoffs_a_holder_can_never_owe_on() -> None:
    assert call(K).bounded_below() and put(K).bounded_below() and straddle(K).bounded_below()
    assert not Payoff(0, -1, ()).bounded_below()  # a short forward
    assert not Payoff(0, 0, ((K, -1),)).bounded_below()  # a short call
