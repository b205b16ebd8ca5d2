"""A small test harness around the real engine: a default venue with live prices and funded traders.

``Venue`` builds an ``Engine`` for ``default_venue``, runs its genesis block, publishes BTC-USD and
ETH-USD from every publisher, funds a few traders and then offers ``block(commands)``. Every block
it runs is checked command by command (unless ``check=False``):

* ``invariants.check`` after the prologue and after every command;
* a rejected command changes nothing but its signer's nonce set (a deep snapshot of the state,
  nonces excluded, is compared before and after it), and its nonce set changes exactly as
  ``nonce_consumed`` says;
* a nonce is consumed at most once;
* every subaccount that acted (the taker and the makers of an order, the source of a withdrawal or
  transfer) satisfies initial margin afterwards or only reduced its risk;
* funding steps each market's index by exactly index × rate at the hour and never otherwise.

Every block is recorded (height, timestamp, commands, events, root) so that a test can replay the
stream on a fresh engine.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

import pytest

from clearhouse.core import invariants, limits
from clearhouse.core.codec import (
    MalformedCommand,
    canonical_json,
    decode_command,
    encode_command,
    encode_event,
    to_plain,
)
from clearhouse.core.engine import Engine
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import (
    QUOTE_ASSET,
    Address,
    AssetId,
    MarketId,
    OracleId,
    Side,
    SubaccountId,
)
from clearhouse.core.margin import Risk, is_reducing, reduces_risk
from clearhouse.core.messages import (
    AgentSigned,
    AmendOrder,
    BidAuction,
    CancelAll,
    CancelOrder,
    Command,
    CommandRejected,
    Deposit,
    DepositInsurance,
    DepositVault,
    Event,
    FundingPaid,
    Liquidated,
    OrderFilled,
    OrderType,
    PlaceOrder,
    PriceReport,
    ReportPrices,
    TimeInForce,
    TransferCollateral,
    Withdraw,
    WithdrawVault,
)
from clearhouse.core.state import EngineState
from clearhouse.core.units import NS_PER_HOUR, NS_PER_SECOND
from clearhouse.sim.signer import Signer
from clearhouse.sim.venue import (
    BTC_SATS,
    ETH_GWEI,
    GENESIS_NS,
    USDC,
    address_of,
    default_venue,
    genesis_commands,
)

BTC_USD = OracleId("BTC-USD")
ETH_USD = OracleId("ETH-USD")
BTC_PERP = MarketId("BTC-PERP")
ETH_PERP = MarketId("ETH-PERP")
USDC_ASSET = AssetId("USDC")
BTC_ASSET = AssetId("BTC")
USDT_USD = OracleId("USDT-USD")  # the USDT rate feed: USD quantums per USDT, 1,000,000 at par
START_PRICES = {BTC_USD: 60_000 * USDC, ETH_USD: 3_000 * USDC, USDT_USD: USDC}
PRICE = START_PRICES[BTC_USD]  # the BTC index the venue starts at
ONE_BTC = BTC_SATS
BUY, SELL = Side.BUY, Side.SELL
TRADERS = ("alice", "bob", "carol", "dave")

__all__ = [
    "BTC_ASSET", "BTC_PERP", "BTC_SATS", "BTC_USD", "ETH_GWEI", "ETH_PERP", "ETH_USD",
    "GENESIS_NS", "QUOTE_ASSET", "START_PRICES", "TRADERS", "USDC", "USDC_ASSET", "USDT_USD",
    "BlockResult",
    "Signer", "Venue", "snapshot",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class RecordedBlock:
    height: int
    timestamp_ns: int
    commands: tuple[Command | AgentSigned | bytes, ...]
    events: tuple[Event, ...]
    root: bytes


@dataclass(slots=True)
class BlockResult:
    prologue: list[Event]
    results: list[list[Event]]  # one list of events per command, in order
    root: bytes
    height: int

    @property
    def events(self) -> list[Event]:
        return [*self.prologue, *(e for r in self.results for e in r)]

    def of(self, index: int) -> list[Event]:
        return self.results[index]

    def rejection(self, index: int) -> CommandRejected | None:
        events = self.results[index]
        if len(events) == 1 and isinstance(events[0], CommandRejected):
            return events[0]
        return None


def snapshot(state: EngineState) -> Any:
    """Everything in the state except the nonce sets, as plain comparable values.

    Books are captured level by level in time priority, so that a lost priority shows up.
    """
    subaccounts = {}
    for subaccount_id, sub in sorted(state.ledger.subaccounts.items()):
        subaccounts[str(subaccount_id)] = {
            **sub.encode(),
            "open_orders": {m: to_plain(o) for m, o in sorted(sub.open_orders.items())},
            "order_ids": sorted((int(k), v) for k, v in sub.order_ids.items()),
            "client_order_ids": sorted(sub.client_order_ids.items()),
        }
    markets = {}
    for market_id, market in sorted(state.markets.items()):
        book = market.book
        sides = {}
        for name, side in (("bids", book._bids), ("asks", book._asks)):
            sides[name] = [
                (price, [o.encode() for o in side.levels[price].values()])
                for price in side.best_first()
            ]
        markets[market_id] = {
            **market.encode(),
            "params": to_plain(market.params),
            "book": sides,
            "triggers": [to_plain(t) for _, t in sorted(market.triggers.items())],
            "expiries": sorted(market.expiries),
        }
    return {
        "counters": state.counters(),
        "subaccounts": subaccounts,
        "system": {str(k): dict(sorted(v.items())) for k, v in sorted(state.ledger.system.items())},
        "markets": markets,
        "oracles": {
            o: {**state.oracles[o].encode(), "twap": list(state.oracles[o].twap_samples)}
            for o in sorted(state.oracles)
        },
        "order_markets": sorted(state.order_markets.items()),
        "assets": {a: to_plain(p) for a, p in sorted(state.assets.items())},
        "oracle_params": {o: to_plain(state.oracles[o].params) for o in sorted(state.oracles)},
        "governance": _governance_snapshot(state),
        "vault": {
            **state.vault.encode(),
            "owners": {a: o.encode() for a, o in sorted(state.vault.owners.items())},
        },
    }


def _governance_snapshot(state: EngineState) -> Any:
    gov = state.governance
    if gov is None:
        return None
    return {
        **gov.encode(),
        "proposals": {i: p.encode() for i, p in sorted(gov.proposals.items())},
        "open": sorted(gov.open_proposals),
        "history": {f"{n}/{t}": [to_plain(c) for c in h] for (n, t), h in gov.history.items()},
        "markets": {m: gov.market_leaf(m) for m in sorted(state.markets)},
    }


class Venue:
    """The default venue, live: genesis done, prices fresh, traders funded."""

    def __init__(
        self,
        *,
        traders: Sequence[str] = TRADERS,
        quote_per_trader: int = 1_000_000 * USDC,
        btc_per_trader: int = 0,
        future_expiry_hours: int = 20,
        block_ns: int = NS_PER_SECOND,
        check: bool = True,
    ) -> None:
        self.spec = default_venue(GENESIS_NS, future_expiry_hours=future_expiry_hours)
        self.engine = Engine(self.spec.venue)
        self.block_ns = block_ns
        self.check = check
        self.now = GENESIS_NS - block_ns  # timestamp of the last block run
        self.prices: dict[OracleId, int] = dict(START_PRICES)
        # Publisher index → the currency it quotes the oracles that convert it in (else USD);
        # its reports are self.prices (USD) divided by that currency's rate in self.prices.
        self.quotes: dict[int, str] = {}
        self.silent: set[int] = set()  # publishers (by index) that have stopped reporting
        self.silent_feeds: set[OracleId] = set()  # oracles no publisher reports any more
        self.publishers = [Signer(a) for a in self.spec.publishers]
        self.relayer = Signer(self.spec.relayer)
        self.operator = Signer(self.spec.operator)
        self.signers: dict[str, Signer] = {n: Signer(address_of(f"trader-{n}")) for n in traders}
        self.next_deposit_id = 1
        self.recorded: list[RecordedBlock] = []
        self.consumed: set[tuple[Address, int]] = set()
        self.funding: list[FundingPaid] = []
        # (before, after) snapshots around each command the last block rejected.
        self.rejected_snapshots: list[tuple[Any, Any]] = []
        genesis = genesis_commands(self.spec)
        self.operator.last_nonce = max(c.nonce for c in genesis)
        self.block(genesis, dt_ns=block_ns, reports=False)
        funding = [self.deposit(n, quote_per_trader) for n in traders if quote_per_trader]
        funding += [self.deposit(n, btc_per_trader, BTC_ASSET) for n in traders if btc_per_trader]
        self.block(funding)  # reports go out in this block ...
        self.block()  # ... and are the index from this one on
        assert all(o.is_usable() for o in self.engine.state.oracles.values())

    # ── Names ───────────────────────────────────────────────────────────────────────────────

    @property
    def state(self) -> EngineState:
        return self.engine.state

    @property
    def future(self) -> MarketId:
        return self.spec.future_market_id

    def address(self, trader: str) -> Address:
        return self.signers[trader].address

    def sub(self, trader: str, number: int = 0) -> SubaccountId:
        return SubaccountId(self.address(trader), number)

    def balance(self, trader: str, asset: str = "USDC", number: int = 0) -> int:
        return self.state.ledger.balance(self.sub(trader, number), AssetId(asset))

    def position(self, trader: str, market: str, number: int = 0) -> tuple[int, int]:
        """(size, cost) of a trader's position; (0, 0) when flat."""
        found = self.state.ledger.subaccounts.get(self.sub(trader, number))
        position = None if found is None else found.positions.get(MarketId(market))
        return (
            (0, 0)
            if position is None
            else (position.size_base_quantums, position.cost_quote_quantums)
        )

    def risk(self, trader: str, number: int = 0) -> Risk:
        return self.engine.risk_of(self.state.ledger.subaccounts[self.sub(trader, number)])

    def index(self, oracle: str = "BTC-USD") -> int:
        return self.state.oracles[OracleId(oracle)].index_price_quantums

    def mark(self, market: str = "BTC-PERP") -> int:
        return self.state.markets[MarketId(market)].mark_price_quantums

    # ── Commands ────────────────────────────────────────────────────────────────────────────

    def _common(self, signer: Signer, expiry_ns: int | None) -> dict[str, Any]:
        expiry = self.now + NS_PER_HOUR if expiry_ns is None else expiry_ns
        return {"signer": signer.address, "nonce": signer.nonce(self.now), "expiry_ns": expiry}

    def deposit(self, trader: str, amount: int, asset: str = "USDC", *, number: int = 0) -> Deposit:
        deposit_id = self.next_deposit_id
        self.next_deposit_id += 1
        return Deposit(
            **self._common(self.relayer, None), deposit_id=deposit_id,
            owner=self.address(trader), subaccount_number=number, asset_id=AssetId(asset),
            amount_quantums=amount,
        )  # fmt: skip

    def withdraw(
        self, trader: str, amount: int, asset: str = "USDC", *, number: int = 0
    ) -> Withdraw:
        return Withdraw(
            **self._common(self.signers[trader], None), subaccount_number=number,
            asset_id=AssetId(asset), amount_quantums=amount,
        )  # fmt: skip

    def transfer(
        self, trader: str, amount: int, asset: str = "USDC", *, source: int = 0, target: int = 1
    ) -> TransferCollateral:
        return TransferCollateral(
            **self._common(self.signers[trader], None), source_number=source,
            target_number=target, asset_id=AssetId(asset), amount_quantums=amount,
        )  # fmt: skip

    def order(
        self,
        trader: str,
        market: str,
        side: Side,
        size: int,
        price: int = 0,
        *,
        number: int = 0,
        expiry_ns: int | None = None,
        **fields: Any,
    ) -> PlaceOrder:
        """A limit GTC order unless ``fields`` say otherwise (order_type, time_in_force, ...)."""
        return PlaceOrder(
            **self._common(self.signers[trader], expiry_ns), subaccount_number=number,
            market_id=MarketId(market), side=side, size_base_quantums=size,
            price_quantums=price, **fields,
        )  # fmt: skip

    def market_order(
        self, trader: str, market: str, side: Side, size: int, *, slippage_ppm: int = 20_000,
        **fields: Any,
    ) -> PlaceOrder:  # fmt: skip
        fields.setdefault("time_in_force", TimeInForce.IOC)
        return self.order(
            trader, market, side, size, order_type=OrderType.MARKET, slippage_ppm=slippage_ppm,
            **fields,
        )  # fmt: skip

    def deposit_insurance(self, trader: str, amount: int, *, number: int = 0) -> DepositInsurance:
        return DepositInsurance(
            **self._common(self.signers[trader], None), subaccount_number=number,
            amount_quantums=amount,
        )  # fmt: skip

    def deposit_vault(self, trader: str, amount: int, *, number: int = 0) -> DepositVault:
        return DepositVault(
            **self._common(self.signers[trader], None), subaccount_number=number,
            amount_quantums=amount,
        )  # fmt: skip

    def withdraw_vault(self, trader: str, shares: int, *, number: int = 0) -> WithdrawVault:
        return WithdrawVault(
            **self._common(self.signers[trader], None), subaccount_number=number, shares=shares,
        )  # fmt: skip

    def cancel(self, trader: str, order_id: int = 0, *, client_order_id: int = 0) -> CancelOrder:
        return CancelOrder(
            **self._common(self.signers[trader], None), subaccount_number=0, order_id=order_id,
            client_order_id=client_order_id,
        )  # fmt: skip

    def cancel_all(self, trader: str, market: str | None = None, *, number: int = 0) -> CancelAll:
        return CancelAll(
            **self._common(self.signers[trader], None), subaccount_number=number,
            market_id=None if market is None else MarketId(market),
        )  # fmt: skip

    def amend(self, trader: str, order_id: int, price: int, size: int) -> AmendOrder:
        return AmendOrder(
            **self._common(self.signers[trader], None), subaccount_number=0, order_id=order_id,
            price_quantums=price, size_base_quantums=size,
        )  # fmt: skip

    def reports(
        self,
        timestamp_ns: int,
        prices: dict[OracleId, int] | None = None,
        *,
        outlier: dict[OracleId, int] | None = None,
    ) -> list[ReportPrices]:
        """One report per publisher for each oracle; ``outlier`` replaces publisher 0's price."""
        prices = self.prices if prices is None else prices
        commands = []
        for index, publisher in enumerate(self.publishers):
            if index in self.silent:
                continue
            reports = []
            for oracle_id in sorted(set(prices) - self.silent_feeds):
                price = prices[oracle_id]
                if index == 0 and outlier and oracle_id in outlier:
                    price = outlier[oracle_id]
                quote, price = self.quoted(index, oracle_id, price)
                reports.append(PriceReport(
                    oracle_id=oracle_id, price_quantums=price,
                    confidence_quantums=price // 2_000, timestamp_ns=timestamp_ns, quote=quote,
                ))  # fmt: skip
            commands.append(ReportPrices(
                signer=publisher.address, nonce=publisher.nonce(timestamp_ns),
                expiry_ns=timestamp_ns + NS_PER_HOUR, reports=tuple(reports),
            ))  # fmt: skip
        return commands

    def quoted(self, index: int, oracle_id: OracleId, usd_price: int) -> tuple[str, int]:
        """(quote, price) of publisher ``index``'s report of ``oracle_id``: in USD, or in the
        publisher's quote currency when the oracle converts it, at the rate in ``self.prices``
        (rounded to the nearest quantum, as a venue quoting in that currency would show it)."""
        quote = self.quotes.get(index, "USD")
        oracle = self.state.oracles.get(oracle_id)
        feed = None if oracle is None else {q.quote: q for q in oracle.params.quotes}.get(quote)
        if feed is None:
            return "USD", usd_price
        rate = self.prices[feed.rate_oracle_id]
        return quote, (2 * usd_price * USDC + rate) // (2 * rate)

    # ── Blocks ──────────────────────────────────────────────────────────────────────────────

    def block(
        self,
        commands: Iterable[Command | AgentSigned | bytes] = (),
        *,
        dt_ns: int | None = None,
        reports: bool = True,
        outlier: dict[OracleId, int] | None = None,
    ) -> BlockResult:
        """Run one block ``dt_ns`` after the last: the commands, then (unless ``reports`` is
        False) every publisher's reports of ``self.prices``, which become the index next block."""
        timestamp = self.now + (self.block_ns if dt_ns is None else dt_ns)
        commands = list(commands)
        user_count = len(commands)
        if reports:
            commands += self.reports(timestamp, outlier=outlier)
        self.rejected_snapshots = []
        height = self.state.height + 1
        positions_before = positions_of(self.state) if self.check else {}
        funding_before = {m: market.funding_index_e9 for m, market in self.state.markets.items()}
        prologue = self.engine.begin_block(height, timestamp)
        self.now = timestamp
        if self.check:
            invariants.check(self.state)
            for event in prologue:  # the protocol's own liquidations only ever reduce
                if isinstance(event, Liquidated):
                    actor = _parse_subaccount(event.subaccount)
                    assert_only_reduced(positions_before.get(actor, {}), self.state, actor)
        self._record_funding(prologue, funding_before)
        results = [self._apply(index, command) for index, command in enumerate(commands)]
        root = self.engine.end_block()
        events = (*prologue, *(e for r in results for e in r))
        self.recorded.append(RecordedBlock(height, timestamp, tuple(commands), events, root))
        return BlockResult(prologue, results[:user_count], root, height)

    def run(self, command: Command, **block_options: Any) -> list[Event]:
        """One command in a block of its own; its events."""
        return self.block([command], **block_options).of(0)

    def settle_prices(self, **prices: int) -> BlockResult:
        """Publish new prices (``BTC_USD=...``) and run blocks until they are the index."""
        for name, price in prices.items():
            self.prices[OracleId(name.replace("_", "-"))] = price
        self.block()
        return self.block()

    def advance(self, duration_ns: int, *, step_ns: int = 5 * NS_PER_SECOND) -> list[Event]:
        """Run blocks ``step_ns`` apart, with fresh reports, for ``duration_ns``; their events."""
        events: list[Event] = []
        for _ in range(duration_ns // step_ns):
            events.extend(self.block(dt_ns=step_ns).prologue)
        return events

    # ── Checks ──────────────────────────────────────────────────────────────────────────────

    def _apply(self, index: int, item: Command | AgentSigned | bytes) -> list[Event]:
        """Apply a command (or its journal bytes, through ``apply_bytes``) with every check."""
        decoded = _decode_or_none(item) if isinstance(item, bytes) else item
        command = decoded.command if isinstance(decoded, AgentSigned) else decoded
        # Nonces belong to the key that signed: the account's, or its agent's.
        signer = decoded.agent if isinstance(decoded, AgentSigned) else None
        if not self.check:
            if isinstance(item, bytes):
                return self.engine.apply_bytes(index, item)
            return self.engine.apply(index, item)
        state = self.state
        before = snapshot(state)
        nonces_before = {signer: list(used) for signer, used in state.nonces.items()}
        risks_before = {
            sid: self.engine.risk_of(sub) for sid, sub in state.ledger.subaccounts.items()
        }
        positions_before = {
            sid: {m: p.size_base_quantums for m, p in sub.positions.items()}
            for sid, sub in state.ledger.subaccounts.items()
        }
        if isinstance(item, bytes):
            events = self.engine.apply_bytes(index, item)
        else:
            events = self.engine.apply(index, item)
        invariants.check(state)
        rejected = (
            events[0] if len(events) == 1 and isinstance(events[0], CommandRejected) else None
        )
        consumed = rejected is None or rejected.nonce_consumed
        if consumed:
            assert command is not None, "undecodable bytes consumed a nonce"
            signer = command.signer if signer is None else signer
            key = (signer, command.nonce)
            assert key not in self.consumed, f"nonce {command.nonce} consumed twice"
            self.consumed.add(key)
            used_before = nonces_before.get(signer, [])
            expected = sorted([*used_before, command.nonce])[-limits.nonces_kept_per_signer :]
            assert state.nonces[signer] == expected
            others = {k: v for k, v in state.nonces.items() if k != signer}
            assert others == {k: v for k, v in nonces_before.items() if k != signer}
        else:
            assert state.nonces == nonces_before, "an unconsumed nonce changed a nonce set"
        if rejected is not None:
            assert rejected.index == index
            after = snapshot(state)
            self.rejected_snapshots.append((before, after))
            if after != before:
                raise AssertionError(_first_difference(before, after))
        else:
            assert command is not None
            self._check_actors(command, events, risks_before, positions_before)
        return events

    def _check_actors(
        self,
        command: Command,
        events: list[Event],
        risks_before: dict[SubaccountId, Risk],
        positions_before: dict[SubaccountId, dict[MarketId, int]],
    ) -> None:
        """Every subaccount that acted meets IM afterwards or only reduced its risk."""
        actors: set[SubaccountId] = set()
        markets: dict[SubaccountId, set[MarketId]] = {}
        for event in events:
            if isinstance(event, OrderFilled):
                for name in (event.maker, event.taker):
                    actor = _parse_subaccount(name)
                    actors.add(actor)
                    markets.setdefault(actor, set()).add(event.market_id)
        match command:
            case PlaceOrder() | AmendOrder():
                actors.add(SubaccountId(command.signer, command.subaccount_number))
            case Withdraw():
                actors.add(SubaccountId(command.signer, command.subaccount_number))
            case TransferCollateral():
                actors.add(SubaccountId(command.signer, command.source_number))
            case BidAuction():
                actors.add(SubaccountId(command.signer, command.subaccount_number))
        liquidated = {_parse_subaccount(e.subaccount) for e in events if isinstance(e, Liquidated)}
        for actor in sorted(liquidated):
            assert_only_reduced(positions_before.get(actor, {}), self.state, actor)
        for actor in sorted(actors - liquidated):
            sub = self.state.ledger.subaccounts.get(actor)
            if sub is None:
                continue
            after = self.engine.risk_of(sub)
            if isinstance(command, Withdraw | TransferCollateral):
                assert after.usable, "collateral left a subaccount on a stale price"
            if after.satisfies_initial:
                continue
            before = risks_before[actor]
            sizes = positions_before.get(actor, {})
            for market_id in markets.get(actor, set()):
                assert is_reducing(sizes.get(market_id, 0), sub.position_size(market_id)), (
                    f"{actor} is below IM and its {market_id} position grew"
                )
            assert reduces_risk(before, after), (
                f"{actor} acted ({type(command).__name__}) and is below IM without reducing risk:"
                f" before {before}, after {after}"
            )

    def _record_funding(self, events: list[Event], index_before: dict[MarketId, int]) -> None:
        """The hour steps the market's index by exactly index × rate, and no index moves
        without a FundingPaid event; what positions owe then sums to zero (invariants)."""
        paid = {e.market_id: e for e in events if isinstance(e, FundingPaid)}
        for market_id, market in self.state.markets.items():
            step = market.funding_index_e9 - index_before.get(market_id, 0)
            event = paid.get(market_id)
            expected = 0 if event is None else event.index_price_quantums * event.rate_ppb
            assert step == expected, (market_id, step, event)
        for event in paid.values():
            assert event.residue_quote_quantums >= 0, event
            self.funding.append(event)

    # ── Replay ──────────────────────────────────────────────────────────────────────────────

    def replay(self, *, from_bytes: bool = True) -> list[tuple[bytes, list[Any]]]:
        """Re-run every recorded block on a fresh engine; (root, encoded events) per block."""
        engine = Engine(self.spec.venue)
        out = []
        for block in self.recorded:
            events = _rerun(engine, block, from_bytes=from_bytes)
            out.append((engine.end_block(), [encode_event(e) for e in events]))
        return out

    def replay_unrooted(self) -> Engine:
        """Re-run every recorded block on a fresh engine, each closed without a root
        (``Engine.close_block``): the engine, its ``state_root`` still to take."""
        engine = Engine(self.spec.venue)
        for block in self.recorded:
            _rerun(engine, block, from_bytes=False)
            engine.close_block()
        return engine

    def recorded_stream(self) -> list[tuple[bytes, list[Any]]]:
        return [(b.root, [encode_event(e) for e in b.events]) for b in self.recorded]


def _rerun(engine: Engine, block: RecordedBlock, *, from_bytes: bool) -> list[Event]:
    """One recorded block's prologue and commands, its events; the block left open."""
    events = engine.begin_block(block.height, block.timestamp_ns)
    for index, command in enumerate(block.commands):
        if isinstance(command, bytes):
            events.extend(engine.apply_bytes(index, command))
        elif from_bytes:
            events.extend(engine.apply_bytes(index, encode_command(command)))
        else:
            events.extend(engine.apply(index, command))
    return events


def positions_of(state: EngineState) -> dict[SubaccountId, dict[MarketId, int]]:
    return {
        sid: {m: p.size_base_quantums for m, p in sub.positions.items()}
        for sid, sub in state.ledger.subaccounts.items()
    }


def assert_only_reduced(
    before: dict[MarketId, int], state: EngineState, subaccount_id: SubaccountId
) -> None:
    """A liquidated subaccount's positions only shrank toward zero, in every market (§16)."""
    subaccount = state.ledger.subaccounts[subaccount_id]
    for market_id in before.keys() | subaccount.positions.keys():
        size_after = subaccount.position_size(market_id)
        assert is_reducing(before.get(market_id, 0), size_after), (
            f"liquidation of {subaccount_id} grew its {market_id} position"
        )


def rejected_reason(events: list[Event]) -> object:
    """The reason of a lone rejection, or the events themselves (so a failure shows them)."""
    if len(events) == 1 and isinstance(events[0], CommandRejected):
        return events[0].reason
    return events


def _decode_or_none(data: bytes) -> Command | AgentSigned | None:
    try:
        return decode_command(data)
    except MalformedCommand:
        return None


def _parse_subaccount(text: str) -> SubaccountId:
    owner, number = text.rsplit("/", 1)
    return SubaccountId(Address(owner), int(number))


def _first_difference(before: Any, after: Any, path: str = "state") -> str:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            if before.get(key) != after.get(key):
                return _first_difference(before.get(key), after.get(key), f"{path}.{key}")
    return (
        f"a rejected command changed {path}: "
        f"{canonical_json_safe(before)} -> {canonical_json_safe(after)}"
    )


def canonical_json_safe(value: Any) -> str:
    try:
        return canonical_json(value).decode()[:400]
    except TypeError:
        return repr(value)[:400]


# ── Assertions shared by the engine tests ───────────────────────────────────────────────────

T = TypeVar("T")


def rejected(
    venue: Venue, command: Command | bytes, reason: RejectReason, *, consumed: bool = True
) -> None:
    """Run ``command`` alone in a block; it must be rejected for ``reason`` and change nothing
    but its signer's nonce set (consumed or not, as said)."""
    signer = None if isinstance(command, bytes) else command.signer
    nonces_before = {k: list(v) for k, v in venue.state.nonces.items()}
    result = venue.block([command], reports=False)
    events = result.of(0)
    assert events == [CommandRejected(index=0, reason=reason, nonce_consumed=consumed)]
    [(before, after)] = venue.rejected_snapshots
    assert before == after
    nonces_after = venue.state.nonces
    if consumed:
        assert signer is not None and not isinstance(command, bytes)
        assert command.nonce in nonces_after[signer]
        assert {k: v for k, v in nonces_after.items() if k != signer} == {
            k: v for k, v in nonces_before.items() if k != signer
        }
    else:
        assert nonces_after == nonces_before


def accepted(venue: Venue, *commands: Command) -> list[list[Event]]:
    """Run ``commands`` in one block; none may be rejected. Their events, per command."""
    result = venue.block(commands)
    for index in range(len(commands)):
        assert result.rejection(index) is None, result.of(index)
    return result.results


def open_long_short(venue: Venue, *, size: int = ONE_BTC, price: int = PRICE) -> None:
    """alice rests an ask on BTC-PERP, bob lifts it: bob long, alice short."""
    accepted(venue, venue.order("alice", BTC_PERP, SELL, size, price))
    accepted(venue, venue.order("bob", BTC_PERP, BUY, size, price))
    assert venue.position("bob", BTC_PERP)[0] == size


def of_type(events: Sequence[Event], kind: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, kind)]


