"""The liquidation ladder through the engine (SPEC §7): keepers, the protocol's own pass, the book
at the fillable price, the Dutch auction, the insurance fund and its cap, auto-deleveraging,
socialized loss, and the guards around them."""

from __future__ import annotations

import pytest

from clearhouse.core import limits
from clearhouse.core import liquidation as liq
from clearhouse.core.engine.context import Context, transfer
from clearhouse.core.engine.liquidation.insolvency import (
    deleverage,
    resolve_bankruptcy,
    settle_bad_debt,
)
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import QUOTE_ASSET, AssetId, MarketId, Side, SubaccountId
from clearhouse.core.ledger import DEFICIT, FUND_BOOK, INSURANCE, SEIZED
from clearhouse.core.margin import Risk
from clearhouse.core.messages import (
    AuctionStarted,
    CollateralSeized,
    Deleveraged,
    Event,
    InsuranceDrawn,
    Liquidated,
    LiquidationStage,
    LossSocialized,
    OrderCancelled,
)
from clearhouse.core.params import LiquidationParams
from clearhouse.core.state import MarketState
from clearhouse.core.units import NS_PER_SECOND, PPM_ONE
from clearhouse.sim.venue import ETH_GWEI, USDC
from helpers import (
    BTC_PERP,
    ETH_USD,
    ONE_BTC,
    PRICE,
    Venue,
    accepted,
    of_type,
    rejected,
    replace_engine_function,
)
from ladder import bid, fund_insurance, leveraged_long, liquidate, quote, with_liquidation

BUY, SELL = Side.BUY, Side.SELL
TICK = USDC // 10


def watch_bankruptcies(
    venue: Venue, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[SubaccountId, int]]:
    """Record each bankrupt subaccount's equity as the ladder starts resolving it (a spy on
    the real function, which still runs)."""
    seen: list[tuple[SubaccountId, int]] = []
    engine = venue.engine

    def spy(ctx: Context, subaccount_id: SubaccountId, market: MarketState) -> None:
        subaccount = engine.state.ledger.subaccounts[subaccount_id]
        seen.append((subaccount_id, engine.risk_of(subaccount).equity))
        resolve_bankruptcy(ctx, subaccount_id, market)

    replace_engine_function(monkeypatch, resolve_bankruptcy, spy)
    return seen


# ── Detection and keepers ───────────────────────────────────────────────────────────────────


def test_a_healthy_subaccount_cannot_be_liquidated() -> None:
    venue = Venue()
    leveraged_long(venue)
    rejected(venue, liquidate(venue, "carol", "bob", 1), RejectReason.NOT_LIQUIDATABLE)
    rejected(venue, liquidate(venue, "carol", "dave", 5), RejectReason.NOT_LIQUIDATABLE)


def test_a_keeper_liquidates_on_the_book_and_is_paid() -> None:
    venue = Venue()
    leveraged_long(venue)
    fund_before = venue.state.ledger.balance(INSURANCE, QUOTE_ASSET)
    new_price = PRICE - 1_750 * USDC  # equity between 2/3 of MM and MM: a partial close
    quote(venue, "alice", new_price, size=ONE_BTC, gap=2 * USDC)
    venue.settle_prices(BTC_USD=new_price)
    assert venue.risk("bob", 1).liquidatable
    keeper_before = venue.balance("carol")
    [events] = accepted(venue, liquidate(venue, "carol", "bob", 1))
    [step] = of_type(events, Liquidated)
    assert step.stage is LiquidationStage.BOOK and step.keeper == str(venue.sub("carol"))
    # Partial: at most the per-block fraction (20%) of the position.
    assert step.side is SELL and step.size_base_quantums == 2 * ONE_BTC // 5
    assert step.fee_to_keeper_quote_quantums > 0 and step.fee_to_fund_quote_quantums > 0
    assert venue.balance("carol") == keeper_before + step.fee_to_keeper_quote_quantums
    fund = venue.state.ledger.balance(INSURANCE, QUOTE_ASSET)
    assert fund >= fund_before + step.fee_to_fund_quote_quantums
    # Step by step, just enough is closed to bring bob back above initial margin.
    for _ in range(10):
        if venue.risk("bob", 1).satisfies_initial:
            break
        accepted(venue, liquidate(venue, "carol", "bob", 1))
    assert venue.risk("bob", 1).satisfies_initial
    assert 0 < venue.position("bob", BTC_PERP, number=1)[0] < ONE_BTC
    rejected(venue, liquidate(venue, "carol", "bob", 1), RejectReason.NOT_LIQUIDATABLE)


