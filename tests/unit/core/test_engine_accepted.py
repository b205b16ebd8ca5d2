"""The engine, accepted commands one at a time: hand-computed trades, funding, expiry,
triggers, GTT expiry, amends, self-trade prevention, transfers, the circuit breaker and the
insurance fund's deposits (the rejections are ``test_engine_rejections.py``).

Every block runs through ``helpers.Venue``, which also checks the invariants after each command.
"""

from __future__ import annotations

import dataclasses

from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import QUOTE_ASSET, MarketId, OracleId, Side
from clearhouse.core.ledger import FEES, INSURANCE, clearing_account, funding_account
from clearhouse.core.margin import (
    new_risk_multiplier_ppm,
    pending_funding,
    requirements,
    vol_multiplier_target_ppm,
)
from clearhouse.core.messages import (
    CancelCause,
    CircuitBreakerTripped,
    Event,
    FundingPaid,
    MarketExpired,
    MarketSettled,
    OrderAmended,
    OrderCancelled,
    OrderFilled,
    OrderRested,
    OrderTriggerArmed,
    OrderTriggered,
    OrderType,
    TimeInForce,
    Transferred,
)
from clearhouse.core.oracle import annual_volatility_ppm
from clearhouse.core.state import MarketStatus
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND
from helpers import (
    BTC_ASSET,
    BTC_PERP,
    BUY,
    ETH_PERP,
    GENESIS_NS,
    ONE_BTC,
    PRICE,
    SELL,
    USDC,
    Venue,
    accepted,
    of_type,
    open_long_short,
    rejected,
)

# ── What accepted commands do ────────────────────────────────────────────────────────────────


def test_trade_moves_positions_fees_and_cost_basis_exactly(venue: Venue) -> None:
    half, fifth = ONE_BTC // 2, ONE_BTC // 5
    accepted(venue, venue.order("alice", BTC_PERP, SELL, half, PRICE))  # maker
    [events] = accepted(venue, venue.order("bob", BTC_PERP, BUY, half, PRICE + 10 * USDC))
    [fill] = of_type(events, OrderFilled)
    # At the maker's price: 0.5 BTC × 60_000 = 30_000 USDC; maker 1 bp, taker 5 bp, rounded up.
    assert (fill.price_quantums, fill.size_base_quantums) == (PRICE, half)
    assert (fill.maker_fee_quote_quantums, fill.taker_fee_quote_quantums) == (3 * USDC, 15 * USDC)
    assert venue.position("alice", BTC_PERP) == (-half, -30_000 * USDC)
    assert venue.position("bob", BTC_PERP) == (half, 30_000 * USDC)
    assert venue.balance("alice") == 1_000_000 * USDC - 3 * USDC
    assert venue.balance("bob") == 1_000_000 * USDC - 15 * USDC
    # bob sells 0.2 BTC into carol's 60_500 bid: he realizes 0.2 × 500 = 100 USDC.
    accepted(venue, venue.order("carol", BTC_PERP, BUY, fifth, 60_500 * USDC))
    [events] = accepted(venue, venue.order("bob", BTC_PERP, SELL, fifth, 60_400 * USDC))
    [fill] = of_type(events, OrderFilled)
    assert fill.price_quantums == 60_500 * USDC
    assert (fill.maker_fee_quote_quantums, fill.taker_fee_quote_quantums) == (1_210_000, 6_050_000)
    assert venue.position("bob", BTC_PERP) == (half - fifth, 18_000 * USDC)
    assert venue.position("carol", BTC_PERP) == (fifth, 12_100 * USDC)
    assert venue.balance("bob") == 1_000_000 * USDC - 15 * USDC + 100 * USDC - 6_050_000
    assert venue.balance("carol") == 1_000_000 * USDC - 1_210_000
    ledger = venue.state.ledger
    assert ledger.balance(FEES, QUOTE_ASSET) == 18 * USDC + 7_260_000
    assert ledger.balance(clearing_account(MarketId(BTC_PERP)), QUOTE_ASSET) == -100 * USDC
    assert venue.state.markets[BTC_PERP].open_interest_base_quantums == half


