"""A venue at scale, for benchmarks: many subaccounts written straight into state.

A million deposits and orders through the engine would take far longer than the blocks they are
meant to measure, so ``build_venue`` runs only the start of a venue through a real ``Engine``:
the default venue's genesis, its publishers' first prices, the deposits of a maker and of a
pool of takers, and the maker's ladder of resting orders on each perpetual (so that crossing
orders have something to hit and the mark has an impact mid). Then it writes the bulk
subaccounts into ``engine.state`` directly and returns ``Engine.from_state(state)``, which
rebuilds the derived indexes and writes every state-root leaf.

The state written is one the engine's commands could have produced, and passes
``core.invariants.check``:

* each bulk subaccount holds a USDC balance, deposited: the custody account holds minus the
  sum of them all;
* each holds one or two perpetual positions, opened against another bulk subaccount at one
  price near the mark: subaccounts come in pairs (a triple when their number is odd) whose
  positions in a market mirror each other, so every market's long sizes sum to its short
  sizes and to its open interest, and the pair's cost bases cancel (its clearing account
  holds minus the summed cost basis: zero);
* leverage is 1-3x on the mark, and positions are retail-sized (20-80 USDC of BTC, 15-60 USDC
  of ETH) so that a million of them keep open interest under the default venue's scaling
  threshold (50M USDC on BTC-PERP, 20M on ETH-PERP, beyond which IM climbs to 100%): nobody is
  near liquidation, and the liquidation pass measures without liquidating;
* ``market.holders`` lists each position's holder in insertion order.

Addresses are ``address_of(f"bulk-{i}")``: random-looking, as real ones are, so that nothing
the engine sorts arrives sorted.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Mapping, Sequence

from clearhouse.core.engine import Engine
from clearhouse.core.ids import QUOTE_ASSET, Address, MarketId, OracleId, Side, SubaccountId
from clearhouse.core.ledger import CUSTODY, Position, Subaccount
from clearhouse.core.messages import (
    Command,
    CommandRejected,
    Deposit,
    Event,
    PlaceOrder,
    PriceReport,
    ReportPrices,
    TimeInForce,
)
from clearhouse.core.state import EngineState, MarketState
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MS, NS_PER_SECOND, PPM_ONE
from clearhouse.sim.venue import GENESIS_NS, USDC, address_of, default_venue, genesis_commands

PERPETUALS = (MarketId("BTC-PERP"), MarketId("ETH-PERP"))
REFERENCE_PRICES: Mapping[OracleId, int] = {
    OracleId("BTC-USD"): 60_000 * USDC,
    OracleId("ETH-USD"): 3_000 * USDC,
    OracleId("USDT-USD"): USDC,  # the USDT rate feed, at par
}
ORACLE_STALENESS_NS = 60 * NS_PER_SECOND
BLOCK_INTERVAL_NS = NS_PER_SECOND  # blocks of the build (and of the benchmark after it)
COMMAND_LIFETIME_NS = NS_PER_HOUR

MAKER = address_of("bulk-maker")
MAKER_DEPOSIT = 50_000_000 * USDC
TAKERS = 64
TAKER_DEPOSIT = 1_000_000 * USDC
LADDER_LEVELS = 10  # per side and perpetual
LADDER_STEP_PPM = 500  # 0.05% between levels, the first one 0.05% from the index
LADDER_LEVEL_NOTIONAL = 30_000 * USDC  # the impact notional (20k/10k USDC) is within 1 level

# Position sizes in steps of each market (0.0001 BTC, 0.001 ETH): 3-12 steps of BTC at 60k is
# 18-72 USDC, 5-20 steps of ETH at 3k is 15-60 USDC.
POSITION_STEPS: Mapping[MarketId, tuple[int, int]] = {
    MarketId("BTC-PERP"): (3, 12),
    MarketId("ETH-PERP"): (5, 20),
}
ENTRY_SPREAD_PPM = 5_000  # a pair's entry price is within 0.5% of the mark
LEVERAGE_LOW_PPM, LEVERAGE_HIGH_PPM = 1_000_000, 3_000_000  # 1x to 3x


def bulk_address(index: int) -> Address:
    """The owner of bulk subaccount ``index`` (subaccount number 0)."""
    return address_of(f"bulk-{index}")


def taker_address(index: int) -> Address:
    """A funded taker: USDC and no position at build time."""
    return address_of(f"bulk-taker-{index}")


class Nonces:
    """Unique, increasing nonces per signer, in milliseconds of the block they go into and
    above anything the state has seen from that signer."""

    __slots__ = ("_engine", "_last")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._last: dict[Address, int] = {}

    def next(self, signer: Address, now_ns: int) -> int:
        used = self._engine.state.nonces.get(signer)
        last = max(self._last.get(signer, 0), used[-1] if used else 0)
        nonce = max(last + 1, now_ns // NS_PER_MS)
        self._last[signer] = nonce
        return nonce


def publishers(engine: Engine) -> tuple[Address, ...]:
    """Every address that publishes to one of the venue's oracles, sorted."""
    found = {p.address for o in engine.state.oracles.values() for p in o.params.publishers}
    return tuple(sorted(found))