def test_a_keeper_cannot_liquidate_itself() -> None:
    venue = Venue()
    leveraged_long(venue)
    venue.settle_prices(BTC_USD=PRICE - 2_300 * USDC)
    rejected(venue, liquidate(venue, "bob", "bob", 1), RejectReason.SELF_LIQUIDATION)


def test_the_protocol_liquidates_when_no_keeper_shows_up() -> None:
    venue = Venue()
    leveraged_long(venue)
    with_liquidation(venue, keeper_grace_ns=LiquidationParams().keeper_grace_ns)
    new_price = PRICE - 2_300 * USDC
    quote(venue, "alice", new_price, size=ONE_BTC)
    venue.settle_prices(BTC_USD=new_price)
    grace = LiquidationParams().keeper_grace_ns // NS_PER_SECOND
    steps: list[Liquidated] = []
    for _ in range(grace + 1):
        steps += of_type(venue.block().prologue, Liquidated)
    assert steps and steps[0].keeper == "" and steps[0].fee_to_keeper_quote_quantums == 0
    assert not venue.risk("bob", 1).liquidatable


def test_resting_orders_are_cancelled_first() -> None:
    venue = Venue()
    leveraged_long(venue)
    accepted(venue, venue.order("bob", BTC_PERP, SELL, ONE_BTC, PRICE + 900 * USDC, number=1))
    new_price = PRICE - 2_300 * USDC
    quote(venue, "alice", new_price, size=ONE_BTC)
    venue.settle_prices(BTC_USD=new_price)
    [events] = accepted(venue, liquidate(venue, "carol", "bob", 1))
    causes = [e.cause.name for e in of_type(events, OrderCancelled)]
    assert "LIQUIDATION" in causes
    assert not venue.state.ledger.subaccounts[venue.sub("bob", 1)].order_ids


def test_no_liquidation_on_a_stale_price() -> None:
    venue = Venue()
    leveraged_long(venue)
    venue.settle_prices(BTC_USD=PRICE - 2_300 * USDC)
    for _ in range(2):  # the publishers go silent: the index goes stale
        venue.block(dt_ns=11 * NS_PER_SECOND, reports=False)
    rejected(venue, liquidate(venue, "carol", "bob", 1), RejectReason.ORACLE_STALE)
    assert venue.position("bob", BTC_PERP, number=1)[0] == 2 * ONE_BTC


def test_no_liquidation_on_the_first_prices_after_an_outage() -> None:
    venue = Venue()
    leveraged_long(venue)
    for _ in range(7):  # a 70 s outage arms the restart guard
        venue.block(dt_ns=10 * NS_PER_SECOND, reports=False)
    venue.settle_prices(BTC_USD=PRICE - 2_300 * USDC)
    assert venue.state.oracles[
        venue.state.markets[MarketId(BTC_PERP)].params.oracle_id
    ].restart_guard
    assert venue.risk("bob", 1).liquidatable
    rejected(venue, liquidate(venue, "carol", "bob", 1), RejectReason.NOT_LIQUIDATABLE)
    quote(venue, "alice", PRICE - 2_300 * USDC, size=ONE_BTC)
    for _ in range(12):
        venue.block()
    accepted(venue, liquidate(venue, "carol", "bob", 1))
    assert venue.position("bob", BTC_PERP, number=1)[0] < 2 * ONE_BTC  # the protocol acted


