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
from clearhouse.core.params import MarketParams, OptionsVaultParams
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
    size_base_quantums: int | None = None  # ``quote_size_for_margin``'s; None: the full size
    index_mark_price_quantums: int | None = None  # its mark on the index as forward; None: mark


def make_option_quote(params: OptionsVaultParams, q: OptionQuoteInputs) -> OptionQuote:
    """The vault's quote on one option (SPEC §11):

    half spreads: bid = half_spread + max(pressure, 0), ask = half_spread + max(−pressure, 0),
    each at most 90% (so the spread grows with exposure, and only on the side that adds it:
    the other stays tight, which is how the quotes lean toward reducing exposure);
    bid = mark × (1 − bid half) rounded down to the tick, ask = mark × (1 + ask half) rounded
    up (both away from the mark), the ask at least a tick above the bid; where the mark on the
    index as forward differs (the futures' basis moved it), the bid from the lower of the two
    and the ask from the higher: a dated future's mark, which orders nobody trades with move
    within its band (1% of the index: a third of a one-day at-the-money call's premium), never
    moves the quotes the way that pays whoever moved it;
    each side's size = ``quote_size_base_quantums`` (or the smaller size its margin carries,
    ``q.size_base_quantums``) on the step, not quoted when below the minimum order, when its
    price would be nothing, or when its fill would take any exposure past its cap
    (``within_caps``)."""
    mark = q.mark_price_quantums
    assert mark > 0 and q.tick_quantums > 0, q
    at_index = mark if q.index_mark_price_quantums is None else q.index_mark_price_quantums
    limit = PPM_ONE * 9 // 10
    bid_half = min(params.half_spread_ppm + max(q.pressure_ppm, 0), limit)
    ask_half = min(params.half_spread_ppm + max(-q.pressure_ppm, 0), limit)
    tick = q.tick_quantums
    bid = div_floor(min(mark, at_index) * (PPM_ONE - bid_half), PPM_ONE * tick) * tick
    ask = div_ceil(max(mark, at_index) * (PPM_ONE + ask_half), PPM_ONE * tick) * tick
    ask = max(ask, bid + tick)
    size = params.quote_size_base_quantums
    if q.size_base_quantums is not None:
        size = min(size, q.size_base_quantums)
    size -= size % q.step_base_quantums
    if size < q.min_order_base_quantums:
        size = 0
    return OptionQuote(
        bid_price_quantums=bid,
        bid_base_quantums=size if bid > 0 and _fits(q, Side.BUY, size) else 0,
        ask_price_quantums=ask,
        ask_base_quantums=size if _fits(q, Side.SELL, size) else 0,
    )


def quote_on(
    params: OptionsVaultParams, market: MarketParams, mark_price_quantums: int, *,
    book: Exposure, unit: Exposure, caps: Caps, size_base_quantums: int | None = None,
    index_mark_price_quantums: int | None = None,
) -> OptionQuote:  # fmt: skip
    """``make_option_quote`` on one market's grid, with the pressure ``book`` puts on it."""
    return make_option_quote(params, OptionQuoteInputs(
        mark_price_quantums=mark_price_quantums, tick_quantums=market.tick_quantums,
        step_base_quantums=market.step_base_quantums,
        min_order_base_quantums=market.min_order_base_quantums,
        base_quantums_per_unit=market.base_quantums_per_unit, book=book, unit=unit, caps=caps,
        pressure_ppm=pressure_ppm(params, book, unit, caps), size_base_quantums=size_base_quantums,
        index_mark_price_quantums=index_mark_price_quantums,
    ))  # fmt: skip


def _fits(q: OptionQuoteInputs, side: Side, size: int) -> bool:
    if size <= 0:
        return False
    after = q.book.plus(q.unit, size * side, q.base_quantums_per_unit)
    return within_caps(after, q.book, q.caps)


def reducing_only(target: OptionQuote, position: int, step: int, least: int) -> OptionQuote:
    """The quote with only the side that reduces ``position`` (base quantums, signed): a bid
    for a short, an ask for a long, at most the position, on the ``step``, not below the
    minimum order ``least`` (else that side is not quoted)."""

    def part(wanted: int, held: int) -> int:
        size = min(wanted, max(held, 0))
        size -= size % step
        return size if size >= least else 0

    return OptionQuote(
        target.bid_price_quantums,
        part(target.bid_base_quantums, -position),
        target.ask_price_quantums,
        part(target.ask_base_quantums, position),
    )


