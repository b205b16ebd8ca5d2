"""The engine, one rule at a time: each bad input gets its stable ``RejectReason`` and changes
nothing but the signer's nonce; then hand-computed trades, funding, expiry, triggers, GTT expiry,
amends and self-trade prevention.

Every block runs through ``helpers.Venue``, which also checks the invariants after each command and
that a rejected command leaves the state as it found it (its snapshots are asserted here as well).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from clearhouse.core import limits
from clearhouse.core.codec import encode_command
from clearhouse.core.engine.trading import trades
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import QUOTE_ASSET, MarketId, OracleId, OrderId, Side, SubaccountId
from clearhouse.core.ledger import FEES, INSURANCE, clearing_account, funding_account
from clearhouse.core.margin import (
    new_risk_multiplier_ppm,
    pending_funding,
    requirements,
    vol_multiplier_target_ppm,
)
from clearhouse.core.matching import MatchPlan
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
    PlaceOrder,
    TimeInForce,
    Transferred,
)
from clearhouse.core.oracle import annual_volatility_ppm
from clearhouse.core.state import MarketStatus
from clearhouse.core.units import NS_PER_DAY, NS_PER_HOUR, NS_PER_MINUTE, NS_PER_MS, NS_PER_SECOND
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
    rejected,
    replace_engine_function,
)


def open_long_short(venue: Venue, *, size: int = ONE_BTC, price: int = PRICE) -> None:
    """alice rests an ask, bob lifts it: bob long, alice short."""
    accepted(venue, venue.order("alice", BTC_PERP, SELL, size, price))
    accepted(venue, venue.order("bob", BTC_PERP, BUY, size, price))
    assert venue.position("bob", BTC_PERP)[0] == size


# ── Bad orders ───────────────────────────────────────────────────────────────────────────────


def test_unknown_market(venue: Venue) -> None:
    rejected(
        venue, venue.order("alice", "DOGE-PERP", BUY, ONE_BTC, PRICE), RejectReason.UNKNOWN_MARKET
    )


def test_size_off_step(venue: Venue) -> None:
    # BTC-PERP steps are 10_000 sats: one sat more is off the grid.
    order = venue.order("alice", BTC_PERP, BUY, 100_001, PRICE)
    rejected(venue, order, RejectReason.SIZE_OFF_STEP)


def test_size_below_minimum(venue: Venue) -> None:
    # On the grid (9 steps) but under the 100_000-sat minimum.
    rejected(
        venue, venue.order("alice", BTC_PERP, BUY, 90_000, PRICE), RejectReason.SIZE_BELOW_MINIMUM
    )


def test_price_off_tick(venue: Venue) -> None:
    # Ticks are 0.1 USDC = 100_000 quantums.
    order = venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE + 50_000)
    rejected(venue, order, RejectReason.PRICE_OFF_TICK)


@pytest.mark.parametrize(("side", "price"), [(BUY, 66_100 * USDC), (SELL, 53_900 * USDC)])
def test_price_outside_band(venue: Venue, side: Side, price: int) -> None:
    """More than 10% through the index is rejected; far on the passive side is fine."""
    rejected(
        venue, venue.order("alice", BTC_PERP, side, ONE_BTC, price), RejectReason.PRICE_OUTSIDE_BAND
    )
    passive = 2 * PRICE - price  # the mirror price is just as far away, but passive
    [events] = accepted(venue, venue.order("alice", BTC_PERP, side, ONE_BTC // 10, passive))
    assert of_type(events, OrderRested)


def test_stale_oracle_blocks_trading_and_withdrawals_but_not_deposits(venue: Venue) -> None:
    open_long_short(venue)
    venue.block(dt_ns=11 * NS_PER_SECOND, reports=False)  # last reports are now 11 s old
    assert not venue.state.oracles[venue.state.markets[BTC_PERP].params.oracle_id].is_usable()
    rejected(venue, venue.order("carol", BTC_PERP, BUY, ONE_BTC, PRICE), RejectReason.ORACLE_STALE)
    rejected(venue, venue.withdraw("bob", 10 * USDC), RejectReason.ORACLE_STALE)
    events = venue.run(venue.deposit("bob", 10 * USDC), reports=False)
    assert of_type(events, Transferred), events
    # Fresh reports are the index from the next block on: trading resumes.
    venue.block()
    [events] = accepted(venue, venue.order("carol", BTC_PERP, BUY, ONE_BTC, PRICE - 10 * USDC))
    assert of_type(events, OrderRested)


def test_expired_command_consumes_its_nonce(venue: Venue) -> None:
    order = venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE, expiry_ns=venue.now)
    rejected(venue, order, RejectReason.COMMAND_EXPIRED, consumed=True)
    # ... so it can never be applied later, even with a fresh expiry window.
    rejected(venue, order, RejectReason.NONCE_ALREADY_USED, consumed=False)


def test_reused_nonce_is_rejected_and_not_consumed_twice(venue: Venue) -> None:
    order = venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE - 100 * USDC)
    [events] = accepted(venue, order)
    assert of_type(events, OrderRested)
    used = list(venue.state.nonces[order.signer])
    rejected(venue, order, RejectReason.NONCE_ALREADY_USED, consumed=False)
    assert venue.state.nonces[order.signer] == used
    assert used.count(order.nonce) == 1
    assert len(venue.state.markets[BTC_PERP].book) == 1  # one order, not two


def test_nonce_too_old_and_too_new(venue: Venue) -> None:
    block_ms = (venue.now + NS_PER_SECOND) // NS_PER_MS  # the next block's time
    old = dataclasses.replace(
        venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE),
        nonce=block_ms - 2 * NS_PER_DAY // NS_PER_MS,
    )
    rejected(venue, old, RejectReason.NONCE_TOO_OLD, consumed=False)
    block_ms += 1_000
    new = dataclasses.replace(
        venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE),
        nonce=block_ms + NS_PER_DAY // NS_PER_MS,
    )
    rejected(venue, new, RejectReason.NONCE_TOO_NEW, consumed=False)
    # Just inside both ends is fine.
    block_ms += 1_000
    edge = dataclasses.replace(
        venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE - 100 * USDC),
        nonce=block_ms + NS_PER_DAY // NS_PER_MS - 1,
    )
    accepted(venue, edge)


def test_nonce_below_the_kept_window(venue: Venue) -> None:
    alice = venue.signers["alice"]
    start = alice.last_nonce
    cancels = [venue.cancel_all("alice") for _ in range(limits.nonces_kept_per_signer)]
    accepted(venue, *cancels)
    kept = venue.state.nonces[alice.address]
    assert len(kept) == limits.nonces_kept_per_signer and kept[0] > start
    below = dataclasses.replace(venue.cancel_all("alice"), nonce=kept[0] - 1)
    rejected(venue, below, RejectReason.NONCE_BELOW_WINDOW, consumed=False)


def test_insufficient_margin() -> None:
    venue = Venue(quote_per_trader=10_000 * USDC)
    # 10_000 USDC carries a 2% IM on up to ~500_000 USDC: 10 BTC (600_000 USDC) is too much.
    rejected(
        venue,
        venue.order("alice", BTC_PERP, BUY, 10 * ONE_BTC, PRICE),
        RejectReason.INSUFFICIENT_MARGIN,
    )
    [events] = accepted(venue, venue.order("alice", BTC_PERP, BUY, 5 * ONE_BTC, PRICE - USDC))
    assert of_type(events, OrderRested)
    # Resting orders count at their worst side: another 5 BTC bid does not fit next to it.
    rejected(
        venue,
        venue.order("alice", BTC_PERP, BUY, 5 * ONE_BTC, PRICE - USDC),
        RejectReason.INSUFFICIENT_MARGIN,
    )


def test_first_resting_order_in_a_market_is_margin_checked() -> None:
    """Regression: a subaccount's first resting order in a market was not counted (its open-order
    count was still 0 in the margin check), so any size could rest behind a tiny fill."""
    venue = Venue(quote_per_trader=10_000 * USDC)
    accepted(venue, venue.order("bob", BTC_PERP, BUY, 100_000, PRICE))
    order = venue.order("alice", BTC_PERP, SELL, 100 * ONE_BTC, PRICE)  # fills 0.001, rests 99.999
    rejected(venue, order, RejectReason.INSUFFICIENT_MARGIN)


def test_unrealized_profit_cannot_be_withdrawn() -> None:
    venue = Venue(quote_per_trader=100_000 * USDC)
    open_long_short(venue)  # bob long 1 BTC at 60_000
    venue.settle_prices(BTC_USD=65_000 * USDC)  # +5_000 USDC on paper for bob
    risk = venue.risk("bob")
    settled = venue.balance("bob")
    assert risk.equity - risk.initial > settled + 1_000 * USDC  # rich on paper
    assert risk.withdrawable_quote == settled  # ... but only settled collateral may leave
    rejected(venue, venue.withdraw("bob", settled + 1_000 * USDC), RejectReason.INSUFFICIENT_FUNDS)
    rejected(venue, venue.transfer("bob", settled + 1), RejectReason.INSUFFICIENT_FUNDS)
    # The loser's collateral is what backs it: alice may not take her settled USDC out either.
    alice = venue.risk("alice")
    assert alice.equity - alice.initial < venue.balance("alice")
    rejected(
        venue, venue.withdraw("alice", venue.balance("alice")),
        RejectReason.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL,
    )  # fmt: skip
    # Up to the settled balance (and free collateral) is fine.
    events = venue.run(venue.withdraw("bob", settled))
    assert of_type(events, Transferred)
    assert venue.balance("bob") == 0


def test_volatile_collateral_backing_a_position_cannot_leave() -> None:
    venue = Venue(quote_per_trader=0, btc_per_trader=ONE_BTC)  # 1 BTC at 90%: 54_000 USDC
    open_long_short(venue, size=10 * ONE_BTC)  # IM ~ 2% + premium of 600_000 USDC
    rejected(
        venue,
        venue.withdraw("bob", ONE_BTC, "BTC"),
        RejectReason.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL,
    )
    events = venue.run(venue.withdraw("bob", ONE_BTC // 100, "BTC"))
    assert of_type(events, Transferred)


# ── Bad bytes, signers, deposits ─────────────────────────────────────────────────────────────


def _tampered(venue: Venue, mutate: str) -> bytes:
    document = json.loads(encode_command(venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE)))
    body = document["body"]
    if mutate == "extra field":
        body["leverage"] = 100
    elif mutate == "missing field":
        del body["side"]
    elif mutate == "bool for int":
        body["size_base_quantums"] = True
    elif mutate == "bad enum":
        body["side"] = 0
    elif mutate == "unknown type":
        document["type"] = "Liquidate"
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "mutate", ["extra field", "missing field", "bool for int", "bad enum", "unknown type"]
)
def test_malformed_command_bytes(venue: Venue, mutate: str) -> None:
    data = _tampered(venue, mutate)
    rejected(venue, data, RejectReason.MALFORMED_COMMAND, consumed=False)
    assert json.loads(data)["body"]["nonce"] not in venue.state.nonces.get(
        venue.address("alice"), []
    )


@pytest.mark.parametrize("data", [b"", b"not json", b"\xff\xfe", b"[]", b'{"type": "Deposit"}'])
def test_undecodable_bytes(venue: Venue, data: bytes) -> None:
    rejected(venue, data, RejectReason.MALFORMED_COMMAND, consumed=False)


def test_signer_not_an_address_is_malformed(venue: Venue) -> None:
    order = dataclasses.replace(venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE), signer="0xABC")
    rejected(venue, order, RejectReason.MALFORMED_COMMAND, consumed=False)


def test_deposit_not_from_the_relayer(venue: Venue) -> None:
    deposit = venue.deposit("alice", 1_000 * USDC)
    forged = dataclasses.replace(
        deposit, signer=venue.address("alice"), nonce=venue.signers["alice"].nonce(venue.now)
    )
    rejected(venue, forged, RejectReason.UNAUTHORIZED_SIGNER)


def test_duplicate_deposit_id(venue: Venue) -> None:
    first = venue.deposit("alice", 1_000 * USDC)
    assert of_type(venue.run(first), Transferred)
    again = dataclasses.replace(first, nonce=venue.relayer.nonce(venue.now))  # same deposit id
    rejected(venue, again, RejectReason.DUPLICATE_DEPOSIT)
    older = dataclasses.replace(venue.deposit("alice", 5 * USDC), deposit_id=first.deposit_id - 1)
    rejected(venue, older, RejectReason.DUPLICATE_DEPOSIT)


# ── Bad order combinations ───────────────────────────────────────────────────────────────────


def test_post_only_that_would_cross(venue: Venue) -> None:
    accepted(venue, venue.order("alice", BTC_PERP, SELL, ONE_BTC, PRICE))
    post = venue.order("bob", BTC_PERP, BUY, ONE_BTC, PRICE, time_in_force=TimeInForce.POST_ONLY)
    rejected(venue, post, RejectReason.POST_ONLY_WOULD_CROSS)
    below = venue.order(
        "bob", BTC_PERP, BUY, ONE_BTC, PRICE - 100_000, time_in_force=TimeInForce.POST_ONLY
    )
    [events] = accepted(venue, below)
    assert of_type(events, OrderRested)


def test_fok_that_cannot_fill(venue: Venue) -> None:
    accepted(venue, venue.order("alice", BTC_PERP, SELL, ONE_BTC // 2, PRICE))
    fok = venue.order("bob", BTC_PERP, BUY, ONE_BTC, PRICE + USDC, time_in_force=TimeInForce.FOK)
    rejected(venue, fok, RejectReason.FOK_NOT_FILLABLE)
    fits = venue.order(
        "bob", BTC_PERP, BUY, ONE_BTC // 2, PRICE + USDC, time_in_force=TimeInForce.FOK
    )
    [events] = accepted(venue, fits)
    assert sum(f.size_base_quantums for f in of_type(events, OrderFilled)) == ONE_BTC // 2


def test_reduce_only_that_would_increase(venue: Venue) -> None:
    flat = venue.order("carol", BTC_PERP, SELL, ONE_BTC, PRICE, reduce_only=True)
    rejected(venue, flat, RejectReason.REDUCE_ONLY_WOULD_INCREASE)
    open_long_short(venue)  # bob long
    more = venue.order("bob", BTC_PERP, BUY, ONE_BTC, PRICE - USDC, reduce_only=True)
    rejected(venue, more, RejectReason.REDUCE_ONLY_WOULD_INCREASE)
    # A reduce-only sell larger than the position rests only for the position's size.
    less = venue.order("bob", BTC_PERP, SELL, 3 * ONE_BTC, PRICE + USDC, reduce_only=True)
    [events] = accepted(venue, less)
    assert of_type(events, OrderRested)[0].remaining_base_quantums == ONE_BTC


def test_too_many_open_orders(venue: Venue) -> None:
    venue.check = False  # 256 placements: only the last one matters here
    bids = [
        venue.order("alice", BTC_PERP, BUY, 100_000, PRICE - (i + 1) * 100_000)
        for i in range(limits.open_orders_per_subaccount_max)
    ]
    accepted(venue, *bids)
    venue.check = True
    one_more = venue.order("alice", BTC_PERP, BUY, 100_000, PRICE - 1_000 * USDC)
    rejected(venue, one_more, RejectReason.TOO_MANY_OPEN_ORDERS)


def test_reduce_only_makers_never_flip_a_position(venue: Venue) -> None:
    """Regression: two resting reduce-only bids each fit a 1 BTC short, together they do not. A
    taker meeting both used to crash the engine (the second had been cancelled mid-match)."""
    open_long_short(venue)  # alice short 1 BTC
    accepted(
        venue,
        venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE, reduce_only=True),
        venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE - USDC, reduce_only=True),
    )
    [events] = accepted(venue, venue.order("carol", BTC_PERP, SELL, 2 * ONE_BTC, PRICE - 2 * USDC))
    fills = of_type(events, OrderFilled)
    assert [f.size_base_quantums for f in fills] == [ONE_BTC]
    assert [e.cause for e in of_type(events, OrderCancelled)] == [CancelCause.REDUCE_ONLY]
    assert venue.position("alice", BTC_PERP) == (0, 0)
    assert venue.position("carol", BTC_PERP)[0] == -ONE_BTC


def test_a_wall_of_reduce_only_asks_neither_refuses_takers_nor_stalls_the_block(
    venue: Venue,
) -> None:
    """bob is long one lot and rests many reduce-only asks of one lot at the best price (each
    alone fits his position, together they do not); dave's plain ask rests behind them. Each
    re-plan of a match used to exclude one over-reducing ask: carol's two-lot buy was refused
    NO_LIQUIDITY once re-plans ran out, with dave's ask there (a wall that refuses every small
    taker, and each refusal cost the block a hundred book walks). The match now skips them in
    one walk: carol gets bob's lot and dave's, bob's other asks are cancelled as reduce-only."""
    lot = 100_000  # the smallest BTC-PERP order
    open_long_short(venue, size=lot)  # bob long one lot
    ask = PRICE + USDC
    wall = limits.maker_rejections_per_order_max + 6
    venue.check = False  # the wall's placements: only the match matters here
    accepted(venue, *(venue.order("bob", BTC_PERP, SELL, lot, ask, reduce_only=True)
                      for _ in range(wall)))  # fmt: skip
    [events] = accepted(venue, venue.order("dave", BTC_PERP, SELL, lot, ask))
    [behind] = of_type(events, OrderRested)
    venue.check = True
    buy = venue.order("carol", BTC_PERP, BUY, 2 * lot, ask, time_in_force=TimeInForce.IOC)
    [events] = accepted(venue, buy)
    fills = of_type(events, OrderFilled)
    assert [f.size_base_quantums for f in fills] == [lot, lot]
    assert fills[1].maker_order_id == behind.order_id
    cancelled = of_type(events, OrderCancelled)
    assert [c.cause for c in cancelled] == [CancelCause.REDUCE_ONLY] * (wall - 1)
    assert venue.position("bob", BTC_PERP) == (0, 0)
    assert venue.position("carol", BTC_PERP)[0] == 2 * lot