def test_funding_over_one_hour_steps_the_index_and_each_position_settles_its_share(
    venue: Venue,
) -> None:
    index = 60_001_234_567  # an index that does not divide evenly
    venue.settle_prices(BTC_USD=index)
    accepted(venue, venue.order("alice", BTC_PERP, SELL, 7 * ONE_BTC // 10, PRICE))
    accepted(venue, venue.order("dave", BTC_PERP, SELL, 33_330_000, PRICE))
    accepted(venue, venue.order("bob", BTC_PERP, BUY, 103_330_000, PRICE))  # long 1.0333 BTC
    # carol skews the book above the index: the impact mid is 60_450, so longs pay.
    accepted(
        venue,
        venue.order("carol", BTC_PERP, BUY, ONE_BTC, 60_300 * USDC),
        venue.order("carol", BTC_PERP, SELL, ONE_BTC, 60_600 * USDC),
    )
    # The first hour's premium average includes blocks before carol's quotes: let it pass (a
    # jump, so the index is stale and funding waits for the next fresh block), then measure the
    # second hour, every sample of which sees the same book and index.
    venue.block(dt_ns=GENESIS_NS + NS_PER_HOUR + 5 * NS_PER_SECOND - venue.now)
    first = venue.block(dt_ns=10 * NS_PER_SECOND).prologue
    assert [e.market_id for e in of_type(first, FundingPaid)] == [BTC_PERP, ETH_PERP]
    traders = ("alice", "bob", "dave")
    balances = {t: venue.balance(t) for t in traders}
    index_before = venue.state.markets[BTC_PERP].funding_index_e9
    hour = GENESIS_NS + 2 * NS_PER_HOUR
    events: list[Event] = []
    while venue.now < hour:
        events += venue.block(dt_ns=10 * NS_PER_SECOND).prologue
    [paid] = [e for e in of_type(events, FundingPaid) if e.market_id == BTC_PERP]
    # The hourly rate from SPEC §8: premium + clamp(interest − premium, ±0.05%) per 8 h, an
    # eighth of it per hour, within ±0.75·(IM − MM) = ±0.6%.
    premium = (60_450 * USDC - index) * 10**9 // index
    expected_rate = (premium + max(min(100_000 - premium, 500_000), -500_000)) // 8
    assert paid.rate_ppb == expected_rate > 0
    assert paid.index_price_quantums == index
    denominator = ONE_BTC * 10**9
    # The event reports the hour on the open interest (one long, one short, rounded each way).
    hour_paid = -(-103_330_000 * index * paid.rate_ppb // denominator)
    assert (paid.paid_quote_quantums, paid.received_quote_quantums) == (hour_paid, hour_paid - 1)
    # The hour moved no balance: it stepped the index by index × rate, exactly...
    assert {t: venue.balance(t) for t in traders} == balances
    index_after = venue.state.markets[BTC_PERP].funding_index_e9
    assert index_after == index_before + index * paid.rate_ppb
    # ...and every margin counts its share of both hours since it opened: payers round up,
    # receivers down.
    bob_pays = -(-103_330_000 * index_after // denominator)
    alice_gets = 70_000_000 * index_after // denominator
    dave_gets = 33_330_000 * index_after // denominator
    market = venue.engine.market_risk(MarketId(BTC_PERP))
    shares = {"bob": -bob_pays, "alice": alice_gets, "dave": dave_gets}
    for trader, share in shares.items():
        position = venue.state.ledger.subaccounts[venue.sub(trader)].positions[BTC_PERP]
        assert pending_funding(position, market) == share
    # Each position settles its share through the funding account when it next trades.
    pool = funding_account(MarketId(BTC_PERP))
    for trader, side, price in (("bob", SELL, 60_300 * USDC), ("alice", BUY, 60_600 * USDC),
                                ("dave", BUY, 60_600 * USDC)):  # fmt: skip
        [fill] = accepted(venue, venue.order(trader, BTC_PERP, side, ONE_BTC // 1000, price))
        [settled] = [e for e in of_type(fill, Transferred) if e.cause == "funding"]
        share = shares[trader]
        account, pool_name = str(venue.sub(trader)), str(pool)
        expected = (account, pool_name) if share < 0 else (pool_name, account)
        assert (settled.source, settled.target, settled.amount_quantums) == (*expected, abs(share))
    # What the account keeps is the rounding: every settlement rounded against its account.
    residue = bob_pays - alice_gets - dave_gets
    assert venue.state.ledger.balance(pool, QUOTE_ASSET) == residue > 0
    # Paid once per hour, and the next is due on the next hour.
    assert venue.state.markets[BTC_PERP].next_funding_ns == hour + NS_PER_HOUR


def test_dated_future_settles_at_the_30_minute_twap() -> None:
    venue = Venue(future_expiry_hours=1)
    future = venue.future
    expiry = venue.state.markets[future].params.expiry_ns
    size = 33_330_000  # 0.3333 BTC: the payouts do not divide evenly
    accepted(venue, venue.order("alice", future, SELL, size, PRICE))
    accepted(venue, venue.order("bob", future, BUY, size, PRICE))
    accepted(venue, venue.order("carol", future, BUY, ONE_BTC, PRICE - 100 * USDC))  # rests
    balances = {t: venue.balance(t) for t in ("alice", "bob")}
    insurance = venue.state.ledger.balance(INSURANCE, QUOTE_ASSET)
    # Jump to 31 minutes before expiry, then a block every 5 s; the price steps from 60_000 to
    # 61_000 halfway through the window. A report is the index one block (5 s) later.
    venue.block(dt_ns=expiry - 31 * NS_PER_MINUTE - venue.now)
    events: list[Event] = []
    while venue.now < expiry:
        if venue.now + 5 * NS_PER_SECOND >= expiry - 15 * NS_PER_MINUTE:
            venue.prices[venue.state.markets[future].params.oracle_id] = 61_000 * USDC
        result = venue.block(dt_ns=5 * NS_PER_SECOND)
        events += result.prologue
    assert venue.now == expiry
    # Samples at expiry − 30 min + 5 s·k, k < 360: 181 see 60_000 and 179 see 61_000.
    twap = (181 * 60_000 * USDC + 179 * 61_000 * USDC) // 360
    [settled] = of_type(events, MarketSettled)
    assert settled.settlement_price_quantums == twap
    assert settled.twap_samples == 360
    assert settled.positions_closed == 2
    assert of_type(events, MarketExpired) == [MarketExpired(market_id=future)]
    cancelled = of_type(events, OrderCancelled)
    assert [e.cause for e in cancelled] == [CancelCause.SETTLEMENT]
    value = size * twap // ONE_BTC  # bob's long, rounded down; alice's short rounds down too
    short_value = -(-size * twap // ONE_BTC)
    assert venue.balance("bob") == balances["bob"] + value - size * PRICE // ONE_BTC
    assert venue.balance("alice") == balances["alice"] - short_value + size * PRICE // ONE_BTC
    assert settled.residue_quote_quantums == short_value - value == 1
    assert venue.state.ledger.balance(INSURANCE, QUOTE_ASSET) == insurance + 1
    market = venue.state.markets[future]
    assert market.status is MarketStatus.SETTLED and market.open_interest_base_quantums == 0
    assert venue.position("alice", future) == venue.position("bob", future) == (0, 0)
    assert venue.state.ledger.balance(clearing_account(future), QUOTE_ASSET) == 0
    assert len(market.book) == 0
    rejected(
        venue, venue.order("carol", future, BUY, ONE_BTC, PRICE), RejectReason.MARKET_NOT_ACTIVE
    )


def test_stop_order_fires_on_the_mark(venue: Venue) -> None:
    accepted(venue, venue.order("alice", BTC_PERP, SELL, ONE_BTC, PRICE))
    accepted(venue, venue.order("bob", BTC_PERP, BUY, ONE_BTC, PRICE))  # bob long
    accepted(venue, venue.order("carol", BTC_PERP, BUY, ONE_BTC, 57_000 * USDC))
    stop = venue.order(
        "bob", BTC_PERP, SELL, ONE_BTC, order_type=OrderType.STOP_MARKET,
        time_in_force=TimeInForce.IOC, trigger_price_quantums=58_000 * USDC, slippage_ppm=30_000,
        reduce_only=True,
    )  # fmt: skip
    [events] = accepted(venue, stop)
    [armed] = of_type(events, OrderTriggerArmed)
    prologue = venue.settle_prices(BTC_USD=58_500 * USDC).prologue  # above the trigger
    assert not of_type(prologue, OrderTriggered)
    assert venue.mark() == 58_500 * USDC
    prologue = venue.settle_prices(BTC_USD=57_900 * USDC).prologue
    assert of_type(prologue, OrderTriggered) == [
        OrderTriggered(order_id=armed.order_id, mark_price_quantums=57_900 * USDC)
    ]
    [fill] = of_type(prologue, OrderFilled)
    assert (fill.taker_order_id, fill.price_quantums) == (armed.order_id, 57_000 * USDC)
    assert venue.position("bob", BTC_PERP) == (0, 0)
    assert venue.position("carol", BTC_PERP)[0] == ONE_BTC
    assert not venue.state.markets[BTC_PERP].triggers


def test_gtt_order_expires(venue: Venue) -> None:
    good_til = venue.now + 10 * NS_PER_SECOND
    gtt = venue.order(
        "alice", BTC_PERP, BUY, ONE_BTC, PRICE - USDC, time_in_force=TimeInForce.GTT,
        good_til_ns=good_til,
    )  # fmt: skip
    [events] = accepted(venue, gtt)
    [rested] = of_type(events, OrderRested)
    while venue.now + NS_PER_SECOND < good_til:
        assert not of_type(venue.block().prologue, OrderCancelled)
        assert rested.order_id in venue.state.markets[BTC_PERP].book
    prologue = venue.block().prologue
    assert venue.now == good_til
    assert of_type(prologue, OrderCancelled) == [
        OrderCancelled(
            order_id=rested.order_id, cause=CancelCause.EXPIRED, remaining_base_quantums=ONE_BTC
        )
    ]
    assert len(venue.state.markets[BTC_PERP].book) == 0
    assert not venue.state.ledger.subaccounts[venue.sub("alice")].order_ids


def test_amend_keeps_priority_when_shrinking_and_loses_it_otherwise(venue: Venue) -> None:
    [a_events] = accepted(
        venue, venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE, client_order_id=11)
    )
    [b_events] = accepted(venue, venue.order("bob", BTC_PERP, BUY, ONE_BTC, PRICE))
    alice_id = of_type(a_events, OrderRested)[0].order_id
    bob_id = of_type(b_events, OrderRested)[0].order_id
    # Shrink at the same price: same order, same place in the queue.
    [events] = accepted(venue, venue.amend("alice", alice_id, PRICE, ONE_BTC // 2))
    assert events == [
        OrderAmended(
            order_id=alice_id,
            price_quantums=PRICE,
            size_base_quantums=ONE_BTC // 2,
            kept_priority=True,
        )
    ]
    [events] = accepted(venue, venue.order("carol", BTC_PERP, SELL, ONE_BTC // 10, PRICE))
    assert of_type(events, OrderFilled)[0].maker_order_id == alice_id
    # Grow at the same price: a new order, behind bob.
    [events] = accepted(venue, venue.amend("alice", alice_id, PRICE, ONE_BTC))
    assert events[0] == OrderCancelled(
        order_id=alice_id, cause=CancelCause.AMENDED, remaining_base_quantums=4 * ONE_BTC // 10
    )
    [new] = of_type(events, OrderRested)
    assert new.order_id > bob_id
    alice = venue.state.ledger.subaccounts[venue.sub("alice")]
    assert list(alice.order_ids) == [new.order_id]
    assert alice.client_order_ids == {11: new.order_id}
    [events] = accepted(venue, venue.order("carol", BTC_PERP, SELL, ONE_BTC // 10, PRICE))
    assert of_type(events, OrderFilled)[0].maker_order_id == bob_id
    # Cancel by client id reaches the replacement.
    [events] = accepted(venue, venue.cancel("alice", client_order_id=11))
    assert of_type(events, OrderCancelled)[0].order_id == new.order_id


def test_rejected_amend_leaves_the_order_where_it_was() -> None:
    venue = Venue(quote_per_trader=10_000 * USDC)
    [a] = accepted(venue, venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE - USDC))
    accepted(venue, venue.order("bob", BTC_PERP, BUY, ONE_BTC, PRICE - USDC))
    alice_id = of_type(a, OrderRested)[0].order_id
    too_big = venue.amend("alice", alice_id, PRICE - 2 * USDC, 50 * ONE_BTC)
    rejected(venue, too_big, RejectReason.INSUFFICIENT_MARGIN)
    [events] = accepted(venue, venue.order("carol", BTC_PERP, SELL, ONE_BTC // 10, PRICE - USDC))
    assert of_type(events, OrderFilled)[0].maker_order_id == alice_id  # still first in line


def test_an_amended_post_only_order_stays_post_only(venue: Venue) -> None:
    [ask] = accepted(venue, venue.order("bob", BTC_PERP, SELL, ONE_BTC, PRICE + USDC))
    [bid] = accepted(
        venue,
        venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE, time_in_force=TimeInForce.POST_ONLY),
    )
    bid_id = of_type(bid, OrderRested)[0].order_id
    crossing = venue.amend("alice", bid_id, PRICE + 2 * USDC, ONE_BTC)
    rejected(venue, crossing, RejectReason.POST_ONLY_WOULD_CROSS)
    book = venue.state.markets[BTC_PERP].book
    assert book.best_bid() == PRICE
    assert book.best_ask() == PRICE + USDC
    assert of_type(ask, OrderRested)[0].order_id in book


def test_self_trade_prevention_cancels_the_resting_order(venue: Venue) -> None:
    [own] = accepted(venue, venue.order("alice", BTC_PERP, SELL, ONE_BTC, PRICE))
    [other] = accepted(venue, venue.order("bob", BTC_PERP, SELL, ONE_BTC, PRICE + USDC))
    own_id = of_type(own, OrderRested)[0].order_id
    [events] = accepted(venue, venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE + 2 * USDC))
    assert of_type(events, OrderCancelled)[0] == OrderCancelled(
        order_id=own_id, cause=CancelCause.SELF_TRADE, remaining_base_quantums=ONE_BTC
    )
    [fill] = of_type(events, OrderFilled)
    assert fill.maker_order_id == of_type(other, OrderRested)[0].order_id
    assert fill.price_quantums == PRICE + USDC
    assert venue.position("alice", BTC_PERP)[0] == ONE_BTC
    assert len(venue.state.markets[BTC_PERP].book) == 0


def test_transfer_between_subaccounts(venue: Venue) -> None:
    events = venue.run(venue.transfer("alice", 250 * USDC, source=0, target=3))
    assert of_type(events, Transferred)
    assert venue.balance("alice", number=3) == 250 * USDC
    rejected(venue, venue.transfer("alice", USDC, source=2, target=2), RejectReason.SELF_TRANSFER)
    rejected(
        venue, venue.transfer("alice", 0, source=0, target=1), RejectReason.AMOUNT_NOT_POSITIVE
    )
    rejected(venue, venue.transfer("alice", USDC, "DOGE"), RejectReason.UNKNOWN_ASSET)
    assert venue.balance("alice", "BTC") == 0
    rejected(venue, venue.withdraw("alice", 1, str(BTC_ASSET)), RejectReason.INSUFFICIENT_FUNDS)


def test_eth_market_uses_its_own_oracle(venue: Venue) -> None:
    venue.settle_prices(ETH_USD=3_100 * USDC)
    assert venue.mark(ETH_PERP) == 3_100 * USDC
    assert venue.mark(BTC_PERP) == PRICE


def test_no_trigger_trades_in_the_expiry_block() -> None:
    """Regression: a stop whose trigger was crossed by the price of the expiry block used to fire
    and trade in that block's prologue, before the market expired."""
    venue = Venue(future_expiry_hours=1)
    future = venue.future
    expiry = venue.state.markets[future].params.expiry_ns
    accepted(venue, venue.order("alice", future, SELL, ONE_BTC, PRICE))
    accepted(venue, venue.order("bob", future, BUY, ONE_BTC, PRICE))
    accepted(venue, venue.order("carol", future, BUY, ONE_BTC, 57_000 * USDC))
    stop = venue.order(
        "bob", future, SELL, ONE_BTC, order_type=OrderType.STOP_MARKET,
        time_in_force=TimeInForce.IOC, trigger_price_quantums=58_000 * USDC, slippage_ppm=30_000,
        reduce_only=True,
    )  # fmt: skip
    accepted(venue, stop)
    venue.block(dt_ns=expiry - 10 * NS_PER_SECOND - venue.now)
    venue.prices[venue.state.markets[future].params.oracle_id] = 57_500 * USDC
    venue.block(dt_ns=5 * NS_PER_SECOND)  # reports the drop ...
    prologue = venue.block(dt_ns=5 * NS_PER_SECOND).prologue  # ... which is the index at expiry
    assert venue.now == expiry
    assert not of_type(prologue, OrderTriggered)
    assert not of_type(prologue, OrderFilled)
    causes = {e.order_id: e.cause for e in of_type(prologue, OrderCancelled)}
    assert set(causes.values()) == {CancelCause.SETTLEMENT} and len(causes) == 2
    assert of_type(prologue, MarketExpired) == [MarketExpired(market_id=future)]
    assert venue.state.markets[future].status is MarketStatus.EXPIRED  # too few samples yet
    assert venue.position("bob", future)[0] == ONE_BTC


def test_a_tripped_circuit_breaker_makes_the_market_reduce_only_with_wider_margins(
    venue: Venue,
) -> None:
    open_long_short(venue)
    fraction_before = venue.engine.market_risk(MarketId(BTC_PERP)).im_fraction_ppm
    new_price = PRICE * 88 // 100  # -12% in one block, reported by every publisher
    events = venue.settle_prices(BTC_USD=new_price).prologue
    tripped = [e for e in events if isinstance(e, CircuitBreakerTripped)]
    assert len(tripped) == 1
    assert venue.index() == new_price
    rejected(
        venue, venue.order("carol", BTC_PERP, BUY, ONE_BTC, new_price),
        RejectReason.MARKET_REDUCE_ONLY,
    )  # fmt: skip
    # Reducing is still allowed: bob (long) sells half his position.
    [events] = accepted(
        venue, venue.order("bob", BTC_PERP, SELL, ONE_BTC // 2, new_price, reduce_only=True)
    )
    assert of_type(events, OrderRested)
    # IM is wider by the cooling-off multiplier (1.5x by default); MM is not: a breaker must
    # not make accounts liquidatable at once.
    cooling = venue.engine.market_risk(MarketId(BTC_PERP))
    assert cooling.initial_multiplier_ppm == 1_500_000
    assert cooling.im_fraction_ppm == fraction_before
    initial, maintenance = requirements(ONE_BTC, cooling)
    plain_initial, plain_maintenance = requirements(
        ONE_BTC, dataclasses.replace(cooling, initial_multiplier_ppm=1_000_000)
    )
    assert initial == -(-plain_initial * 3 // 2)
    assert maintenance == plain_maintenance
    # ... until the cooling-off period ends; then anyone may add risk again.
    venue.advance(15 * NS_PER_MINUTE)
    after = venue.engine.market_risk(MarketId(BTC_PERP))
    # The crash also raised realized volatility: the volatility multiplier climbs toward its
    # target (MM follows it), and new risk pays the target at once (IM alone): that, not the
    # cooling-off, is all that remains above the base fraction.
    oracle = venue.state.oracles[OracleId("BTC-USD")]
    sigma = annual_volatility_ppm(oracle.variance_e18, oracle.params.vol_sample_interval_ns)
    target = vol_multiplier_target_ppm(venue.state.markets[BTC_PERP].params.margin, sigma)
    multiplier = venue.state.markets[BTC_PERP].vol_multiplier_ppm
    assert 1_000_000 < multiplier <= target
    assert after.initial_multiplier_ppm == new_risk_multiplier_ppm(
        vol_target_ppm=target, vol_multiplier_ppm=multiplier
    )
    assert after.im_fraction_ppm == -(-fraction_before * multiplier // 1_000_000)
    accepted(venue, venue.order("carol", BTC_PERP, BUY, ONE_BTC, new_price - 100 * USDC))


def test_anyone_may_deposit_into_the_insurance_fund_never_beyond_free_collateral() -> None:
    venue = Venue()
    fund_before = venue.state.ledger.balance(INSURANCE, QUOTE_ASSET)
    accepted(venue, venue.deposit_insurance("carol", 1_000 * USDC))
    assert venue.state.ledger.balance(INSURANCE, QUOTE_ASSET) == fund_before + 1_000 * USDC
    assert venue.balance("carol") == 1_000_000 * USDC - 1_000 * USDC
    for amount, reason in (
        (0, RejectReason.AMOUNT_NOT_POSITIVE),
        (-5, RejectReason.AMOUNT_NOT_POSITIVE),
        (10**15, RejectReason.INSUFFICIENT_FUNDS),
    ):
        rejected(venue, venue.deposit_insurance("carol", amount), reason)
    # An open position's margin stays: only free collateral, never unrealized profit, goes in.
    accepted(venue, venue.order("alice", BTC_PERP, Side.SELL, ONE_BTC, PRICE))
    accepted(venue, venue.order("carol", BTC_PERP, Side.BUY, ONE_BTC, PRICE))
    free = venue.risk("carol").free_collateral
    too_much = venue.deposit_insurance("carol", free + 1)
    rejected(venue, too_much, RejectReason.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)
    assert venue.state.ledger.balance(INSURANCE, QUOTE_ASSET) == fund_before + 1_000 * USDC
