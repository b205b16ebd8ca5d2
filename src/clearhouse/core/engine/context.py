"""The context every engine module works on, and its plumbing: the one ledger posting
(``transfer``), realized PnL, order ids, events, and the argument checks handlers share.

``Rejected`` is how a handler refuses a command before it mutates anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from sortedcontainers import SortedList

from clearhouse.core import limits, surface
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import (
    QUOTE_ASSET,
    Address,
    AssetId,
    MarketId,
    OracleId,
    OrderId,
    Side,
    SubaccountId,
)
from clearhouse.core.ledger import (
    Subaccount,
    SystemAccount,
    Transfer,
    clearing_account,
)
from clearhouse.core.liquidation import AdlCandidate
from clearhouse.core.margin import (
    MarketRisk,
    Risk,
)
from clearhouse.core.messages import (
    Event,
    Transferred,
)
from clearhouse.core.params import AssetParams, MarginParams, OracleParams
from clearhouse.core.price_bands import PriceBands
from clearhouse.core.scenario_grid import (
    Profile,
    Valuations,
)
from clearhouse.core.state import (
    EngineState,
)
from clearhouse.core.trigger_prices import TriggerPrices


@dataclass(slots=True)
class Touched:
    """What changed in the current block: ``leaves.flush`` folds it into state-root leaves at
    the end of the block, so a block costs what it changed, not the size of the venue."""

    subaccounts: set[SubaccountId] = field(default_factory=set)
    system: set[SystemAccount] = field(default_factory=set)
    markets: set[MarketId] = field(default_factory=set)
    oracles: set[str] = field(default_factory=set)
    orders: set[OrderId] = field(default_factory=set)
    nonces: set[Address] = field(default_factory=set)
    liquidations: set[SubaccountId] = field(default_factory=set)
    modes: set[SubaccountId] = field(default_factory=set)
    series: set[OracleId] = field(default_factory=set)
    agents: set[Address] = field(default_factory=set)
    scheduled_cancels: set[SubaccountId] = field(default_factory=set)
    vault: bool = False  # the vault's totals or quotes
    vault_owners: set[Address] = field(default_factory=set)
    options_vault: bool = False  # the options vault's parameters, totals, quotes or hedge
    options_vault_owners: set[Address] = field(default_factory=set)
    twap_slots: dict[tuple[OracleId, int], tuple[int, int]] = field(default_factory=dict)
    params: dict[bytes, object] = field(default_factory=dict)
    archived: set[MarketId] = field(default_factory=set)  # leaves to delete at block end
    forward_curves: set[OracleId] = field(default_factory=set)
    governance: bool = False  # who governs, the next proposal id
    proposals: set[int] = field(default_factory=set)
    governed_params: set[tuple[str, str]] = field(default_factory=set)  # (name, target)
    governed_markets: set[MarketId] = field(default_factory=set)  # flags, phase-ins, fallbacks


@dataclass(slots=True)
class SurfaceReads:
    """One oracle's fresh surfaces as the block reads them, for one ``surface_version``: the
    candidates in use, each expiry's reads (with the candidates' total weight), every
    volatility taken so far by (expiry, strike, forward), and the publishers' basis taken so
    far by expiry (None: not reported by a quorum, ``forwards.reported_basis_ppm``)."""

    version: int
    params: OracleParams  # the oracle's parameters the candidates were weighted by (identity)
    candidates: list[surface.Candidate]
    expiries: dict[int, tuple[list[tuple[surface.ExpiryRead, int]], int]] = field(
        default_factory=dict
    )
    vols: dict[tuple[int, int, float], float] = field(default_factory=dict)
    bases: dict[int, int | None] = field(default_factory=dict)


# A subaccount's content as margin reads it, the market risks it was taken at (compared by
# identity: ``market_risk`` makes a new one whenever an input moves) and the risk itself.
RememberedRisk = tuple[tuple[object, ...], tuple[tuple[MarketId, MarketRisk], ...], Risk]


# The margins existing positions pay, the IM fraction at them, and at the market's own margins
ImFractions = tuple[MarginParams, int, int]


class CachedMarketRisk(NamedTuple):
    """A market's risk (``risk.market_risk``) with what it was computed from: everything it
    depends on but open interest, the open interest, and what open interest moves in it; and
    the risk with its profile once asked for (``risk.profiled``: a linear market's)."""

    key: tuple[object, ...]
    open_interest_base_quantums: int
    fractions: ImFractions
    risk: MarketRisk
    profiled: MarketRisk | None


@dataclass(slots=True)
class BlockMemo:
    """Values every caller in one block would compute alike (surface reads, Black-76 values
    and Greeks): kept for the block time they were taken at and dropped when it moves, so they
    stay bounded by one block's work. Every key holds all the state the value reads."""

    timestamp_ns: int = -1
    surfaces: dict[str, SurfaceReads] = field(default_factory=dict)
    values: Valuations = field(default_factory=Valuations)
    # Portfolio-mode risks by subaccount (``risk.portfolio_risk``): the last few taken.
    portfolio_risks: dict[SubaccountId, list[RememberedRisk]] = field(default_factory=dict)


@dataclass(slots=True)
class Derived:
    """Indexes and caches derived from committed state: never committed, rebuilt by replay,
    keyed so that two engines in one process never share them."""

    borrowers: set[SubaccountId] = field(default_factory=set)  # quote balance < 0
    deleveraged: list[Subaccount] = field(default_factory=list)  # ADL counterparties this pass
    market_risk_cache: dict[MarketId, CachedMarketRisk] = field(default_factory=dict)
    profile_cache: dict[MarketId, tuple[tuple[object, ...], Profile]] = field(default_factory=dict)
    # per oracle: the median confidence of its reports, taken with this block's index
    confidence: dict[str, int] = field(default_factory=dict)
    memo: BlockMemo = field(default_factory=BlockMemo)
    # Reads between blocks: per (market, closing side), the ADL queue and its ranks, with the
    # (height, block time, mutations) they were ranked at (``insolvency.ranked_adl_queue``).
    adl_queues: dict[
        tuple[MarketId, Side],
        tuple[tuple[int, int, int], list[AdlCandidate], dict[SubaccountId, int]],
    ] = field(default_factory=dict)
    # The liquidation watch (``liquidation/watch.py``): subaccounts whose balances or positions
    # changed since the last pass (insertion-ordered), every holder's price bands, the margin
    # fraction each market's bands assumed at most, and the funding drift they allowed.
    risk_changed: dict[SubaccountId, None] = field(default_factory=dict)
    bands: PriceBands = field(default_factory=PriceBands)
    fraction_caps: dict[MarketId, int] = field(default_factory=dict)
    funding_epochs: dict[MarketId, tuple[int, int]] = field(default_factory=dict)  # (start, drift)
    # Armed triggers by trigger price, per market (``core/trigger_prices.py``)
    trigger_prices: dict[MarketId, TriggerPrices] = field(default_factory=dict)
    # Dead-man's switches by when they fire: (cancel_at_ns, subaccount), ascending, one entry
    # per ``state.scheduled_cancels`` item (``trading/schedule.py``)
    cancel_queue: SortedList = field(default_factory=SortedList)
    # Every key's nonce set by its newest nonce: (newest nonce, key), ascending, one entry per
    # ``state.nonces`` item (``accounts.forget_aged_nonces``)
    nonce_ages: SortedList = field(default_factory=SortedList)


class Context:
    """Everything a handler or block step works on: the state, the events of the command or
    block step under way, what the block touched, and the derived indexes. Only the engine's
    modules receive it; each is a set of plain functions of ``(ctx, ...)``."""

    __slots__ = ("derived", "events", "mutations", "state", "touched", "walked")

    def __init__(self, state: EngineState) -> None:
        self.state = state
        self.events: list[Event] = []
        self.mutations = 0  # handlers validate, then mutate: a rejection after a mutation crashes
        self.touched = Touched()
        self.derived = Derived()
        # Maker orders the matches' plans have met so far (``trades.plan_with_solvent_makers``),
        # ever increasing: what the block's fired triggers spend of their walk budget
        # (``limits.trigger_book_walk_per_block_max``). A count of work, never in state.
        self.walked = 0


def block_memo(ctx: Context) -> BlockMemo:
    """This block's memo (a fresh one once the block time has moved)."""
    memo = ctx.derived.memo
    if memo.timestamp_ns != ctx.state.timestamp_ns:
        memo = ctx.derived.memo = BlockMemo(ctx.state.timestamp_ns)
    return memo


def trigger_prices(ctx: Context, market_id: MarketId) -> TriggerPrices:
    """A market's armed triggers by price: each change to ``MarketState.triggers`` comes here."""
    found = ctx.derived.trigger_prices.get(market_id)
    if found is None:
        found = ctx.derived.trigger_prices[market_id] = TriggerPrices()
    return found


def rebuild_derived(ctx: Context) -> None:
    """Derive the borrowers, the triggers' index, the dead-man's switch queue and the nonce
    sets' ages from the committed state, in one pass over it, for a state that was not built
    by this engine's commands (restored, or written directly). The liquidation watch is
    rebuilt by ``liquidation.watch.rebuild``."""
    ctx.derived = Derived()
    for subaccount_id in sorted(ctx.state.ledger.subaccounts):
        track_borrower(ctx, subaccount_id)
    for market_id, market in sorted(ctx.state.markets.items()):
        for trigger in market.triggers.values():
            trigger_prices(ctx, market_id).add(trigger)
    ctx.derived.cancel_queue.update(
        (at_ns, subaccount_id) for subaccount_id, at_ns in ctx.state.scheduled_cancels.items()
    )
    ctx.derived.nonce_ages.update((used[-1], key) for key, used in ctx.state.nonces.items())


class Rejected(Exception):
    """Raised by handlers before any mutation; turned into a ``CommandRejected`` event."""

    def __init__(self, reason: RejectReason) -> None:
        super().__init__(reason.name)
        self.reason = reason


def listed_asset(ctx: Context, asset_id: AssetId) -> AssetParams:
    found = ctx.state.assets.get(asset_id)
    if found is None:
        raise Rejected(RejectReason.UNKNOWN_ASSET)
    return found


def check_amount(amount: int) -> None:
    if not 0 < amount <= limits.amount_quantums_max:
        raise Rejected(RejectReason.AMOUNT_NOT_POSITIVE)


def check_subaccount_number(number: int) -> None:
    if not 0 <= number < limits.subaccounts_per_account_max:
        raise Rejected(RejectReason.MALFORMED_COMMAND)


def pay_pnl(ctx: Context, market_id: MarketId, subaccount_id: SubaccountId, pnl: int) -> None:
    clearing = clearing_account(market_id)
    if pnl > 0:
        transfer(ctx, clearing, subaccount_id, QUOTE_ASSET, pnl, "realized pnl")
    elif pnl < 0:
        transfer(ctx, subaccount_id, clearing, QUOTE_ASSET, -pnl, "realized pnl")


def transfer(
    ctx: Context,
    source: SubaccountId | SystemAccount,
    target: SubaccountId | SystemAccount,
    asset_id: AssetId,
    amount: int,
    cause: str,
) -> None:
    ctx.state.ledger.apply(Transfer(source, target, asset_id, amount))
    for account in (source, target):
        if isinstance(account, SystemAccount):
            ctx.touched.system.add(account)
        else:
            ctx.touched.subaccounts.add(account)
            ctx.derived.risk_changed[account] = None
            if asset_id == QUOTE_ASSET:
                track_borrower(ctx, account)
    ctx.events.append(Transferred(
        source=str(source), target=str(target), asset_id=asset_id, amount_quantums=amount,
        cause=cause,
    ))  # fmt: skip


def track_borrower(ctx: Context, subaccount_id: SubaccountId) -> None:
    """Keep the set of subaccounts owing quote (derived state, rebuilt by replay)."""
    if ctx.state.ledger.balance(subaccount_id, QUOTE_ASSET) < 0:
        ctx.derived.borrowers.add(subaccount_id)
    else:
        ctx.derived.borrowers.discard(subaccount_id)


def mutated(ctx: Context) -> None:
    ctx.mutations += 1


def next_order_id(ctx: Context) -> OrderId:
    order_id = OrderId(ctx.state.next_order_id)
    ctx.state.next_order_id += 1
    return order_id


def take_events(ctx: Context) -> list[Event]:
    events, ctx.events = ctx.events, []
    return events


def with_balance(subaccount: Subaccount, asset_id: AssetId, amount: int) -> Subaccount:
    balances = {**subaccount.balances, asset_id: amount}
    return Subaccount(
        subaccount.subaccount_id, balances, subaccount.positions, subaccount.open_orders,
        subaccount.order_ids, subaccount.client_order_ids,
    )  # fmt: skip
