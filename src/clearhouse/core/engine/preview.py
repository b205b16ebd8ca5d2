"""The margin preview (a what-if): a subaccount as a trial would leave it, measured by the
engine's own code, with nothing in state changed.

A trial's fills go through the trade path's ``after_trades`` (funding settled first, the fill
folded by ``settlement.apply_fill``, the taker fee charged as ``price_trade`` prices it), and
the decision is the one margin gate, ``risk.admit``, that a taker order filling whole at those
prices would meet. The node's ``POST /v1/what-if`` answers from here, and so does anything else
that asks "what would this do to my margin": one path, so a preview cannot disagree with the
engine that will decide.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, replace

from clearhouse.core.engine.context import Context
from clearhouse.core.engine.liquidation.insolvency import ranked_adl_queue
from clearhouse.core.engine.risk import admit, market_risk, risk_of
from clearhouse.core.engine.trading.trades import after_trades, price_trade
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import AssetId, MarketId, OrderId, Side, SubaccountId
from clearhouse.core.ledger import Position, Subaccount
from clearhouse.core.liquidation import adl_candidate, adl_key
from clearhouse.core.margin import Risk
from clearhouse.core.matching import PlannedFill
from clearhouse.core.units import div_ceil

PRICE_SEARCH_MULTIPLE = 100  # a short's liquidation price is looked for up to 100 × the mark
PRICE_SEARCH_STEPS_MAX = 128  # bisection over integers: 2**128 exceeds any price
# Positions whose liquidation price a preview looks for: the largest by notional. Each search
# is ~45 margin computations of the whole trial, so a trial of n positions searched whole cost
# O(n²) (8 s for 250 positions, asked by anyone, unsigned): the rest are reported as None.
LIQUIDATION_PRICES_MAX = 16


@dataclass(frozen=True, slots=True)
class Trial:
    """A hypothetical change to a subaccount: fills at given prices, or a whole portfolio.
    ``fills``: (market, signed size, price), each filling whole at its price as a taker (its
    fee charged). ``portfolio``: market → (signed size, entry price); it replaces every
    position and drops resting orders. ``balances``: asset → quantums, replacing the
    balances. Sizes are on their markets' grids and fills' prices on their ticks (callers
    check); an entry price is an average, on no grid."""

    fills: tuple[tuple[MarketId, int, int], ...] = ()
    portfolio: dict[MarketId, tuple[int, int]] | None = None
    balances: dict[AssetId, int] | None = None


@dataclass(frozen=True, slots=True)
class PositionPreview:
    market_id: MarketId
    size_base_quantums: int
    liquidation_price_quantums: int | None  # the mark that makes it liquidatable, others as now
    adl_rank: tuple[int, int] | None  # (1-based rank, queue length) it would have


@dataclass(frozen=True, slots=True)
class MarginPreview:
    subaccount_id: SubaccountId
    before: Risk
    after: Risk
    refusal: RejectReason | None  # what the engine's margin gate would say; None: accepted
    positions: tuple[PositionPreview, ...]


def preview(
    ctx: Context, subaccount_id: SubaccountId, trial: Trial, adl_lag_ns: int = 0
) -> MarginPreview:
    """The subaccount's margin before and after ``trial``, the margin gate's decision on the
    change, and per position its liquidation price and ADL rank among the others as ranked at
    most ``adl_lag_ns`` of block time ago (``ranked_adl_queue``). The copy shares no mutable
    object with state; state is only read (derived caches may warm)."""
    found = ctx.state.ledger.subaccounts.get(subaccount_id)
    before = found if found is not None else Subaccount(subaccount_id)
    after = _trial_copy(ctx, before, trial)
    after_risk = risk_of(ctx, after)
    markets = {m for m, _, _ in trial.fills}
    gated = next(iter(markets)) if len(markets) == 1 and trial.portfolio is None else None
    searched = largest_positions(ctx, after, LIQUIDATION_PRICES_MAX)
    return MarginPreview(
        subaccount_id=subaccount_id,
        before=risk_of(ctx, before),
        after=after_risk,
        refusal=admit(ctx, before, after, gated),
        positions=tuple(
            PositionPreview(
                market_id=m,
                size_base_quantums=after.positions[m].size_base_quantums,
                liquidation_price_quantums=(
                    liquidation_price(ctx, after, m) if m in searched else None
                ),
                adl_rank=_adl_rank(ctx, after, m, after_risk.equity, adl_lag_ns),
            )
            for m in sorted(after.positions)
        ),
    )


def largest_positions(ctx: Context, sub: Subaccount, most: int) -> set[MarketId]:
    """The ``most`` positions of largest notional at the mark (ties: the lower market id)."""

    def notional(market_id: MarketId) -> tuple[int, MarketId]:
        market = ctx.state.markets[market_id]
        size = abs(sub.positions[market_id].size_base_quantums)
        return -size * market.mark_price_quantums // market.params.base_quantums_per_unit, market_id

    return set(sorted(sub.positions, key=notional)[:most])


def _trial_copy(ctx: Context, sub: Subaccount, trial: Trial) -> Subaccount:
    """A new Subaccount (no mutable object shared with state) with the trial applied."""
    copy = Subaccount(
        sub.subaccount_id,
        balances=dict(sub.balances if trial.balances is None else trial.balances),
        positions={m: replace(p) for m, p in sub.positions.items()},
        open_orders={m: replace(o) for m, o in sub.open_orders.items()},
    )
    if trial.portfolio is not None:
        copy.open_orders = {}
        copy.positions = {
            m: Position(m, size, _entry_cost(ctx, m, size, price),
                        funding_index_e9=ctx.state.markets[m].funding_index_e9)
            for m, (size, price) in trial.portfolio.items() if size != 0
        }  # fmt: skip
    for market_id, size, price in trial.fills:
        market = ctx.state.markets[market_id]
        fill = PlannedFill(OrderId(0), sub.subaccount_id, price, abs(size))
        side = Side.BUY if size > 0 else Side.SELL
        copy = after_trades(ctx, copy, market, side, [price_trade(ctx, market, fill)], maker=False)
    return copy


def _entry_cost(ctx: Context, market_id: MarketId, size: int, price: int) -> int:
    """A position's signed cost at an entry price that may be off the tick grid (an average of
    fills, or the mark): rounded up, against the account (a higher cost, a lower PnL, for a
    long as for a short)."""
    units = ctx.state.markets[market_id].params.base_quantums_per_unit
    return div_ceil(size * price, units)


def liquidation_price(ctx: Context, sub: Subaccount, market_id: MarketId) -> int | None:
    """The mark at which the subaccount becomes liquidatable, every other price as it is now:
    found by bisection over ``risk_of`` itself (no margin formula here). None for an option,
    in portfolio mode (its grid is taken at the index, not the mark), or when no mark in the
    searched range liquidates it."""
    base = market_risk(ctx, market_id)
    size = sub.position_size(market_id)
    if base.is_option or size == 0 or sub.subaccount_id in ctx.state.portfolio_margin:
        return None

    def liquidatable_at(price: int) -> bool:
        moved = {market_id: replace(base, mark_price_quantums=price)}
        return risk_of(ctx, sub, overrides=moved).liquidatable

    mark = base.mark_price_quantums
    if liquidatable_at(mark):
        return mark
    # A long becomes liquidatable as the mark falls, a short as it rises.
    low, high = (1, mark) if size > 0 else (mark, mark * PRICE_SEARCH_MULTIPLE)
    if not liquidatable_at(low if size > 0 else high):
        return None
    for _ in range(PRICE_SEARCH_STEPS_MAX):
        if high - low <= 1:
            break
        middle = (low + high) // 2
        if liquidatable_at(middle) == (size > 0):
            low = middle
        else:
            high = middle
    return low if size > 0 else high


def _adl_rank(
    ctx: Context, sub: Subaccount, market_id: MarketId, equity: int, lag_ns: int
) -> tuple[int, int] | None:
    """Where the position would stand in its ADL queue: the others as ranked (once between
    blocks, or up to ``lag_ns`` ago), this subaccount's entry scored by
    ``liquidation.adl_score`` on the trial and placed among them by bisection (the queue is in
    ``adl_key`` order: no sort of every holder per position and request)."""
    held = sub.positions[market_id]
    closing = Side.BUY if held.size_base_quantums > 0 else Side.SELL
    queue, ranks = ranked_adl_queue(ctx, market_id, closing, lag_ns)
    mine = adl_candidate(sub.subaccount_id, held, market_risk(ctx, market_id), equity)
    ahead = bisect_left(queue, adl_key(mine), key=adl_key)
    own = ranks.get(sub.subaccount_id)  # its entry as ranked: replaced by the trial's
    if own is None:
        return ahead + 1, len(queue) + 1
    return (ahead if own <= ahead else ahead + 1), len(queue)
