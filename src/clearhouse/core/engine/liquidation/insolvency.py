"""Insolvency (§7): insurance-fund cover and draws, collateral seizure,
auto-deleveraging at the bankruptcy price and its queue, socialized loss, borrowers.
"""

from __future__ import annotations

from collections.abc import Container

from clearhouse.core import limits
from clearhouse.core.engine.context import Context, mutated, transfer
from clearhouse.core.engine.liquidation.status import (
    charge_liquidation_fee,
    close_auction,
    emit_receipt,
    end_liquidation,
    may_liquidate,
)
from clearhouse.core.engine.risk import collateral_price, market_risk, risk_of
from clearhouse.core.engine.trading.resting import enforce_reduce_only
from clearhouse.core.engine.trading.trades import Trade, after_trades, settle_side
from clearhouse.core.ids import (
    QUOTE_ASSET,
    AssetId,
    MarketId,
    OrderId,
    Side,
    SubaccountId,
)
from clearhouse.core.ledger import (
    DEFICIT,
    FUND_BOOK,
    INSURANCE,
    SEIZED,
    VAULT,
    Subaccount,
)
from clearhouse.core.liquidation import (
    AdlCandidate,
    adl_candidate,
    adl_order,
    allocate,
    closing_side,
    take_from_queue,
)
from clearhouse.core.margin import (
    Risk,
    collateral_value,
    notional_requirement_base,
    position_value,
)
from clearhouse.core.matching import PlannedFill
from clearhouse.core.messages import (
    CollateralSeized,
    Deleveraged,
    InsuranceDrawn,
    Liquidated,
    LiquidationStage,
    LossSocialized,
)
from clearhouse.core.params import VaultMarketParams
from clearhouse.core.state import (
    MarketState,
)
from clearhouse.core.units import (
    PPM_ONE,
    div_ceil,
    div_floor,
    window_start_ns,
)
from clearhouse.core.vault import cap_base_quantums, room_base_quantums


def count_underwater(ctx: Context, candidates: list[Subaccount]) -> None:
    """Holders with equity below zero, per market: withdrawals in that market wait for
    the ladder to clear them (a profit must not leave while its payer is bankrupt)."""
    counts = dict.fromkeys(ctx.state.markets, 0)
    for subaccount in candidates:
        if risk_of(ctx, subaccount).equity < 0:
            for market_id in subaccount.positions:
                counts[market_id] += 1
    for market_id, count in counts.items():
        market = ctx.state.markets[market_id]
        if market.underwater_count != count:
            market.underwater_count = count
            ctx.touched.markets.add(market_id)


def insurance_cover(ctx: Context, market: MarketState) -> int:
    """What the fund may still pay for this market in this window of block time."""
    params = market.params.liquidation
    window = window_start_ns(ctx.state.timestamp_ns, params.insurance_draw_window_ns)
    left = params.insurance_draw_max_quote_quantums_per_window - market.insurance_drawn_in(window)
    return max(0, min(left, ctx.state.ledger.balance(INSURANCE, QUOTE_ASSET)))


def draw_insurance(
    ctx: Context,
    subaccount_id: SubaccountId,
    market: MarketState,
    wanted: int,
    recipient: SubaccountId | None = None,
) -> int:
    """Pay up to ``wanted`` from the fund for ``subaccount_id``'s shortfall (to it, or to a
    bidder who takes its insolvent portfolio), within the market's cap per window."""
    amount = min(wanted, insurance_cover(ctx, market))
    if amount <= 0:
        return 0
    window = window_start_ns(
        ctx.state.timestamp_ns, market.params.liquidation.insurance_draw_window_ns
    )
    market.insurance_drawn_quote_quantums = market.insurance_drawn_in(window) + amount
    market.insurance_draw_window_ns = window
    ctx.touched.markets.add(market.params.market_id)
    target = subaccount_id if recipient is None else recipient
    transfer(ctx, INSURANCE, target, QUOTE_ASSET, amount, "insurance draw")
    ctx.events.append(InsuranceDrawn(
        subaccount=str(subaccount_id), market_id=market.params.market_id,
        amount_quote_quantums=amount,
    ))  # fmt: skip
    return amount


