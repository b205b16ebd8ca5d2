"""The engine, one rule at a time: each bad input gets its stable ``RejectReason`` and changes
nothing but the signer's nonce (what accepted commands do: ``test_engine_accepted.py``).

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
from clearhouse.core.ids import OrderId, Side, SubaccountId
from clearhouse.core.matching import MatchPlan
from clearhouse.core.messages import (
    CancelCause,
    Event,
    OrderCancelled,
    OrderFilled,
    OrderRested,
    PlaceOrder,
    TimeInForce,
    Transferred,
)
from clearhouse.core.units import NS_PER_DAY, NS_PER_MS, NS_PER_SECOND
from helpers import (
    BTC_PERP,
    BUY,
    ONE_BTC,
    PRICE,
    SELL,
    USDC,
    Venue,
    accepted,
    of_type,
    open_long_short,
    rejected,
    replace_engine_function,
)

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
