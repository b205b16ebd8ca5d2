"""Regressions from the review: each test is one of the reviewer's reproduction scripts, turned
into an assertion of the fixed behaviour.

* a taker that walks into more makers than ``fills_per_order_max`` (its remainder used to rest
  crossing the book and trip an assertion);
* a command with ~900 fills where both sides realize PnL (it used to exceed the event bound);
* volatile collateral withdrawn until a negative quote balance was backed only by unrealized PnL;
* a maker whose collateral price was stale, filled anyway;
* a future settled on a price carried across an oracle outage;
* the producer executing command objects the codec would not give back (verify then diverged);
* makers filled into new risk during circuit-breaker cooling-off;
* makers filled into more positions than ``positions_per_subaccount_max``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from clearhouse.adapters.memory_journal import MemoryJournal
from clearhouse.app.chain import Chain, verify
from clearhouse.core import invariants, limits
from clearhouse.core import messages as messages_module
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import Address, AssetId, MarketId, Side, SubaccountId
from clearhouse.core.margin import collateral_value
from clearhouse.core.messages import (
    CancelCause,
    CircuitBreakerTripped,
    Command,
    CommandRejected,
    Deposit,
    Event,
    MarketExpired,
    MarketSettled,
    OrderCancelled,
    OrderFilled,
    OrderRested,
    PlaceOrder,
    PriceReport,
    ReportPrices,
    TimeInForce,
    Transferred,
)
from clearhouse.core.state import MarketStatus
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_MS, NS_PER_SECOND
from clearhouse.sim.venue import VenueSpec, address_of, default_venue, genesis_commands
from helpers import (
    BTC_ASSET,
    BTC_PERP,
    BTC_USD,
    BUY,
    ETH_GWEI,
    ETH_PERP,
    ETH_USD,
    GENESIS_NS,
    ONE_BTC,
    PRICE,
    SELL,
    START_PRICES,
    USDC,
    Venue,
    accepted,
    compiled,
    of_type,
    rejected,
)

LOT = 100_000  # the smallest BTC-PERP order: 0.001 BTC


def rested_id(events: list[Event]) -> int:
    [rested] = of_type(events, OrderRested)
    return rested.order_id


# ── crash_fills ──────────────────────────────────────────────────────────────────────────────


def test_remainder_past_the_fill_bound_is_cancelled_not_rested_crossing() -> None:
    """A GTC taker that meets more makers than one command may fill takes exactly
    ``fills_per_order_max`` of them; its remainder would cross the makers left at its price, so
    it is cancelled instead of resting (it used to rest and leave the book crossed)."""
    makers = limits.fills_per_order_max + 1
    venue = Venue()
    accepted(venue, *(venue.deposit("bob", 100_000 * USDC, number=n) for n in range(1, 5)))
    per_subaccount = 250  # under open_orders_per_subaccount_max
    asks = [venue.order("bob", BTC_PERP, SELL, LOT, PRICE, number=i // per_subaccount)
            for i in range(makers)]  # fmt: skip
    accepted(venue, *asks)
    book = venue.state.markets[MarketId(BTC_PERP)].book
    assert len(book) == makers
    taker_size = LOT * (makers + 5)
    [events] = accepted(venue, venue.order("alice", BTC_PERP, BUY, taker_size, PRICE))
    fills = of_type(events, OrderFilled)
    assert len(fills) == limits.fills_per_order_max
    assert {f.price_quantums for f in fills} == {PRICE}
    taker_id = fills[0].taker_order_id
    assert events[-1] == OrderCancelled(
        order_id=taker_id, cause=CancelCause.IOC_REMAINDER,
        remaining_base_quantums=taker_size - LOT * limits.fills_per_order_max,
    )  # fmt: skip
    assert not of_type(events, OrderRested)
    # The last ask in time priority is left and nothing bids: the book is not crossed.
    assert len(book) == 1
    assert book.best_bid() is None
    assert book.best_ask() == PRICE
    [left] = book.orders()
    assert left.owner == venue.sub("bob", limits.fills_per_order_max // per_subaccount)
    assert venue.position("alice", BTC_PERP)[0] == LOT * limits.fills_per_order_max
    assert venue.state.ledger.subaccounts[venue.sub("alice")].order_ids == {}
    invariants.check(venue.state)


# ── crash_events ─────────────────────────────────────────────────────────────────────────────


def test_900_fills_that_realize_pnl_on_both_sides_stay_inside_the_event_bound() -> None:
    """Each fill here emits five events (the trade, two PnL and two fee transfers): 900 fills
    are 4_500 events, past the old bound of 4 per fill plus slack, which tripped an assertion."""
    fills = 900
    venue = Venue()
    accepted(venue, *(venue.deposit("bob", 100_000 * USDC, number=n) for n in range(1, 5)))
    for number in range(4):  # bob/0..3 short 225 lots each, alice long 900
        accepted(
            venue,
            venue.order("bob", BTC_PERP, SELL, LOT * fills // 4, PRICE, number=number),
            venue.order("alice", BTC_PERP, BUY, LOT * fills // 4, PRICE),
        )
    assert venue.position("alice", BTC_PERP)[0] == LOT * fills
    # bob closes his shorts 10 USDC lower (a profit), one lot per bid; alice sells into them all
    # (a loss): every fill realizes PnL for both sides.
    bids = [venue.order("bob", BTC_PERP, BUY, LOT, PRICE - 10 * USDC, number=i % 4)
            for i in range(fills)]  # fmt: skip
    accepted(venue, *bids)
    sell = venue.order(
        "alice", BTC_PERP, SELL, LOT * fills, PRICE - 10 * USDC, time_in_force=TimeInForce.IOC
    )
    [events] = accepted(venue, sell)
    expected = 5 * fills  # fully filled: no remainder to cancel
    assert len(events) == expected
    assert expected <= limits.events_per_command_max
    assert len(of_type(events, OrderFilled)) == fills
    causes = Counter(t.cause for t in of_type(events, Transferred))
    assert causes == {"realized pnl": 2 * fills, "trading fee": 2 * fills}
    assert venue.position("alice", BTC_PERP) == (0, 0)
    for number in range(4):
        assert venue.position("bob", BTC_PERP, number) == (0, 0)
    assert len(venue.state.markets[MarketId(BTC_PERP)].book) == 0


# ── btc_withdraw ─────────────────────────────────────────────────────────────────────────────


def test_btc_cannot_leave_a_quote_debt_backed_only_by_unrealized_profit() -> None:
    """alice has 1 BTC, no USDC, a realized ETH loss (quote balance < 0) and an unrealized BTC
    profit. BTC may leave only while quote plus haircut BTC stays >= 0 (and IM is met)."""
    venue = Venue(quote_per_trader=0, btc_per_trader=ONE_BTC)
    accepted(
        venue,
        venue.order("bob", BTC_PERP, SELL, ONE_BTC, PRICE),
        venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE),
    )
    accepted(
        venue,
        venue.order("carol", ETH_PERP, SELL, 10 * ETH_GWEI, 3_000 * USDC),
        venue.order("alice", ETH_PERP, BUY, 10 * ETH_GWEI, 3_000 * USDC),
    )
    venue.settle_prices(BTC_USD=65_000 * USDC, ETH_USD=2_800 * USDC)
    accepted(
        venue,
        venue.order("dave", ETH_PERP, BUY, 10 * ETH_GWEI, 2_800 * USDC),
        venue.order(
            "alice", ETH_PERP, SELL, 10 * ETH_GWEI, 2_800 * USDC, time_in_force=TimeInForce.IOC
        ),
    )
    quote = venue.balance("alice")
    btc = venue.balance("alice", "BTC")
    price = venue.engine.collateral_price(BTC_ASSET)
    risk = venue.risk("alice")
    assert quote < 0 and btc == ONE_BTC
    assert quote + collateral_value(btc, price) > 0  # settled collateral: no PnL
    # IM alone would let all the BTC go: the unrealized BTC profit covers the debt and the IM.
    assert risk.equity - collateral_value(btc, price) >= risk.initial
    rejected(
        venue, venue.withdraw("alice", btc, "BTC"), RejectReason.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL
    )
    # The most that may leave keeps quote + haircut BTC >= 0.
    low, high = 0, btc
    while low < high:
        middle = (low + high + 1) // 2
        if quote + collateral_value(btc - middle, price) >= 0:
            low = middle
        else:
            high = middle - 1
    most = low
    assert 0 < most < btc
    rejected(
        venue,
        venue.withdraw("alice", most + 1, "BTC"),
        RejectReason.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL,
    )
    [events] = accepted(venue, venue.withdraw("alice", most, "BTC"))
    [withdrawal] = of_type(events, Transferred)
    assert withdrawal.asset_id == BTC_ASSET and withdrawal.amount_quantums == most
    assert venue.balance("alice", "BTC") == btc - most
    assert venue.balance("alice") == quote
    settled = venue.balance("alice") + collateral_value(venue.balance("alice", "BTC"), price)
    assert 0 <= settled < USDC
    assert venue.risk("alice").satisfies_initial
    rejected(
        venue, venue.withdraw("alice", 1, "BTC"), RejectReason.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL
    )


# ── stale_maker ──────────────────────────────────────────────────────────────────────────────


def test_maker_on_a_stale_collateral_price_is_skipped_and_kept_resting() -> None:
    venue = Venue()
    accepted(venue, venue.deposit("bob", ONE_BTC // 10, "BTC", number=1))  # bob/1: BTC only
    [events] = accepted(venue, venue.order("bob", ETH_PERP, BUY, 30 * ETH_GWEI, 2_990 * USDC,
                                           number=1))  # fmt: skip
    bob_bid = rested_id(events)
    [events] = accepted(venue, venue.order("carol", ETH_PERP, BUY, 30 * ETH_GWEI, 2_980 * USDC))
    carol_bid = rested_id(events)
    # BTC-USD publishers go silent: BTC-USD is stale after 10 s; ETH-USD stays fresh.
    venue.prices = {ETH_USD: START_PRICES[ETH_USD]}
    venue.block(dt_ns=11 * NS_PER_SECOND)
    venue.block()
    assert not venue.state.oracles[BTC_USD].is_usable()
    assert venue.state.oracles[ETH_USD].is_usable()
    assert not venue.risk("bob", 1).usable
    rejected(
        venue,
        venue.order("bob", ETH_PERP, BUY, 10 * ETH_GWEI, 2_990 * USDC, number=1),
        RejectReason.ORACLE_STALE,
    )
    # alice sells through both bids: bob/1's better bid is skipped, not filled nor cancelled.
    sell = venue.order(
        "alice", ETH_PERP, SELL, 30 * ETH_GWEI, 2_980 * USDC, time_in_force=TimeInForce.IOC
    )
    [events] = accepted(venue, sell)
    [fill] = of_type(events, OrderFilled)
    assert fill.maker_order_id == carol_bid
    assert fill.size_base_quantums == 30 * ETH_GWEI
    assert not of_type(events, OrderCancelled)
    book = venue.state.markets[MarketId(ETH_PERP)].book
    resting = book.get(bob_bid)
    assert resting is not None and resting.remaining_base_quantums == 30 * ETH_GWEI
    assert venue.position("bob", ETH_PERP, 1) == (0, 0)
    # Fresh prices again: the same bid fills.
    venue.settle_prices(BTC_USD=START_PRICES[BTC_USD])
    assert venue.risk("bob", 1).usable
    sell = venue.order(
        "alice", ETH_PERP, SELL, 30 * ETH_GWEI, 2_990 * USDC, time_in_force=TimeInForce.IOC
    )
    [events] = accepted(venue, sell)
    [fill] = of_type(events, OrderFilled)
    assert fill.maker_order_id == bob_bid
    assert fill.size_base_quantums == 30 * ETH_GWEI
    assert book.get(bob_bid) is None
    assert venue.position("bob", ETH_PERP, 1)[0] == 30 * ETH_GWEI


# ── stale_settle ─────────────────────────────────────────────────────────────────────────────


def test_future_settles_on_fresh_prices_after_an_outage_spanning_expiry() -> None:
    """The BTC feed dies 40 minutes before expiry at 60_000 and comes back a minute after it at
    56_000. The pre-outage price may not stand in for the outage: settlement waits until fresh
    samples cover 90% of a 30-minute window, and is then 56_000."""
    venue = Venue(future_expiry_hours=1)
    future = venue.future
    params = venue.state.markets[future].params
    expiry = params.expiry_ns
    accepted(
        venue,
        venue.order("alice", future, SELL, ONE_BTC, PRICE),
        venue.order("bob", future, BUY, ONE_BTC, PRICE),
    )
    venue.block(dt_ns=expiry - 40 * NS_PER_MINUTE - venue.now)  # the last BTC-USD reports
    venue.prices = {ETH_USD: START_PRICES[ETH_USD]}
    result = venue.block(dt_ns=expiry + NS_PER_MINUTE - venue.now)
    assert of_type(result.prologue, MarketExpired)
    assert venue.state.markets[future].status is MarketStatus.EXPIRED
    assert not of_type(result.prologue, MarketSettled)  # not on the 41-minute-old price
    assert not venue.state.oracles[BTC_USD].is_usable()
    fresh = 56_000 * USDC
    venue.prices[BTC_USD] = fresh
    resumed = None
    settled = None
    while settled is None and venue.now < expiry + 40 * NS_PER_MINUTE:
        result = venue.block(dt_ns=5 * NS_PER_SECOND)  # publishes 56_000
        resumed = venue.now if resumed is None else resumed
        found = of_type(result.prologue, MarketSettled)
        settled = found[0] if found else None
    assert settled is not None and resumed is not None
    assert settled.settlement_price_quantums == fresh
    waited = venue.now - resumed
    needed = params.settlement_window_ns * params.settlement_min_coverage_ppm // 1_000_000
    assert needed == 27 * NS_PER_MINUTE
    assert needed <= waited <= needed + NS_PER_MINUTE
    assert venue.position("alice", future) == (0, 0)
    assert venue.position("bob", future) == (0, 0)


# ── producer2 ────────────────────────────────────────────────────────────────────────────────

ALICE = address_of("trader-alice")


def _reports(publishers: Sequence[Address], timestamp: int) -> list[Command]:
    """One report of every start price per publisher."""
    prices = tuple(
        PriceReport(
            oracle_id=oracle, price_quantums=price, confidence_quantums=0, timestamp_ns=timestamp
        )
        for oracle, price in sorted(START_PRICES.items())
    )
    commands: list[Command] = []
    for index, publisher in enumerate(publishers):
        commands.append(ReportPrices(
            signer=publisher, nonce=timestamp // NS_PER_MS + index,
            expiry_ns=timestamp + NS_PER_HOUR, reports=prices,
        ))  # fmt: skip
    return commands


def _live_chain() -> tuple[Chain, MemoryJournal, VenueSpec, int]:
    """A chain past genesis with fresh prices and alice funded; the next block's timestamp."""
    spec = default_venue(GENESIS_NS)
    journal = MemoryJournal()
    chain = Chain(spec.venue, journal, check_invariants=True)
    chain.produce(GENESIS_NS, genesis_commands(spec))
    timestamp = GENESIS_NS
    for block in range(2):
        timestamp += NS_PER_SECOND
        commands = _reports(spec.publishers, timestamp)
        if block == 0:
            commands.append(Deposit(
                signer=spec.relayer, nonce=timestamp // NS_PER_MS,
                expiry_ns=timestamp + NS_PER_HOUR, deposit_id=1, owner=ALICE,
                subaccount_number=0, asset_id=AssetId("USDC"), amount_quantums=100_000 * USDC,
            ))  # fmt: skip
        chain.produce(timestamp, commands)
    return chain, journal, spec, timestamp + NS_PER_SECOND


