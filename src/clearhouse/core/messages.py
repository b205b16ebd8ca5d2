"""Commands (imperative) and events (past tense): frozen dataclasses with typed ids.

Every user command carries ``signer``, ``nonce`` (a millisecond timestamp, §3) and
``expiry_ns``. The core sees authenticated commands: signatures are checked in the shell.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import Address, AssetId, MarketId, OracleId, OrderId, Side, TradeId
from clearhouse.core.params import (
    USD,
    AssetParams,
    GovernanceParams,
    MarketParams,
    OptionSeriesParams,
    OptionsVaultParams,
    OracleParams,
)
from clearhouse.core.surface import SviSlice


class TimeInForce(IntEnum):
    GTC = 1  # good til cancelled
    GTT = 2  # good til time (good_til_ns)
    IOC = 3  # immediate or cancel
    FOK = 4  # fill or kill
    POST_ONLY = 5  # rests or is rejected; never takes


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2  # IOC bounded by slippage_ppm around the mark
    STOP_MARKET = 3  # fires when the mark crosses trigger_price against the position
    STOP_LIMIT = 4
    TAKE_PROFIT_MARKET = 5  # fires when the mark crosses trigger_price in favour
    TAKE_PROFIT_LIMIT = 6


class CancelCause(IntEnum):
    USER = 1
    SELF_TRADE = 2
    EXPIRED = 3
    IOC_REMAINDER = 4
    MAKER_MARGIN = 5  # a maker no longer had margin when hit
    REDUCE_ONLY = 6  # a reduce-only order that could no longer reduce
    SETTLEMENT = 7  # the market expired
    TRIGGER_REJECTED = 8  # a triggered order failed its checks when it fired
    AMENDED = 9
    COOLING_OFF = 10  # a resting order that would add risk while the market is reduce-only
    POSITION_LIMIT = 11  # a fill would open more positions than a subaccount may hold
    LIQUIDATION = 12  # the owner is being liquidated: its orders go first (§7 step 1)
    SCHEDULED = 13  # the owner's dead-man's switch fired (``ScheduleCancel``)
    PAUSED = 14  # governance paused the market
    OPTIONS_VAULT_CAP = 15  # a fill would take the options vault past an exposure cap


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    signer: Address
    nonce: int  # milliseconds; 0 only for genesis listing commands
    expiry_ns: int  # the command is void in a block whose timestamp is past this


@dataclass(frozen=True, slots=True, kw_only=True)
class Deposit(Command):
    """Credit collateral observed on the custody contract (signed by the custody relayer)."""

    deposit_id: int  # the custody event's unique id: a deposit is credited once
    owner: Address
    subaccount_number: int
    asset_id: AssetId
    amount_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Withdraw(Command):
    subaccount_number: int
    asset_id: AssetId
    amount_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DepositInsurance(Command):
    """Add quote from one's subaccount to the insurance fund. Anyone may (a venue's treasury,
    a market's sponsor, a trader); the fund pays bankrupt accounts and nothing returns it."""

    subaccount_number: int
    amount_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DepositVault(Command):
    """Buy shares of the market-making vault (SPEC §11) at its NAV with quote from one's
    subaccount; the shares minted round down (against the depositor)."""

    subaccount_number: int
    amount_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WithdrawVault(Command):
    """Redeem vault shares at NAV into one's subaccount, once the lock-up since the last
    deposit has passed; the quote paid rounds down (against the withdrawer), and never more
    than the vault's free collateral."""

    subaccount_number: int
    shares: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SetupOptionsVault(Command):
    """The operator sets up (or, before anyone holds shares, retunes) the options AMM: the
    underlying it quotes, the perpetual it hedges on, its spreads, sizes, caps and lock-up."""

    params: OptionsVaultParams