def price_reports(
    engine: Engine, nonces: Nonces, now_ns: int, prices: Mapping[OracleId, int]
) -> list[Command]:
    """One ``ReportPrices`` from every publisher, each reporting ``prices`` at ``now_ns``."""
    reports = tuple(
        PriceReport(oracle_id=o, price_quantums=p, confidence_quantums=0, timestamp_ns=now_ns)
        for o, p in sorted(prices.items())
    )
    commands: list[Command] = []
    for p in publishers(engine):
        nonce = nonces.next(p, now_ns)
        expiry = now_ns + COMMAND_LIFETIME_NS
        commands.append(ReportPrices(signer=p, nonce=nonce, expiry_ns=expiry, reports=reports))
    return commands


def run_block(engine: Engine, now_ns: int, commands: Sequence[Command]) -> list[Event]:
    """One whole block; every command must be accepted. Returns every event of the block."""
    events = engine.begin_block(engine.state.height + 1, now_ns)
    for index, command in enumerate(commands):
        applied = engine.apply(index, command)
        rejected = [e for e in applied if isinstance(e, CommandRejected)]
        assert not rejected, (command, rejected)
        events += applied
    engine.end_block()
    return events


def build_venue(subaccounts: int, *, seed: int = 0) -> Engine:
    """The default venue (perpetuals and the BTC future, no options), live, with
    ``subaccounts`` bulk subaccounts holding perpetual positions, a maker's ladder resting on
    each perpetual, and ``TAKERS`` funded takers (``taker_address``)."""
    assert subaccounts >= 2, "positions come in pairs"
    engine = live_venue()
    collecting = gc.isenabled()
    gc.disable()  # millions of new containers, none of them garbage: a cycle scan finds nothing
    try:
        write_subaccounts(engine.state, subaccounts, random.Random(seed))
    finally:
        if collecting:
            gc.enable()
    return Engine.from_state(engine.state)


def live_venue() -> Engine:
    """Genesis, prices, the maker and takers funded, the ladders resting, marks from them."""
    spec = default_venue(GENESIS_NS, oracle_staleness_ns=ORACLE_STALENESS_NS)
    engine = Engine(spec.venue)
    nonces = Nonces(engine)
    now = GENESIS_NS
    run_block(engine, now, genesis_commands(spec))
    now += BLOCK_INTERVAL_NS
    owners = [(MAKER, MAKER_DEPOSIT)] + [(taker_address(j), TAKER_DEPOSIT) for j in range(TAKERS)]
    deposits: list[Command] = []
    first_id = engine.state.last_deposit_id + 1
    for i, (owner, amount) in enumerate(owners):
        deposits.append(Deposit(
            signer=spec.relayer, nonce=nonces.next(spec.relayer, now),
            expiry_ns=now + COMMAND_LIFETIME_NS, deposit_id=first_id + i, owner=owner,
            subaccount_number=0, asset_id=QUOTE_ASSET, amount_quantums=amount,
        ))  # fmt: skip
    run_block(engine, now, price_reports(engine, nonces, now, REFERENCE_PRICES) + deposits)
    now += BLOCK_INTERVAL_NS
    engine.begin_block(engine.state.height + 1, now)  # the index is fresh from here on
    commands = price_reports(engine, nonces, now, REFERENCE_PRICES)
    for market_id in PERPETUALS:
        commands += ladder(engine, nonces, now, engine.state.markets[market_id])
    for index, command in enumerate(commands):
        rejected = [e for e in engine.apply(index, command) if isinstance(e, CommandRejected)]
        assert not rejected, (command, rejected)
    engine.end_block()
    now += BLOCK_INTERVAL_NS
    run_block(engine, now, price_reports(engine, nonces, now, REFERENCE_PRICES))
    for market_id in PERPETUALS:
        assert engine.state.markets[market_id].mark_price_quantums > 0, market_id
    return engine


