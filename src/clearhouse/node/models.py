"""Response models of the HTTP API, for /openapi.json: each route's answer and the error
envelope, with examples.

The models name the fields every client relies on and allow the rest (``extra="allow"``): a
view may grow a field without breaking its schema, and governance parameters keep the shape of
their dataclasses. Amounts follow ``human``: ``*_quantums`` integers with a decimal string
beside them, ``*_ns`` with ``*_ms`` beside them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from clearhouse.core import limits
from clearhouse.node.human import ADDRESS

BTC = "BTC-PERP"
ALICE = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"


def _open(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="allow", json_schema_extra={"examples": [example]})


# ── Errors ─────────────────────────────────────────────────────────────────────────────────


class ErrorBody(BaseModel):
    model_config = _open({"code": "NOT_FOUND", "message": "market ETH-PERP not found"})
    code: str = Field(description="stable: an engine RejectReason name or a node code")
    message: str


class ErrorEnvelope(BaseModel):
    """Every error: ``{"error": {"code", "message", ...detail}}``."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": {"code": "RATE_LIMITED", "message": "too "
                           "many requests from this address", "retry_after_seconds": 0.25}}]}
    )  # fmt: skip
    error: ErrorBody


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status answered with the envelope."""
    return {s: {"model": ErrorEnvelope, "description": _MEANING[s]} for s in statuses}


_MEANING = {
    400: "Bad input (INVALID_REQUEST, BAD_ADDRESS_CHECKSUM, MALFORMED_COMMAND, ...)",
    401: "The signature does not recover to a key (BAD_SIGNATURE)",
    403: "The signer may not act for this account",
    404: "Not found (NOT_FOUND)",
    409: "Nonce or duplicate (NONCE_ALREADY_USED, DUPLICATE_CLIENT_ORDER_ID, ...)",
    413: "Body too large (REQUEST_TOO_LARGE), or a batch past the per-IP burst (BATCH_TOO_LARGE)",
    422: "Refused by risk or by the book (INSUFFICIENT_MARGIN, ...)",
    429: "Rate limited (RATE_LIMITED); Retry-After says when to come back",
    503: "The node stopped (NODE_FAILED), stale oracle or halted market",
}
COMMON: dict[int | str, dict[str, Any]] = {
    **errors(400, 413, 429, 503),
    "4XX": {"model": ErrorEnvelope, "description": "Any other client error"},
}


# ── Node ───────────────────────────────────────────────────────────────────────────────────


class Health(BaseModel):
    model_config = _open({"status": "ok", "height": 1234})
    status: str
    height: int


class Info(BaseModel):
    model_config = _open({"name": "Clearhouse", "version": "1", "chain_id": 31337, "height": 12,
                          "timestamp_ns": 1_700_000_000_000_000_000,
                          "timestamp_ms": 1_700_000_000_000})  # fmt: skip
    chain_id: int
    verifying_contract: str
    height: int
    timestamp_ns: int
    timestamp_ms: int


# ── Markets ────────────────────────────────────────────────────────────────────────────────


class Market(BaseModel):
    model_config = _open({
        "market_id": BTC, "kind": "perpetual", "status": "active",
        "mark_price_quantums": 61_234_500_000, "mark_price": "61234.5",
        "open_interest_base_quantums": 250_000_000, "open_interest_base": "2.5",
    })  # fmt: skip
    market_id: str
    kind: str
    status: str
    index_price_quantums: int
    index_price: str
    mark_price_quantums: int
    mark_price: str
    forward_price_quantums: int  # a dated market's expiry forward; the index for a perpetual
    forward_price: str
    best_bid_quantums: int | None
    best_ask_quantums: int | None
    open_interest_base_quantums: int
    open_interest_base: str
    next_funding_ns: int
    next_funding_ms: int
    params: dict[str, Any]


class Level(BaseModel):
    price_quantums: int
    price: str
    size_base_quantums: int
    size_base: str


class Book(BaseModel):
    model_config = _open({"market_id": BTC, "height": 9, "bids": [[61_200_000_000, 100_000]],
                          "asks": [], "bid_levels": [{"price_quantums": 61_200_000_000,
                          "price": "61200", "size_base_quantums": 100_000,
                          "size_base": "0.001"}], "ask_levels": []})  # fmt: skip
    market_id: str
    height: int
    bids: list[list[int]] = Field(description="[price_quantums, size_base_quantums], best first")
    asks: list[list[int]]
    bid_levels: list[Level]
    ask_levels: list[Level]


class Trade(BaseModel):
    model_config = _open({"trade_id": 7, "market_id": BTC, "price_quantums": 61_234_500_000,
                          "price": "61234.5", "size_base_quantums": 100_000,
                          "size_base": "0.001", "taker_side": "buy", "height": 12,
                          "timestamp_ns": 1_700_000_000_000_000_000,
                          "timestamp_ms": 1_700_000_000_000})  # fmt: skip
    trade_id: int
    market_id: str
    price_quantums: int
    price: str
    size_base_quantums: int
    size_base: str
    taker_side: str = Field(description="buy or sell")
    timestamp_ns: int
    timestamp_ms: int


class Candle(BaseModel):
    model_config = _open({"interval": "1m", "minute_ns": 1_700_000_040_000_000_000,
                          "minute_ms": 1_700_000_040_000, "open": 61_234_500_000,
                          "open_price": "61234.5", "trades": 3})  # fmt: skip
    interval: str
    minute_ns: int = Field(description="the bucket's first minute (its start)")
    minute_ms: int
    open: int
    high: int
    low: int
    close: int
    open_price: str
    high_price: str
    low_price: str
    close_price: str
    volume_base_quantums: int
    volume_base: str
    trades: int


class FundingPoint(BaseModel):
    model_config = _open({"height": 360, "timestamp_ns": 1_700_003_600_000_000_000,
                          "timestamp_ms": 1_700_003_600_000, "rate_ppb": 12_500,
                          "rate": "0.0000125"})  # fmt: skip
    height: int
    timestamp_ns: int
    timestamp_ms: int
    rate_ppb: int
    rate: str = Field(description="the hour's rate as a fraction of notional; + longs pay")


class Funding(BaseModel):
    model_config = _open({"market_id": BTC, "predicted_rate_ppb": 12_500,
                          "predicted_rate": "0.0000125", "history": []})  # fmt: skip
    market_id: str
    predicted_rate_ppb: int = Field(description="what the next payment would be at the "
                                    "premium sampled so far this interval")  # fmt: skip
    predicted_rate: str
    next_funding_ns: int
    next_funding_ms: int
    cumulative_funding_ppb: int
    history: list[FundingPoint] = Field(description="payments, newest first")


class AdlEntry(BaseModel):
    subaccount: str
    rank: int


class AdlQueues(BaseModel):
    model_config = _open({"longs": [{"subaccount": ALICE + "/0", "rank": 1}], "shorts": []})
    longs: list[AdlEntry]
    shorts: list[AdlEntry]


# ── Accounts ───────────────────────────────────────────────────────────────────────────────


class Margin(BaseModel):
    model_config = ConfigDict(extra="allow")
    equity_quote_quantums: int
    equity_quote: str
    initial_quote_quantums: int
    maintenance_quote_quantums: int
    free_collateral_quote_quantums: int
    withdrawable_quote_quantums: int
    prices_usable: bool
    liquidatable: bool


class Greeks(BaseModel):
    """A subaccount's Greeks on one underlying (``core/engine/risk.py`` ``Greeks``): delta in
    whole units, gamma per quote unit of move, vega per 1.00 of volatility in total and by
    expiry bucket ("0-7d" … "180d+"), theta per year, rho per 1.00 of rate."""

    delta: float
    gamma: float
    vega: float
    theta: float
    rho: float
    vega_by_expiry: dict[str, float]


class Subaccount(BaseModel):
    model_config = _open({"subaccount": ALICE + "/0", "number": 0, "margin_mode": "standard",
                          "balances": {"USDC": 100_000_000_000},
                          "balances_in_units": {"USDC": "100000"}})  # fmt: skip
    subaccount: str
    number: int
    margin_mode: str
    balances: dict[str, int]
    balances_in_units: dict[str, str]
    positions: list[dict[str, Any]]
    margin: Margin
    greeks: dict[str, Greeks] = {}  # per underlying


class Account(BaseModel):
    model_config = _open({"address": ALICE, "subaccounts": [], "agents": []})
    address: str
    subaccounts: list[Subaccount]
    agents: list[dict[str, Any]]


class Order(BaseModel):
    model_config = _open({"order_id": 42, "market_id": BTC, "side": "buy", "status": "open",
                          "price_quantums": 61_000_000_000, "price": "61000",
                          "size_base_quantums": 100_000, "size_base": "0.001"})  # fmt: skip
    order_id: int
    market_id: str
    side: str = Field(description="buy or sell")


class Nonces(BaseModel):
    model_config = _open({"signer": ALICE, "highest": None, "kept": 0})
    signer: str
    highest: int | None
    lowest_kept: int | None
    kept: int


class HistoryItem(BaseModel):
    model_config = _open({"cursor": "17", "category": "fill", "height": 12,
                          "timestamp_ns": 1_700_000_000_000_000_000,
                          "timestamp_ms": 1_700_000_000_000, "type": "OrderFilled"})  # fmt: skip
    cursor: str
    category: str = Field(description="fill, funding, liquidation, adl or transfer")
    height: int
    timestamp_ns: int
    timestamp_ms: int
    type: str = Field(description="the engine event's name")


class History(BaseModel):
    model_config = _open({"subaccount": ALICE + "/0", "items": [], "next_cursor": None})
    subaccount: str
    items: list[HistoryItem] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as ?cursor= for older items; null: none")


# ── Risk, vault, blocks, commands ──────────────────────────────────────────────────────────


class Liquidations(BaseModel):
    model_config = _open({"liquidatable": [], "in_progress": [], "recent": []})
    liquidatable: list[str]
    in_progress: list[dict[str, Any]]
    recent: list[dict[str, Any]]


class Insurance(BaseModel):
    model_config = _open({"balance_quote_quantums": 5_000_000_000, "balance_quote": "5000",
                          "asset": "USDC", "book": None})  # fmt: skip
    balance_quote_quantums: int
    balance_quote: str
    asset: str


class Vault(BaseModel):
    model_config = _open({"subaccount_id": "vault", "nav_quote_quantums": 1_000_000,
                          "nav_quote": "1", "total_shares": 10})  # fmt: skip
    nav_quote_quantums: int
    nav_quote: str
    total_shares: int


class OptionsVault(BaseModel):
    model_config = _open({"set_up": True, "nav_quote_quantums": 1_000_000, "nav_quote": "1",
                          "total_shares": 10, "quoted_markets": 56,
                          "exposure": {"vega_quantums": 0, "gamma_quantums": 0,
                                       "delta_quantums": 0},
                          "caps": {"vega_quantums": 20_000, "gamma_quantums": 20_000,
                                   "delta_quantums": 200_000}})  # fmt: skip
    set_up: bool
    nav_quote_quantums: int
    nav_quote: str
    total_shares: int
    owners: int
    exposure: dict[str, int] | None = Field(
        description="the book's vega, gamma and delta values in quote quantums; null before "
        "its first deposit"
    )
    caps: dict[str, int] | None = Field(
        description="the most of each exposure it may hold, either sign, at this NAV (its "
        "*_cap_nav_ppm parameters); null when it is not set up"
    )
    hedge_position_base_quantums: int
    quoted_markets: int
    params: dict[str, Any] | None


class VaultOwner(BaseModel):
    model_config = _open({"address": ALICE, "shares": 0, "value_quote_quantums": 0,
                          "value_quote": "0", "unlocked_at_ns": 0,
                          "unlocked_at_ms": 0})  # fmt: skip
    address: str
    shares: int
    value_quote_quantums: int = Field(description="what the shares redeem for at NAV now")
    value_quote: str
    unlocked_at_ns: int = Field(description="redeemable from this time on; 0: holds none")
    unlocked_at_ms: int


class OptionsVaultOwner(VaultOwner):
    model_config = _open({"set_up": True, "address": ALICE, "shares": 0,
                          "value_quote_quantums": 0, "value_quote": "0", "unlocked_at_ns": 0,
                          "unlocked_at_ms": 0})  # fmt: skip
    set_up: bool = Field(description="false: this venue has no options vault")


class Block(BaseModel):
    model_config = _open({"height": 12, "timestamp_ns": 1_700_000_000_000_000_000,
                          "timestamp_ms": 1_700_000_000_000, "state_root": "0x…"})  # fmt: skip
    height: int
    timestamp_ns: int
    timestamp_ms: int
    state_root: str
    block_hash: str


class CommandResult(BaseModel):
    model_config = _open({"status": "accepted", "height": 12, "index": 0, "events": []})
    status: str = Field(description="accepted or rejected")
    height: int
    index: int
    timestamp_ns: int
    timestamp_ms: int
    events: list[dict[str, Any]]


class CommandAnswer(CommandResult):
    http_status: int
    duplicate: bool


class BatchAnswer(BaseModel):
    model_config = _open({"results": [{"status": "accepted", "http_status": 200}]})
    results: list[dict[str, Any]] = Field(
        description="one per command, in order: a result or an error envelope, with http_status"
    )


# ── What-if ────────────────────────────────────────────────────────────────────────────────

_SIZE = Field(ge=-limits.size_base_quantums_max, le=limits.size_base_quantums_max)
_SYMBOL = r"^[A-Z0-9._*-]{1,32}$"
TRIAL_ORDERS_MAX = 16


class TrialOrder(BaseModel):
    """An order assumed to fill whole at its limit price (fees left out)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    market_id: str = Field(pattern=_SYMBOL, examples=[BTC])
    side: Literal["buy", "sell"]
    size_base_quantums: int = Field(gt=0, le=limits.size_base_quantums_max)
    price_quantums: int = Field(gt=0, le=limits.price_quantums_max)