@dataclass(frozen=True, slots=True, kw_only=True)
class DepositOptionsVault(Command):
    """Buy shares of the options vault at its NAV (rounded down, against the depositor)."""

    subaccount_number: int
    amount_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WithdrawOptionsVault(Command):
    """Redeem options-vault shares at NAV after the lock-up (rounded down, against the
    withdrawer), never more than its free collateral."""

    subaccount_number: int
    shares: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferCollateral(Command):
    source_number: int
    target_number: int
    asset_id: AssetId
    amount_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceOrder(Command):
    subaccount_number: int
    market_id: MarketId
    side: Side
    size_base_quantums: int
    price_quantums: int = 0  # limit price; for market orders 0 (the slippage bound decides)
    order_type: OrderType = OrderType.LIMIT
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    good_til_ns: int = 0
    trigger_price_quantums: int = 0
    slippage_ppm: int = 0  # market orders: worst price = mark × (1 ± slippage)
    client_order_id: int = 0  # 0: none; else unique among the subaccount's open orders


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder(Command):
    subaccount_number: int
    order_id: int = 0  # either the order id
    client_order_id: int = 0  # or the client order id


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAll(Command):
    subaccount_number: int
    market_id: MarketId | None = None  # None: every market


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleCancel(Command):
    """A dead-man's switch: cancel every order of the subaccount at the first block whose time
    reaches ``cancel_at_ns``, unless a later ``ScheduleCancel`` moves or clears it (0). A trader
    (or its SDK) sends it again every few seconds with a later time: if the trader goes quiet,
    its quotes go with it. Cancel-on-disconnect without trusting the node to cancel for you."""

    subaccount_number: int
    cancel_at_ns: int  # 0: clear the schedule