def resolve_bankruptcy(ctx: Context, subaccount_id: SubaccountId, market: MarketState) -> None:
    """Equity below zero: the fund pays the shortfall and takes the position over into its
    book; if it cannot, deleverage at the bankruptcy price (the fund pays what it may). A flat
    account's remaining debt is drawn from the fund, then socialized."""
    subaccount = ctx.state.ledger.subaccounts[subaccount_id]
    seize_collateral(ctx, subaccount_id)
    if market.params.market_id in subaccount.positions and risk_of(ctx, subaccount).equity < 0:
        status = ctx.state.liquidations.get(subaccount_id)
        if status is not None and status.auction is not None:
            close_auction(ctx, subaccount_id)
        backstop(ctx, subaccount_id, market)
    settle_bad_debt(ctx, subaccount_id, market)


def backstop(ctx: Context, subaccount_id: SubaccountId, market: MarketState) -> None:
    """What neither the book nor bidders took: the market-making vault as far as its caps and
    margin allow, then the fund's book if it can carry the rest, else ADL. No profitable
    trader is force-closed while the vault or the fund can take the position."""
    vault_takeover(ctx, subaccount_id, market)
    if market.params.market_id not in ctx.state.ledger.subaccounts[subaccount_id].positions:
        return
    if not fund_takeover(ctx, subaccount_id, market):
        deleverage(ctx, subaccount_id, market)


def vault_market(ctx: Context, market_id: MarketId) -> VaultMarketParams | None:
    """The vault's parameters for a market it quotes and backstops; None for any other."""
    for found in ctx.state.venue.vault.markets:
        if found.market_id == market_id:
            return found
    return None


def vault_cap(ctx: Context, market: MarketState, nav: int) -> int:
    """The largest position the vault may hold in ``market``, either side (``core/vault.py``)."""
    found = vault_market(ctx, market.params.market_id)
    if found is None:
        return 0
    return cap_base_quantums(
        cap_quote_quantums=found.cap_quote_quantums, nav_quantums=nav,
        nav_share_cap_ppm=ctx.state.venue.vault.nav_share_cap_ppm,
        mark_price_quantums=market.mark_price_quantums,
        base_quantums_per_unit=market.params.base_quantums_per_unit,
        step_base_quantums=market.params.step_base_quantums,
    )  # fmt: skip


def vault_takeover(ctx: Context, subaccount_id: SubaccountId, market: MarketState) -> bool:
    """The vault takes the position at the mark, or as much of it as the room under its caps
    allows (per market, and as a share of NAV), and only if it then still meets IM; a bankrupt
    account's shortfall is paid by the fund (within its cap per window) as for the fund's own
    takeover, so the vault never buys at more than the mark. The account pays the usual fee,
    the keeper's part to the vault. False, with nothing changed, when the vault takes nothing."""
    vault = ctx.state.ledger.subaccounts.get(VAULT)
    if subaccount_id in (VAULT, FUND_BOOK) or vault is None or VAULT in ctx.state.liquidations:
        return False
    subaccount = ctx.state.ledger.subaccounts[subaccount_id]
    size = subaccount.positions[market.params.market_id].size_base_quantums
    account_before = risk_of(ctx, subaccount)
    shortfall = max(-account_before.equity, 0)
    before = risk_of(ctx, vault)
    if shortfall > insurance_cover(ctx, market) or not before.usable:
        return False
    side = closing_side(size)  # the account's side; the vault takes the other
    cap = vault_cap(ctx, market, before.equity)
    taken = min(abs(size), room_base_quantums(vault.position_size(market.params.market_id),
                                              side.opposite, cap))  # fmt: skip
    if taken <= 0:
        return False
    trade = trade_at_mark(market, taken, side, VAULT)
    after = risk_of(ctx, after_trades(ctx, vault, market, side.opposite, [trade], maker=False))
    if not after.usable or not after.satisfies_initial:
        return False
    paid = draw_insurance(ctx, subaccount_id, market, shortfall) if shortfall else 0
    hand_over(ctx, subaccount, vault, market, trade, LiquidationStage.VAULT, account_before, paid)
    return True