class TrialPosition(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    market_id: str = Field(pattern=_SYMBOL, examples=[BTC])
    size_base_quantums: int = _SIZE
    entry_price_quantums: int | None = Field(
        default=None, gt=0, le=limits.price_quantums_max, description="default: the mark"
    )


class WhatIfRequest(BaseModel):
    """Unsigned: nothing is submitted. ``orders`` fill in turn on the subaccount as it is (or
    on ``portfolio``, which replaces every position and drops resting orders); ``balances``
    (asset → quantums) replace its balances."""

    model_config = ConfigDict(
        extra="forbid", strict=True,
        json_schema_extra={"examples": [{"address": ALICE, "subaccount_number": 0, "orders": [
            {"market_id": BTC, "side": "buy", "size_base_quantums": 100_000_000,
             "price_quantums": 60_000_000_000}]}]},
    )  # fmt: skip
    address: str = Field(pattern=ADDRESS)
    subaccount_number: int = Field(default=0, ge=0, le=limits.subaccounts_per_account_max - 1)
    orders: list[TrialOrder] = Field(default_factory=list, max_length=TRIAL_ORDERS_MAX)
    portfolio: list[TrialPosition] | None = Field(
        default=None, max_length=limits.positions_per_subaccount_max
    )
    balances: dict[str, Annotated[int, _SIZE]] | None = Field(
        default=None, max_length=limits.collateral_assets_max + 1
    )


class TrialPositionResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    market_id: str
    size_base_quantums: int
    size_base: str
    liquidation_price_quantums: int | None = Field(
        description="the mark at which it becomes liquidatable, other prices as now; null: "
        "an option, portfolio mode, none within 100 × the mark, or not among the trial's 16 "
        "largest positions by notional (only those are searched)"
    )
    adl_rank: dict[str, int] | None


class WhatIf(BaseModel):
    model_config = _open(
        {
            "subaccount": ALICE + "/0",
            "committed": False,
            "health": {"status": "healthy", "equity_to_maintenance": "4.2"},
        }
    )
    subaccount: str
    committed: bool
    before: Margin
    after: Margin
    health: dict[str, Any] = Field(description="status: healthy, below_initial or liquidatable")
    margin_check: str | None = Field(
        description="the engine's margin gate on the change, as an order filling whole at "
        "these prices would meet it: null when accepted, else the rejection code "
        "(INSUFFICIENT_MARGIN, ORACLE_STALE)"
    )
    positions: list[TrialPositionResult]


# ── Governance ─────────────────────────────────────────────────────────────────────────────

COUNCIL = [
    "0x3c0f87c1216ae9152c47cb390affb1b6e2f864fb",
    "0x54ab3704e27693df2f5aa3e942c9cebfbc01192b",
]
IM = "market.margin.initial_margin_ppm"


class GovConfig(BaseModel):
    """Fields beyond ``governed`` are absent on an ungoverned venue."""

    model_config = _open({"governed": True, "council": COUNCIL, "threshold": 2,
                          "steward": None, "guardian": None, "timelock_ns": 3_600_000_000_000,
                          "timelock_ms": 3_600_000, "waits": {"timelock": "1h"},
                          "open_proposals": 1})  # fmt: skip
    governed: bool
    council: list[str] | None = None
    threshold: int | None = None
    steward: str | None = None
    guardian: str | None = None
    timelock_ns: int | None = None
    timelock_ms: int | None = None
    execution_window_ns: int | None = None
    execution_window_ms: int | None = None
    proposal_lifetime_ns: int | None = None
    proposal_lifetime_ms: int | None = None
    phase_in_ns: int | None = None
    phase_in_ms: int | None = None
    dispute_window_ns: int | None = None
    dispute_window_ms: int | None = None
    waits: dict[str, str] | None = Field(default=None, description='e.g. {"timelock": "48h"}')
    next_proposal_id: int | None = None
    open_proposals: int | None = Field(default=None, description="pending or queued, live now")
    paused: list[str] | None = None
    reduce_only: list[str] | None = None
    phases: list[dict[str, Any]] | None = Field(
        default=None, description="margin increases on their way to existing positions"
    )
    fallbacks: list[dict[str, Any]] | None = Field(
        default=None, description="governance settlement prices in their dispute window"
    )


class GovValue(BaseModel):
    model_config = _open({"target": BTC, "value": 20_000, "value_percent": "2%",
                          "last_change_ns": None, "last_change_ms": None})  # fmt: skip
    target: str = Field(description='a market, oracle or asset id; "" for the vault, governance')
    value: int
    last_change_ns: int | None
    last_change_ms: int | None


class GovParam(BaseModel):
    model_config = _open({"name": IM, "scope": "market", "field": "margin.initial_margin_ppm",
                          "lower": 5_000, "upper": 500_000, "step": 25_000, "step_ppm": 0,
                          "cooldown_ns": 86_400_000_000_000, "cooldown_ms": 86_400_000,
                          "direction": "higher_is_safer", "phased": True,
                          "values": []})  # fmt: skip
    name: str
    scope: str = Field(description="market, oracle, asset, vault or governance")
    field: str
    lower: int
    upper: int
    step: int = Field(description="one step: max(step, |value| × step_ppm / 10⁶)")
    step_ppm: int
    cooldown_ns: int
    cooldown_ms: int
    direction: str = Field(description="higher_is_safer, lower_is_safer or neither")
    zero_unlimited: bool = Field(description="0 means no cap (looser than any other value)")
    phased: bool = Field(description="an increase reaches existing positions over the phase-in")
    values: list[GovValue]


class GovProposal(BaseModel):
    model_config = _open({"proposal_id": 3, "proposer": COUNCIL[0], "status": "queued",
                          "approvals": COUNCIL, "approvals_count": 2, "threshold": 2,
                          "eta_ns": 1_700_003_600_000_000_000, "eta_ms": 1_700_003_600_000,
                          "timelock_left_ns": 1_800_000_000_000, "timelock_left_ms": 1_800_000,
                          "actions": [{"kind": 1, "kind_name": "set_param", "target": BTC,
                                       "name": IM, "value": 45_000}],
                          "memo": "raise BTC IM", "has_simulation": False})  # fmt: skip
    proposal_id: int
    proposer: str
    status: str = Field(description="pending, queued, executed, cancelled or expired (as of now)")
    approvals: list[str]
    approvals_count: int = Field(description="approvals of the council as it is now")
    threshold: int
    created_ns: int
    created_ms: int
    eta_ns: int = Field(description="queued: when it may execute; else 0")
    eta_ms: int
    timelock_left_ns: int | None = Field(description="queued: the timelock's rest; else null")
    timelock_left_ms: int | None
    executable: bool = Field(description="queued and its timelock has run: anyone may execute")
    expires_ns: int | None = Field(description="open: when it expires unless it moves on")
    expires_ms: int | None
    closed_ns: int
    closed_ms: int
    actions: list[dict[str, Any]] = Field(description="GovAction as plain JSON, kind_name beside")
    memo: str
    has_simulation: bool


class GovProposalDetail(GovProposal):
    simulation: Any = Field(description="the attached stress-lab difference (JSON), or null")
    events: list[dict[str, Any]] = Field(description="the proposal's steps, newest first")


class GovChange(BaseModel):
    model_config = _open({"cursor": "4", "height": 812, "timestamp_ns": 1_700_000_000_000_000_000,
                          "timestamp_ms": 1_700_000_000_000, "type": "ParamChanged",
                          "name": "market.taker_fee_ppm", "target": BTC, "old_value": 500,
                          "new_value": 750, "old_value_percent": "0.05%",
                          "new_value_percent": "0.075%", "role": 2, "role_name": "steward",
                          "by": COUNCIL[0], "proposal_id": 0, "phase_end_ns": 0})  # fmt: skip
    cursor: str
    height: int
    timestamp_ns: int
    timestamp_ms: int
    name: str
    target: str
    old_value: int
    new_value: int
    role: int
    role_name: str = Field(description="council (an executed proposal), steward or guardian")
    by: str
    proposal_id: int = Field(description="0 unless a proposal made it")
    phase_end_ns: int = Field(description="a margin increase: when it is whole; else 0")


class GovHistory(BaseModel):
    model_config = _open({"items": [], "next_cursor": None})
    items: list[GovChange] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as ?cursor= for older items; null: none")


class GovEvents(BaseModel):
    model_config = _open({"items": [{"cursor": "1", "height": 1, "type": "GovernanceConfigured"}],
                          "next_cursor": None})  # fmt: skip
    items: list[dict[str, Any]] = Field(description="the engine's events, newest first")
    next_cursor: str | None


class ImpactRequest(BaseModel):
    """Unsigned: nothing is submitted. ``actions`` as a proposal holds them (plain JSON)."""

    model_config = ConfigDict(
        extra="forbid", strict=True,
        json_schema_extra={"examples": [{"actions": [
            {"kind": 1, "target": BTC, "name": IM, "value": 45_000}]}]},
    )  # fmt: skip
    actions: list[dict[str, Any]] = Field(min_length=1, max_length=limits.actions_per_proposal_max)


class Impact(BaseModel):
    model_config = _open({"liquidatable": [ALICE + "/0"], "truncated": False,
                          "holders_max": 20_000, "height": 812})  # fmt: skip
    liquidatable: list[str] = Field(description="subaccounts healthy now, liquidatable after")
    truncated: bool = Field(description="more holders than holders_max: the first ones only")
    holders_max: int
    height: int