def test_more_failing_makers_than_a_match_may_reject_are_cleared_by_takers(
    venue: Venue,
) -> None:
    """70 of carol's subaccounts, each funded for one lot, rest a one-lot ask; the price then
    rises 2%: filled now, each ask would leave its subaccount under IM. A small buy used to be
    refused NO_LIQUIDITY after 64 re-plans, leaving every ask resting (so every small taker
    was refused for as long as they stayed). Now an IOC that meets them takes nothing and
    cancels the 64 it found; the next one cancels the other 6 and fills dave behind them. A
    resting order still may not cross them: it is refused, as before."""
    lot = 100_000
    wall = limits.maker_rejections_per_order_max + 6
    ask = PRICE + USDC
    venue.check = False  # the wall's deposits and placements: only the matches matter here
    accepted(venue, *(venue.deposit("carol", 2 * USDC, number=k) for k in range(1, wall + 1)))
    walled = [_rested(venue, "carol", lot, ask, number=k) for k in range(1, wall + 1)]
    behind = _rested(venue, "dave", lot, PRICE * 1015 // 1000)
    venue.check = True
    venue.settle_prices(BTC_USD=PRICE * 102 // 100)
    limit = PRICE * 103 // 100

    def buy(time_in_force: TimeInForce) -> PlaceOrder:
        return venue.order("alice", BTC_PERP, BUY, lot, limit, time_in_force=time_in_force)

    rejected(venue, buy(TimeInForce.GTC), RejectReason.NO_LIQUIDITY)

    def makers_cancelled(events: list[Event]) -> list[OrderId]:
        found = of_type(events, OrderCancelled)
        return [c.order_id for c in found if c.cause is CancelCause.MAKER_MARGIN]

    [events] = accepted(venue, buy(TimeInForce.IOC))
    assert not of_type(events, OrderFilled)
    assert makers_cancelled(events) == [o.order_id for o in walled[:64]]
    [events] = accepted(venue, buy(TimeInForce.IOC))
    assert makers_cancelled(events) == [o.order_id for o in walled[64:]]
    [fill] = of_type(events, OrderFilled)
    assert (fill.maker_order_id, fill.size_base_quantums) == (behind.order_id, lot)
    assert venue.position("alice", BTC_PERP)[0] == lot


def _rested(venue: Venue, who: str, size: int, price: int, **fields: Any) -> OrderRested:
    """``who``'s BTC-PERP ask, placed and resting."""
    [events] = accepted(venue, venue.order(who, BTC_PERP, SELL, size, price, **fields))
    [rested] = of_type(events, OrderRested)
    return rested


def _failing_once_filled(
    monkeypatch: pytest.MonkeyPatch, venue: Venue, who: str
) -> None:  # fmt: skip
    """``who`` fails its margin as a maker whenever a plan gives it a fill."""
    original = trades.failing_makers
    maker = venue.sub(who)

    def failing(
        ctx: Any, market: Any, plan: MatchPlan, maker_side: Side
    ) -> dict[SubaccountId, CancelCause | None]:
        found = original(ctx, market, plan, maker_side)
        if any(f.maker_owner == maker for f in plan.fills):
            found[maker] = CancelCause.MAKER_MARGIN
        return found

    replace_engine_function(monkeypatch, original, failing)


def test_a_maker_that_fails_keeps_none_of_its_past_flat_reduce_only_orders(
    venue: Venue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bob (long one lot) rests a plain two-lot ask, then a reduce-only one: the walk skips the
    reduce-only ask (past flat once the plain one fills), then bob fails his margin. Both go,
    the reduce-only one first, as found (had it stayed, the journal's events would differ from
    those of the engine that cancelled it)."""
    lot = 100_000
    open_long_short(venue, size=lot)  # bob long one lot
    ask = PRICE + USDC
    plain = _rested(venue, "bob", 2 * lot, ask)
    reduce_only = _rested(venue, "bob", lot, ask, reduce_only=True)
    accepted(venue, venue.order("dave", BTC_PERP, SELL, 5 * lot, ask))
    _failing_once_filled(monkeypatch, venue, "bob")
    buy = venue.order("carol", BTC_PERP, BUY, 3 * lot, ask, time_in_force=TimeInForce.IOC)
    [events] = accepted(venue, buy)
    assert [f.size_base_quantums for f in of_type(events, OrderFilled)] == [3 * lot]
    assert [(c.order_id, c.cause) for c in of_type(events, OrderCancelled)] == [
        (reduce_only.order_id, CancelCause.REDUCE_ONLY),
        (plain.order_id, CancelCause.MAKER_MARGIN),
    ]


def test_cancels_come_in_the_order_the_walks_found_them(
    venue: Venue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """alice's ask would fill carol's whole buy and alice fails; the next walk reaches bob's
    plain ask and, behind it, his reduce-only ask past flat: alice's cancel comes first."""
    lot = 100_000
    open_long_short(venue, size=lot)  # alice short, bob long one lot
    ask = PRICE + USDC
    failing = _rested(venue, "alice", 2 * lot, ask)
    accepted(venue, venue.order("bob", BTC_PERP, SELL, lot, ask))
    reduce_only = _rested(venue, "bob", lot, ask, reduce_only=True)
    accepted(venue, venue.order("dave", BTC_PERP, SELL, 5 * lot, ask))
    _failing_once_filled(monkeypatch, venue, "alice")
    buy = venue.order("carol", BTC_PERP, BUY, 2 * lot, ask, time_in_force=TimeInForce.IOC)
    [events] = accepted(venue, buy)
    assert [(c.order_id, c.cause) for c in of_type(events, OrderCancelled)] == [
        (failing.order_id, CancelCause.MAKER_MARGIN),
        (reduce_only.order_id, CancelCause.REDUCE_ONLY),
    ]


def test_a_large_taker_sweeps_past_a_wall_of_reduce_only_orders(venue: Venue) -> None:
    """bob and dave, long one lot each, rest 200 one-lot reduce-only asks each (398 of them
    past flat), alice's plain ask behind: a large buy fills bob's lot, dave's and alice's, and
    the wall is cancelled. A walk that stopped at a bound of skipped orders never reached
    alice (a liquidation there would have gone to the backstop with liquidity behind)."""
    lot = 100_000
    accepted(venue, venue.order("alice", BTC_PERP, SELL, 2 * lot, PRICE))
    accepted(venue, venue.order("bob", BTC_PERP, BUY, lot, PRICE))
    accepted(venue, venue.order("dave", BTC_PERP, BUY, lot, PRICE))
    ask = PRICE + USDC
    venue.check = False  # the wall's placements: only the match matters here
    for who in ("bob", "dave"):
        accepted(venue, *(venue.order(who, BTC_PERP, SELL, lot, ask, reduce_only=True)
                          for _ in range(200)))  # fmt: skip
    accepted(venue, venue.order("alice", BTC_PERP, SELL, 5 * lot, ask))
    venue.check = True
    buy = venue.order("carol", BTC_PERP, BUY, 500 * lot, ask, time_in_force=TimeInForce.IOC)
    [events] = accepted(venue, buy)
    assert sum(f.size_base_quantums for f in of_type(events, OrderFilled)) == 7 * lot
    cancelled = [c for c in of_type(events, OrderCancelled) if c.cause is CancelCause.REDUCE_ONLY]
    assert len(cancelled) == 398


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
