"""Regression tests for the defects a second review of the options engine reproduced at 8342373
(named r1 ... r8 after the reviewer's scripts); each failed before its fix.

r1: option profiles were cached by the surface's timestamp, which two publishers may share: a
    query between blocks left a stale profile in the live engine that a replay never had;
r2: one publisher's whole surface was used whenever its 30-day ATM volatility was the median;
r3: publishers' own surfaces were not in the state root;
r4: portfolio bids that strip a hedge (raising MM) were accepted, and inflated later rewards;
r5: insolvency was judged on haircut equity, so the fund paid for an account whose volatile
    collateral at the full index covered its loss;
r8: re-listing a market id in the block that archives it deleted the new market's leaf.
(r6, Black-76, is in tests/unit/pricing/test_black76.py; r7, the demo, in tests/sim.)
"""

from __future__ import annotations

import copy
import dataclasses

from clearhouse.adapters.memory_journal import MemoryJournal
from clearhouse.app.chain import Chain
from clearhouse.core import surface
from clearhouse.core.codec import encode_command
from clearhouse.core.engine import ARCHIVE_AFTER_NS, Engine
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import QUOTE_ASSET, MarketId, Side
from clearhouse.core.ledger import INSURANCE
from clearhouse.core.merkle import leaf_hash
from clearhouse.core.messages import (
    Command,
    Event,
    InsuranceDrawn,
    MarketArchived,
    MarketListed,
    MarketSettled,
)
from clearhouse.core.params import LiquidationParams
from clearhouse.core.payoffs import call
from clearhouse.core.state import MarketStatus, encode_leaf, market_key, params_key
from clearhouse.core.surface import SviSlice
from clearhouse.core.units import NS_PER_MINUTE, NS_PER_SECOND
from clearhouse.sim.venue import USDC, report_surface, synthetic_surface
from helpers import BTC_PERP, ONE_BTC, PRICE, Venue, accepted, of_type
from ladder import fund_insurance, liquidate, quote
from options import (
    BTC_USD,
    DAY,
    HOUR,
    PPM,
    bid_portfolio,
    list_option,
    margin_mode,
    operator_listing,
    publish_smile,
    publish_surface,
    refused,
    rewards,
    short_lived_option,
)

BUY, SELL = Side.BUY, Side.SELL
STRIP = 9_999  # a bid under 1%: the 1-BTC call position's slice floors to nothing


# ── Commands and scenarios ─────────────────────────────────────────────────────────────────


def surface_reports(venue: Venue, vols: dict[int, float]) -> list[Command]:
    """Publisher i reports the synthetic smile at ATM volatility vols[i], as of the next block."""
    timestamp = venue.now + venue.block_ns
    return [
        report_surface(
            venue.publishers[i].address, venue.publishers[i].nonce(timestamp), timestamp,
            synthetic_surface(timestamp, atm_vol=vol),
        )
        for i, vol in vols.items()
    ]  # fmt: skip


def fund_paid(events: list[Event]) -> int:
    return sum(e.amount_quote_quantums for e in of_type(events, InsuranceDrawn))


def carol_under_water(
    collateral: int, *, calls: int, perp: float = 0.0, btc_collateral: int = 0
) -> tuple[Venue, MarketId]:
    """carol/1 (portfolio mode, ``collateral`` USDC and ``btc_collateral`` sats) writes bob
    ``calls`` three-day 61,000 calls, long ``perp`` BTC-PERP against them; the fund holds
    500,000 USDC; the index then climbs to 76,000 in moves under the circuit breaker."""
    venue = Venue(btc_per_trader=btc_collateral)
    option = list_option(
        venue, "CALL-61000", call(61_000 * USDC), 3 * DAY,
        liquidation=LiquidationParams(keeper_grace_ns=100 * NS_PER_SECOND),
    )  # fmt: skip
    publish_smile(venue)
    commands: list[Command] = [
        venue.transfer("carol", collateral, source=0, target=1),
        margin_mode(venue, "carol", 1),
    ]
    if btc_collateral:
        commands.append(venue.transfer("carol", btc_collateral, "BTC", source=0, target=1))
    accepted(venue, *commands)
    if perp:
        quote(venue, "alice", PRICE, size=int(perp * ONE_BTC))
        order = venue.order("carol", BTC_PERP, BUY, int(perp * ONE_BTC), PRICE + 10 * USDC,
                            number=1)  # fmt: skip
        accepted(venue, order)
        accepted(venue, venue.cancel_all("alice"))
    price = venue.mark(option) // USDC * USDC
    accepted(venue, venue.order("bob", option, BUY, calls * ONE_BTC, price))
    accepted(venue, venue.order("carol", option, SELL, calls * ONE_BTC, price, number=1))
    fund_insurance(venue, 500_000 * USDC)
    for index in (64_000, 68_000, 72_000, 76_000):
        venue.settle_prices(BTC_USD=index * USDC)
        publish_smile(venue)
    return venue, option


