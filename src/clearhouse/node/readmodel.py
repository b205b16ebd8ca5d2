"""What the API reads besides live state: trades, candles, order history, liquidations, funding
payments, each subaccount's history, governance's events (every parameter change among them)
and the result of every command, derived from blocks' events alone (so replay rebuilds it
exactly).

All of it is in memory and bounded by the ``*_KEPT`` limits below; older items are dropped,
never paged from disk. The account history keeps the newest HISTORY_PER_SUBACCOUNT_KEPT items
of the HISTORY_SUBACCOUNTS_KEPT most recently active subaccounts (at most 10**7 items, a few
GB in the worst case of every subaccount full; a few hundred bytes per item in practice): a
client that needs more reads blocks (``/v1/blocks/{height}``) or replays the journal."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from clearhouse.core.block import ExecutedBlock
from clearhouse.core.codec import decode_command, encode_event
from clearhouse.core.hashing import keccak
from clearhouse.core.ids import OrderId, Side, SubaccountId
from clearhouse.core.messages import (
    AgentSigned,
    AmendOrder,
    AuctionEnded,
    AuctionStarted,
    CancelCause,
    CommandRejected,
    Deleveraged,
    Event,
    FundingPaid,
    GovernanceConfigured,
    InsuranceDrawn,
    Liquidated,
    LiquidationReceipt,
    MarketFlagsChanged,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderFilled,
    OrderRested,
    ParamChanged,
    PlaceOrder,
    ProposalChanged,
    SettlementDisputed,
    SettlementPriceProposed,
    Transferred,
)
from clearhouse.core.units import NS_PER_MINUTE, NS_PER_MS

TRADES_KEPT = 1_000  # per market
CANDLES_KEPT = 1_440  # one-minute candles per market: a day
ORDERS_KEPT = 100_000  # order histories (open and recently closed)
RESULTS_KEPT = 100_000  # command results: the idempotency window (older: the nonce refuses)
LIQUIDATIONS_KEPT = 1_000
HEADERS_KEPT = 10_000
HISTORY_PER_SUBACCOUNT_KEPT = 1_000  # fills, funding, liquidations, ADL, transfers
HISTORY_SUBACCOUNTS_KEPT = 10_000  # the least recently active subaccount's history goes first
FUNDING_KEPT = 1_000  # funding payments per market: 41 days of hourly payments
# Governance (SPEC §10): its events, newest kept (a proposal's steps, role and flag changes,
# fallback prices); parameter changes kept apart and longer, since the API serves their whole
# history and they are rare (each parameter moves at most once per cooldown, but for votes and
# the guardian's tightening).
GOVERNANCE_EVENTS_KEPT = 10_000
PARAM_CHANGES_KEPT = 100_000
GOVERNANCE_EVENTS = (
    GovernanceConfigured, ProposalChanged, ParamChanged, MarketFlagsChanged,
    SettlementPriceProposed, SettlementDisputed,
)  # fmt: skip
CANDLE_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "1h": 60, "4h": 240, "1d": 1_440}
_PLACE_ORDER = b'"type":"PlaceOrder"'  # canonical JSON: a cheap test before decoding
_AMEND_ORDER = b'"type":"AmendOrder"'


def command_key(command_bytes: bytes) -> bytes:
    """A command's identity for idempotent submission: the hash of its journal bytes (the same
    signed command sent twice has the same bytes, whatever the transport did)."""
    return keccak(command_bytes)


@dataclass(frozen=True, slots=True)
class CommandResult:
    height: int
    index: int
    block_hash: str
    timestamp_ns: int
    events: tuple[Event, ...]
    order_id: int | None = None  # a PlaceOrder's new order

    @property
    def rejection(self) -> CommandRejected | None:
        first = self.events[0] if self.events else None
        return first if isinstance(first, CommandRejected) else None

    def to_json(self) -> dict[str, Any]:
        rejected = self.rejection
        body: dict[str, Any] = {
            "status": "rejected" if rejected else "accepted",
            "height": self.height,
            "index": self.index,
            "block_hash": self.block_hash,
            "timestamp_ns": self.timestamp_ns,
            "timestamp_ms": self.timestamp_ns // NS_PER_MS,
            "events": [encode_event(e) for e in self.events],
        }
        if self.order_id is not None:
            body["order_id"] = self.order_id
        if rejected is not None:
            body["code"] = rejected.reason.name
            body["nonce_consumed"] = rejected.nonce_consumed
        return body


@dataclass(slots=True)
class Candle:
    open_quantums: int
    high_quantums: int
    low_quantums: int
    close_quantums: int
    volume_base_quantums: int = 0
    trades: int = 0

    def add(self, price: int, size: int) -> None:
        self.high_quantums = max(self.high_quantums, price)
        self.low_quantums = min(self.low_quantums, price)
        self.close_quantums = price
        self.volume_base_quantums += size
        self.trades += 1


@dataclass(slots=True)
class BlockUpdate:
    """What one block changed, for the streams: trades per market and events per account."""

    height: int
    timestamp_ns: int
    trades: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    accounts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    books_touched: set[str] = field(default_factory=set)
    # Every account whose state the block may have changed: the events' and the signers' of
    # its commands (an agent authorized, a margin mode set: no event names an account's
    # subaccount) — what a cached view of an account must not outlive (``viewcache``).
    owners: set[str] = field(default_factory=set)
    governance: list[dict[str, Any]] = field(default_factory=list)  # the block's, as recorded


@dataclass(slots=True)
class ReadModel:
    trades: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)
    candles: dict[str, OrderedDict[int, Candle]] = field(default_factory=dict)
    orders: OrderedDict[int, dict[str, Any]] = field(default_factory=OrderedDict)
    client_orders: OrderedDict[tuple[str, int], int] = field(default_factory=OrderedDict)
    liquidations: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=LIQUIDATIONS_KEPT)
    )
    results: OrderedDict[bytes, CommandResult] = field(default_factory=OrderedDict)
    headers: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=HEADERS_KEPT))
    commands_total: int = 0
    # Candles of 5m and longer, per interval (minutes) and market, keyed by their first minute.
    bars: dict[int, dict[str, OrderedDict[int, Candle]]] = field(default_factory=dict)
    funding: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)
    history: OrderedDict[str, deque[dict[str, Any]]] = field(default_factory=OrderedDict)
    history_items: int = 0  # items ever recorded: the next item's cursor
    governance: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=GOVERNANCE_EVENTS_KEPT)
    )
    param_changes: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=PARAM_CHANGES_KEPT)
    )
    governance_items: int = 0  # governance events ever recorded: the next one's cursor

    def apply(
        self, executed: ExecutedBlock, commands: Sequence[bytes], block_hash: bytes
    ) -> tuple[BlockUpdate, list[CommandResult]]:
        """Fold one durable block in; returns its stream update and each command's result."""
        header = executed.header
        update = BlockUpdate(header.height, header.timestamp_ns)
        self.headers.append({**_header_json(executed), "block_hash": "0x" + block_hash.hex()})
        for event in executed.events[: executed.prologue_events]:
            self._observe(event, update)
        results: list[CommandResult] = []
        for index, (data, outcome) in enumerate(zip(commands, executed.outcomes, strict=True)):
            order_id = None
            if _PLACE_ORDER in data:
                order_id = self._placed(data, outcome, update)
            elif _AMEND_ORDER in data:
                order_id = self._amended(data, outcome, update)
            result = CommandResult(header.height, index, "0x" + block_hash.hex(),
                                   header.timestamp_ns, outcome, order_id)  # fmt: skip
            results.append(result)
            self._remember(command_key(data), result)
            for event in outcome:
                self._observe(event, update)
        self.commands_total += len(commands)
        return update, results

    def result(self, key: bytes) -> CommandResult | None:
        return self.results.get(key)

    def _remember(self, key: bytes, result: CommandResult) -> None:
        # The first result of a key stands: a byte-identical resubmission that reached a block
        # anyway (it was in flight twice) was rejected there as a used nonce.
        if key not in self.results:
            self.results[key] = result
            if len(self.results) > RESULTS_KEPT:
                self.results.popitem(last=False)

    def _observe(self, event: Event, update: BlockUpdate) -> None:
        self._record(event, update)
        if isinstance(event, GOVERNANCE_EVENTS):
            self._governed(event, update)
        elif isinstance(event, OrderFilled):
            self._fill(event, update)
        elif isinstance(event, OrderAccepted) and int(event.order_id) not in self.orders:
            self._accepted(event, update)
        elif isinstance(event, OrderRested | OrderCancelled | OrderAmended):
            self._order_change(event, update)
        elif isinstance(event, Liquidated | LiquidationReceipt | AuctionStarted):
            entry = {"height": update.height, "timestamp_ns": update.timestamp_ns,
                     **encode_event(event)}  # fmt: skip
            self.liquidations.append(entry)
            _to_account(update, event.subaccount, entry)
        elif isinstance(event, Transferred):
            plain = {**encode_event(event), "height": update.height}
            for party in {event.source, event.target}:
                if "/" in party:  # a subaccount, not a system account
                    _to_account(update, party, plain)

    def _record(self, event: Event, update: BlockUpdate) -> None:
        """The history items an event makes: one per subaccount it concerns."""
        if isinstance(event, FundingPaid):
            point = {"height": update.height, "timestamp_ns": update.timestamp_ns,
                     "rate_ppb": event.rate_ppb, **encode_event(event)}  # fmt: skip
            self.funding.setdefault(event.market_id, deque(maxlen=FUNDING_KEPT)).append(point)
            return
        found = history_of(event)
        if found is None:
            return
        category, parties = found
        for party in sorted(p for p in set(parties) if "/" in p):  # subaccounts, not the system
            self.history_items += 1
            item = {"cursor": str(self.history_items), "category": category,
                    "height": update.height, "timestamp_ns": update.timestamp_ns,
                    **encode_event(event)}  # fmt: skip
            kept = self.history.get(party)
            if kept is None:
                kept = self.history[party] = deque(maxlen=HISTORY_PER_SUBACCOUNT_KEPT)
                if len(self.history) > HISTORY_SUBACCOUNTS_KEPT:
                    self.history.popitem(last=False)
            self.history.move_to_end(party)
            kept.append(item)

    def history_page(
        self, subaccount: str, cursor: int | None, limit: int, category: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Items older than ``cursor`` (all when None), newest first, at most ``limit``; and
        the cursor of the next page (None when nothing older is kept)."""
        return page_of(
            reversed(self.history.get(subaccount, ())), cursor, limit,
            lambda item: category is None or item["category"] == category,
        )  # fmt: skip

    def _governed(self, event: Event, update: BlockUpdate) -> None:
        self.governance_items += 1
        item = {"cursor": str(self.governance_items), "height": update.height,
                "timestamp_ns": update.timestamp_ns, **encode_event(event)}  # fmt: skip
        self.governance.append(item)
        update.governance.append(item)
        if isinstance(event, ParamChanged):
            self.param_changes.append(item)

    def param_history_page(
        self, name: str | None, target: str | None, cursor: int | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Parameter changes (of ``name``, of ``target``: all when None), as ``history_page``."""
        return page_of(
            reversed(self.param_changes), cursor, limit,
            lambda item: name in (None, item["name"]) and target in (None, item["target"]),
        )  # fmt: skip

    def governance_page(
        self, cursor: int | None, limit: int, proposal_id: int | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Governance events (one proposal's steps only, with ``proposal_id``), likewise."""
        return page_of(
            reversed(self.governance), cursor, limit,
            lambda item: proposal_id is None or (
                item["type"] == "ProposalChanged" and item["proposal_id"] == proposal_id
            ),
        )  # fmt: skip

    def _placed(self, data: bytes, outcome: Sequence[Event], update: BlockUpdate) -> int | None:
        """Open an order's history from its command: the engine's events name only its id
        (except for a conditional order, whose OrderAccepted says everything)."""
        order_id = new_order_id(outcome)
        if order_id is None:
            return None
        item = decode_command(data)
        command = item.command if isinstance(item, AgentSigned) else item
        if not isinstance(command, PlaceOrder):
            return None
        if any(isinstance(e, OrderAccepted) for e in outcome):
            return order_id  # a conditional order: its OrderAccepted opens the history
        owner = SubaccountId(command.signer, command.subaccount_number)
        self._accepted(
            OrderAccepted(
                order_id=OrderId(order_id),
                subaccount=str(owner),
                market_id=command.market_id,
                side=command.side,
                price_quantums=command.price_quantums,
                size_base_quantums=command.size_base_quantums,
                client_order_id=command.client_order_id,
            ),
            update,
        )
        return order_id

    def _amended(self, data: bytes, outcome: Sequence[Event], update: BlockUpdate) -> int | None:
        """An amendment that could not keep priority cancels the order and places another
        (same owner, side and client id, the amendment's price and size); open the new one's
        history from the old one's."""
        replaced = next(
            (e for e in outcome
             if isinstance(e, OrderCancelled) and e.cause is CancelCause.AMENDED),
            None,
        )  # fmt: skip
        if replaced is None:
            return None  # kept its priority: OrderAmended updates it
        item = decode_command(data)
        command = item.command if isinstance(item, AgentSigned) else item
        old = self.orders.get(int(replaced.order_id))
        new_id = new_order_id([e for e in outcome if e is not replaced])
        if old is None or new_id is None or not isinstance(command, AmendOrder):
            update.books_touched.add("*")
            return new_id
        self._accepted(
            OrderAccepted(
                order_id=OrderId(new_id),
                subaccount=old["subaccount"],
                market_id=old["market_id"],
                side=Side[old["side"].upper()],
                price_quantums=command.price_quantums,
                size_base_quantums=command.size_base_quantums,
                client_order_id=old["client_order_id"],
            ),
            update,
        )
        return new_id

    def _accepted(self, event: OrderAccepted, update: BlockUpdate) -> None:
        order = {
            "order_id": int(event.order_id), "subaccount": event.subaccount,
            "market_id": event.market_id, "side": event.side.name.lower(),
            "price_quantums": event.price_quantums,
            "size_base_quantums": event.size_base_quantums,
            "filled_base_quantums": 0, "remaining_base_quantums": event.size_base_quantums,
            "client_order_id": event.client_order_id, "status": "accepted",
            "height": update.height,
        }  # fmt: skip
        self.orders[int(event.order_id)] = order
        if len(self.orders) > ORDERS_KEPT:
            self.orders.popitem(last=False)
        if event.client_order_id:
            key = (event.subaccount, event.client_order_id)
            self.client_orders[key] = int(event.order_id)
            self.client_orders.move_to_end(key)
            if len(self.client_orders) > ORDERS_KEPT:
                self.client_orders.popitem(last=False)
        update.books_touched.add(event.market_id)
        _to_account(update, event.subaccount, {"type": "order", "order": dict(order)})

    def _order_change(
        self, event: OrderRested | OrderCancelled | OrderAmended, update: BlockUpdate
    ) -> None:
        old = self.orders.get(int(event.order_id))
        if old is None:  # evicted from the window: its market is unknown here
            update.books_touched.add("*")
            return
        if isinstance(event, OrderRested):
            changes: dict[str, Any] = {
                "status": "open",
                "remaining_base_quantums": event.remaining_base_quantums,
            }
        elif isinstance(event, OrderCancelled):
            changes = {
                "status": "cancelled",
                "cancel_cause": event.cause.name.lower(),
                "remaining_base_quantums": 0,
            }
        else:  # amended in place: the new size is what remains
            changes = {
                "price_quantums": event.price_quantums,
                "remaining_base_quantums": event.size_base_quantums,
                "size_base_quantums": old["filled_base_quantums"] + event.size_base_quantums,
            }
        self._replace(old, changes, update)  # fmt: skip

    def _replace(self, old: dict[str, Any], changes: dict[str, Any], update: BlockUpdate) -> None:
        """Orders are replaced, never changed in place: a reader holding one (the API, without
        the lock) never sees it half-updated."""
        order = {**old, **changes}
        self.orders[order["order_id"]] = order
        update.books_touched.add(order["market_id"])
        _to_account(update, order["subaccount"], {"type": "order", "order": order})

    def _fill(self, event: OrderFilled, update: BlockUpdate) -> None:
        trade = {
            "trade_id": int(event.trade_id), "market_id": event.market_id,
            "price_quantums": event.price_quantums, "size_base_quantums": event.size_base_quantums,
            "taker_side": event.taker_side.name.lower(), "height": update.height,
            "timestamp_ns": update.timestamp_ns,
        }  # fmt: skip
        self.trades.setdefault(event.market_id, deque(maxlen=TRADES_KEPT)).append(trade)
        update.trades.setdefault(event.market_id, []).append(trade)
        update.books_touched.add(event.market_id)
        self._candle(event.market_id, update.timestamp_ns, event)
        for order_id in (event.maker_order_id, event.taker_order_id):
            old = self.orders.get(int(order_id))
            if old is not None:
                filled = old["filled_base_quantums"] + event.size_base_quantums
                remaining = max(0, old["size_base_quantums"] - filled)
                self._replace(old, {"filled_base_quantums": filled,
                                    "remaining_base_quantums": remaining,
                                    "status": "filled" if remaining == 0 else "open"},
                              update)  # fmt: skip
        fill = {**encode_event(event), "height": update.height}
        for party in {event.maker, event.taker}:
            _to_account(update, party, fill)

    def _candle(self, market_id: str, timestamp_ns: int, fill: OrderFilled) -> None:
        minute = timestamp_ns // NS_PER_MINUTE
        _add_to(self.candles.setdefault(market_id, OrderedDict()), minute, fill)
        for minutes in CANDLE_MINUTES.values():
            if minutes > 1:
                series = self.bars.setdefault(minutes, {}).setdefault(market_id, OrderedDict())
                _add_to(series, minute - minute % minutes, fill)


def _add_to(series: OrderedDict[int, Candle], minute: int, fill: OrderFilled) -> None:
    """Fold a fill into the candle starting at ``minute``; the oldest goes past CANDLES_KEPT."""
    candle = series.get(minute)
    if candle is None:
        price = fill.price_quantums
        candle = series[minute] = Candle(price, price, price, price)
        if len(series) > CANDLES_KEPT:
            series.popitem(last=False)
    candle.add(fill.price_quantums, fill.size_base_quantums)


def page_of(
    newest_first: Iterable[dict[str, Any]], cursor: int | None, limit: int,
    keep: Callable[[dict[str, Any]], bool],
) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
    """The kept items older than ``cursor`` (all when None), newest first, at most ``limit``;
    and the cursor of the next page (None when nothing older is kept). Cursors are the items'
    order of arrival, so a page stays put while newer items arrive."""
    page: list[dict[str, Any]] = []
    for item in newest_first:
        if cursor is not None and int(item["cursor"]) >= cursor:
            continue
        if not keep(item):
            continue
        if len(page) == limit:
            return page, page[-1]["cursor"]
        page.append(item)
    return page, None


def history_of(event: Event) -> tuple[str, tuple[str, ...]] | None:
    """An event's history category and the accounts it concerns; None if it is in no history
    (order events are in the order history; funding settles as a ``funding`` transfer)."""
    if isinstance(event, OrderFilled):
        return "fill", (event.maker, event.taker)
    if isinstance(event, Transferred):
        category = "funding" if event.cause == "funding" else "transfer"
        return category, (event.source, event.target)
    if isinstance(event, Deleveraged):
        return "adl", (event.subaccount, event.counterparty)
    if isinstance(
        event, Liquidated | LiquidationReceipt | AuctionStarted | AuctionEnded | InsuranceDrawn
    ):
        return "liquidation", (event.subaccount,)
    return None


def new_order_id(outcome: Sequence[Event]) -> int | None:
    """The id a PlaceOrder got, from its own events: the taker of its fills, or the order that
    rested, or else the newest id it cancelled (itself: self-trade prevention cancels only
    older orders). None if it was rejected."""
    cancelled: list[int] = []
    for event in outcome:
        if isinstance(event, CommandRejected):
            return None
        if isinstance(event, OrderAccepted | OrderRested):
            return int(event.order_id)
        if isinstance(event, OrderFilled):
            return int(event.taker_order_id)
        if isinstance(event, OrderCancelled):
            cancelled.append(int(event.order_id))
    return max(cancelled, default=None)


def _to_account(update: BlockUpdate, subaccount: str, item: dict[str, Any]) -> None:
    owner = subaccount.split("/", 1)[0]
    update.accounts.setdefault(owner, []).append(item)


def _header_json(executed: ExecutedBlock) -> dict[str, Any]:
    header = executed.header
    return {
        "height": header.height,
        "timestamp_ns": header.timestamp_ns,
        "parent_hash": "0x" + header.parent_hash.hex(),
        "commands_hash": "0x" + header.commands_hash.hex(),
        "events_hash": "0x" + header.events_hash.hex(),
        "state_root": "0x" + header.state_root.hex(),
        "commands": len(executed.outcomes),
    }
