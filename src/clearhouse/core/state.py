"""The whole state of a venue, and its canonical encoding into state-root leaves.

Only ``clearhouse.core.engine`` mutates these objects. Every field is an integer, a string, a
bool or a container of them: no float ever reaches state.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from enum import IntEnum

from clearhouse.core.codec import canonical_json, to_plain
from clearhouse.core.governance import ProposalStatus
from clearhouse.core.ids import Address, AssetId, MarketId, OracleId, OrderId, Side, SubaccountId
from clearhouse.core.ledger import Ledger, SystemAccount
from clearhouse.core.matching import OrderBook
from clearhouse.core.merkle import StateTree
from clearhouse.core.messages import GovAction, OrderType, TimeInForce
from clearhouse.core.oracle import OracleState
from clearhouse.core.params import (
    AssetParams,
    GovernanceParams,
    MarketParams,
    OptionSeriesParams,
    OptionsVaultParams,
    VenueParams,
)
from clearhouse.core.units import PPM_ONE


class MarketStatus(IntEnum):
    ACTIVE = 1
    EXPIRED = 2  # past expiry: no trading; settlement waits for a good TWAP
    SETTLED = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerOrder:
    """A stop or take-profit order waiting for the mark to cross its trigger price."""

    order_id: OrderId
    owner: SubaccountId
    market_id: MarketId
    side: Side
    order_type: OrderType
    size_base_quantums: int
    price_quantums: int
    trigger_price_quantums: int
    time_in_force: TimeInForce
    reduce_only: bool
    slippage_ppm: int
    good_til_ns: int
    client_order_id: int

    @property
    def fires_rising(self) -> bool:
        """Stops fire when the mark moves against the position they protect (a buy stop when the
        mark rises to the trigger); take-profits when it moves in favour."""
        is_stop = self.order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
        return (self.side is Side.BUY) == is_stop

    def fires_at(self, mark_price_quantums: int) -> bool:
        if self.fires_rising:
            return mark_price_quantums >= self.trigger_price_quantums
        return mark_price_quantums <= self.trigger_price_quantums


@dataclass(slots=True)
class Auction:
    """A Dutch auction of a position the book could not absorb (§7 step 3)."""

    market_id: MarketId
    started_ns: int
    size_base_quantums: int  # what is left to bid for
    elapsed_ns: int = 0  # block time on usable prices, up to seen_ns: what the discount ramps on
    seen_ns: int = 0  # when the pass last looked at it

    def age_ns(self, now_ns: int) -> int:
        """How long the auction has run on usable prices."""
        return self.elapsed_ns + max(now_ns - self.seen_ns, 0)


PORTFOLIO_AUCTION = MarketId("*")  # an auction of a proportional slice of every position


@dataclass(slots=True)
class OptionSeries:
    """Default listing of one underlying's options, and the expiries it has listed."""

    params: OptionSeriesParams
    listed_expiries: list[int] = field(default_factory=list)  # sorted

    def encode(self) -> dict[str, object]:
        return {"params": to_plain(self.params), "listed": list(self.listed_expiries)}


@dataclass(slots=True)
class LiquidationStatus:
    """A subaccount below maintenance margin: since when, and its auction if one is open."""

    since_ns: int
    auction: Auction | None = None
    closed_window_ns: int = 0  # the window of the last book close, and what it closed in it:
    closed_base_quantums: int = 0  # the per-window cap holds across keepers and the protocol

    def closed_in(self, window_ns: int) -> int:
        return self.closed_base_quantums if self.closed_window_ns == window_ns else 0

    def encode(self) -> dict[str, object]:
        auction = self.auction
        return {
            "since": self.since_ns,
            "closed": [self.closed_window_ns, self.closed_base_quantums],
            "auction": None
            if auction is None
            else [
                auction.market_id,
                auction.started_ns,
                auction.size_base_quantums,
                auction.elapsed_ns,
                auction.seen_ns,
            ],
        }


