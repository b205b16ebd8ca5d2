"""Fixed-point integer units and the only rounding helpers the core uses.

Every amount in Clearhouse is an integer whose unit is in its name:

* ``Quantums``: the smallest unit of an asset (1 USDC = 1_000_000 quantums; 1 BTC = 10**8).
* ``BaseQuantums``: the smallest unit of a market's size (its base asset's quantum).
* ``PriceQuantums``: quote quantums per one whole base unit (BTC at $60,000 is
  60_000_000_000 quote quantums per BTC).
* ``Ppm``: parts per million (1_000_000 == 100%); ``Ppb``: parts per billion.
* ``TimestampNs``: nanoseconds since the Unix epoch, always taken from the block context.

Every division names its rounding. The docstring of each caller says who the rounding favours;
the rule is that it always goes against the account and in favour of the protocol's solvency
(requirements rounded up, payouts rounded down).
"""

from __future__ import annotations

import math
from typing import NewType

Quantums = NewType("Quantums", int)
BaseQuantums = NewType("BaseQuantums", int)
PriceQuantums = NewType("PriceQuantums", int)
Ppm = NewType("Ppm", int)
Ppb = NewType("Ppb", int)
TimestampNs = NewType("TimestampNs", int)
DurationNs = NewType("DurationNs", int)

PPM_ONE = 1_000_000
PPB_ONE = 1_000_000_000
NS_PER_SECOND = 1_000_000_000
NS_PER_MS = 1_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND
NS_PER_HOUR = 60 * NS_PER_MINUTE
NS_PER_DAY = 24 * NS_PER_HOUR
NS_PER_YEAR = 365 * NS_PER_DAY


def div_floor(numerator: int, denominator: int) -> int:
    """Divide, rounding toward negative infinity."""
    assert denominator > 0, denominator
    return numerator // denominator


def div_ceil(numerator: int, denominator: int) -> int:
    """Divide, rounding toward positive infinity."""
    assert denominator > 0, denominator
    return -((-numerator) // denominator)


def div_toward_zero(numerator: int, denominator: int) -> int:
    """Divide, rounding toward zero: for quantities that are no one's side (a rate, a basis),
    so that neither sign is favoured."""
    assert denominator > 0, denominator
    magnitude = abs(numerator) // denominator
    return magnitude if numerator >= 0 else -magnitude


def div_exact(numerator: int, denominator: int) -> int:
    """Divide where the remainder must be zero: a non-zero remainder is a bug, not a rounding."""
    assert denominator > 0, denominator
    quotient, remainder = divmod(numerator, denominator)
    assert remainder == 0, (numerator, denominator)
    return quotient


def mul_ppm_ceil(amount: int, fraction_ppm: int) -> int:
    """``amount × fraction_ppm / 10**6`` rounded up (a requirement: rounds against the account)."""
    return div_ceil(amount * fraction_ppm, PPM_ONE)


def mul_ppm_floor(amount: int, fraction_ppm: int) -> int:
    """``amount × fraction_ppm / 10**6`` rounded down (a value or payout: against the account)."""
    return div_floor(amount * fraction_ppm, PPM_ONE)


def isqrt_ceil(value: int) -> int:
    """The smallest integer whose square is at least ``value``."""
    assert value >= 0, value
    root = math.isqrt(value)
    return root if root * root == value else root + 1


def window_start_ns(timestamp_ns: int, window_ns: int) -> int:
    """The start of the fixed window of block time that holds ``timestamp_ns``: caps "per
    window" count block time, so making more blocks never buys more."""
    assert window_ns > 0, window_ns
    return timestamp_ns - timestamp_ns % window_ns


def clamp(value: int, low: int, high: int) -> int:
    """Clamp ``value`` into ``[low, high]``."""
    assert low <= high, (low, high)
    return max(low, min(high, value))
