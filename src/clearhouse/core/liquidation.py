"""The arithmetic of the liquidation ladder (SPEC §7), as pure functions over integers.

The engine decides *when* to liquidate and applies the results; this module decides *at what
price* and *how much*. Every rounding is named and goes against the liquidated account (it is the
account whose risk the venue is shedding), never against the venue's solvency.

* fillable price: the worst price a book liquidation may take. It moves from the mark toward
  ``mark × (1 ∓ MM fraction)`` as equity/MM falls from 1 to 0 (dYdX v4).
* cover bound: a book fill may lose beyond the account's equity only what the insurance fund can
  still pay this block; past that, the position goes to auto-deleveraging instead.
* Dutch auction (Lyra v2): the discount to mark ramps linearly over ``auction_duration_ns`` of
  block time on usable prices.
* auto-deleveraging: opposite positions ranked by profit% × leverage take the position at the
  bankruptcy price, so together they absorb exactly the shortfall the fund did not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clearhouse.core.ids import Side, SubaccountId
from clearhouse.core.ledger import Position
from clearhouse.core.margin import MarketRisk, notional_requirement_base, unrealized_pnl
from clearhouse.core.params import LiquidationParams
from clearhouse.core.units import PPM_ONE, div_ceil, div_floor

ADL_SCORE_SCALE = 10**12  # fixed-point scale of the ranking score


def closing_side(size_base_quantums: int) -> Side:
    """The side of the order that closes a position: sell a long, buy back a short."""
    assert size_base_quantums != 0
    return Side.SELL if size_base_quantums > 0 else Side.BUY


def fillable_price(
    *, mark_price_quantums: int, side: Side, maintenance_fraction_ppm: int, equity: int,
    maintenance: int, min_deviation_ppm: int = 0,
) -> int:  # fmt: skip
    """The worst price a liquidation order may fill at.

    deviation = MM fraction × (1 − clamp(equity / MM, 0, 1)), at least ``min_deviation``: about
    the mark for an account just at MM (the floor lets the ladder go on from MM up to IM),
    ``mark × (1 ∓ MMF)`` for one with nothing left. Rounded against the account: a sell may go
    lower, a buy higher.
    """
    assert maintenance > 0 and mark_price_quantums > 0
    health = min(max(equity, 0), maintenance)
    deviation_ppm = div_floor(maintenance_fraction_ppm * (maintenance - health), maintenance)
    deviation_ppm = max(deviation_ppm, min_deviation_ppm)
    if side is Side.SELL:
        return max(1, div_floor(mark_price_quantums * (PPM_ONE - deviation_ppm), PPM_ONE))
    return div_ceil(mark_price_quantums * (PPM_ONE + deviation_ppm), PPM_ONE)


def cover_bound_price(
    *, mark_price_quantums: int, side: Side, size_base_quantums: int,
    base_quantums_per_unit: int, equity: int, cover: int,
) -> int:  # fmt: skip
    """The price at which closing ``size`` would lose the account's equity plus ``cover`` (what
    the insurance fund may still pay): a sell may not go below it, a buy not above it."""
    assert size_base_quantums > 0
    room = equity + cover  # quote the fills may lose against the mark
    per_unit = base_quantums_per_unit
    if side is Side.SELL:
        return max(1, mark_price_quantums - div_floor(room * per_unit, size_base_quantums))
    return mark_price_quantums + div_floor(room * per_unit, size_base_quantums)


def more_conservative(side: Side, first: int, second: int) -> int:
    """Of two limit prices, the one that fills less: the higher for a sell, the lower for a buy."""
    return max(first, second) if side is Side.SELL else min(first, second)


def to_tick(price_quantums: int, tick_quantums: int, side: Side) -> int:
    """A limit price on the tick grid, never worse than the given bound. A buy bound below one
    tick gives 0: no price on the grid is good enough, nothing may fill."""
    if side is Side.SELL:
        return max(tick_quantums, div_ceil(price_quantums, tick_quantums) * tick_quantums)
    return max(0, div_floor(price_quantums, tick_quantums) * tick_quantums)


def close_size_cap(
    params: LiquidationParams, *, position_base_quantums: int, mark_price_quantums: int,
    base_quantums_per_unit: int, step_base_quantums: int, equity: int, maintenance: int,
) -> int:  # fmt: skip
    """The most one block may close of a position: a fraction and a notional, unless equity is
    below ``full_close_equity`` of MM, then all of it. Rounded up to the size step."""
    size = abs(position_base_quantums)
    if equity * PPM_ONE < params.full_close_equity_ppm * maintenance:
        return size
    by_fraction = div_ceil(size * params.close_fraction_ppm, PPM_ONE)
    by_notional = div_floor(
        params.close_notional_max_quote_quantums * base_quantums_per_unit, mark_price_quantums
    )
    cap = max(min(by_fraction, by_notional), step_base_quantums)
    return min(div_ceil(cap, step_base_quantums) * step_base_quantums, size)


def liquidation_fee(params: LiquidationParams, *, notional_quote_quantums: int, equity: int) -> int:
    """fee_ppm of the closed notional (rounded up), never more than what equity is left."""
    return min(div_ceil(notional_quote_quantums * params.fee_ppm, PPM_ONE), max(equity, 0))


def keeper_share(params: LiquidationParams, fee_quote_quantums: int) -> int:
    """The keeper's part of a fee, rounded down: the fund gets the rest."""
    return div_floor(fee_quote_quantums * params.keeper_share_ppm, PPM_ONE)