def replayed(venue: Venue) -> Engine:
    """A fresh engine that ran the venue's journal and was asked nothing in between."""
    engine = Engine(venue.spec.venue)
    for block in venue.recorded:
        engine.begin_block(block.height, block.timestamp_ns)
        for index, command in enumerate(block.commands):
            assert isinstance(command, Command)
            engine.apply_bytes(index, encode_command(command))
        engine.end_block()
    return engine


# ── r1: profile caches keyed by what a surface change always changes ───────────────────────


def test_r1_a_median_switch_to_a_surface_of_the_same_timestamp_revalues_cached_profiles() -> None:
    """Profiles were cached by the surface's timestamp: when the median moved from one
    publisher's surface to another's of the same timestamp, a profile cached by a query between
    blocks (a keeper, the API) kept the old surface. The live engine then margined carol on
    other numbers than a replay of its journal, and Chain.recover failed verification."""
    venue = Venue()
    option = list_option(venue, "CALL-61000", call(61_000 * USDC), 3 * DAY)
    # Four surfaces of one timestamp: the median is publisher 1's (60%).
    accepted(venue, *surface_reports(venue, {0: 0.50, 1: 0.60, 2: 0.70, 3: 0.80}))
    venue.block()
    oracle = venue.state.oracles[BTC_USD]
    shared = oracle.surface_timestamp_ns
    assert oracle.surface == oracle.surfaces[venue.publishers[1].address][1]
    accepted(venue, venue.transfer("carol", 200_000 * USDC, source=0, target=1),
             margin_mode(venue, "carol", 1))  # fmt: skip
    venue.engine.market_profile(option)  # a query between blocks caches the profile
    queried_after = len(venue.recorded)
    # Publisher 0 moves to 75%: the median is now publisher 2's (70%), of the same timestamp.
    accepted(venue, *surface_reports(venue, {0: 0.75}))
    assert oracle.surface == oracle.surfaces[venue.publishers[2].address][1]
    assert oracle.surface_timestamp_ns == shared
    venue.block()
    price = venue.mark(option) // USDC * USDC
    accepted(venue, venue.order("bob", option, BUY, 10 * ONE_BTC, price))
    accepted(venue, venue.order("carol", option, SELL, 10 * ONE_BTC, price, number=1))

    fresh = replayed(venue)
    assert venue.engine.market_profile(option).losses == fresh.market_profile(option).losses
    carol = venue.sub("carol", 1)
    assert venue.risk("carol", 1) == fresh.risk_of(fresh.state.ledger.subaccounts[carol])
    assert [root for root, _ in venue.replay()] == [b.root for b in venue.recorded]
    # The same journal through a Chain queried between the same blocks, then recovered.
    chain = Chain(venue.spec.venue, MemoryJournal())
    for count, block in enumerate(venue.recorded, start=1):
        commands = [c for c in block.commands if isinstance(c, Command)]
        assert chain.produce(block.timestamp_ns, commands).header.state_root == block.root
        if count == queried_after:
            chain.engine.market_profile(option)
    chain.flush()
    assert chain.recover() == len(venue.recorded)  # raises VerificationError on a mismatch


# ── r2: a minority publisher cannot set any point of the smile ─────────────────────────────


def calendar_bound_surface(timestamp_ns: int) -> tuple[SviSlice, ...]:
    """The synthetic smile at 59% ATM, whose slices before the 30-day score point are raised
    to just under the next slice's total variance (no calendar arbitrage): the reviewer's
    surface, ranked between honest ones at 30 days and far above them short-dated."""
    slices = list(synthetic_surface(timestamp_ns, atm_vol=0.59))
    horizon = timestamp_ns + surface.SCORE_HORIZON_NS
    first_after = next(i for i, s in enumerate(slices) if s.expiry_ns >= horizon)
    for i in range(first_after - 2, -1, -1):
        following = slices[i + 1]
        slices[i] = dataclasses.replace(
            slices[i], a_e9=int(following.a_e9 * 0.999), b_e9=int(following.b_e9 * 0.999)
        )
    assert not surface.problems(tuple(slices), timestamp_ns)
    return tuple(slices)