def _deposit(spec: VenueSpec, timestamp: int, amount: object) -> Deposit:
    return Deposit(
        signer=spec.relayer, nonce=timestamp // NS_PER_MS + 7, expiry_ns=timestamp + NS_PER_HOUR,
        deposit_id=2, owner=ALICE, subaccount_number=0, asset_id=AssetId("USDC"),
        amount_quantums=amount,
    )  # fmt: skip


def _bid(timestamp: int, side: object, price: object = 59_000 * USDC) -> PlaceOrder:
    return PlaceOrder(
        signer=ALICE, nonce=timestamp // NS_PER_MS, expiry_ns=timestamp + NS_PER_HOUR,
        subaccount_number=0, market_id=BTC_PERP, side=side, size_base_quantums=ONE_BTC,
        price_quantums=price,
    )  # fmt: skip


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda spec, t: _deposit(spec, t, 2.5), id="float-amount"),
        pytest.param(lambda spec, t: _bid(t, Side.BUY, price=59_000.0 * USDC), id="float-price"),
        pytest.param(lambda spec, t: _bid(t, 2), id="int-that-is-no-side"),
        pytest.param(lambda spec, t: _bid(t, True), id="bool-for-side"),
    ],
)
def test_producer_rejects_what_the_codec_would_not_give_back(
    make: Callable[[VenueSpec, int], Command],
) -> None:
    """The producer executes the journal bytes, as ``verify`` does: a command object holding a
    float, or a value no enum member encodes to, is MALFORMED_COMMAND there too and changes
    nothing (it used to reach the producer's state and make ``verify`` fail)."""
    if compiled(messages_module):  # the compiled class refuses the wrong type when it is built
        with pytest.raises(TypeError):
            make(default_venue(GENESIS_NS), GENESIS_NS)
        return
    chain, journal, spec, timestamp = _live_chain()
    control, _, _, _ = _live_chain()
    alice = SubaccountId(ALICE, 0)
    balances = dict(chain.engine.state.ledger.subaccounts[alice].balances)
    executed = chain.produce(timestamp, [make(spec, timestamp)])
    assert executed.events[-1] == CommandRejected(
        index=0, reason=RejectReason.MALFORMED_COMMAND, nonce_consumed=False
    )
    assert not of_type(executed.events, Transferred)
    assert chain.engine.state.ledger.subaccounts[alice].balances == balances
    # Exactly the state of the same block without the command.
    assert executed.header.state_root == control.produce(timestamp, []).header.state_root
    chain.flush()
    result = verify(journal)
    assert result.blocks == 4
    assert result.state_root == executed.header.state_root