def fund_takeover(ctx: Context, subaccount_id: SubaccountId, market: MarketState) -> bool:
    """The fund pays the account's shortfall (within its cap per window) and takes its whole
    position at the mark into ``FUND_BOOK``, moving in the initial margin the book then needs;
    the account pays the usual fee. False, with nothing changed, when the fund cannot: too
    little capital, its draw cap spent, or its book beyond ``fund_takeover_leverage_max``."""
    if subaccount_id == FUND_BOOK:
        return False  # the fund's own book goes to ADL
    subaccount = ctx.state.ledger.subaccounts[subaccount_id]
    market_id = market.params.market_id
    size = subaccount.positions[market_id].size_base_quantums
    before = risk_of(ctx, subaccount)
    shortfall = max(-before.equity, 0)
    side = closing_side(size)
    trade = trade_at_mark(market, abs(size), side, FUND_BOOK)
    margin = fund_book_margin(ctx, market, side.opposite, trade, shortfall)
    if margin is None:
        return False
    paid = draw_insurance(ctx, subaccount_id, market, shortfall) if shortfall else 0
    if margin:
        transfer(ctx, INSURANCE, FUND_BOOK, QUOTE_ASSET, margin, "fund book margin")
    book = ctx.state.ledger.subaccounts[FUND_BOOK]
    hand_over(ctx, subaccount, book, market, trade, LiquidationStage.FUND, before, paid)
    return True


def hand_over(
    ctx: Context, subaccount: Subaccount, taker: Subaccount, market: MarketState, trade: Trade,
    stage: LiquidationStage, before: Risk, fund_paid: int,
) -> None:  # fmt: skip
    """A backstop (the vault, the fund's book) takes ``trade`` of the account's position at
    the mark. The taker is named as the keeper, as a bidder is: the keeper's part of the fee
    goes to it, and the events name it as the counterparty; then the step's receipt."""
    market_id = market.params.market_id
    position = subaccount.position_size(market_id)
    side = closing_side(position)
    size = trade.fill.size_base_quantums
    settle_side(ctx, market, subaccount, side, trade, 0)
    settle_side(ctx, market, taker, side.opposite, trade, 0)
    charge_liquidation_fee(
        ctx, subaccount.subaccount_id, market, side, size, trade.notional_quote_quantums,
        taker.subaccount_id, stage,
    )  # fmt: skip
    emit_receipt(
        ctx, subaccount.subaccount_id, market, stage, side, before, position,
        bound_price=market.mark_price_quantums, size=size,
        notional=trade.notional_quote_quantums, fund_paid=fund_paid,
    )  # fmt: skip


def trade_at_mark(market: MarketState, size: int, side: Side, taker: SubaccountId) -> Trade:
    """A fill of ``size`` at the mark; the notional rounds against the closing side."""
    mark = market.mark_price_quantums
    product = size * mark
    per_unit = market.params.base_quantums_per_unit
    notional = div_floor(product, per_unit) if side is Side.SELL else div_ceil(product, per_unit)
    return Trade(PlannedFill(OrderId(0), taker, mark, size), max(notional, 1), 0, 0)


