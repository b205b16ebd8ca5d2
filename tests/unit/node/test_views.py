"""The what-if: the engine's margin code on a copy, with nothing in state changed."""

from __future__ import annotations

from clearhouse.adapters.memory_journal import MemoryJournal
from clearhouse.app.chain import Chain
from clearhouse.core.codec import encode_command
from clearhouse.core.engine import Trial
from clearhouse.core.ids import MarketId, SubaccountId
from clearhouse.core.units import NS_PER_SECOND
from clearhouse.node.views import what_if
from clearhouse.sim.market import DemoMarket
from clearhouse.sim.venue import GENESIS_NS, default_venue, genesis_commands

BLOCK_NS = 10 * NS_PER_SECOND
BLOCKS = 60


def _chain() -> Chain:
    spec = default_venue(GENESIS_NS, oracle_staleness_ns=15 * NS_PER_SECOND)
    chain = Chain(spec.venue, MemoryJournal())
    market = DemoMarket(3, spec, BLOCK_NS)
    for height in range(1, BLOCKS):
        timestamp = GENESIS_NS + (height - 1) * BLOCK_NS
        commands = genesis_commands(spec) if height == 1 else market.commands(
            chain.engine, timestamp, height
        )  # fmt: skip
        chain.produce_encoded(timestamp, [encode_command(c) for c in commands])
    return chain


def _holder(chain: Chain) -> tuple[SubaccountId, MarketId]:
    for sid, sub in sorted(chain.engine.state.ledger.subaccounts.items()):
        for market_id, position in sorted(sub.positions.items()):
            if position.size_base_quantums and not market_id.endswith(("-C", "-P")):
                return sid, market_id
    raise AssertionError("the demo market left no position")


def test_a_what_if_changes_nothing_in_state() -> None:
    chain, twin = _chain(), _chain()
    sid, market_id = _holder(chain)
    engine = chain.engine
    before = {s: x.encode() for s, x in engine.state.ledger.subaccounts.items()}
    params = engine.state.markets[market_id].params
    mark = engine.state.markets[market_id].mark_price_quantums // params.tick_quantums
    price = mark * params.tick_quantums
    size = 1_000 * params.step_base_quantums
    answer = what_if(
        engine, sid, Trial(fills=((market_id, size, price), (market_id, -size, price)))
    )
    assert answer["committed"] is False
    assert answer["after"]["maintenance_quote_quantums"] >= 0
    what_if(engine, sid, Trial(portfolio={market_id: (size, price)}, balances={}))
    assert {s: x.encode() for s, x in engine.state.ledger.subaccounts.items()} == before
    at = GENESIS_NS + BLOCKS * BLOCK_NS
    assert (
        chain.produce_encoded(at, []).header.state_root
        == twin.produce_encoded(at, []).header.state_root
    )


def test_a_what_if_round_trip_leaves_margin_as_it_was() -> None:
    chain = _chain()
    sid, market_id = _holder(chain)
    engine = chain.engine
    params = engine.state.markets[market_id].params
    price = engine.state.markets[market_id].mark_price_quantums // params.tick_quantums
    size = params.step_base_quantums
    fills = ((market_id, size, price * params.tick_quantums),)
    grown = what_if(engine, sid, Trial(fills=fills))
    same = what_if(engine, sid, Trial())
    assert same["before"] == same["after"]
    held = engine.state.ledger.subaccounts[sid].positions[market_id].size_base_quantums
    (position,) = [p for p in grown["positions"] if p["market_id"] == market_id]
    assert position["size_base_quantums"] == held + size
