"""The liquidation watch: which subaccounts the liquidation pass must examine this block.

A full scan would evaluate the margin of every position holder in every block. Instead each
holder gets a *band* per market it holds (``core/price_bands.py``): marks between which its
equity provably stays at or above its maintenance margin, so that it cannot be liquidatable, nor
under water, while every mark stays inside its band. A block then examines only:

* holders whose band a mark left (found by bisection in each market's sorted bands);
* holders that changed since the last pass (a transfer, a fill, a settlement: ``risk_changed``);
* holders without a band: near their margin, of a kind no band describes (options, portfolio
  mode, volatile collateral), or just examined and found liquidatable. A holder of long
  options alone whose quote pays for them needs no band: no mark can reach its margin
  (``fully_paid_long_options``);
* subaccounts under liquidation;
* every holder of a market whose margin fraction (volatility, open interest) rose past the cap
  its bands were computed with, or whose funding index moved further than its bands allowed
  (funding accrues in equity without touching anyone: a band assumes at most a set drift).

The decision itself stays the one exact margin code path (``risk_of`` in the ladder's pass); the
watch only chooses whom to ask, conservatively. ``unwatched_liquidatable`` checks the promise
against a full scan (the stateful test and ``clearhouse simulate`` run it after every block).

Why a band holds: in standard mode a position's value is monotone in its mark (floor(size ×
mark / unit)), and its maintenance margin is monotone in the mark and in the market's fraction.
So over a band ``[mark − d, mark + d]`` and any fraction up to the cap, equity is at least its
value at the adverse end of every band and maintenance at most its value at the upper end of
every band with the capped fraction: the band is accepted only if the first is at least the
second, checked exactly in integers.
"""

from __future__ import annotations

from collections.abc import Iterable

from clearhouse.core.engine.context import Context
from clearhouse.core.engine.risk import market_risk, risk_of
from clearhouse.core.ids import QUOTE_ASSET, MarketId, SubaccountId
from clearhouse.core.ledger import Subaccount
from clearhouse.core.margin import (
    MarketRisk,
    linear_maintenance_at,
    pending_funding,
    position_value,
)
from clearhouse.core.params import MarketKind
from clearhouse.core.price_bands import Band
from clearhouse.core.settlement import funding_owed, funding_rate_cap_ppb
from clearhouse.core.units import PPM_ONE, div_ceil

FRACTION_HEADROOM_PPM = 1_250_000  # bands assume a margin fraction up to 1.25 × today's
FUNDING_DRIFT_INTERVALS = 2  # ...and funding of 2 intervals at the capped rate before a rescan
BAND_TRIES = 4  # a band that fails its exact check is halved at most this many times


def start_pass(ctx: Context) -> list[SubaccountId]:
    """The subaccounts this block's pass must examine, sorted. From here until
    ``finish_pass``, ``ctx.derived.bands`` tracks exactly the holders of the pass's start."""
    bands = ctx.derived.bands
    candidates: set[SubaccountId] = set(ctx.state.liquidations)
    for subaccount_id in _take_changed(ctx):
        subaccount = ctx.state.ledger.subaccounts.get(subaccount_id)
        if subaccount is not None and subaccount.positions:
            bands.track(subaccount_id, None)  # banded after the pass
            candidates.add(subaccount_id)
        else:
            bands.untrack(subaccount_id)
    for market_id in sorted(ctx.state.markets):
        candidates.update(_rescan_if_fraction_rose(ctx, market_id))
        candidates.update(_rescan_if_funding_drifted(ctx, market_id))
        mark = ctx.state.markets[market_id].mark_price_quantums
        candidates.update(bands.crossed(market_id, mark))
    candidates.update(bands.unbanded)
    return sorted(candidates)


def finish_pass(ctx: Context, examined: Iterable[SubaccountId]) -> None:
    """Bands anew for the subaccounts the pass examined, at the state it left them in."""
    for subaccount_id in examined:
        _track_holder(ctx, subaccount_id)


def band_changed(ctx: Context) -> None:
    """At a block's close: bands anew for the holders its commands changed, at the state they
    left. A band holds until a mark leaves it (or the fraction or funding outgrows it), so the
    next pass need not examine them, and a keeper's read between blocks finds them banded:
    each would otherwise be valued twice more (the read, then the next pass) before it is
    banded. Examining a healthy holder changes nothing, so whom the pass skips changes no
    result."""
    for subaccount_id in _take_changed(ctx):
        _track_holder(ctx, subaccount_id)