def fund_book_margin(
    ctx: Context, market: MarketState, side: Side, trade: Trade, shortfall: int
) -> int | None:
    """The quote the fund must move into its book so that the book meets IM after taking
    ``trade``; None when the fund cannot pay that and the shortfall, or the book would exceed
    its leverage cap (the JELLY lesson: a backstop has limits)."""
    if shortfall > insurance_cover(ctx, market):
        return None
    book = ctx.state.ledger.subaccounts.get(FUND_BOOK) or Subaccount(FUND_BOOK)
    book_after = after_trades(ctx, book, market, side, [trade], maker=False)
    after = risk_of(ctx, book_after)
    if not after.usable:
        return None
    margin = max(after.initial - after.equity, 0)
    fund = ctx.state.ledger.balance(INSURANCE, QUOTE_ASSET) - shortfall
    if margin > fund:
        return None
    capital = fund + after.equity
    cap = market.params.liquidation.fund_takeover_leverage_max_ppm
    notional = book_notional(ctx, book_after)
    if notional * PPM_ONE > capital * cap:
        return None
    return margin


def book_notional(ctx: Context, book: Subaccount) -> int:
    """The fund book's positions at their marks."""
    total = 0
    for market_id, position in book.positions.items():
        market = ctx.state.markets[market_id]
        total += notional_requirement_base(
            position.size_base_quantums, market.mark_price_quantums,
            market.params.base_quantums_per_unit,
        )  # fmt: skip
    return total


def seize_collateral(ctx: Context, subaccount_id: SubaccountId) -> None:
    """Before the fund, ADL or the deficit pays for a bankrupt account, its volatile
    collateral (which equity counts at a haircut) is bought at the full index by the
    ``seized`` account, the buyer of last resort: just enough to bring equity back to zero,
    so that everyone else pays exactly the real shortfall, the fund's quote is kept for
    that, and the owner can never buy the collateral back below its worth."""
    subaccount = ctx.state.ledger.subaccounts[subaccount_id]
    shortfall = -risk_of(ctx, subaccount).equity
    for asset_id in sorted(subaccount.assets):
        if shortfall <= 0:
            return
        amount = seizable(ctx, asset_id, subaccount.balance(asset_id), shortfall)
        if amount <= 0:
            continue
        price = collateral_price(ctx, asset_id)
        paid = div_floor(amount * price.price_quantums, price.quantums_per_unit)
        gained = paid - collateral_value(amount, price)
        transfer(ctx, subaccount_id, SEIZED, asset_id, amount, "collateral seized")
        transfer(ctx, SEIZED, subaccount_id, QUOTE_ASSET, paid, "collateral seized")
        ctx.events.append(CollateralSeized(
            subaccount=str(subaccount_id), asset_id=asset_id, amount_quantums=amount,
            paid_quote_quantums=paid,
        ))  # fmt: skip
        shortfall -= gained


def seizable(ctx: Context, asset_id: AssetId, held: int, shortfall: int) -> int:
    """How much of ``held`` to sell at the index to make up ``shortfall`` of haircut
    equity: each unit sold gains price × (1 − weight). Nothing on an unusable price."""
    price = collateral_price(ctx, asset_id)
    oracle_id = ctx.state.assets[asset_id].oracle_id
    assert oracle_id is not None
    guarded = ctx.state.oracles[oracle_id].restart_guard
    gain_per_unit = price.price_quantums * (PPM_ONE - price.haircut_weight_ppm)
    if held <= 0 or not price.usable or guarded or gain_per_unit <= 0:
        return 0
    # Two quantums more than the shortfall: the value and the haircut each round down.
    wanted = div_ceil((shortfall + 2) * price.quantums_per_unit * PPM_ONE, gain_per_unit)
    return min(held, wanted)


