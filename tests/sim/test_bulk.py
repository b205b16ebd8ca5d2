"""The bulk venue of the scale benchmark: state written directly, yet a venue the engine runs."""

from __future__ import annotations

import copy

import pytest

from clearhouse.core import invariants
from clearhouse.core.engine import Engine
from clearhouse.core.ids import QUOTE_ASSET, Side, SubaccountId
from clearhouse.core.messages import (
    Command,
    CommandRejected,
    FundingPaid,
    OrderFilled,
    PlaceOrder,
    TimeInForce,
    Transferred,
)
from clearhouse.sim import bulk

SUBACCOUNTS = 300


@pytest.fixture(scope="module")
def built() -> Engine:
    return bulk.build_venue(SUBACCOUNTS, seed=3)


@pytest.fixture
def engine(built: Engine) -> Engine:
    return Engine.from_state(copy.deepcopy(built.state))


def test_the_built_state_passes_every_invariant(built: Engine) -> None:
    invariants.check(built.state)
    state = built.state
    for index in range(SUBACCOUNTS):
        subaccount = state.ledger.subaccounts[SubaccountId(bulk.bulk_address(index), 0)]
        assert 1 <= len(subaccount.positions) <= 2
        assert subaccount.balance(QUOTE_ASSET) > 0
    for market_id in bulk.PERPETUALS:
        market = state.markets[market_id]
        assert market.open_interest_base_quantums > 0
        assert len(market.holders) > SUBACCOUNTS // 3
        assert market.book.best_bid() is not None
        assert market.book.best_ask() is not None
    assert built.liquidatable() == []


def test_an_odd_number_of_subaccounts_is_a_valid_venue_too() -> None:
    engine = bulk.build_venue(7, seed=1)
    invariants.check(engine.state)
    holders = {h for m in bulk.PERPETUALS for h in engine.state.markets[m].holders}
    assert len(holders) == 7


def test_from_state_of_a_copy_gives_the_same_root(built: Engine) -> None:
    root = built.state.tree.root()
    assert Engine.from_state(copy.deepcopy(built.state)).state.tree.root() == root
    assert built.state.tree.recompute_root() == root


def test_the_build_is_reproducible_from_its_seed(built: Engine) -> None:
    assert bulk.build_venue(SUBACCOUNTS, seed=3).state.tree.root() == built.state.tree.root()
    assert bulk.build_venue(SUBACCOUNTS, seed=4).state.tree.root() != built.state.tree.root()


def test_prices_and_an_ioc_order_execute_without_rejections(engine: Engine) -> None:
    nonces = bulk.Nonces(engine)
    now = engine.state.timestamp_ns + bulk.BLOCK_INTERVAL_NS
    events = bulk.run_block(engine, now, bulk.price_reports(engine, nonces, now,
                                                            bulk.REFERENCE_PRICES))  # fmt: skip
    assert not [e for e in events if isinstance(e, CommandRejected)]
    now += bulk.BLOCK_INTERVAL_NS
    market = engine.state.markets[bulk.PERPETUALS[0]]
    best_ask = market.book.best_ask()
    assert best_ask is not None
    taker = bulk.taker_address(0)
    order = PlaceOrder(
        signer=taker, nonce=nonces.next(taker, now), expiry_ns=now + bulk.COMMAND_LIFETIME_NS,
        subaccount_number=0, market_id=market.params.market_id, side=Side.BUY,
        size_base_quantums=market.params.min_order_base_quantums, price_quantums=best_ask,
        time_in_force=TimeInForce.IOC,
    )  # fmt: skip
    events = bulk.run_block(engine, now, [order])  # asserts that nothing is rejected
    fills = [e for e in events if isinstance(e, OrderFilled)]
    assert sum(f.size_base_quantums for f in fills) == market.params.min_order_base_quantums
    invariants.check(engine.state)


def test_funding_at_the_hour_is_zero_sum(engine: Engine) -> None:
    nonces = bulk.Nonces(engine)
    state = engine.state
    due = min(state.markets[m].next_funding_ns for m in bulk.PERPETUALS)
    step = 30 * bulk.BLOCK_INTERVAL_NS  # within the oracles' staleness and outage bounds
    now = state.timestamp_ns
    while now + step < due:  # the hour passes block by block, prices fresh all along
        now += step
        events = bulk.run_block(engine, now, price_reports(engine, nonces, now))
        assert not [e for e in events if isinstance(e, FundingPaid)]
    balances_before = {s: a.balance(QUOTE_ASSET) for s, a in state.ledger.subaccounts.items()}
    index_before = {m: state.markets[m].funding_index_e9 for m in bulk.PERPETUALS}
    events = bulk.run_block(engine, due, price_reports(engine, nonces, due))
    paid = [e for e in events if isinstance(e, FundingPaid)]
    assert {e.market_id for e in paid} == set(bulk.PERPETUALS)
    for event in paid:
        assert event.rate_ppb != 0 and event.paid_quote_quantums > 0
        assert event.paid_quote_quantums == (
            event.received_quote_quantums + event.residue_quote_quantums
        )
        market = state.markets[event.market_id]
        step = event.index_price_quantums * event.rate_ppb
        assert market.funding_index_e9 == index_before[event.market_id] + step
    # The hour moves no balance: it steps each index, and what the longs owe, the shorts are
    # owed, exactly (every position opened at the same index).
    assert not [e for e in events if isinstance(e, Transferred) and e.cause == "funding"]
    after = {s: a.balance(QUOTE_ASSET) for s, a in state.ledger.subaccounts.items()}
    assert after == balances_before
    for market_id in bulk.PERPETUALS:
        market = state.markets[market_id]
        owed = sum(
            state.ledger.subaccounts[h].positions[market_id].size_base_quantums
            * (
                market.funding_index_e9
                - state.ledger.subaccounts[h].positions[market_id].funding_index_e9
            )
            for h in market.holders
        )
        assert owed == 0
    invariants.check(state)


def price_reports(engine: Engine, nonces: bulk.Nonces, now: int) -> list[Command]:
    return bulk.price_reports(engine, nonces, now, bulk.REFERENCE_PRICES)