def requote_tolerance(params: OptionsVaultParams, mark_quantums: int, tick_quantums: int) -> int:
    """How far a resting side may drift from where the quote would be now before it is
    replaced: ``requote_move_ppm`` of the mark, rounded down, at least a tick."""
    return max(tick_quantums, div_floor(mark_quantums * params.requote_move_ppm, PPM_ONE))


QUOTE_MARGIN_SHARE_PPM = 900_000  # quotes may bring IM to 90% of equity: the rest is the hedge's


def quote_size_for_margin(
    params: OptionsVaultParams, *, equity: int, initial_bare: int, initial_quoted: int,
    quoted_base_quantums: int, sides: int,
) -> int:  # fmt: skip
    """The quote size (base quantums, before the step) that keeps the initial margin of the
    ``sides`` quotes it wants, all at that size, within ``QUOTE_MARGIN_SHARE_PPM`` of equity;
    at most the full size.

    Every resting quote counts in IM on its worst side, so ``sides`` quotes at the full size
    can need more margin than the vault has (in a crash the volatility multiplier grows it
    several times): quoting them all smaller keeps every option quoted, where quoting the
    first ones at full size would leave the last ones with none. The margin the quotes need
    is extrapolated from what its resting ones (``quoted_base_quantums`` together) hold:
    need = (IM with them − IM without them) × full × sides / resting, rounded up (each
    market's worst fill is linear in its size: the same need per quantum quoted);
    size = full × (share × equity − IM without them) / need, rounded down (the vault keeps
    the margin). The full size while nothing rests or the need is nothing; 0 when the book
    alone already uses the share."""
    full = params.quote_size_base_quantums
    room = div_floor(max(equity, 0) * QUOTE_MARGIN_SHARE_PPM, PPM_ONE) - initial_bare
    if room <= 0:
        return 0
    held = initial_quoted - initial_bare
    if quoted_base_quantums <= 0 or held <= 0 or sides <= 0:
        return full
    need = div_ceil(held * full * sides, quoted_base_quantums)
    return min(full, div_floor(full * room, need))


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


HEDGE_SLIPPAGE_MULTIPLE_MAX = 5  # a hedge pays at most 5 × ``hedge_slippage_ppm`` through the mark


def hedge_slippage_ppm(params: OptionsVaultParams, *, vol_multiplier_ppm: int) -> int:
    """How far through the mark the hedge may go: ``hedge_slippage_ppm`` times the hedge
    market's volatility multiplier (``MarketState.vol_multiplier_ppm``, ≥ 1, the one its
    margins take), at most ``HEDGE_SLIPPAGE_MULTIPLE_MAX`` times it; rounded down. A crash
    widens the perpetual's book (its makers quote wider as the market moves, the best levels
    are taken): with a fixed 1% the vault found nothing within its limit and stayed unhedged
    through the fall (the stress lab's real crash windows: 21 of 23 hedges of Black
    Thursday's BTC unfilled). The widening follows the market's volatility, which no trader
    sets, never how far past its band the delta is, which a taker sets: a taker that bought
    enough of its calls to take its delta to twice the band, cleared the perpetual's asks and
    rested its own 5% over the mark was paid 5% by the hedge that opened the next block."""
    base = params.hedge_slippage_ppm
    scaled = div_floor(base * max(vol_multiplier_ppm, PPM_ONE), PPM_ONE)
    return min(scaled, base * HEDGE_SLIPPAGE_MULTIPLE_MAX)


def hedge_limit_price_quantums(
    params: OptionsVaultParams, side: Side, mark_quantums: int, tick_quantums: int, *,
    slippage_ppm: int | None = None,
) -> int:  # fmt: skip
    """The IOC hedge's limit: ``slippage_ppm`` (``hedge_slippage_ppm`` by default) through the
    mark, on the tick (a buy rounds up, a sell down: the limit is never tighter than asked)."""
    through = params.hedge_slippage_ppm if slippage_ppm is None else slippage_ppm
    assert 0 < through < PPM_ONE, through
    if side is Side.BUY:
        price = div_ceil(mark_quantums * (PPM_ONE + through), PPM_ONE)
        return div_ceil(price, tick_quantums) * tick_quantums
    price = div_floor(mark_quantums * (PPM_ONE - through), PPM_ONE)
    return max(div_floor(price, tick_quantums) * tick_quantums, tick_quantums)