def settle_bad_debt(ctx: Context, subaccount_id: SubaccountId, market: MarketState | None) -> None:
    """A flat account's debt: its collateral is seized, the fund pays within the market's
    cap, the deficit records the rest (``market`` None: a collateral loss, no market fund
    cap applies, so it goes to the deficit after the seizure)."""
    subaccount = ctx.state.ledger.subaccounts[subaccount_id]
    if subaccount.positions:
        return  # equity still moves with prices: the ladder goes on next block
    if risk_of(ctx, subaccount).equity >= 0:
        return
    seize_collateral(ctx, subaccount_id)
    shortfall = -risk_of(ctx, subaccount).equity
    if shortfall > 0 and market is not None:
        shortfall -= draw_insurance(ctx, subaccount_id, market, shortfall)
    if shortfall > 0:
        transfer(ctx, DEFICIT, subaccount_id, QUOTE_ASSET, shortfall, "socialized loss")
        ctx.events.append(LossSocialized(
            subaccount=str(subaccount_id),
            market_id=MarketId("") if market is None else market.params.market_id,
            amount_quote_quantums=shortfall,
        ))  # fmt: skip


def settle_borrowers(ctx: Context, holders: Container[SubaccountId]) -> None:
    """Flat subaccounts whose quote debt is backed by volatile collateral: when a price
    move leaves them below zero, their collateral is seized and the rest recorded. A flat
    account's liquidation (its last position closed) ends here too. ``holders``: the
    subaccounts that held a position when the pass began."""
    watched = ctx.derived.borrowers | set(ctx.state.liquidations)
    flat = [s for s in watched if s not in holders]
    for subaccount_id in sorted(flat):
        subaccount = ctx.state.ledger.subaccounts[subaccount_id]
        risk = risk_of(ctx, subaccount)
        if risk.usable and risk.equity < 0 and may_liquidate(ctx, subaccount, risk):
            mutated(ctx)
            settle_bad_debt(ctx, subaccount_id, None)
        if subaccount_id in ctx.state.liquidations and risk_of(ctx, subaccount).equity >= 0:
            end_liquidation(ctx, subaccount_id)


def deleverage(ctx: Context, subaccount_id: SubaccountId, market: MarketState) -> None:
    """Close the position against the top of the ADL queue at the bankruptcy price: the fund
    pays what it may, the counterparties absorb exactly the rest of the shortfall."""
    subaccount = ctx.state.ledger.subaccounts[subaccount_id]
    market_id = market.params.market_id
    size = subaccount.positions[market_id].size_base_quantums
    seize_collateral(ctx, subaccount_id)
    before = risk_of(ctx, subaccount)
    shortfall = max(-before.equity, 0)
    paid = draw_insurance(ctx, subaccount_id, market, shortfall) if shortfall else 0
    shortfall -= paid
    queue = adl_queue(ctx, market_id, closing_side(size))
    queue = queue[: limits.adl_counterparties_per_step_max]
    closed = min(abs(size), sum(abs(c.size_base_quantums) for c in queue))
    taken = take_from_queue(queue, closed)
    value = position_value(size, market.mark_price_quantums, market.params.base_quantums_per_unit)
    share = value if closed == abs(size) else div_floor(value * closed, abs(size))
    if size < 0:  # buying back: the account must still pay at least a quantum per unit
        shortfall = min(shortfall, max(-share - closed, 0))
    cash = share + shortfall if size > 0 else -share - shortfall
    notionals = allocate(cash, [part for _, part in taken])
    marks = allocate(abs(share), [part for _, part in taken])
    side = closing_side(size)
    for (candidate, part), notional, at_mark in zip(taken, notionals, marks, strict=True):
        fill = PlannedFill(OrderId(0), candidate.subaccount_id, 0, part)
        trade = Trade(fill, notional, 0, 0)
        settle_side(ctx, market, subaccount, side, trade, 0)
        counterparty = ctx.state.ledger.subaccounts[candidate.subaccount_id]
        settle_side(ctx, market, counterparty, side.opposite, trade, 0)
        ctx.derived.deleveraged.append(counterparty)  # may now be under water itself
        enforce_reduce_only(ctx, market, counterparty)
        settle_bad_debt(ctx, candidate.subaccount_id, market)  # a share past its equity
        ctx.events.append(Deleveraged(
            market_id=market_id, subaccount=str(subaccount_id),
            counterparty=str(candidate.subaccount_id), side=side, size_base_quantums=part,
            notional_quote_quantums=notional,
            shortfall_share_quote_quantums=abs(notional - at_mark),
        ))  # fmt: skip
    ctx.events.append(Liquidated(
        subaccount=str(subaccount_id), market_id=market_id, stage=LiquidationStage.DELEVERAGE,
        side=side, size_base_quantums=closed, notional_quote_quantums=cash,
        fee_to_keeper_quote_quantums=0, fee_to_fund_quote_quantums=0, keeper="",
    ))  # fmt: skip
    if closed:
        # Its bound is the average price it was closed at, rounded against the account (up for
        # a buy back, down for a sale): floored, a buy back of 3.338 ETH at an average 0.89
        # quantum above a whole price read as filled worse than its own bound.
        per_unit = market.params.base_quantums_per_unit
        rounded = div_ceil if side is Side.BUY else div_floor
        emit_receipt(
            ctx, subaccount_id, market, LiquidationStage.DELEVERAGE, side, before, size,
            bound_price=rounded(abs(cash) * per_unit, closed), size=closed, notional=cash,
            fund_paid=paid,
        )  # fmt: skip