def compiled(module: ModuleType) -> bool:
    """Whether ``module`` was compiled by mypyc (``make compiled``): an extension module."""
    return not (module.__file__ or "").endswith(".py")


def skip_if_compiled(module: ModuleType, what: str) -> None:
    """Skip a test that swaps ``what`` in ``module``: compiled code calls functions and methods
    directly, so a replaced module or class attribute would never be called."""
    if compiled(module):
        pytest.skip(f"{what} cannot be replaced: {module.__name__} is compiled (mypyc)")


def replace_engine_function(
    monkeypatch: pytest.MonkeyPatch, original: Callable[..., Any], replacement: Callable[..., Any]
) -> int:
    """Swap an engine function for ``replacement`` in every engine module that calls it (each
    imports it by name), for one test; returns how many modules were patched. Skipped on the
    compiled build."""
    for name, module in sorted(sys.modules.items()):
        if name.startswith("clearhouse.core.engine") and module is not None:
            skip_if_compiled(module, original.__name__)
    patched = 0
    for name, module in sorted(sys.modules.items()):
        if name.startswith("clearhouse.core.engine") and module is not None:
            for attribute, value in vars(module).items():
                if value is original:
                    monkeypatch.setattr(module, attribute, replacement)
                    patched += 1
    assert patched, f"no engine module calls {original.__name__}"
    return patched