def ladder(engine: Engine, nonces: Nonces, now_ns: int, market: MarketState) -> list[Command]:
    """The maker's resting bids and asks around the index, ``LADDER_STEP_PPM`` apart."""
    params = market.params
    index = engine.state.oracles[params.oracle_id].index_price_quantums
    tick, step = params.tick_quantums, params.step_base_quantums
    orders: list[Command] = []
    for level in range(1, LADDER_LEVELS + 1):
        offset = index * LADDER_STEP_PPM * level // PPM_ONE
        for side, price in ((Side.BUY, index - offset), (Side.SELL, index + offset)):
            price = price // tick * tick if side is Side.BUY else -(-price // tick) * tick
            size = LADDER_LEVEL_NOTIONAL * params.base_quantums_per_unit // price // step * step
            orders.append(PlaceOrder(
                signer=MAKER, nonce=nonces.next(MAKER, now_ns),
                expiry_ns=now_ns + COMMAND_LIFETIME_NS, subaccount_number=0,
                market_id=params.market_id, side=side, size_base_quantums=size,
                price_quantums=price, time_in_force=TimeInForce.GTC,
            ))  # fmt: skip
    return orders


def write_subaccounts(state: EngineState, count: int, rng: random.Random) -> None:
    """Write ``count`` bulk subaccounts into ``state`` (see the module docstring): in groups
    of two (three for the last group when ``count`` is odd) whose positions mirror each other."""
    odd = count % 2
    deposited = 0
    for start in range(0, count - 3 * odd, 2):
        deposited += _write_group(state, start, (1, -1), rng)
    if odd:
        deposited += _write_group(state, count - 3, (2, -1, -1), rng)
    custody = state.ledger.system.setdefault(CUSTODY, {})
    custody[QUOTE_ASSET] = custody.get(QUOTE_ASSET, 0) - deposited
    state.last_deposit_id += count  # as if each balance had come in through its own deposit


def _write_group(
    state: EngineState, start: int, weights: tuple[int, ...], rng: random.Random
) -> int:
    """One group of subaccounts that traded with each other: in each market they hold, one
    size and one entry price, signed by ``weights`` (which sum to zero). Returns the USDC
    deposited."""
    draw = rng.random  # a float draw is ~10x cheaper than randint, and as reproducible
    held = (PERPETUALS[:1], PERPETUALS[1:], PERPETUALS)[int(draw() * 3)]
    members = [SubaccountId(bulk_address(start + k), 0) for k in range(len(weights))]
    positions: list[dict[MarketId, Position]] = [{} for _ in weights]
    notionals = [0] * len(weights)
    for market_id in held:
        market = state.markets[market_id]
        params = market.params
        mark, per_unit = market.mark_price_quantums, params.base_quantums_per_unit
        low, high = POSITION_STEPS[market_id]
        steps = low + int(draw() * (high - low + 1))
        size = steps * params.step_base_quantums * (1 if draw() < 0.5 else -1)
        drift = mark * int((2 * draw() - 1) * ENTRY_SPREAD_PPM) // PPM_ONE
        entry = (mark + drift) // params.tick_quantums * params.tick_quantums
        for k, weight in enumerate(weights):
            signed = size * weight
            cost = signed * entry // per_unit  # exact: size and price sit on the market grid
            assert cost * per_unit == signed * entry
            positions[k][market_id] = Position(market_id, signed, cost)
            notionals[k] += abs(signed) * mark // per_unit
            market.holders[members[k]] = None
            market.open_interest_base_quantums += max(signed, 0)
    deposited = 0
    subaccounts = state.ledger.subaccounts
    for k, member in enumerate(members):
        leverage = LEVERAGE_LOW_PPM + int(draw() * (LEVERAGE_HIGH_PPM - LEVERAGE_LOW_PPM))
        balance = -(-notionals[k] * PPM_ONE // leverage)
        subaccounts[member] = Subaccount(member, {QUOTE_ASSET: balance}, positions[k])
        deposited += balance
    return deposited
