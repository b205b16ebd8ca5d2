"""The demo's simulators across an archive: a dated market that settled leaves state a day after
its expiry (``ARCHIVE_AFTER_NS``), and the market maker, the traders and the keeper go on.

``clearhouse demo --hours 45`` crashed at hour 44 with ``KeyError: 'BTC-FUT-20H'`` in
``DemoMarket._quotes``: the future settled at hour 20 was archived and still quoted. Here the
future expires 35 minutes in, the blocks of its settlement run at the demo's 10 s, one block
then jumps to the archive, and the demo's own commands run on for five minutes after it.
"""

from __future__ import annotations

import dataclasses

from clearhouse.adapters.memory_journal import MemoryJournal
from clearhouse.app.chain import Chain
from clearhouse.core.engine import ARCHIVE_AFTER_NS
from clearhouse.core.ids import MarketId, OrderId
from clearhouse.core.messages import (
    Command,
    Event,
    MarketArchived,
    MarketSettled,
)
from clearhouse.core.units import NS_PER_MINUTE, NS_PER_SECOND
from clearhouse.sim.market import DemoMarket
from clearhouse.sim.venue import GENESIS_NS, default_venue, genesis_commands

BLOCK_NS = 10 * NS_PER_SECOND  # run_demo's default block interval
SEED = 7


def maker_orders(
    chain: Chain, market: DemoMarket, market_ids: tuple[MarketId, ...]
) -> dict[MarketId, set[OrderId]]:
    """The demo market maker's resting orders in each of these markets."""
    markets = chain.engine.state.markets
    return {
        m: {o.order_id for o in markets[m].book.orders() if o.owner.owner == market.maker.address}
        for m in market_ids
    }


def test_the_demo_keeps_running_after_a_settled_future_is_archived() -> None:
    """The market maker, the traders, the degens, the options desk and the keeper all read
    engine.state.markets: after the archive none may crash on, or send commands to, the
    archived future, and the maker goes on requoting the live markets."""
    spec = dataclasses.replace(
        default_venue(GENESIS_NS, oracle_staleness_ns=15 * NS_PER_SECOND, options=True),
        future_expiry_ns=GENESIS_NS + 35 * NS_PER_MINUTE,
    )  # run_demo's venue (staleness for 10 s blocks), the future 35 minutes out
    future = spec.future_market_id
    chain = Chain(spec.venue, MemoryJournal())
    market = DemoMarket(SEED, spec, BLOCK_NS)
    chain.produce(GENESIS_NS, genesis_commands(spec))

    sent: list[Command] = []

    def block(timestamp_ns: int) -> tuple[Event, ...]:
        commands = market.commands(chain.engine, timestamp_ns, chain.height + 1)
        sent.extend(commands)
        return chain.produce(timestamp_ns, commands).events

    timestamp = GENESIS_NS
    settled: list[MarketSettled] = []
    while timestamp < spec.future_expiry_ns:
        timestamp += BLOCK_NS
        settled += [e for e in block(timestamp) if isinstance(e, MarketSettled)]
    assert future in [e.market_id for e in settled]
    assert future in market.quoted_mid, "the market maker never quoted the future"

    timestamp = spec.future_expiry_ns + ARCHIVE_AFTER_NS
    archived = [e.market_id for e in block(timestamp) if isinstance(e, MarketArchived)]
    assert future in archived
    assert future not in chain.engine.state.markets

    perps = (MarketId("BTC-PERP"), MarketId("ETH-PERP"))
    before = maker_orders(chain, market, perps)
    sent.clear()
    for _ in range(90):  # the maker, the traders, the degens, the options desk, the keeper
        timestamp += BLOCK_NS
        block(timestamp)
    after = maker_orders(chain, market, perps)
    assert all(after[m] - before[m] for m in perps), "the maker stopped requoting"
    assert all(getattr(c, "market_id", None) != future for c in sent)
    assert future not in chain.engine.state.markets
    chain.flush()
    assert chain.recover() == chain.height  # the journal across the archive verifies
