"""The options AMM's arithmetic (SPEC §11), pure and in integers: how far its exposure has
gone toward each cap, the spread that grows with it, the quote around an option's mark, and the
hedge that brings delta back. The behaviour (shares, quotes on the books, the hedge order) is
``core/engine/options_vault.py``; shares at NAV are ``core/vault.py``'s, shared with the
market-making vault.

Exposures are values in quote quantums, measured on the whole book (options and hedge):

- ``vega``: the book's value change for one volatility point (0.01);
- ``gamma``: the change of the book's delta value for a 1% move of the underlying, Γ·S²/100;
- ``delta``: the book's delta value, Δ·S.

Each is capped at a share of NAV (``OptionsVaultParams.*_cap_nav_ppm``). The engine turns its
floats (Black-76 Greeks, ``core/engine/risk.py``) into these integers once, truncating toward
zero, so that every decision below is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearhouse.core.ids import Side
from clearhouse.core.params import OptionsVaultParams
from clearhouse.core.units import PPM_ONE, div_ceil, div_floor


@dataclass(frozen=True, slots=True, kw_only=True)
class Exposure:
    """A book's (or one contract's) vega, gamma and delta values, in quote quantums."""

    vega_quantums: int
    gamma_quantums: int
    delta_quantums: int

    def plus(self, other: Exposure, units_num: int, units_den: int) -> Exposure:
        """This exposure plus ``other`` × units_num / units_den (a fill of that many units of a
        contract whose per-unit exposure is ``other``); rounded toward zero."""
        assert units_den > 0, units_den
        return Exposure(
            vega_quantums=self.vega_quantums + _scaled(other.vega_quantums, units_num, units_den),
            gamma_quantums=self.gamma_quantums
            + _scaled(other.gamma_quantums, units_num, units_den),
            delta_quantums=self.delta_quantums
            + _scaled(other.delta_quantums, units_num, units_den),
        )


def _scaled(value: int, num: int, den: int) -> int:
    product = value * num
    return product // den if product >= 0 else -((-product) // den)


@dataclass(frozen=True, slots=True, kw_only=True)
class Caps:
    """The most of each exposure the vault may hold, either sign, from its NAV."""

    vega_quantums: int
    gamma_quantums: int
    delta_quantums: int

    @staticmethod
    def of(params: OptionsVaultParams, nav_quantums: int) -> Caps:
        """Each cap a share of NAV, rounded down (the cap holds); all zero at a NAV ≤ 0."""
        nav = max(nav_quantums, 0)
        return Caps(
            vega_quantums=div_floor(nav * params.vega_cap_nav_ppm, PPM_ONE),
            gamma_quantums=div_floor(nav * params.gamma_cap_nav_ppm, PPM_ONE),
            delta_quantums=div_floor(nav * params.delta_cap_nav_ppm, PPM_ONE),
        )


def utilization_ppm(value: int, cap: int) -> int:
    """value / cap in ppm, clamped to [−1, 1]; a full cap (±1) when the cap is nothing."""
    if cap <= 0:
        return 0 if value == 0 else (PPM_ONE if value > 0 else -PPM_ONE)
    return max(-PPM_ONE, min(PPM_ONE, _scaled(value, PPM_ONE, cap)))


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def pressure_ppm(params: OptionsVaultParams, book: Exposure, unit: Exposure, caps: Caps) -> int:
    """The spread, in ppm of the mark, that buying one more of this contract costs for the
    exposure it adds: vega_spread × (vega used) + gamma_spread × (gamma used), each counted
    with the sign of the contract's own vega and gamma. Positive: buying adds exposure (the bid
    widens by it); negative: selling does (the ask widens by its size)."""
    vega = _sign(unit.vega_quantums) * utilization_ppm(book.vega_quantums, caps.vega_quantums)
    gamma = _sign(unit.gamma_quantums) * utilization_ppm(book.gamma_quantums, caps.gamma_quantums)
    return _scaled(params.vega_spread_ppm * vega + params.gamma_spread_ppm * gamma, 1, PPM_ONE)


def within_caps(after: Exposure, before: Exposure, caps: Caps) -> bool:
    """May the book go from ``before`` to ``after``? Each exposure must end within its cap, or
    at least no further from zero than it was (a fill that reduces a breach is welcome)."""
    pairs = (
        (after.vega_quantums, before.vega_quantums, caps.vega_quantums),
        (after.gamma_quantums, before.gamma_quantums, caps.gamma_quantums),
        (after.delta_quantums, before.delta_quantums, caps.delta_quantums),
    )
    return all(abs(a) <= cap or abs(a) <= abs(b) for a, b, cap in pairs)


@dataclass(frozen=True, slots=True)
class OptionQuote:
    """A bid and an ask; a side with size 0 is not quoted."""

    bid_price_quantums: int
    bid_base_quantums: int
    ask_price_quantums: int
    ask_base_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionQuoteInputs:
    mark_price_quantums: int
    tick_quantums: int
    step_base_quantums: int
    min_order_base_quantums: int
    base_quantums_per_unit: int
    book: Exposure  # the vault's, now
    unit: Exposure  # one whole unit of this option (long)
    caps: Caps
    pressure_ppm: int  # from ``pressure_ppm``


def make_option_quote(params: OptionsVaultParams, q: OptionQuoteInputs) -> OptionQuote:
    """The vault's quote on one option (SPEC §11):

    half spreads: bid = half_spread + max(pressure, 0), ask = half_spread + max(−pressure, 0),
    each at most 90% (so the spread grows with exposure, and only on the side that adds it:
    the other stays tight, which is how the quotes lean toward reducing exposure);
    bid = mark × (1 − bid half) rounded down to the tick, ask = mark × (1 + ask half) rounded
    up (both away from the mark), the ask at least a tick above the bid;
    each side's size = ``quote_size_base_quantums`` on the step, not quoted when below the
    minimum order, when its price would be nothing, or when its fill would take any exposure
    past its cap (``within_caps``)."""
    mark = q.mark_price_quantums
    assert mark > 0 and q.tick_quantums > 0, q
    limit = PPM_ONE * 9 // 10
    bid_half = min(params.half_spread_ppm + max(q.pressure_ppm, 0), limit)
    ask_half = min(params.half_spread_ppm + max(-q.pressure_ppm, 0), limit)
    tick = q.tick_quantums
    bid = div_floor(mark * (PPM_ONE - bid_half), PPM_ONE * tick) * tick
    ask = div_ceil(mark * (PPM_ONE + ask_half), PPM_ONE * tick) * tick
    ask = max(ask, bid + tick)
    size = params.quote_size_base_quantums
    size -= size % q.step_base_quantums
    if size < q.min_order_base_quantums:
        size = 0
    return OptionQuote(
        bid_price_quantums=bid,
        bid_base_quantums=size if bid > 0 and _fits(q, Side.BUY, size) else 0,
        ask_price_quantums=ask,
        ask_base_quantums=size if _fits(q, Side.SELL, size) else 0,
    )


def _fits(q: OptionQuoteInputs, side: Side, size: int) -> bool:
    if size <= 0:
        return False
    after = q.book.plus(q.unit, size * side, q.base_quantums_per_unit)
    return within_caps(after, q.book, q.caps)


def hedge_size_base_quantums(
    params: OptionsVaultParams, *, delta_quantums: int, nav_quantums: int, price_quantums: int,
    base_quantums_per_unit: int, step_base_quantums: int,
) -> int:  # fmt: skip
    """The signed perpetual trade that brings the book's delta value back to zero, once it is
    past the band (|Δ·S| > band × NAV): −Δ·S / price in base quantums, rounded toward zero to
    the step (never past zero). Nothing inside the band, or without a price."""
    band = div_floor(max(nav_quantums, 0) * params.delta_band_nav_ppm, PPM_ONE)
    if price_quantums <= 0 or abs(delta_quantums) <= band:
        return 0
    size = div_floor(abs(delta_quantums) * base_quantums_per_unit, price_quantums)
    size -= size % step_base_quantums
    return -size if delta_quantums > 0 else size


def hedge_limit_price_quantums(
    params: OptionsVaultParams, side: Side, mark_quantums: int, tick_quantums: int
) -> int:
    """The IOC hedge's limit: ``hedge_slippage_ppm`` through the mark, on the tick (a buy
    rounds up, a sell down: the limit is never tighter than asked)."""
    if side is Side.BUY:
        price = div_ceil(mark_quantums * (PPM_ONE + params.hedge_slippage_ppm), PPM_ONE)
        return div_ceil(price, tick_quantums) * tick_quantums
    price = div_floor(mark_quantums * (PPM_ONE - params.hedge_slippage_ppm), PPM_ONE)
    return max(div_floor(price, tick_quantums) * tick_quantums, tick_quantums)