def test_producer_runs_a_bare_enum_code_as_the_enum_member() -> None:
    """A bare ``1`` for ``side`` encodes to the same bytes as ``Side.BUY``: the producer runs it
    as the verifier will, as ``Side.BUY``, with the same events and state."""
    if compiled(messages_module):  # the compiled class refuses a bare int when it is built
        with pytest.raises(TypeError):
            _bid(GENESIS_NS, 1)
        return
    chain, journal, _, timestamp = _live_chain()
    control, _, _, _ = _live_chain()
    executed = chain.produce(timestamp, [_bid(timestamp, 1)])
    expected = control.produce(timestamp, [_bid(timestamp, Side.BUY)])
    assert of_type(executed.events, OrderRested)
    assert executed.events == expected.events
    assert executed.header == expected.header
    [order] = chain.engine.state.markets[MarketId(BTC_PERP)].book.orders()
    assert order.side is Side.BUY
    chain.flush()
    assert verify(journal).state_root == executed.header.state_root


# ── cooling ──────────────────────────────────────────────────────────────────────────────────


def test_cooling_off_cancels_makers_that_would_add_risk_but_fills_reducing_ones() -> None:
    venue = Venue()
    accepted(
        venue,
        venue.order("alice", BTC_PERP, SELL, ONE_BTC, PRICE),
        venue.order("bob", BTC_PERP, BUY, ONE_BTC, PRICE),
    )  # alice short 1, bob long 1
    crash = 52_800 * USDC
    # Both bids rest before the crash, carol's first (ahead in time priority), neither
    # reduce-only: carol's would open a long, alice's would reduce her short.
    [events] = accepted(venue, venue.order("carol", BTC_PERP, BUY, ONE_BTC, crash))
    carol_bid = rested_id(events)
    [events] = accepted(venue, venue.order("alice", BTC_PERP, BUY, ONE_BTC // 2, crash))
    alice_bid = rested_id(events)
    result = venue.settle_prices(BTC_USD=crash)
    assert of_type(result.prologue, CircuitBreakerTripped)
    assert venue.state.oracles[BTC_USD].cooling_off_until_ns > venue.now
    # bob reduces his long into both bids: carol's is cancelled, alice's fills.
    sell = venue.order(
        "bob", BTC_PERP, SELL, ONE_BTC, crash, reduce_only=True, time_in_force=TimeInForce.IOC
    )
    [events] = accepted(venue, sell)
    [fill] = of_type(events, OrderFilled)
    assert (fill.maker_order_id, fill.size_base_quantums) == (alice_bid, ONE_BTC // 2)
    cancels = of_type(events, OrderCancelled)
    assert cancels == [
        OrderCancelled(
            order_id=carol_bid, cause=CancelCause.COOLING_OFF, remaining_base_quantums=ONE_BTC
        ),
        OrderCancelled(
            order_id=fill.taker_order_id, cause=CancelCause.IOC_REMAINDER,
            remaining_base_quantums=ONE_BTC // 2,
        ),
    ]  # fmt: skip
    assert venue.position("carol", BTC_PERP) == (0, 0)
    assert venue.position("alice", BTC_PERP)[0] == -ONE_BTC // 2
    assert venue.position("bob", BTC_PERP)[0] == ONE_BTC // 2
    assert len(venue.state.markets[MarketId(BTC_PERP)].book) == 0
    assert venue.state.ledger.subaccounts[venue.sub("carol")].order_ids == {}


# ── poslimit ─────────────────────────────────────────────────────────────────────────────────


def test_fills_and_orders_past_the_position_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "positions_per_subaccount_max", 1)
    venue = Venue()
    # alice's ETH bid rests while she holds no position ...
    [events] = accepted(venue, venue.order("alice", ETH_PERP, BUY, ETH_GWEI, 2_990 * USDC))
    alice_bid = rested_id(events)
    # ... then she opens her one position, in BTC.
    accepted(
        venue,
        venue.order("bob", BTC_PERP, SELL, ONE_BTC, PRICE),
        venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE),
    )
    positions = venue.state.ledger.subaccounts[venue.sub("alice")].positions
    assert sorted(positions) == [BTC_PERP]
    # A new ETH order may not open a second position ...
    rejected(
        venue,
        venue.order("alice", ETH_PERP, BUY, ETH_GWEI, 2_980 * USDC),
        RejectReason.TOO_MANY_POSITIONS,
    )
    # ... nor may an amend that would cross carol's ask and fill.
    accepted(venue, venue.order("carol", ETH_PERP, SELL, ETH_GWEI, 3_000 * USDC))
    rejected(
        venue, venue.amend("alice", alice_bid, 3_000 * USDC, ETH_GWEI),
        RejectReason.TOO_MANY_POSITIONS,
    )  # fmt: skip
    book = venue.state.markets[MarketId(ETH_PERP)].book
    kept = book.get(alice_bid)
    assert kept is not None and kept.price_quantums == 2_990 * USDC
    # The resting bid, hit, is cancelled instead of filled.
    sell = venue.order(
        "dave", ETH_PERP, SELL, ETH_GWEI, 2_990 * USDC, time_in_force=TimeInForce.IOC
    )
    [events] = accepted(venue, sell)
    assert not of_type(events, OrderFilled)
    [cancel, remainder] = of_type(events, OrderCancelled)
    assert cancel == OrderCancelled(
        order_id=alice_bid, cause=CancelCause.POSITION_LIMIT, remaining_base_quantums=ETH_GWEI
    )
    assert remainder.cause is CancelCause.IOC_REMAINDER
    assert book.get(alice_bid) is None
    assert sorted(positions) == [BTC_PERP]
    assert venue.position("dave", ETH_PERP) == (0, 0)