@dataclass(frozen=True, slots=True, kw_only=True)
class AmendOrder(Command):
    """Change a resting order's price or size. Shrinking at the same price keeps time priority;
    anything else is a cancel and a new placement, applied atomically."""

    subaccount_number: int
    order_id: int
    price_quantums: int
    size_base_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceReport:
    """One feed's price as the publisher sees it, in ``quote`` quantums per whole unit (6
    decimals): USD, or a quote currency the oracle converts at its rate feed (``QuoteFeed``)."""

    oracle_id: OracleId
    price_quantums: int
    confidence_quantums: int
    timestamp_ns: int
    quote: str = USD  # journals written before quotes existed decode as USD reports


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportPrices(Command):
    """A publisher's reports for the feeds it serves (signed by the publisher)."""

    reports: tuple[PriceReport, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ListOracle(Command):
    params: OracleParams


@dataclass(frozen=True, slots=True, kw_only=True)
class ListAsset(Command):
    params: AssetParams


@dataclass(frozen=True, slots=True, kw_only=True)
class ListMarket(Command):
    params: MarketParams


@dataclass(frozen=True, slots=True, kw_only=True)
class Liquidate(Command):
    """Anyone may liquidate a subaccount below maintenance margin, and is paid for it: the
    keeper's share of the liquidation fee goes to the signer's ``subaccount_number``."""

    subaccount_number: int  # the keeper's subaccount, credited with the reward
    owner: Address  # the subaccount to liquidate
    owner_number: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BidAuction(Command):
    """Take part of a liquidation auction's position at the auction's current price."""

    subaccount_number: int  # the bidder's subaccount, which takes the position
    owner: Address  # the subaccount being liquidated
    owner_number: int
    market_id: MarketId
    size_base_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportSurface(Command):
    """A publisher's implied-volatility surface for an oracle's underlying: raw SVI slices as of
    ``timestamp_ns``. Checked for static arbitrage; the newest accepted surface is in state."""

    oracle_id: OracleId
    timestamp_ns: int
    slices: tuple[SviSlice, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SetMarginMode(Command):
    """Standard mode margins each position alone; portfolio mode nets everything on one
    underlying under the scenario grid (SPEC §6)."""

    subaccount_number: int
    portfolio: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class BidPortfolio(Command):
    """Take a proportional slice of an options portfolio in liquidation (SPEC §7, Lyra v2): a
    fraction of every position at the mark, paid the auction's discount on that share of the
    portfolio's maintenance margin."""

    subaccount_number: int  # the bidder's subaccount, which takes the slice
    owner: Address
    owner_number: int
    fraction_ppm: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ListOptionSeries(Command):
    """Operator: keep standard calls and puts on an underlying listed from now on."""

    params: OptionSeriesParams


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizeAgent(Command):
    """The account lets another key trade and cancel for it (never withdraw or authorize)
    until ``valid_until_ns``. Only the account's own key may sign it."""

    agent: Address
    valid_until_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RevokeAgent(Command):
    agent: Address


class ActionKind(IntEnum):
    """What one governance action does (SPEC §10). None of them moves a user's funds."""

    SET_PARAM = 1  # target, name (core/governance.REGISTRY), value
    PAUSE_MARKET = 2  # target: cancels only; resting orders are cancelled
    RESUME_MARKET = 3
    REDUCE_ONLY_ON = 4  # target: orders may only reduce positions
    REDUCE_ONLY_OFF = 5
    LIST_ORACLE = 6  # oracle
    LIST_ASSET = 7  # asset
    LIST_MARKET = 8  # market
    LIST_OPTION_SERIES = 9  # option_series
    SET_SETTLEMENT_PRICE = 10  # target: an expired market its oracle never settled; value
    ADD_COUNCIL_MEMBER = 11  # target: the address
    REMOVE_COUNCIL_MEMBER = 12  # target: the address
    SET_THRESHOLD = 13  # value
    SET_STEWARD = 14  # target: the address, "" for none
    SET_GUARDIAN = 15  # target: the address, "" for none


@dataclass(frozen=True, slots=True, kw_only=True)
class GovAction:
    """One action of a proposal, of the steward or of the guardian; the fields its kind names
    are set, the others left empty."""

    kind: ActionKind
    target: str = ""
    name: str = ""
    value: int = 0
    oracle: OracleParams | None = None
    asset: AssetParams | None = None
    market: MarketParams | None = None
    option_series: OptionSeriesParams | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetupGovernance(Command):
    """The operator hands the venue to its council (once, in the genesis block as a rule):
    from then on, listing and every parameter change go through governance."""

    params: GovernanceParams


@dataclass(frozen=True, slots=True, kw_only=True)
class Propose(Command):
    """A council member proposes actions (its proposal counts as its approval). ``simulation``
    is the stress lab's diff of the change (``clearhouse gov propose --simulate``), as JSON."""

    actions: tuple[GovAction, ...]
    memo: str = ""
    simulation: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApproveProposal(Command):
    """A council member's approval: one EIP-712 signature over the proposal's id."""

    proposal_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueProposal(Command):
    """Anyone: a proposal the council's threshold approved starts its timelock."""

    proposal_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecuteProposal(Command):
    """Anyone: a queued proposal whose timelock has run applies all its actions, or none."""

    proposal_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelProposal(Command):
    """The guardian cancels a pending or queued proposal; a council member, its own."""

    proposal_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StewardUpdate(Command):
    """The risk steward moves parameters (``SET_PARAM`` only), each by at most one step and at
    most once per cooldown, without the timelock."""

    actions: tuple[GovAction, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardianAct(Command):
    """The guardian reduces risk at once: pause a market, make it reduce-only, tighten a
    parameter within its bounds."""

    actions: tuple[GovAction, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DisputeSettlement(Command):
    """Stops a governance settlement price inside its dispute window: by a holder of the
    market (``subaccount_number`` names its subaccount), a council member or the guardian."""

    market_id: MarketId
    subaccount_number: int = 0


@dataclass(frozen=True, slots=True)
class AgentSigned:
    """A command whose signature recovered to ``agent``, a key other than the account's
    (``command.signer``): what signature verification hands the core. The journal records the
    agent beside the command, so that replay applies the same authorization."""

    command: Command
    agent: Address


USER_COMMANDS: tuple[type[Command], ...] = (
    Deposit, Withdraw, TransferCollateral, PlaceOrder, CancelOrder, CancelAll, AmendOrder,
    ReportPrices, ListOracle, ListAsset, ListMarket, Liquidate, BidAuction, ReportSurface,
    SetMarginMode, BidPortfolio, ListOptionSeries, AuthorizeAgent, RevokeAgent, DepositInsurance,
    DepositVault, WithdrawVault, ScheduleCancel, SetupGovernance, Propose, ApproveProposal,
    QueueProposal, ExecuteProposal, CancelProposal, StewardUpdate, GuardianAct, DisputeSettlement,
    SetupOptionsVault, DepositOptionsVault, WithdrawOptionsVault,
)  # fmt: skip
AGENT_COMMANDS: tuple[type[Command], ...] = (
    PlaceOrder, CancelOrder, CancelAll, AmendOrder, ScheduleCancel,
)  # fmt: skip


# ── Events ────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandRejected(Event):
    index: int  # position of the command in its block
    reason: RejectReason
    nonce_consumed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Transferred(Event):
    source: str
    target: str
    asset_id: AssetId
    amount_quantums: int
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted(Event):
    order_id: OrderId
    subaccount: str
    market_id: MarketId
    side: Side
    price_quantums: int
    size_base_quantums: int
    client_order_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRested(Event):
    order_id: OrderId
    remaining_base_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderTriggerArmed(Event):
    order_id: OrderId
    trigger_price_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderTriggered(Event):
    order_id: OrderId
    mark_price_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(Event):
    trade_id: TradeId
    market_id: MarketId
    maker_order_id: OrderId
    taker_order_id: OrderId
    maker: str
    taker: str
    taker_side: Side
    price_quantums: int
    size_base_quantums: int
    maker_fee_quote_quantums: int
    taker_fee_quote_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelled(Event):
    order_id: OrderId
    cause: CancelCause
    remaining_base_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelScheduled(Event):
    """A subaccount's dead-man's switch was set (``cancel_at_ns`` > 0), moved, or cleared (0)."""

    subaccount: str
    cancel_at_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAmended(Event):
    order_id: OrderId
    price_quantums: int
    size_base_quantums: int
    kept_priority: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexUpdated(Event):
    oracle_id: OracleId
    status: int
    index_price_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitBreakerTripped(Event):
    oracle_id: OracleId
    previous_price_quantums: int
    price_quantums: int
    cooling_off_until_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingPaid(Event):
    market_id: MarketId
    rate_ppb: int  # per hour; positive: longs pay shorts
    index_price_quantums: int
    paid_quote_quantums: int  # by the paying side
    received_quote_quantums: int  # by the receiving side
    residue_quote_quantums: int  # to the insurance fund


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketListed(Event):
    market_id: MarketId


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetListed(Event):
    asset_id: AssetId


@dataclass(frozen=True, slots=True, kw_only=True)
class OracleListed(Event):
    oracle_id: OracleId


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketExpired(Event):
    """Trading stopped at expiry; settlement follows when the TWAP has enough samples."""

    market_id: MarketId


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketArchived(Event):
    """A settled market left state a day after its expiry (its id may be listed again)."""

    market_id: MarketId
    settlement_price_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketSettled(Event):
    market_id: MarketId
    settlement_price_quantums: int
    twap_samples: int
    positions_closed: int
    residue_quote_quantums: int


class LiquidationStage(IntEnum):
    BOOK = 1  # IOC orders on the book, no worse than the fillable price
    AUCTION = 2  # a bid in the Dutch auction
    DELEVERAGE = 3  # auto-deleveraging against ranked opposite positions
    FUND = 4  # the insurance fund takes the position over into its book, at the mark
    VAULT = 5  # the market-making vault takes the position over, at the mark, within its caps


@dataclass(frozen=True, slots=True, kw_only=True)
class Liquidated(Event):
    """One step of the ladder closed part of a position."""

    subaccount: str
    market_id: MarketId
    stage: LiquidationStage
    side: Side  # of the closing order
    size_base_quantums: int
    notional_quote_quantums: int
    fee_to_keeper_quote_quantums: int
    fee_to_fund_quote_quantums: int
    keeper: str  # "" when the protocol liquidated


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationReceipt(Event):
    """What one liquidation step saw and did, so that anyone can recheck it from the journal
    (the auditor of ``simulate`` does, for every step): the prices and the account's margin
    before it, the worst price it could take, the position's bankruptcy price, what it filled
    and what the insurance fund paid. Follows the step's ``Liquidated`` event."""

    subaccount: str
    market_id: MarketId
    stage: LiquidationStage
    side: Side  # of the closing order
    mark_price_quantums: int
    index_price_quantums: int
    position_base_quantums: int  # signed, before the step
    equity_quote_quantums: int  # before the step
    maintenance_quote_quantums: int
    initial_quote_quantums: int
    bound_price_quantums: int  # book: its limit; auction: the bid's price; fund: the mark; ADL:
    # the price the counterparties took it at
    bankruptcy_price_quantums: int  # of the whole position before the step
    size_base_quantums: int
    notional_quote_quantums: int
    fund_paid_quote_quantums: int  # what the fund drew for this step's shortfall


@dataclass(frozen=True, slots=True, kw_only=True)
class AuctionStarted(Event):
    subaccount: str
    market_id: MarketId
    side: Side  # the liquidated side's closing side: bidders take the opposite
    size_base_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AuctionEnded(Event):
    subaccount: str
    market_id: MarketId
    remaining_base_quantums: int  # what bidders left: deleveraged if still needed


@dataclass(frozen=True, slots=True, kw_only=True)
class Deleveraged(Event):
    """A profitable opposite position was closed at the bankruptcy price (§7 step 6)."""

    market_id: MarketId
    subaccount: str  # the bankrupt side
    counterparty: str
    side: Side  # the bankrupt side's closing side; the counterparty trades the other
    size_base_quantums: int
    notional_quote_quantums: int
    shortfall_share_quote_quantums: int  # what this counterparty absorbed beyond the mark


@dataclass(frozen=True, slots=True, kw_only=True)
class InsuranceDrawn(Event):
    subaccount: str
    market_id: MarketId
    amount_quote_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LossSocialized(Event):
    """Bad debt no one else could take, recorded in the deficit account, never hidden."""

    subaccount: str
    market_id: MarketId
    amount_quote_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CollateralSeized(Event):
    """A bankrupt account's volatile collateral, bought by the insurance fund at the full
    oracle price before anyone else pays for the account."""

    subaccount: str
    asset_id: AssetId
    amount_quantums: int
    paid_quote_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SurfaceUpdated(Event):
    oracle_id: OracleId
    publisher: Address
    timestamp_ns: int
    slices: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginModeChanged(Event):
    subaccount: str
    portfolio: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionSeriesRegistered(Event):
    oracle_id: OracleId
    prefix: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentAuthorized(Event):
    account: Address
    agent: Address
    valid_until_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRevoked(Event):
    account: Address
    agent: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class VaultDeposited(Event):
    """Shares minted at NAV: ``shares`` = ⌊amount × (total + virtual) / (NAV + virtual)⌋,
    with the totals before the deposit."""

    owner: Address
    subaccount: str  # where the quote came from
    amount_quote_quantums: int
    shares: int
    nav_quote_quantums: int  # before the deposit
    total_shares: int  # before the deposit


@dataclass(frozen=True, slots=True, kw_only=True)
class VaultWithdrawn(Event):
    """Shares redeemed at NAV: ``amount`` = ⌊shares × (NAV + virtual) / (total + virtual)⌋,
    with the totals before the redemption."""

    owner: Address
    subaccount: str  # where the quote went
    shares: int
    amount_quote_quantums: int
    nav_quote_quantums: int  # before the redemption
    total_shares: int  # before the redemption


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionsVaultConfigured(Event):
    params: OptionsVaultParams


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionsVaultDeposited(Event):
    """Options-vault shares minted at NAV, as ``VaultDeposited`` (totals before the deposit)."""

    owner: Address
    subaccount: str
    amount_quote_quantums: int
    shares: int
    nav_quote_quantums: int
    total_shares: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionsVaultWithdrawn(Event):
    """Options-vault shares redeemed at NAV, as ``VaultWithdrawn`` (totals before)."""

    owner: Address
    subaccount: str
    shares: int
    amount_quote_quantums: int
    nav_quote_quantums: int
    total_shares: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionsVaultHedged(Event):
    """The options vault sent an IOC order on its perpetual to bring its delta back toward
    zero: what it asked for and what filled (the fills are the ordinary trade events)."""

    market_id: MarketId
    side: Side
    size_base_quantums: int
    filled_base_quantums: int
    delta_value_quantums: int  # the book's delta value before the hedge (Δ·S, signed)
    nav_quote_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GovernanceConfigured(Event):
    """The council, its threshold, the steward, the guardian or the waits changed."""

    council: tuple[Address, ...]
    threshold: int
    steward: str  # "" for none
    guardian: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalChanged(Event):
    """A proposal was created, approved, queued, executed, cancelled or found expired."""

    proposal_id: int
    status: int  # core.governance.ProposalStatus
    by: Address
    approvals: int
    eta_ns: int  # queued: when it may execute; else 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamChanged(Event):
    """A governed parameter changed (``name`` in core/governance.REGISTRY)."""

    name: str
    target: str
    old_value: int
    new_value: int
    role: int  # core.governance.Role
    by: Address
    proposal_id: int  # 0 unless a proposal made it
    phase_end_ns: int  # a margin increase: when existing positions pay all of it; else 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketFlagsChanged(Event):
    market_id: MarketId
    paused: bool
    reduce_only: bool
    by: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class SettlementPriceProposed(Event):
    """Governance priced an expired market its oracle never settled: it settles at this price
    at ``dispute_until_ns`` unless disputed first (or the oracle settles it)."""

    market_id: MarketId
    price_quantums: int
    dispute_until_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SettlementDisputed(Event):
    market_id: MarketId
    by: Address