@dataclass(slots=True)
class MarketState:
    params: MarketParams
    book: OrderBook = field(default_factory=OrderBook)
    triggers: dict[OrderId, TriggerOrder] = field(default_factory=dict)
    expiries: list[tuple[int, OrderId]] = field(default_factory=list)  # heap of (good_til, id)
    holders: dict[SubaccountId, None] = field(default_factory=dict)  # insertion-ordered set
    status: MarketStatus = MarketStatus.ACTIVE
    mark_price_quantums: int = 0
    ema_basis_quantums: int = 0
    basis_sampled_ns: int = 0  # block time of the last basis and premium sample (0: none yet)
    open_interest_base_quantums: int = 0  # summed long sizes == summed short sizes
    vol_multiplier_ppm: int = PPM_ONE
    vol_multiplier_updated_ns: int = 0
    premium_time_ppb_ns: int = 0  # Σ premium × the block time it stood for, this interval
    premium_time_ns: int = 0  # Σ that block time
    next_funding_ns: int = 0
    cumulative_funding_ppb: int = 0  # Σ hourly rates, informational
    funding_index_e9: int = 0  # Σ index × rate: what a whole unit of a long has paid, × 10⁹
    last_trade_price_quantums: int = 0
    settlement_price_quantums: int = 0
    insurance_draw_window_ns: int = 0  # the window of the last draw, and its total so far
    insurance_drawn_quote_quantums: int = 0
    underwater_count: int = 0  # holders with equity < 0 at the last liquidation pass
    fund_unwound_window_ns: int = 0  # the window of the fund book's last unwind, and what it
    fund_unwound_base_quantums: int = 0  # closed in it (the close cap holds for the fund too)
    risk_forward_quantums: int = 0  # options: the forward and time the scenario profile was
    risk_timestamp_ns: int = 0  # revalued at (SPAN's risk arrays, refreshed on a move or 5 min)
    risk_vol_ppm: int = 0  # ...with the realized volatility of that moment
    risk_surface_version: int = 0  # ...and the surfaces of that moment

    def insurance_drawn_in(self, window_ns: int) -> int:
        return (
            self.insurance_drawn_quote_quantums if self.insurance_draw_window_ns == window_ns else 0
        )

    def push_expiry(self, good_til_ns: int, order_id: OrderId) -> None:
        heapq.heappush(self.expiries, (good_til_ns, order_id))

    def compact_expiries(self) -> None:
        """Drop heap entries of orders that already left (filled or cancelled), so the heap
        stays bounded by the live orders rather than by every order ever placed."""
        live = [
            (good_til, order_id)
            for good_til, order_id in self.expiries
            if order_id in self.book or order_id in self.triggers
        ]
        heapq.heapify(live)
        self.expiries = live

    def leaf(self) -> bytes:
        """``encode_leaf(self.encode())`` written out: the market leaf is re-encoded for every
        market in every block, and these are the same bytes (sorted keys, compact, decimal
        integers) without building the dict and sorting its keys (a test compares the two)."""
        return _MARKET_LEAF % (
            self.cumulative_funding_ppb, self.ema_basis_quantums, self.basis_sampled_ns,
            self.fund_unwound_window_ns, self.fund_unwound_base_quantums, self.funding_index_e9,
            self.insurance_draw_window_ns, self.insurance_drawn_quote_quantums,
            self.last_trade_price_quantums, self.mark_price_quantums, self.next_funding_ns,
            self.premium_time_ppb_ns, self.premium_time_ns,
            self.risk_forward_quantums, self.risk_timestamp_ns, self.risk_vol_ppm,
            self.risk_surface_version,
            self.settlement_price_quantums, int(self.status), self.underwater_count,
            self.vol_multiplier_ppm, self.vol_multiplier_updated_ns,
        )  # fmt: skip

    def encode(self) -> dict[str, object]:
        return {
            "status": int(self.status),
            "mark": self.mark_price_quantums,
            "ema_basis": [self.ema_basis_quantums, self.basis_sampled_ns],
            "vol_multiplier_ppm": self.vol_multiplier_ppm,
            "vol_multiplier_updated_ns": self.vol_multiplier_updated_ns,
            "premium": [self.premium_time_ppb_ns, self.premium_time_ns],
            "next_funding_ns": self.next_funding_ns,
            "cumulative_funding_ppb": self.cumulative_funding_ppb,
            "funding_index": self.funding_index_e9,
            "last_trade": self.last_trade_price_quantums,
            "settlement": self.settlement_price_quantums,
            "insurance_draw": [self.insurance_draw_window_ns, self.insurance_drawn_quote_quantums],
            "underwater": self.underwater_count,
            "fund_unwound": [self.fund_unwound_window_ns, self.fund_unwound_base_quantums],
            "risk_at": [
                self.risk_forward_quantums,
                self.risk_timestamp_ns,
                self.risk_vol_ppm,
                self.risk_surface_version,
            ],
        }