def test_r2b_one_publisher_whose_30_day_vol_is_the_median_cannot_liquidate_a_writer() -> None:
    """The venue used one publisher's whole surface, chosen by its 30-day ATM volatility alone:
    publisher 3's 59% (between the honest 58/60/62%) with short slices at the calendar bound
    became the surface, a 2-day call's mark went from ~181 to ~2,761 USDC and carol/1, who
    wrote ten of them with 1.3x IM, was liquidatable at once. Volatilities are now the
    weighted median across the fresh surfaces at each (expiry, strike)."""
    venue = Venue()
    option = list_option(venue, "C-63000-2D", call(63_000 * USDC), 2 * DAY - HOUR)
    accepted(venue, *surface_reports(venue, {0: 0.58, 1: 0.60, 2: 0.62}))
    venue.block()
    price = venue.mark(option) // USDC * USDC + USDC
    accepted(venue, venue.transfer("carol", 120_000 * USDC, source=0, target=1))
    accepted(venue, venue.order("bob", option, BUY, 10 * ONE_BTC, price))
    accepted(venue, venue.order("carol", option, SELL, 10 * ONE_BTC, price, number=1))
    honest_mark, honest = venue.mark(option), venue.risk("carol", 1)
    assert not honest.liquidatable

    timestamp = venue.now + venue.block_ns
    rogue = calendar_bound_surface(timestamp)
    publisher = venue.publishers[3]
    accepted(venue, report_surface(publisher.address, publisher.nonce(timestamp), timestamp, rogue))
    venue.block()
    oracle = venue.state.oracles[BTC_USD]
    assert oracle.surface == rogue  # it is still the median surface by its 30-day score ...
    # ... but moves no point of the smile: the mark and carol's margin stay where they were.
    assert abs(venue.mark(option) - honest_mark) <= honest_mark // 100
    risk = venue.risk("carol", 1)
    assert not risk.liquidatable
    assert abs(risk.maintenance - honest.maintenance) <= honest.maintenance // 100
    refused(venue, liquidate(venue, "dave", "carol", number=1), RejectReason.NOT_LIQUIDATABLE)


# ── r3: every publisher's surface is in the state root ─────────────────────────────────────


def roots_after_a_non_median_surface(rogue_vol: float) -> bytes:
    venue = Venue()
    accepted(venue, *surface_reports(venue, {0: 0.50, 1: 0.60, 2: 0.70}))
    accepted(venue, *surface_reports(venue, {3: rogue_vol}))  # above the median either way
    return venue.recorded[-1].root


def test_r3_the_state_root_commits_to_each_publishers_surface() -> None:
    """OracleState.surfaces was not encoded: two venues whose publisher 3 reported different
    non-median surfaces had equal roots, and then diverged on the same later commands when the
    median moved onto that surface. The root now differs as soon as the surfaces do."""
    assert roots_after_a_non_median_surface(0.80) == roots_after_a_non_median_surface(0.80)
    assert roots_after_a_non_median_surface(0.80) != roots_after_a_non_median_surface(0.90)


# ── r4: a portfolio bid must lower the account's maintenance margin ────────────────────────


def strip_then_take(venue: Venue, strips: int) -> tuple[Venue, list[list[Event]], list[object]]:
    """On a copy of ``venue``: dave's ``strips`` bids of 0.9999% (each takes a slice of the perp
    hedge and no option) and then a 100% bid, in one block. The copy, each bid's events, and
    each bid's rejection reason (None where accepted)."""
    copied = copy.deepcopy(venue)
    bids = [bid_portfolio(copied, "dave", "carol", 1, STRIP) for _ in range(strips)]
    bids.append(bid_portfolio(copied, "dave", "carol", 1, PPM))
    result = copied.block(bids, reports=False)
    reasons: list[object] = []
    for i in range(len(bids)):
        rejection = result.rejection(i)
        reasons.append(None if rejection is None else rejection.reason)
    return copied, [result.of(i) for i in range(len(bids))], reasons


def test_r4_an_insolvent_portfolios_hedge_cannot_be_stripped_to_inflate_the_funds_reward() -> None:
    """carol/1 (1 short call, 0.5 BTC-PERP long, equity < 0): bids under 1% take no option and
    only the perp hedge, raising MM; each was accepted (paid 0), and a 100% bid after 400 of them
    in the same block was paid discount × the naked MM by the fund: 1,253 USDC instead of the
    744 a 100% bid alone is paid. A bid whose slices do not lower MM is now refused."""
    venue, _ = carol_under_water(6_000 * USDC, calls=1, perp=0.5)
    risk = venue.risk("carol", 1)
    assert risk.equity < 0 and venue.state.liquidations[venue.sub("carol", 1)].auction is not None
    _, [alone], [reason] = strip_then_take(venue, 0)
    assert reason is None, alone
    assert fund_paid(alone) > 0

    _, events, reasons = strip_then_take(venue, 400)
    assert reasons == [RejectReason.NOTHING_TO_LIQUIDATE] * 400 + [None], set(reasons[:-1])
    assert fund_paid(events[-1]) == fund_paid(alone)
    perp = venue.position("carol", BTC_PERP, 1)[0]
    refused(venue, bid_portfolio(venue, "dave", "carol", 1, STRIP),
            RejectReason.NOTHING_TO_LIQUIDATE)  # fmt: skip
    assert venue.position("carol", BTC_PERP, 1)[0] == perp