def auction_discount_ppm(
    params: LiquidationParams, elapsed_ns: int, start_discount_ppm: int | None = None
) -> int:
    """Linear from the start discount (``auction_start_discount_ppm`` unless given) to the
    end discount over ``auction_duration_ns``, then flat; rounded down (against the bidder,
    who is paid the discount)."""
    start = params.auction_start_discount_ppm if start_discount_ppm is None else start_discount_ppm
    assert 0 <= start <= params.auction_end_discount_ppm, start
    duration = params.auction_duration_ns
    elapsed = min(max(elapsed_ns, 0), duration)
    span = params.auction_end_discount_ppm - start
    return start + div_floor(span * elapsed, duration)


def auction_start_discount_ppm(params: LiquidationParams, maintenance_fraction_ppm: int) -> int:
    """Where a position's auction starts: a share of its MM fraction through the mark, never
    more than ``auction_start_discount_ppm``. A flat 5% against 1.2–3% of maintenance margin
    put every first bid on the bankruptcy bound; scaled to the margin, the first bids leave
    the account most of what it has, and a bidder is paid in proportion to the risk taken."""
    scaled = div_floor(maintenance_fraction_ppm * params.auction_start_mm_share_ppm, PPM_ONE)
    return min(params.auction_start_discount_ppm, scaled)


def slice_equity_share(equity: int, slice_base_quantums: int, position_base_quantums: int) -> int:
    """The part of an account's equity a slice of its position may use up: in proportion to
    the slice, rounded down (the rest stays with the remainder, which is the account's)."""
    assert 0 < slice_base_quantums <= position_base_quantums
    return div_floor(max(equity, 0) * slice_base_quantums, position_base_quantums)


def auction_price(mark_price_quantums: int, side: Side, discount_ppm: int) -> int:
    """The price a bidder pays (the liquidated side sells) or receives (it buys back): the
    discount is the bidder's reward, rounded in the bidder's favour."""
    if side is Side.SELL:
        return max(1, div_floor(mark_price_quantums * (PPM_ONE - discount_ppm), PPM_ONE))
    return div_ceil(mark_price_quantums * (PPM_ONE + discount_ppm), PPM_ONE)


def adl_score(
    *, unrealized_pnl: int, cost_quote_quantums: int, notional_quote_quantums: int, equity: int
) -> int:
    """Profit% × leverage, in fixed point: uPnL/|cost| × notional/equity. An account with no
    equity left counts with equity of one quantum: it ranks first among the profitable."""
    cost = max(abs(cost_quote_quantums), 1)
    return div_floor(
        unrealized_pnl * notional_quote_quantums * ADL_SCORE_SCALE, cost * max(equity, 1)
    )


@dataclass(frozen=True, slots=True)
class AdlCandidate:
    subaccount_id: SubaccountId
    size_base_quantums: int  # signed: opposite to the position being deleveraged
    score: int


def adl_candidate(
    subaccount_id: SubaccountId, position: Position, market: MarketRisk, equity: int
) -> AdlCandidate:
    """A position as its ADL queue sees it: scored by ``adl_score`` at the market's mark, with
    the equity of the subaccount that holds it."""
    return AdlCandidate(
        subaccount_id, position.size_base_quantums,
        adl_score(
            unrealized_pnl=unrealized_pnl(position, market),
            cost_quote_quantums=position.cost_quote_quantums,
            notional_quote_quantums=notional_requirement_base(
                position.size_base_quantums, market.mark_price_quantums,
                market.base_quantums_per_unit,
            ),
            equity=equity,
        ),
    )  # fmt: skip


def adl_order(candidates: Sequence[AdlCandidate]) -> list[AdlCandidate]:
    """The queue: highest score first; ties by subaccount id so that the order is total."""
    return sorted(candidates, key=adl_key)


def adl_key(candidate: AdlCandidate) -> tuple[int, str]:
    """A candidate's place in the queue (``adl_order``), smallest first."""
    return -candidate.score, str(candidate.subaccount_id)


def take_from_queue(
    queue: Sequence[AdlCandidate], size_base_quantums: int
) -> list[tuple[AdlCandidate, int]]:
    """Walk the queue from the top, each counterparty giving up to its whole position."""
    taken: list[tuple[AdlCandidate, int]] = []
    remaining = size_base_quantums
    for candidate in queue:
        if remaining == 0:
            break
        size = min(abs(candidate.size_base_quantums), remaining)
        taken.append((candidate, size))
        remaining -= size
    assert remaining == 0, "open interest is balanced: the opposite side always suffices"
    return taken


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` exactly: floors, then the largest remainders
    (ties to the earlier weight) get one quantum each. The parts always sum to ``total``."""
    assert total >= 0 and weights and all(w > 0 for w in weights)
    weight_sum = sum(weights)
    parts = [total * w // weight_sum for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % weight_sum), i))
    for index in remainders[: total - sum(parts)]:
        parts[index] += 1
    assert sum(parts) == total
    return parts