_MARKET_LEAF = (
    b'{"cumulative_funding_ppb":%d,"ema_basis":[%d,%d],"fund_unwound":[%d,%d],'
    b'"funding_index":%d,"insurance_draw":[%d,%d],"last_trade":%d,"mark":%d,'
    b'"next_funding_ns":%d,"premium":[%d,%d],"risk_at":[%d,%d,%d,%d],"settlement":%d,'
    b'"status":%d,"underwater":%d,"vol_multiplier_ppm":%d,"vol_multiplier_updated_ns":%d}'
)


@dataclass(slots=True)
class VaultOwner:
    """One depositor's vault shares, and when it last deposited (the lock-up runs from it)."""

    shares: int = 0
    last_deposit_ns: int = 0

    def encode(self) -> list[int]:
        return [self.shares, self.last_deposit_ns]


@dataclass(slots=True)
class VaultQuote:
    """The vault's standing quote in one market and what it was made from: the mark, the
    block time and the vault's position then (a requote happens only when one of them moved
    enough, or an order left the book). An order id of 0: no order on that side."""

    bid_order_id: int = 0
    ask_order_id: int = 0
    mark_price_quantums: int = 0
    quoted_ns: int = 0
    position_base_quantums: int = 0

    def encode(self) -> list[int]:
        return [
            self.bid_order_id, self.ask_order_id, self.mark_price_quantums, self.quoted_ns,
            self.position_base_quantums,
        ]  # fmt: skip


@dataclass(slots=True)
class VaultState:
    """The market-making vault's shares (SPEC §11). Its NAV is the equity of the ``VAULT``
    subaccount; ``total_shares`` is the sum of every owner's shares."""

    total_shares: int = 0
    owners: dict[Address, VaultOwner] = field(default_factory=dict)
    quotes: dict[MarketId, VaultQuote] = field(default_factory=dict)

    def encode(self) -> dict[str, object]:
        return {
            "total_shares": self.total_shares,
            "quotes": {m: self.quotes[m].encode() for m in sorted(self.quotes)},
        }


@dataclass(slots=True)
class OptionsVaultQuote:
    """The options vault's standing quote in one option market and what it was made from: the
    mark, the block time, the vault's position there and its exposure pressure then (the
    signed spread added for vega and gamma, ppm). An order id of 0: no order on that side."""

    bid_order_id: int = 0
    ask_order_id: int = 0
    mark_price_quantums: int = 0
    quoted_ns: int = 0
    position_base_quantums: int = 0
    pressure_ppm: int = 0

    def encode(self) -> list[int]:
        return [
            self.bid_order_id, self.ask_order_id, self.mark_price_quantums, self.quoted_ns,
            self.position_base_quantums, self.pressure_ppm,
        ]  # fmt: skip


@dataclass(slots=True)
class OptionsVaultState:
    """The options AMM (SPEC §11): its parameters (None until the operator sets it up), its
    shares (NAV is the equity of the ``OPTIONS_VAULT`` subaccount) and standing quotes."""

    params: OptionsVaultParams | None = None
    total_shares: int = 0
    owners: dict[Address, VaultOwner] = field(default_factory=dict)
    quotes: dict[MarketId, OptionsVaultQuote] = field(default_factory=dict)
    hedged_ns: int = 0  # the block time of its last hedge order

    def encode(self) -> dict[str, object]:
        return {
            "params": to_plain(self.params),
            "total_shares": self.total_shares,
            "quotes": {m: self.quotes[m].encode() for m in sorted(self.quotes)},
            "hedged_ns": self.hedged_ns,
        }