def rebuild(ctx: Context) -> None:
    """Track every holder from the state alone (a restored or directly written venue)."""
    ctx.derived.risk_changed.clear()
    for subaccount_id in sorted(ctx.state.ledger.subaccounts):
        _track_holder(ctx, subaccount_id)


def suspects(ctx: Context) -> set[SubaccountId]:
    """Everyone the next pass would examine, read without changing anything: every holder
    that can be liquidatable now is among them (a superset: some are healthy)."""
    bands = ctx.derived.bands
    found = set(ctx.derived.risk_changed) | set(ctx.state.liquidations) | bands.unbanded
    for market_id, market in ctx.state.markets.items():
        if _fraction_above_cap(ctx, market_id) or _funding_drifted(ctx, market_id):
            found.update(market.holders)
        found.update(bands.crossed(market_id, market.mark_price_quantums))
    return found


def unwatched_liquidatable(ctx: Context) -> list[SubaccountId]:
    """Holders below maintenance margin (or under water) that the next pass would not
    examine: must always be empty. A full scan, for tests and the simulator only."""
    bands = ctx.derived.bands
    named = suspects(ctx)
    missed: list[SubaccountId] = []
    for subaccount_id, subaccount in sorted(ctx.state.ledger.subaccounts.items()):
        if not subaccount.positions or subaccount_id in named:
            continue
        risk = risk_of(ctx, subaccount)
        if risk.liquidatable or risk.equity < 0:
            missed.append(subaccount_id)
    assert all(s in bands or s in ctx.derived.risk_changed for s in _holders(ctx))
    return missed


def _holders(ctx: Context) -> set[SubaccountId]:
    return {h for market in ctx.state.markets.values() for h in market.holders}


def _take_changed(ctx: Context) -> list[SubaccountId]:
    changed = sorted(ctx.derived.risk_changed)
    ctx.derived.risk_changed.clear()
    return changed


def _track_holder(ctx: Context, subaccount_id: SubaccountId) -> None:
    bands = ctx.derived.bands
    subaccount = ctx.state.ledger.subaccounts.get(subaccount_id)
    if subaccount is None or not subaccount.positions:
        bands.untrack(subaccount_id)
        return
    bands.track(subaccount_id, band_of(ctx, subaccount))


def _rescan_if_fraction_rose(ctx: Context, market_id: MarketId) -> set[SubaccountId]:
    """Every holder of a market whose fraction rose past its cap: their bands assumed less."""
    if not _fraction_above_cap(ctx, market_id):
        return set()
    del ctx.derived.fraction_caps[market_id]
    return set(ctx.state.markets[market_id].holders)


def _rescan_if_funding_drifted(ctx: Context, market_id: MarketId) -> set[SubaccountId]:
    """Every holder of a market whose funding index moved past what its bands allowed."""
    if not _funding_drifted(ctx, market_id):
        return set()
    del ctx.derived.funding_epochs[market_id]
    return set(ctx.state.markets[market_id].holders)


def _funding_drifted(ctx: Context, market_id: MarketId) -> bool:
    epoch = ctx.derived.funding_epochs.get(market_id)
    if epoch is None:
        return False
    start_e9, allowance_e9 = epoch
    return abs(ctx.state.markets[market_id].funding_index_e9 - start_e9) > allowance_e9


def _funding_drift_e9(ctx: Context, market_id: MarketId) -> int:
    """How far, per whole unit (× 10⁹), the funding index may still move before the market's
    holders are examined again: the drift bands must absorb."""
    market = ctx.state.markets[market_id]
    epoch = ctx.derived.funding_epochs.get(market_id)
    if epoch is None:
        params = market.params
        cap_ppb = funding_rate_cap_ppb(funding=params.funding, margin=params.margin)
        allowance = market.mark_price_quantums * cap_ppb * FUNDING_DRIFT_INTERVALS
        epoch = ctx.derived.funding_epochs[market_id] = (market.funding_index_e9, allowance)
    start_e9, allowance_e9 = epoch
    return abs(market.funding_index_e9 - start_e9) + allowance_e9


def _fraction_above_cap(ctx: Context, market_id: MarketId) -> bool:
    cap = ctx.derived.fraction_caps.get(market_id)
    return cap is not None and market_risk(ctx, market_id).im_fraction_ppm > cap