def test_a_burst_of_blocks_does_not_lift_the_restart_guard_sooner() -> None:
    """The guard waits for prices fresh for ``recovery_fresh_ns`` of block time: 50 blocks in
    one second (each with fresh reports) still leave it armed."""
    venue = Venue()
    leveraged_long(venue)
    for _ in range(7):  # a 70 s outage arms the restart guard
        venue.block(dt_ns=10 * NS_PER_SECOND, reports=False)
    oracle = venue.state.oracles[venue.state.markets[MarketId(BTC_PERP)].params.oracle_id]
    venue.settle_prices(BTC_USD=PRICE - 2_300 * USDC)
    assert oracle.restart_guard and venue.risk("bob", 1).liquidatable
    for _ in range(50):
        venue.block(dt_ns=NS_PER_SECOND // 50)
    assert oracle.restart_guard
    rejected(venue, liquidate(venue, "carol", "bob", 1), RejectReason.NOT_LIQUIDATABLE)
    for _ in range(oracle.params.recovery_fresh_ns // NS_PER_SECOND):
        venue.block()
    assert not oracle.restart_guard


# ── Backstops: auction, insurance, deleveraging ─────────────────────────────────────────────


def test_an_empty_book_opens_a_dutch_auction_that_anyone_may_bid_in() -> None:
    venue = Venue()
    leveraged_long(venue)
    accepted(venue, venue.cancel_all("alice"))
    venue.settle_prices(BTC_USD=PRICE - 2_300 * USDC)
    [events] = accepted(venue, liquidate(venue, "carol", "bob", 1))
    [started] = of_type(events, AuctionStarted)
    assert started.side is SELL and started.size_base_quantums == 2 * ONE_BTC
    venue.block()
    venue.block()
    dave_before = venue.balance("dave")
    [events] = accepted(venue, bid(venue, "dave", "bob", ONE_BTC))
    [step] = of_type(events, Liquidated)
    assert step.stage is LiquidationStage.AUCTION and step.size_base_quantums == ONE_BTC
    # The bidder bought below the mark (the discount) and got the keeper's share of the fee.
    assert step.notional_quote_quantums < venue.mark() * ONE_BTC // ONE_BTC
    assert venue.position("dave", BTC_PERP)[0] == ONE_BTC
    assert venue.balance("dave") == dave_before + step.fee_to_keeper_quote_quantums


def test_a_burst_of_blocks_does_not_deepen_the_auction_discount() -> None:
    """The discount ramps over block time: a bidder who makes 30 blocks in 0.3 s still pays
    about the starting discount, not the 30% that 30 one-second blocks would reach."""
    venue = Venue()
    leveraged_long(venue)
    accepted(venue, venue.cancel_all("alice"))
    venue.settle_prices(BTC_USD=PRICE - 2_300 * USDC)
    accepted(venue, liquidate(venue, "carol", "bob", 1))
    auction = venue.state.liquidations[venue.sub("bob", 1)].auction
    assert auction is not None
    for _ in range(30):
        venue.block(dt_ns=NS_PER_SECOND // 100)
    params = LiquidationParams()
    age = auction.age_ns(venue.now)
    assert age <= NS_PER_SECOND // 2
    assert liq.auction_discount_ppm(params, age) < params.auction_start_discount_ppm + 10_000
    [events] = accepted(venue, bid(venue, "dave", "bob", ONE_BTC))
    [step] = of_type(events, Liquidated)
    floor = venue.mark() * (PPM_ONE - params.auction_start_discount_ppm - 10_000) // PPM_ONE
    assert step.notional_quote_quantums >= floor  # one whole BTC at no deeper discount


def solvent_auction(venue: Venue) -> int:
    """bob/1's 2 BTC long, its equity ~0.9% of notional (below its 1.2% MM, well above
    zero), in an auction on an empty book; its equity."""
    leveraged_long(venue)
    accepted(venue, venue.cancel_all("alice"))
    venue.settle_prices(BTC_USD=PRICE - 1_960 * USDC)
    risk = venue.risk("bob", 1)
    assert 0 < risk.equity < risk.maintenance
    accepted(venue, liquidate(venue, "carol", "bob", 1))
    assert venue.state.liquidations[venue.sub("bob", 1)].auction is not None
    return venue.risk("bob", 1).equity


def test_the_auction_starts_at_half_the_positions_maintenance_fraction() -> None:
    """A flat 5% start against 1.2% of MM put every first bid on the bankruptcy bound; the
    start is now half the position's MM fraction (0.6%), so the first bid leaves the account
    most of its equity."""
    venue = Venue()
    leveraged_long(venue)
    accepted(venue, venue.cancel_all("alice"))
    venue.settle_prices(BTC_USD=PRICE - 1_960 * USDC)
    equity, mark = venue.risk("bob", 1).equity, venue.mark()
    mm_fraction = venue.risk("bob", 1).maintenance * PPM_ONE // (2 * mark)
    assert 10_000 <= mm_fraction <= 15_000 and 0 < equity < venue.risk("bob", 1).maintenance
    # The keeper opens the auction and dave bids in the same block, at the starting discount.
    [_, events] = accepted(
        venue, liquidate(venue, "carol", "bob", 1), bid(venue, "dave", "bob", ONE_BTC // 2)
    )
    [step] = of_type(events, Liquidated)
    start = mm_fraction * LiquidationParams().auction_start_mm_share_ppm // PPM_ONE
    paid_at_start = mark * (PPM_ONE - start) // PPM_ONE // 2
    assert step.notional_quote_quantums >= paid_at_start - USDC  # within a tick of the start
    assert venue.risk("bob", 1).equity > equity // 2  # well short of the slice's share bound


def test_an_auction_slice_uses_up_only_its_share_of_the_equity() -> None:
    """At the deepest discount a quarter of the position may cost at most a quarter of the
    equity (fee included): the remainder keeps its share and no one is bankrupt."""
    venue = Venue()
    solvent_auction(venue)
    for _ in range(LiquidationParams().auction_duration_ns // NS_PER_SECOND - 2):
        venue.block()
    assert venue.state.liquidations[venue.sub("bob", 1)].auction is not None
    equity = venue.risk("bob", 1).equity
    accepted(venue, bid(venue, "dave", "bob", ONE_BTC // 2))
    assert venue.position("bob", BTC_PERP, number=1)[0] == ONE_BTC * 3 // 2
    assert venue.risk("bob", 1).equity >= equity * 3 // 4


def test_an_auction_nobody_bids_in_ends_in_deleveraging() -> None:
    venue = Venue()
    leveraged_long(venue)
    accepted(venue, venue.cancel_all("alice"))
    venue.settle_prices(BTC_USD=PRICE - 2_300 * USDC)
    accepted(venue, liquidate(venue, "carol", "bob", 1))
    seen: list[Event] = []
    for _ in range(LiquidationParams().auction_duration_ns // NS_PER_SECOND + 2):
        seen += venue.block().prologue
    assert of_type(seen, Deleveraged)
    assert venue.position("bob", BTC_PERP, number=1)[0] == 0
    assert venue.risk("bob", 1).equity >= 0


def test_bankruptcy_is_covered_by_the_fund_then_by_adl_taking_exactly_the_shortfall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    venue = Venue()
    leveraged_long(venue)
    fund_insurance(venue, 500 * USDC)
    with_liquidation(venue, insurance_draw_max_quote_quantums_per_window=10**15)
    accepted(venue, venue.cancel_all("alice"))
    fund_before = venue.state.ledger.balance(INSURANCE, QUOTE_ASSET)
    shorts_equity_before = venue.risk("alice").equity
    seen = watch_bankruptcies(venue, monkeypatch)
    # A 7,000 USDC loss on 5,000 of collateral: bankrupt, so the protocol acts at once.
    result = venue.settle_prices(BTC_USD=PRICE - 3_500 * USDC)
    events = result.prologue
    [(bankrupt, equity_before)] = seen
    assert bankrupt == venue.sub("bob", 1) and equity_before < 0
    risk = Risk(equity_before, 0, 0, 0, True)
    drawn = sum(e.amount_quote_quantums for e in of_type(events, InsuranceDrawn))
    adl = of_type(events, Deleveraged)
    assert drawn == fund_before  # the whole fund first (within its cap) ...
    absorbed = sum(e.shortfall_share_quote_quantums for e in adl)
    assert absorbed == -risk.equity - drawn  # ... then ADL takes exactly the rest
    assert venue.risk("bob", 1).equity == 0
    assert venue.position("bob", BTC_PERP, number=1) == (0, 0)
    assert venue.risk("alice").equity >= shorts_equity_before - absorbed - 2  # mark rounding
    assert venue.state.ledger.balance(DEFICIT, QUOTE_ASSET) == 0


def test_the_insurance_draw_is_capped_per_market_per_window() -> None:
    venue = Venue()
    leveraged_long(venue)
    fund_insurance(venue, 100_000 * USDC)
    with_liquidation(venue, insurance_draw_max_quote_quantums_per_window=300 * USDC)
    accepted(venue, venue.cancel_all("alice"))
    events = venue.settle_prices(BTC_USD=PRICE - 3_500 * USDC).prologue
    drawn = sum(e.amount_quote_quantums for e in of_type(events, InsuranceDrawn))
    assert drawn == 300 * USDC
    assert of_type(events, Deleveraged)


def test_adl_rank_is_queryable_and_puts_the_most_profitable_leverage_first() -> None:
    venue = Venue()
    accepted(venue, venue.transfer("carol", 20_000 * USDC, source=0, target=1))
    quote(venue, "alice", PRICE, size=3 * ONE_BTC)
    accepted(
        venue,
        venue.order("carol", BTC_PERP, SELL, ONE_BTC, PRICE - 20 * USDC, number=1),
        venue.order("dave", BTC_PERP, SELL, ONE_BTC, PRICE - 20 * USDC),
    )
    venue.settle_prices(BTC_USD=PRICE - 1_000 * USDC)
    carol = venue.engine.adl_rank(venue.sub("carol", 1), MarketId(BTC_PERP))
    dave = venue.engine.adl_rank(venue.sub("dave"), MarketId(BTC_PERP))
    assert carol is not None and dave is not None
    assert carol[1] == dave[1] >= 2
    assert carol[0] < dave[0]  # same profit, carol's 20k backs it: more leverage, first in line
    assert venue.engine.adl_rank(venue.sub("bob"), MarketId(BTC_PERP)) is None


def test_adl_ranks_are_ranked_once_between_blocks_and_again_when_the_state_moves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An account view reads the rank of every position: between blocks the queue is ranked
    once per market and side, not once per read, and a block or a command ranks it again."""
    from clearhouse.core.engine.liquidation import insolvency

    venue = Venue()
    quote(venue, "alice", PRICE, size=3 * ONE_BTC)
    accepted(
        venue,
        venue.order("carol", BTC_PERP, SELL, ONE_BTC, PRICE - 20 * USDC),
        venue.order("dave", BTC_PERP, SELL, ONE_BTC, PRICE - 20 * USDC),
    )
    rankings = []
    uncached = insolvency.adl_queue
    monkeypatch.setattr(insolvency, "adl_queue",
                        lambda *args: rankings.append(args[1:]) or uncached(*args))  # fmt: skip
    market = MarketId(BTC_PERP)
    first = [venue.engine.adl_rank(venue.sub(name), market) for name in ("carol", "dave") * 50]
    assert len(rankings) == 1  # 100 reads, one ranking
    assert sorted(first[:2]) == [(1, 2), (2, 2)]
    assert [c.subaccount_id for c in venue.engine.adl_queue(market, Side.BUY)] == [
        c.subaccount_id for c in uncached(venue.engine.ctx, market, Side.BUY)
    ]  # the cached queue is the queue
    venue.settle_prices(BTC_USD=PRICE - 1_000 * USDC)  # a block: ranked again
    assert venue.engine.adl_rank(venue.sub("carol"), market) is not None
    assert len(rankings) == 3
    accepted(venue, venue.order("bob", BTC_PERP, SELL, ONE_BTC, PRICE - 1_020 * USDC))
    ranked = venue.engine.adl_rank(venue.sub("bob"), market)  # a new short: in the queue now
    assert ranked is not None and ranked[1] == 3 and len(rankings) == 4


def test_a_lagging_rank_reuses_a_recent_ranking_and_ranks_a_newcomer_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A node's reads may use a ranking up to ``lag_ns`` of block time old: the blocks in
    between rank nothing, a ranking older than the lag is made again, and a position the
    ranking does not know (opened since) gets a fresh one."""
    from clearhouse.core.engine.liquidation import insolvency

    venue = Venue()
    quote(venue, "alice", PRICE, size=3 * ONE_BTC)
    accepted(venue, venue.order("carol", BTC_PERP, SELL, ONE_BTC, PRICE - 20 * USDC))
    rankings = []
    uncached = insolvency.adl_queue
    monkeypatch.setattr(insolvency, "adl_queue",
                        lambda *args: rankings.append(args[1:]) or uncached(*args))  # fmt: skip
    market, lag_ns = MarketId(BTC_PERP), 3 * venue.block_ns
    assert venue.engine.adl_rank(venue.sub("carol"), market, lag_ns) == (1, 1)
    venue.block()
    venue.block()  # two blocks (2 s) later: within the lag
    assert venue.engine.adl_rank(venue.sub("carol"), market, lag_ns) == (1, 1)
    assert len(rankings) == 1
    assert venue.engine.adl_rank(venue.sub("carol"), market) == (1, 1)  # lag 0: ranked now
    assert len(rankings) == 2
    accepted(venue, venue.order("dave", BTC_PERP, SELL, ONE_BTC, PRICE - 20 * USDC))
    assert venue.engine.adl_rank(venue.sub("dave"), market, lag_ns) is not None  # a newcomer
    assert len(rankings) == 3  # the recent ranking has no dave: ranked afresh
    for _ in range(4):
        venue.block()  # past the lag
    venue.engine.adl_rank(venue.sub("carol"), market, lag_ns)
    assert len(rankings) == 4


def test_a_flat_bankrupt_account_is_covered_then_socialized() -> None:
    venue = Venue()
    leveraged_long(venue)
    with_liquidation(venue, insurance_draw_max_quote_quantums_per_window=0)
    sub = SubaccountId(venue.address("bob"), 1)
    market = venue.state.markets[MarketId(BTC_PERP)]
    ctx = venue.engine.ctx
    transfer(ctx, sub, INSURANCE, QUOTE_ASSET, 5_000 * USDC, "test: drain")
    # Close bob at the mark out of band, then settle his debt: the fund may pay nothing.
    deleverage(ctx, sub, market)
    assert venue.risk("bob", 1).equity == 0
    transfer(ctx, sub, INSURANCE, QUOTE_ASSET, 700 * USDC, "test: a loss after close")
    settle_bad_debt(ctx, sub, market)
    assert venue.risk("bob", 1).equity == 0
    assert venue.state.ledger.balance(DEFICIT, QUOTE_ASSET) == -700 * USDC


# ── Guards ──────────────────────────────────────────────────────────────────────────────────


def test_open_interest_cap() -> None:
    venue = Venue()
    with_liquidation(venue, open_interest_cap_base_quantums=2 * ONE_BTC)
    quote(venue, "alice", PRICE, size=ONE_BTC)
    accepted(venue, venue.order("bob", BTC_PERP, BUY, 2 * ONE_BTC, PRICE + 20 * USDC))
    order = venue.order("carol", BTC_PERP, BUY, ONE_BTC, PRICE + 40 * USDC)
    rejected(venue, order, RejectReason.OPEN_INTEREST_CAP_EXCEEDED)
    # Closing is always allowed, and lowers open interest.
    accepted(venue, venue.order("bob", BTC_PERP, SELL, ONE_BTC, PRICE - 20 * USDC))


def test_position_cap_follows_the_books_depth() -> None:
    venue = Venue()
    with_liquidation(
        venue, position_cap_floor_base_quantums=ONE_BTC, position_cap_depth_multiple_ppm=1_000_000
    )
    quote(venue, "alice", PRICE, size=ONE_BTC, levels=2)  # 2 BTC each side within the band
    assert venue.engine.position_cap(MarketId(BTC_PERP)) == 2 * ONE_BTC
    accepted(venue, venue.order("carol", BTC_PERP, SELL, ONE_BTC, PRICE + 2_000 * USDC))
    accepted(venue, venue.order("bob", BTC_PERP, BUY, 2 * ONE_BTC, PRICE + 20 * USDC))
    # The asks near the mark are gone: the thin side now allows only the floor.
    assert venue.engine.position_cap(MarketId(BTC_PERP)) == ONE_BTC
    more = venue.order("bob", BTC_PERP, BUY, 10_000_000, PRICE + 2_000 * USDC)
    rejected(venue, more, RejectReason.POSITION_CAP_EXCEEDED)
    accepted(venue, venue.order("bob", BTC_PERP, SELL, ONE_BTC, PRICE - 20 * USDC))  # reducing


def test_withdrawals_pause_while_a_holder_of_the_market_is_underwater(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    venue = Venue()
    leveraged_long(venue)
    accepted(venue, venue.cancel_all("alice"))
    # carol holds a profitable short in the same market; bob's loss is her profit.
    accepted(venue, venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE - 20 * USDC))
    accepted(venue, venue.order("carol", BTC_PERP, SELL, ONE_BTC, PRICE - 20 * USDC))
    # A block with more bankruptcies than the ladder's per-block budget: bob must wait.
    monkeypatch.setattr(limits, "liquidations_per_block_max", 0)
    venue.settle_prices(BTC_USD=PRICE - 3_500 * USDC)
    assert venue.risk("bob", 1).equity < 0
    assert venue.state.markets[MarketId(BTC_PERP)].underwater_count == 1
    rejected(venue, venue.withdraw("carol", 1_000 * USDC), RejectReason.WITHDRAWALS_PAUSED)
    accepted(venue, venue.withdraw("dave", 1_000 * USDC))  # dave holds nothing there
    monkeypatch.undo()
    venue.block()  # the ladder resolves bob: withdrawals go again
    assert venue.risk("bob", 1).equity == 0
    assert venue.state.markets[MarketId(BTC_PERP)].underwater_count == 0
    accepted(venue, venue.withdraw("carol", 1_000 * USDC))


# ── Volatile collateral of a bankrupt account ───────────────────────────────────────────────


def test_a_bankrupt_accounts_collateral_is_sold_at_the_index_before_others_pay() -> None:
    venue = Venue()
    fund_insurance(venue, 50_000 * USDC)
    accepted(venue, venue.deposit("bob", 2 * ETH_GWEI, "ETH", number=1))  # 6,000 USDC of ETH
    quote(venue, "alice", PRICE, size=ONE_BTC)
    accepted(venue, venue.order("bob", BTC_PERP, BUY, ONE_BTC, PRICE + 20 * USDC, number=1))
    accepted(venue, venue.cancel_all("alice"))
    fund_before = venue.state.ledger.balance(INSURANCE, QUOTE_ASSET)
    events = venue.settle_prices(BTC_USD=PRICE - 7_000 * USDC).prologue
    # Equity counted the ETH at 85%: the buyer of last resort pays the full index for it, so
    # the fund pays only the real shortfall (7,000 + fees lost on 6,000 of ETH).
    [seized] = of_type(events, CollateralSeized)
    assert seized.asset_id == "ETH" and seized.amount_quantums == 2 * ETH_GWEI
    assert seized.paid_quote_quantums == 6_000 * USDC
    assert venue.balance("bob", "ETH", number=1) == 0
    assert venue.state.ledger.balance(SEIZED, AssetId("ETH")) == 2 * ETH_GWEI
    assert venue.state.ledger.balance(SEIZED, QUOTE_ASSET) == -6_000 * USDC
    drawn = sum(e.amount_quote_quantums for e in of_type(events, InsuranceDrawn))
    # The fund paid the shortfall and moved the margin its book needs to take the position.
    book_margin = venue.state.ledger.balance(FUND_BOOK, QUOTE_ASSET)
    assert fund_before - venue.state.ledger.balance(INSURANCE, QUOTE_ASSET) == drawn + book_margin
    assert 1_000 * USDC < drawn < 1_100 * USDC  # 7,000 + 30 fee + 20 entry − 6,000 of ETH
    assert venue.risk("bob", 1).equity == 0


def test_only_as_much_collateral_as_the_shortfall_needs_is_sold() -> None:
    venue = Venue()
    accepted(venue, venue.deposit("bob", 20 * ETH_GWEI, "ETH", number=1))  # 60,000 of ETH
    quote(venue, "alice", PRICE, size=10 * ONE_BTC)
    accepted(venue, venue.order("bob", BTC_PERP, BUY, 10 * ONE_BTC, PRICE + 20 * USDC, number=1))
    accepted(venue, venue.cancel_all("alice"))
    events = venue.settle_prices(BTC_USD=PRICE * 91 // 100).prologue  # −54k on 51k of haircut
    [seized] = of_type(events, CollateralSeized)
    assert 0 < seized.amount_quantums < 20 * ETH_GWEI
    assert not of_type(events, InsuranceDrawn)  # solvent at the index: nobody else pays
    assert venue.risk("bob", 1).equity >= 0


def test_a_flat_borrower_whose_collateral_falls_is_settled_and_recorded() -> None:
    venue = Venue()
    accepted(venue, venue.deposit("bob", 2 * ETH_GWEI, "ETH", number=1))
    quote(venue, "alice", PRICE, size=ONE_BTC)
    accepted(venue, venue.order("bob", BTC_PERP, BUY, ONE_BTC, PRICE + 20 * USDC, number=1))
    low = PRICE - 3_000 * USDC
    quote(venue, "alice", low, size=ONE_BTC)
    venue.settle_prices(BTC_USD=low)
    accepted(venue, venue.order("bob", BTC_PERP, SELL, ONE_BTC, low - 20 * USDC, number=1))
    assert venue.position("bob", BTC_PERP, number=1) == (0, 0)
    assert venue.balance("bob", number=1) < 0  # a quote debt backed by ETH
    seen: list[Event] = []
    for price in (2_400, 1_900, 1_500, 1_200):  # ETH falls until the debt is under water
        venue.prices[ETH_USD] = price * USDC
        for _ in range(3):
            seen += venue.block(dt_ns=5 * NS_PER_SECOND).prologue
    losses = of_type(seen, LossSocialized)
    assert losses and all(e.subaccount == str(venue.sub("bob", 1)) for e in losses)
    assert venue.risk("bob", 1).equity == 0
    recorded = sum(e.amount_quote_quantums for e in losses)
    assert -venue.state.ledger.balance(DEFICIT, QUOTE_ASSET) == recorded