@dataclass(slots=True)
class Proposal:
    """A governance proposal (SPEC §10) and where it stands."""

    proposal_id: int
    proposer: Address
    actions: tuple[GovAction, ...]
    memo: str
    simulation: str  # the stress lab's diff, as the proposer attached it (JSON, or "")
    created_ns: int
    status: ProposalStatus = ProposalStatus.PENDING
    approvals: list[Address] = field(default_factory=list)  # sorted
    eta_ns: int = 0  # queued: when it may execute
    closed_ns: int = 0  # executed, cancelled or expired: when

    def encode(self) -> dict[str, object]:
        return {
            "id": self.proposal_id, "proposer": self.proposer,
            "actions": to_plain(self.actions), "memo": self.memo,
            "simulation": self.simulation, "created_ns": self.created_ns,
            "status": int(self.status), "approvals": list(self.approvals),
            "eta_ns": self.eta_ns, "closed_ns": self.closed_ns,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class ParamChange:
    """One past change of a governed parameter."""

    at_ns: int
    old_value: int
    new_value: int
    role: int  # core.governance.Role
    by: Address
    proposal_id: int


@dataclass(slots=True)
class MarginPhase:
    """A margin increase on its way to existing positions: from these values at ``start_ns``
    to the market's parameters at ``end_ns``, in steps (``core/governance.phased_value``);
    ``step`` is the last step the liquidation watch rescanned the market's holders for."""

    from_initial_ppm: int
    from_share_ppm: int
    start_ns: int
    end_ns: int
    step: int = 0

    def encode(self) -> list[int]:
        return [
            self.from_initial_ppm, self.from_share_ppm, self.start_ns, self.end_ns, self.step,
        ]  # fmt: skip


@dataclass(slots=True)
class GovernanceState:
    """Who governs, the proposals, each parameter's recent history, and what governance holds
    on markets: pauses, reduce-only, margin phase-ins, fallback settlement prices."""

    params: GovernanceParams
    next_proposal_id: int = 1
    proposals: dict[int, Proposal] = field(default_factory=dict)
    open_proposals: set[int] = field(default_factory=set)  # pending or queued
    history: dict[tuple[str, str], list[ParamChange]] = field(default_factory=dict)
    paused: set[MarketId] = field(default_factory=set)
    reduce_only: set[MarketId] = field(default_factory=set)
    phases: dict[MarketId, MarginPhase] = field(default_factory=dict)
    fallbacks: dict[MarketId, tuple[int, int]] = field(default_factory=dict)  # (price, until)
    disputers: dict[MarketId, set[Address]] = field(default_factory=dict)

    def approvals(self, proposal: Proposal) -> int:
        """Approvals from the council as it is now: a removed member's no longer counts."""
        return sum(1 for a in proposal.approvals if a in self.params.council)

    def status_of(self, proposal: Proposal, now_ns: int) -> ProposalStatus:
        """A proposal's status as of ``now_ns``: an open one past its lifetime (pending) or
        its execution window (queued) reads EXPIRED before any command records it."""
        params = self.params
        if proposal.status is ProposalStatus.PENDING:
            late = now_ns > proposal.created_ns + params.proposal_lifetime_ns
        elif proposal.status is ProposalStatus.QUEUED:
            late = now_ns > proposal.eta_ns + params.execution_window_ns
        else:
            return proposal.status
        return ProposalStatus.EXPIRED if late else proposal.status

    def last_change_ns(self, name: str, target: str) -> int | None:
        found = self.history.get((name, target))
        return found[-1].at_ns if found else None

    def encode(self) -> dict[str, object]:
        return {"params": to_plain(self.params), "next_proposal_id": self.next_proposal_id}

    def market_leaf(self, market_id: MarketId) -> dict[str, object] | None:
        phase = self.phases.get(market_id)
        fallback = self.fallbacks.get(market_id)
        leaf: dict[str, object] = {
            "paused": market_id in self.paused,
            "reduce_only": market_id in self.reduce_only,
            "phase": None if phase is None else phase.encode(),
            "fallback": None if fallback is None else list(fallback),
            "disputers": sorted(self.disputers.get(market_id, ())),
        }
        empty = not (leaf["paused"] or leaf["reduce_only"] or phase or fallback)
        return None if empty and not leaf["disputers"] else leaf


@dataclass(slots=True)
class EngineState:
    venue: VenueParams
    ledger: Ledger = field(default_factory=Ledger)
    assets: dict[AssetId, AssetParams] = field(default_factory=dict)
    oracles: dict[OracleId, OracleState] = field(default_factory=dict)
    markets: dict[MarketId, MarketState] = field(default_factory=dict)
    nonces: dict[Address, list[int]] = field(default_factory=dict)  # sorted, highest kept
    order_markets: dict[OrderId, MarketId] = field(default_factory=dict)
    liquidations: dict[SubaccountId, LiquidationStatus] = field(default_factory=dict)
    portfolio_margin: set[SubaccountId] = field(default_factory=set)  # the rest: standard mode
    agents: dict[Address, dict[Address, int]] = field(default_factory=dict)  # agent -> valid until
    # Dead-man's switches: when each subaccount's orders are all cancelled (``ScheduleCancel``)
    scheduled_cancels: dict[SubaccountId, int] = field(default_factory=dict)
    option_series: dict[OracleId, OptionSeries] = field(default_factory=dict)
    vault: VaultState = field(default_factory=VaultState)
    options_vault: OptionsVaultState = field(default_factory=OptionsVaultState)
    governance: GovernanceState | None = None  # None: the operator lists, nothing is governed
    # Per oracle, its dated futures' basis at each expiry (``engine/forwards.py``): the curve
    # options are marked on; no entry for an oracle without a future
    forward_curves: dict[OracleId, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    height: int = 0
    timestamp_ns: int = 0
    next_order_id: int = 1
    next_trade_id: int = 1
    next_rest_sequence: int = 1  # time priority of resting orders, committed with each order
    last_deposit_id: int = 0
    tree: StateTree = field(default_factory=lambda: StateTree(values=False))  # the state is here

    def counters(self) -> dict[str, object]:
        return {
            "venue": to_plain(self.venue),
            "height": self.height,
            "timestamp_ns": self.timestamp_ns,
            "next_order_id": self.next_order_id,
            "next_trade_id": self.next_trade_id,
            "next_rest_sequence": self.next_rest_sequence,
            "last_deposit_id": self.last_deposit_id,
        }


# Leaf keys: one namespace per kind of state, so that an auditor can prove any single piece.
COUNTERS_KEY = b"venue"


def params_key(kind: str, name: str) -> bytes:
    """Parameters (of an oracle, asset or market) change rarely: their own leaf, written when
    they are listed or changed, keeps them out of the leaves that change every block."""
    return f"params/{kind}/{name}".encode()


def subaccount_key(subaccount_id: SubaccountId) -> bytes:
    return f"sub/{subaccount_id}".encode()


def system_key(account: SystemAccount) -> bytes:
    return f"system/{account.name}".encode()


def market_key(market_id: MarketId) -> bytes:
    return f"market/{market_id}".encode()


def oracle_key(oracle_id: OracleId) -> bytes:
    return f"oracle/{oracle_id}".encode()


def twap_slot_key(oracle_id: OracleId, slot: int) -> bytes:
    """TWAP samples live in a ring of leaves, so a block rewrites one slot, not the window."""
    return f"oracle/{oracle_id}/twap/{slot}".encode()


def order_key(order_id: OrderId) -> bytes:
    return f"order/{order_id}".encode()


def liquidation_key(subaccount_id: SubaccountId) -> bytes:
    return f"liq/{subaccount_id}".encode()


def margin_mode_key(subaccount_id: SubaccountId) -> bytes:
    return f"mode/{subaccount_id}".encode()


def agent_key(account: Address) -> bytes:
    return f"agent/{account}".encode()


def scheduled_cancel_key(subaccount_id: SubaccountId) -> bytes:
    return f"cancel-at/{subaccount_id}".encode()


def series_key(oracle_id: OracleId) -> bytes:
    return f"series/{oracle_id}".encode()


VAULT_KEY = b"vault"


def vault_owner_key(owner: Address) -> bytes:
    return f"vault/{owner}".encode()


OPTIONS_VAULT_KEY = b"ovault"


def options_vault_owner_key(owner: Address) -> bytes:
    return f"ovault/{owner}".encode()


def forward_curve_key(oracle_id: OracleId) -> bytes:
    return f"forward/{oracle_id}".encode()


GOVERNANCE_KEY = b"gov"


def proposal_key(proposal_id: int) -> bytes:
    return f"gov/proposal/{proposal_id}".encode()


def governed_param_key(name: str, target: str) -> bytes:
    return f"gov/param/{name}/{target}".encode()


def governed_market_key(market_id: MarketId) -> bytes:
    return f"gov/market/{market_id}".encode()


def nonce_key(signer: Address) -> bytes:
    return f"nonce/{signer}".encode()


def encode_leaf(value: object) -> bytes:
    return canonical_json(value)