def _fraction_cap(ctx: Context, market_id: MarketId) -> int:
    cap = ctx.derived.fraction_caps.get(market_id)
    if cap is None:
        fraction = market_risk(ctx, market_id).im_fraction_ppm
        cap = min(div_ceil(fraction * FRACTION_HEADROOM_PPM, PPM_ONE), PPM_ONE)
        ctx.derived.fraction_caps[market_id] = cap
    return cap


_Held = tuple[int, int, MarketRisk, int]  # size, cost with worst funding, risk, fraction cap


def band_of(ctx: Context, subaccount: Subaccount) -> tuple[Band, ...] | None:
    """Per market held, the marks between which this subaccount provably stays at or above
    maintenance margin; None where no band is known (examine it every block); no bands at
    all where no mark can take it there (``fully_paid_long_options``)."""
    if fully_paid_long_options(ctx, subaccount):
        return ()
    if subaccount.subaccount_id in ctx.state.portfolio_margin:
        return None
    if subaccount.assets:
        return None
    capped: list[_Held] = []
    for market_id, position in sorted(subaccount.positions.items()):
        if ctx.state.markets[market_id].params.kind is MarketKind.OPTION:
            return None
        risk = market_risk(ctx, market_id)
        # Funding: what it owes now, and the most the index may still move before a rescan;
        # folded into the cost basis, since both count in equity like it.
        owed = -pending_funding(position, risk)
        drift = funding_owed(
            abs(position.size_base_quantums), _funding_drift_e9(ctx, market_id),
            risk.base_quantums_per_unit,
        )  # fmt: skip
        cost = position.cost_quote_quantums + owed + drift + 1
        capped.append((position.size_base_quantums, cost, risk, _fraction_cap(ctx, market_id)))
    quote = subaccount.balance(QUOTE_ASSET)
    slack = _worst_surplus(quote, capped, [0] * len(capped))
    if slack <= 0:
        return None
    budget = slack // (2 * len(capped))  # half for the loss, half for the margin's growth
    moves = [budget * risk.base_quantums_per_unit // abs(size) for size, _, risk, _ in capped]
    for _ in range(BAND_TRIES):
        if min(moves) <= 0:
            return None
        if _worst_surplus(quote, capped, moves) >= 0:
            held = sorted(subaccount.positions)
            return tuple(
                Band(market_id, risk.mark_price_quantums - move, risk.mark_price_quantums + move)
                for market_id, (_, _, risk, _), move in zip(held, capped, moves, strict=True)
            )
        moves = [move // 2 for move in moves]
    return None


def fully_paid_long_options(ctx: Context, subaccount: Subaccount) -> bool:
    """Whether the subaccount holds only long options, quote as its only collateral, and
    quote enough to pay what they cost. Then no mark, volatility or passing time can make it
    liquidatable, nor put it under water, in either margin mode: a long option's maintenance
    never exceeds its value at mark (``margin.requirements``, and the grid's long-options
    bound in portfolio mode), which equity counts the same way, so equity − MM is at least
    quote − cost. Resting orders do not matter: they add to IM, never to MM. Options accrue
    no funding (``maybe_pay_funding`` runs for perpetuals); the funding-index check is a
    defence should that change. Anything that changes quote or cost changes the subaccount,
    which the next pass examines."""
    if subaccount.assets:
        return False
    unpaid = -subaccount.balance(QUOTE_ASSET)
    markets = ctx.state.markets
    for market_id, position in subaccount.positions.items():
        market = markets[market_id]
        if market.params.kind is not MarketKind.OPTION or position.size_base_quantums <= 0:
            return False
        if position.funding_index_e9 != market.funding_index_e9:
            return False
        unpaid += position.cost_quote_quantums
    return unpaid <= 0


def _worst_surplus(quote: int, capped: list[_Held], moves: list[int]) -> int:
    """Equity at the adverse end of every band less maintenance at the upper end of every
    band (at the capped fraction): a lower bound of equity − MM anywhere inside the bands.
    ``capped`` holds each position's cost with its worst funding folded in."""
    surplus = quote
    for (size, cost, risk, cap), move in zip(capped, moves, strict=True):
        mark = risk.mark_price_quantums
        adverse = mark - move if size > 0 else mark + move
        surplus += position_value(size, max(adverse, 0), risk.base_quantums_per_unit) - cost
        surplus -= linear_maintenance_at(
            size, risk, mark_price_quantums=mark + move, market_fraction_ppm=cap
        )
    return surplus
