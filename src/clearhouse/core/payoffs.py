"""Piecewise-linear payoffs (SPEC §2): any continuous payoff of the settlement price that is
linear between breakpoints, settled exactly in integers and decomposed into cash, a forward and
calls for pricing and margin.

A payoff is given by its value at S = 0, its slope there, and the slope changes at increasing
strikes:

    payoff(S) = cash + slope_0 · S + Σ_i Δslope_i · max(S − K_i, 0)

Prices are quote quantums per whole base unit, slopes are whole units of the underlying per
contract, so ``payoff`` is an exact integer (quote quantums per contract). A call is
(0, 0, [(K, +1)]); a put (K, −1, [(K, +1)]); a call spread (0, 0, [(K1, +1), (K2, −1)]).
"""

from __future__ import annotations

from dataclasses import dataclass

from clearhouse.core import limits, option_math


@dataclass(frozen=True, slots=True)
class Payoff:
    cash_quote_quantums: int  # the payoff at S = 0
    slope_units: int  # d payoff / d S below the first strike
    kinks: tuple[tuple[int, int], ...]  # (strike price quantums, slope change in units)

    def problems(self) -> tuple[str, ...]:
        found: list[str] = []
        strikes = [k for k, _ in self.kinks]
        if strikes != sorted(set(strikes)) or any(k <= 0 for k in strikes):
            found.append("kink strikes must be positive and strictly increasing")
        if any(change == 0 for _, change in self.kinks):
            found.append("a kink must change the slope")
        if len(self.kinks) > limits.payoff_kinks_max:
            found.append("too many kinks")
        return tuple(found)

    def value(self, settlement_price_quantums: int) -> int:
        """The exact payoff per contract at a settlement price."""
        s = settlement_price_quantums
        total = self.cash_quote_quantums + self.slope_units * s
        for strike, change in self.kinks:
            if s > strike:
                total += change * (s - strike)
        return total

    def final_slope(self) -> int:
        return self.slope_units + sum(change for _, change in self.kinks)

    def bounded_below(self) -> bool:
        """A long position in this payoff can never owe: it is ≥ 0 at every price."""
        if self.final_slope() < 0:
            return False
        points = [0] + [k for k, _ in self.kinks]
        return all(self.value(p) >= 0 for p in points)

    def price(
        self, *, forward: float, expiry_years: float, volatility: float, discount: float = 1.0
    ) -> float:
        """Cash + slope_0 forwards + calls at each kink, each priced by Black-76."""
        total = discount * (self.cash_quote_quantums + self.slope_units * forward)
        for strike, change in self.kinks:
            total += change * option_math.price(
                is_call=True, forward=forward, strike=float(strike),
                expiry_years=expiry_years, volatility=volatility, discount=discount,
            )  # fmt: skip
        return total


def call(strike: int) -> Payoff:
    return Payoff(0, 0, ((strike, 1),))


def put(strike: int) -> Payoff:
    return Payoff(strike, -1, ((strike, 1),))


def call_spread(low: int, high: int) -> Payoff:
    return Payoff(0, 0, ((low, 1), (high, -1)))


def put_spread(low: int, high: int) -> Payoff:
    """Long the high put, short the low put."""
    return Payoff(high - low, 0, ((low, -1), (high, 1)))


def straddle(strike: int) -> Payoff:
    return Payoff(strike, -1, ((strike, 2),))


def butterfly(low: int, middle: int, high: int) -> Payoff:
    assert middle - low == high - middle, "a symmetric butterfly"
    return Payoff(0, 0, ((low, 1), (middle, -2), (high, 1)))


def collar(put_strike: int, call_strike: int) -> Payoff:
    """Long the underlying, long a put, short a call: the value is held between two strikes."""
    return Payoff(put_strike, 0, ((put_strike, 1), (call_strike, -1)))