def test_r4b_a_solvent_portfolio_pays_no_more_reward_for_a_stripped_hedge() -> None:
    """The same sequence on a solvent account (0 < equity < MM): carol paid the bidder 625 USDC
    (on the naked MM) instead of the 284 a 100% bid alone costs it, and kept fewer calls."""
    venue, option = carol_under_water(8_500 * USDC, calls=1, perp=0.5)
    carol = venue.sub("carol", 1)
    if venue.state.liquidations[carol].auction is None:
        accepted(venue, liquidate(venue, "dave", "carol", number=1))
    risk = venue.risk("carol", 1)
    assert 0 < risk.equity < risk.maintenance
    assert venue.state.liquidations[carol].auction is not None
    whole, [alone], [reason] = strip_then_take(venue, 0)
    assert reason is None, alone
    assert rewards(alone) > 0 and fund_paid(alone) == 0

    stripped, events, reasons = strip_then_take(venue, 400)
    assert reasons == [RejectReason.NOTHING_TO_LIQUIDATE] * 400 + [None], set(reasons[:-1])
    assert sum(rewards(e) for e in events) == rewards(alone)
    assert stripped.position("carol", option, 1) == whole.position("carol", option, 1)
    assert stripped.position("carol", BTC_PERP, 1) == whole.position("carol", BTC_PERP, 1)


# ── r5: insolvency at the collateral's full price ──────────────────────────────────────────


def test_r5_an_account_solvent_at_its_collaterals_full_price_pays_its_own_reward() -> None:
    """carol/1 (69,000 USDC and 1 BTC, ten short calls; index 76,000): equity is -3,895 USDC
    with its BTC valued at 90% (the haircut), +3,705 at the full index. The bid was judged
    insolvent: the fund paid the bidder 11,186 USDC and carol kept 0.49 BTC after the seizure.
    The account now pays the reward itself, out of its collateral at the full price."""
    venue, _ = carol_under_water(69_000 * USDC, calls=10, btc_collateral=ONE_BTC)
    carol = venue.sub("carol", 1)
    risk = venue.risk("carol", 1)
    btc_value = venue.index() * venue.balance("carol", "BTC", 1) // ONE_BTC
    full_equity = risk.equity + btc_value // 10  # the 10% haircut back
    assert risk.equity < 0 < full_equity
    assert venue.state.liquidations[carol].auction is not None
    fund = venue.state.ledger.balance(INSURANCE, QUOTE_ASSET)
    dave = venue.balance("dave")

    [events] = accepted(venue, bid_portfolio(venue, "dave", "carol", 1, PPM))
    assert not of_type(events, InsuranceDrawn), "the fund paid for a solvent account"
    assert venue.state.ledger.balance(INSURANCE, QUOTE_ASSET) == fund
    assert 0 < rewards(events) == venue.balance("dave") - dave
    assert rewards(events) <= full_equity + USDC  # + rounding of the haircut
    subaccount = venue.state.ledger.subaccounts.get(carol)
    left = {} if subaccount is None else subaccount.balances
    assert all(amount >= 0 for amount in left.values()), left


# ── r8: an id re-listed in the block that archives it keeps its leaf ───────────────────────


def test_r8_a_market_listed_again_in_the_block_that_archives_it_keeps_its_leaf() -> None:
    """_flush_dirty wrote the new market's leaf, then _flush_options deleted market_key(id)
    for the archived one: the state root did not commit to the live market until something
    else dirtied it. Archived leaves are now deleted first."""
    venue = Venue(block_ns=5 * NS_PER_SECOND)
    publish_surface(venue)
    market_id = short_lived_option(venue)
    params = venue.state.markets[market_id].params
    assert of_type(venue.advance(7 * NS_PER_MINUTE), MarketSettled)
    assert venue.state.markets[market_id].status is MarketStatus.SETTLED

    jump = params.expiry_ns + ARCHIVE_AFTER_NS - venue.now
    relisted = dataclasses.replace(params, expiry_ns=params.expiry_ns + ARCHIVE_AFTER_NS + 7 * DAY)
    listing = operator_listing(venue, relisted, at_ns=venue.now + jump)
    result = venue.block([listing], dt_ns=jump)
    assert result.rejection(0) is None, result.of(0)
    assert of_type(result.prologue, MarketArchived)
    assert of_type(result.of(0), MarketListed)
    market = venue.state.markets[market_id]
    assert market.params == relisted
    tree = venue.state.tree
    key = market_key(market_id)
    assert tree.leaf(key) == leaf_hash(key, encode_leaf(market.encode()))
    assert params_key("market", market_id) in tree