def adl_queue(ctx: Context, market_id: MarketId, closing: Side) -> list[AdlCandidate]:
    """The ADL queue facing a position closed by a ``closing`` order: the positions on the
    other side (shorts, when a long is sold), ranked by profit% × leverage, highest first."""
    market = ctx.state.markets[market_id]
    risk = market_risk(ctx, market_id)
    candidates: list[AdlCandidate] = []
    for holder in market.holders:
        subaccount = ctx.state.ledger.subaccounts[holder]
        position = subaccount.positions[market_id]
        if (position.size_base_quantums > 0) != (closing is Side.BUY):
            continue
        candidates.append(adl_candidate(holder, position, risk, risk_of(ctx, subaccount).equity))
    return adl_order(candidates)


def adl_rank(
    ctx: Context, subaccount_id: SubaccountId, market_id: MarketId, lag_ns: int = 0
) -> tuple[int, int] | None:
    """Where a position stands in its market's ADL queue: (1-based rank, queue length), from a
    ranking at most ``lag_ns`` of block time old (0: of the state as it is)."""
    subaccount = ctx.state.ledger.subaccounts.get(subaccount_id)
    if subaccount is None or market_id not in subaccount.positions:
        return None
    size = subaccount.positions[market_id].size_base_quantums
    closing = Side.BUY if size > 0 else Side.SELL
    queue, ranks = ranked_adl_queue(ctx, market_id, closing, lag_ns)
    if subaccount_id not in ranks:  # opened (or turned) since the lagging ranking
        queue, ranks = ranked_adl_queue(ctx, market_id, closing)
    return ranks[subaccount_id], len(queue)


def ranked_adl_queue(
    ctx: Context, market_id: MarketId, closing: Side, lag_ns: int = 0
) -> tuple[list[AdlCandidate], dict[SubaccountId, int]]:
    """The queue and each member's 1-based rank, for reads between blocks: ranked once per
    market and side until the state changes (a new block, or a command), so that an account
    of many positions, or many readers, cost one ranking of the queue, not one per position;
    with ``lag_ns``, a ranking up to that much block time old serves (a node's reads, which
    must not rank every holder under the writer's lock every block). Consensus steps call
    ``adl_queue`` itself."""
    version = (ctx.state.height, ctx.state.timestamp_ns, ctx.mutations)
    cached = ctx.derived.adl_queues.get((market_id, closing))
    if cached is not None and (
        cached[0] == version or ctx.state.timestamp_ns - cached[0][1] <= lag_ns
    ):
        return cached[1], cached[2]
    queue = adl_queue(ctx, market_id, closing)
    ranks = {candidate.subaccount_id: rank for rank, candidate in enumerate(queue, start=1)}
    ctx.derived.adl_queues[(market_id, closing)] = (version, queue, ranks)
    return queue, ranks
