"""The state machine: the only code that mutates ``EngineState``.

A block is ``begin_block(height, timestamp_ns)`` (the prologue: oracles, marks, volatility,
expired and triggered orders, funding, expiry), then ``apply`` of each command in order, then
``end_block()`` which returns the state root. The same commands with the same block contexts give
byte-identical events and roots: nothing here reads a clock, draws randomness or does I/O.

A command applies completely or is rejected with a ``RejectReason`` and changes nothing but its
nonce (§3). Handlers validate first and mutate after; a mutation counter asserts it.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from clearhouse.core import limits, option_math, series, settlement, surface
from clearhouse.core.codec import MalformedCommand, decode_command, to_plain
from clearhouse.core.errors import InvariantViolation, RejectReason
from clearhouse.core.ids import (
    QUOTE_ASSET,
    Address,
    AssetId,
    MarketId,
    OracleId,
    OrderId,
    Side,
    SubaccountId,
    TradeId,
    is_address,
    is_symbol,
)
from clearhouse.core.ledger import (
    CUSTODY,
    DEFICIT,
    FEES,
    INSURANCE,
    SEIZED,
    OpenOrders,
    Position,
    Subaccount,
    SystemAccount,
    Transfer,
    clearing_account,
    funding_account,
)
from clearhouse.core.liquidation import (
    AdlCandidate,
    adl_order,
    adl_score,
    allocate,
    auction_discount_ppm,
    auction_price,
    close_size_cap,
    closing_side,
    cover_bound_price,
    fillable_price,
    keeper_share,
    liquidation_fee,
    more_conservative,
    take_from_queue,
    to_tick,
)
from clearhouse.core.margin import (
    CollateralPrice,
    Instrument,
    MarketRisk,
    Profile,
    Risk,
    collateral_value,
    is_reducing,
    market_im_fraction_ppm,
    notional_requirement_base,
    position_value,
    profile,
    reduces_risk,
    requirements,
    subaccount_risk,
    unit_value,
    unrealized_pnl,
)
from clearhouse.core.matching import MatchPlan, PlannedFill, RestingOrder
from clearhouse.core.merkle import StateTree
from clearhouse.core.messages import (
    AGENT_COMMANDS,
    AgentAuthorized,
    AgentRevoked,
    AgentSigned,
    AmendOrder,
    AssetListed,
    AuctionEnded,
    AuctionStarted,
    AuthorizeAgent,
    BidAuction,
    BidPortfolio,
    CancelAll,
    CancelCause,
    CancelOrder,
    CircuitBreakerTripped,
    CollateralSeized,
    Command,
    CommandRejected,
    Deleveraged,
    Deposit,
    Event,
    FundingPaid,
    IndexUpdated,
    InsuranceDrawn,
    Liquidate,
    Liquidated,
    LiquidationStage,
    ListAsset,
    ListMarket,
    ListOptionSeries,
    ListOracle,
    LossSocialized,
    MarginModeChanged,
    MarketArchived,
    MarketExpired,
    MarketListed,
    MarketSettled,
    OptionSeriesRegistered,
    OracleListed,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderFilled,
    OrderRested,
    OrderTriggerArmed,
    OrderTriggered,
    OrderType,
    PlaceOrder,
    ReportPrices,
    ReportSurface,
    RevokeAgent,
    SetMarginMode,
    SurfaceUpdated,
    TimeInForce,
    TransferCollateral,
    Transferred,
    Withdraw,
)
from clearhouse.core.oracle import (
    Aggregate,
    OracleState,
    PriceStatus,
    Report,
    Twap,
    aggregate,
    annual_volatility_ppm,
    ewma_variance_e18,
    initial_variance_e18,
    mark_price,
    premium_ppb,
    twap_window,
)
from clearhouse.core.params import (
    AssetParams,
    LiquidationParams,
    MarketKind,
    MarketParams,
    VenueParams,
)
from clearhouse.core.state import (
    COUNTERS_KEY,
    PORTFOLIO_AUCTION,
    Auction,
    EngineState,
    LiquidationStatus,
    MarketState,
    MarketStatus,
    OptionSeries,
    TriggerOrder,
    agent_key,
    encode_leaf,
    liquidation_key,
    margin_mode_key,
    market_key,
    nonce_key,
    oracle_key,
    order_key,
    params_key,
    series_key,
    subaccount_key,
    system_key,
    twap_slot_key,
)
from clearhouse.core.units import (
    NS_PER_HOUR,
    NS_PER_MS,
    PPM_ONE,
    clamp,
    div_ceil,
    div_exact,
    div_floor,
)


class Rejected(Exception):
    """Raised by handlers before any mutation; turned into a ``CommandRejected`` event."""

    def __init__(self, reason: RejectReason) -> None:
        super().__init__(reason.name)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """An order after validation, ready to match (from a command or a fired trigger)."""

    order_id: OrderId
    owner: SubaccountId
    market_id: MarketId
    side: Side
    size_base_quantums: int
    limit_price_quantums: int
    time_in_force: TimeInForce
    reduce_only: bool
    good_til_ns: int
    client_order_id: int

    @property
    def rests(self) -> bool:
        return self.time_in_force in (TimeInForce.GTC, TimeInForce.GTT, TimeInForce.POST_ONLY)


@dataclass(frozen=True, slots=True)
class _Trade:
    """A planned fill with its counterparties' position deltas, ready to commit."""

    fill: PlannedFill
    notional_quote_quantums: int
    maker_fee_quote_quantums: int
    taker_fee_quote_quantums: int


class Engine:
    """The deterministic clearing state machine of one venue."""

    def __init__(self, venue: VenueParams) -> None:
        assert is_address(venue.operator), venue.operator
        assert is_address(venue.custody_relayer), venue.custody_relayer
        self.state = EngineState(venue=venue)
        self._events: list[Event] = []
        self._mutations = 0
        self._in_block = False
        self._dirty_subaccounts: set[SubaccountId] = set()
        self._dirty_system: set[SystemAccount] = set()
        self._dirty_markets: set[MarketId] = set()
        self._dirty_oracles: set[str] = set()
        self._dirty_orders: set[OrderId] = set()
        self._dirty_nonces: set[Address] = set()
        self._dirty_liquidations: set[SubaccountId] = set()
        self._dirty_modes: set[SubaccountId] = set()
        self._dirty_series: set[OracleId] = set()
        self._dirty_agents: set[Address] = set()
        self._borrowers: set[SubaccountId] = set()  # quote balance < 0: watched for bad debt
        self._deleveraged: list[Subaccount] = []  # ADL counterparties of this block's pass
        self._dirty_twap_slots: dict[tuple[OracleId, int], tuple[int, int]] = {}
        self._dirty_params: dict[bytes, object] = {}
        self._market_risk_cache: dict[MarketId, tuple[tuple[object, ...], MarketRisk]] = {}
        self._handlers = self._command_handlers()
        self._profile_cache: dict[MarketId, tuple[tuple[object, ...], Profile]] = {}
        self._archived: set[MarketId] = set()  # leaves to delete at the end of the block

    # ── Blocks ──────────────────────────────────────────────────────────────────────────────

    def begin_block(self, height: int, timestamp_ns: int) -> list[Event]:
        """Open a block: advance time and run every time- and price-driven step."""
        assert not self._in_block, "begin_block twice"
        assert height == self.state.height + 1, (height, self.state.height)
        assert timestamp_ns >= self.state.timestamp_ns, "block time never goes backwards"
        self._in_block = True
        self.state.height = height
        self.state.timestamp_ns = timestamp_ns
        self._events = []
        for oracle_id in sorted(self.state.oracles):
            self._update_oracle(self.state.oracles[oracle_id])
            if self.state.oracles[oracle_id].surfaces:
                self._select_surface(self.state.oracles[oracle_id])
        for oracle_id in sorted(self.state.option_series):
            self._roll_series(self.state.option_series[oracle_id])
        for market_id in sorted(self.state.markets):
            self._market_prologue(self.state.markets[market_id])
        self._archive_settled()
        self._liquidation_pass()
        return self._take_events()

    def apply(self, index: int, item: Command | AgentSigned) -> list[Event]:
        """Apply one authenticated command (signed by its account's key, or by ``agent`` for
        an ``AgentSigned`` one); returns its events (a rejection is one event)."""
        assert self._in_block, "apply outside a block"
        self._events = []
        command, agent = (
            (item.command, item.agent) if isinstance(item, AgentSigned) else (item, None)
        )
        key = command.signer if agent is None else agent  # nonces belong to the signing key
        # A key that is not an agent of the account (a forged or foreign signature) gets no
        # nonce set: nothing it sends may leave a trace in state.
        refused = self._check_nonce(command, key) or self._agent_refusal(command, agent)
        if refused is not None:
            return [CommandRejected(index=index, reason=refused, nonce_consumed=False)]
        self._consume_nonce(key, command.nonce)
        mutations_before = self._mutations
        try:
            if self.state.timestamp_ns > command.expiry_ns:
                raise Rejected(RejectReason.COMMAND_EXPIRED)
            self._dispatch(command)
        except Rejected as rejection:
            if self._mutations != mutations_before:
                raise InvariantViolation(
                    f"{type(command).__name__} mutated, then rejected"
                ) from None
            assert not self._events, "a rejected command emitted events"
            return [CommandRejected(index=index, reason=rejection.reason, nonce_consumed=True)]
        events = self._take_events()
        assert len(events) <= limits.events_per_command_max
        return events

    def apply_bytes(self, index: int, data: bytes) -> list[Event]:
        """Apply a command from its journal bytes; undecodable bytes are rejected, not fatal."""
        try:
            command = decode_command(data)
        except MalformedCommand:
            return [
                CommandRejected(
                    index=index, reason=RejectReason.MALFORMED_COMMAND, nonce_consumed=False
                )
            ]
        return self.apply(index, command)

    def end_block(self) -> bytes:
        """Close the block: fold every changed piece of state into the tree; return the root."""
        assert self._in_block, "end_block outside a block"
        self._in_block = False
        self._flush_dirty()
        return self.state.tree.root()

    # ── Dispatch ───────────────────────────────────────────────────────────────────────────

    def _dispatch(self, command: Command) -> None:
        handler = self._handlers.get(type(command))
        if handler is None:
            raise Rejected(RejectReason.MALFORMED_COMMAND)
        handler(command)

    def _command_handlers(self) -> dict[type[Command], Callable[[Any], None]]:
        return {
            PlaceOrder: self._place_order, CancelOrder: self._cancel_order,
            CancelAll: self._cancel_all, AmendOrder: self._amend_order,
            ReportPrices: self._report_prices, ReportSurface: self._report_surface,
            Deposit: self._deposit, Withdraw: self._withdraw,
            TransferCollateral: self._transfer_collateral, Liquidate: self._liquidate_command,
            BidAuction: self._bid_auction, BidPortfolio: self._bid_portfolio,
            SetMarginMode: self._set_margin_mode, ListOracle: self._list,
            ListAsset: self._list, ListMarket: self._list,
            ListOptionSeries: self._list_option_series, AuthorizeAgent: self._authorize_agent,
            RevokeAgent: self._revoke_agent,
        }  # fmt: skip

    # ── Nonces (§3: Hyperliquid's scheme) ──────────────────────────────────────────────────

    def _check_nonce(self, command: Command, key: Address) -> RejectReason | None:
        if not is_address(command.signer) or not is_address(key) or type(command.nonce) is not int:
            return RejectReason.MALFORMED_COMMAND
        now_ms = self.state.timestamp_ns // NS_PER_MS
        venue = self.state.venue
        if command.nonce <= now_ms - venue.nonce_window_past_ns // NS_PER_MS:
            return RejectReason.NONCE_TOO_OLD
        if command.nonce >= now_ms + venue.nonce_window_future_ns // NS_PER_MS:
            return RejectReason.NONCE_TOO_NEW
        used = self.state.nonces.get(key, [])
        position = _bisect(used, command.nonce)
        if position < len(used) and used[position] == command.nonce:
            return RejectReason.NONCE_ALREADY_USED
        if len(used) >= limits.nonces_kept_per_signer and command.nonce < used[0]:
            return RejectReason.NONCE_BELOW_WINDOW
        return None

    # ── Agents (§3): keys an account lets trade and cancel for it ───────────────────────────

    def _agent_refusal(self, command: Command, agent: Address | None) -> RejectReason | None:
        if agent is None:
            return None
        valid_until = self.state.agents.get(command.signer, {}).get(agent)
        if valid_until is None or valid_until < self.state.timestamp_ns:
            return RejectReason.AGENT_NOT_AUTHORIZED
        if not isinstance(command, AGENT_COMMANDS):
            return RejectReason.AGENT_NOT_ALLOWED
        return None

    def _authorize_agent(self, command: AuthorizeAgent) -> None:
        agents = self.state.agents.get(command.signer, {})
        now = self.state.timestamp_ns
        if not is_address(command.agent) or command.agent == command.signer:
            raise Rejected(RejectReason.MALFORMED_COMMAND)
        if not now < command.valid_until_ns <= now + limits.agent_validity_max_ns:
            raise Rejected(RejectReason.INVALID_PARAMETERS)
        live = {a for a, until in agents.items() if until >= now}
        if command.agent not in live and len(live) >= limits.agents_per_account_max:
            raise Rejected(RejectReason.INVALID_PARAMETERS)
        self._mutated()
        kept = {a: until for a, until in agents.items() if a in live}
        kept[command.agent] = command.valid_until_ns
        self.state.agents[command.signer] = dict(sorted(kept.items()))
        self._dirty_agents.add(command.signer)
        self._events.append(AgentAuthorized(
            account=command.signer, agent=command.agent, valid_until_ns=command.valid_until_ns
        ))  # fmt: skip

    def _revoke_agent(self, command: RevokeAgent) -> None:
        agents = self.state.agents.get(command.signer, {})
        if command.agent not in agents:
            raise Rejected(RejectReason.AGENT_NOT_AUTHORIZED)
        self._mutated()
        del agents[command.agent]
        if not agents:
            del self.state.agents[command.signer]
        self._dirty_agents.add(command.signer)
        self._events.append(AgentRevoked(account=command.signer, agent=command.agent))

    def _consume_nonce(self, signer: Address, nonce: int) -> None:
        used = self.state.nonces.setdefault(signer, [])
        used.insert(_bisect(used, nonce), nonce)
        if len(used) > limits.nonces_kept_per_signer:
            del used[0]
        self._dirty_nonces.add(signer)

    # ── Listing (the operator, until governance) ────────────────────────────────────────────

    def _list(self, command: ListOracle | ListAsset | ListMarket) -> None:
        if command.signer != self.state.venue.operator:
            raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
        if command.params.problems() or not all(map(is_symbol, _listed_ids(command))):
            raise Rejected(RejectReason.INVALID_PARAMETERS)
        match command:
            case ListOracle():
                self._list_oracle(command)
            case ListAsset():
                self._list_asset(command)
            case ListMarket():
                self._list_market(command)

    def _list_oracle(self, command: ListOracle) -> None:
        params = command.params
        if params.oracle_id in self.state.oracles:
            raise Rejected(RejectReason.ALREADY_EXISTS)
        if len(self.state.oracles) >= limits.oracles_max or not params.oracle_id:
            raise Rejected(RejectReason.INVALID_PARAMETERS)
        if not all(is_address(p.address) for p in params.publishers):
            raise Rejected(RejectReason.INVALID_PARAMETERS)
        self._mutated()
        self.state.oracles[params.oracle_id] = OracleState(params=params)
        self._dirty_oracles.add(params.oracle_id)
        self._dirty_params[params_key("oracle", params.oracle_id)] = to_plain(params)
        self._events.append(OracleListed(oracle_id=params.oracle_id))

    def _list_asset(self, command: ListAsset) -> None:
        params = command.params
        if params.asset_id in self.state.assets or not params.asset_id:
            raise Rejected(RejectReason.ALREADY_EXISTS)
        is_quote = params.asset_id == QUOTE_ASSET
        if is_quote != (params.oracle_id is None):
            raise Rejected(RejectReason.INVALID_PARAMETERS)
        if params.oracle_id is not None and params.oracle_id not in self.state.oracles:
            raise Rejected(RejectReason.UNKNOWN_ORACLE)
        if len(self.state.assets) >= limits.collateral_assets_max:
            raise Rejected(RejectReason.INVALID_PARAMETERS)
        self._mutated()
        self.state.assets[params.asset_id] = params
        self._dirty_params[params_key("asset", params.asset_id)] = to_plain(params)
        self._events.append(AssetListed(asset_id=params.asset_id))

    def _list_market(self, command: ListMarket) -> None:
        params = command.params
        if params.market_id in self.state.markets:
            raise Rejected(RejectReason.ALREADY_EXISTS)
        if params.oracle_id not in self.state.oracles:
            raise Rejected(RejectReason.UNKNOWN_ORACLE)
        if QUOTE_ASSET not in self.state.assets or len(self.state.markets) >= limits.markets_max:
            raise Rejected(RejectReason.INVALID_PARAMETERS)
        if params.kind is not MarketKind.PERPETUAL and not (
            self.state.timestamp_ns
            < params.expiry_ns
            <= self.state.timestamp_ns + limits.expiry_horizon_ns
        ):
            raise Rejected(RejectReason.INVALID_PARAMETERS)
        self._mutated()
        self._add_market(params)

    def _add_market(self, params: MarketParams) -> None:
        market = MarketState(params=params)
        interval = params.funding.interval_ns
        market.next_funding_ns = (self.state.timestamp_ns // interval + 1) * interval
        market.vol_multiplier_updated_ns = self.state.timestamp_ns
        oracle = self.state.oracles[params.oracle_id]
        market.mark_price_quantums = oracle.index_price_quantums
        if params.kind is MarketKind.OPTION:
            market.mark_price_quantums = self._option_mark(market, oracle)
        self.state.markets[params.market_id] = market
        self._dirty_markets.add(params.market_id)
        self._dirty_params[params_key("market", params.market_id)] = to_plain(params)
        self._events.append(MarketListed(market_id=params.market_id))

    # ── Oracle reports ─────────────────────────────────────────────────────────────────────

    def _report_prices(self, command: ReportPrices) -> None:
        reports = command.reports
        if not 0 < len(reports) <= limits.reports_per_command_max:
            raise Rejected(RejectReason.MALFORMED_COMMAND)
        if len({r.oracle_id for r in reports}) != len(reports):
            raise Rejected(RejectReason.MALFORMED_COMMAND)
        for report in reports:
            oracle = self.state.oracles.get(report.oracle_id)
            if oracle is None:
                raise Rejected(RejectReason.UNKNOWN_ORACLE)
            if command.signer not in {p.address for p in oracle.params.publishers}:
                raise Rejected(RejectReason.UNKNOWN_PUBLISHER)
            if not 0 < report.price_quantums <= limits.price_quantums_max:
                raise Rejected(RejectReason.MALFORMED_COMMAND)
            if not 0 <= report.confidence_quantums <= report.price_quantums:
                raise Rejected(RejectReason.MALFORMED_COMMAND)
            previous = oracle.reports.get(command.signer)
            too_new = report.timestamp_ns > self.state.timestamp_ns
            if too_new or (previous is not None and report.timestamp_ns <= previous.timestamp_ns):
                raise Rejected(RejectReason.REPORT_TIMESTAMP_INVALID)
        self._mutated()
        for report in reports:
            oracle = self.state.oracles[report.oracle_id]
            oracle.reports[command.signer] = Report(
                command.signer, report.price_quantums, report.confidence_quantums,
                report.timestamp_ns,
            )  # fmt: skip
            self._dirty_oracles.add(report.oracle_id)

    # ── Collateral ─────────────────────────────────────────────────────────────────────────

    def _deposit(self, command: Deposit) -> None:
        if command.signer != self.state.venue.custody_relayer:
            raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
        if command.deposit_id <= self.state.last_deposit_id:
            raise Rejected(RejectReason.DUPLICATE_DEPOSIT)
        if not is_address(command.owner):
            raise Rejected(RejectReason.MALFORMED_COMMAND)
        self._check_subaccount_number(command.subaccount_number)
        asset = self._asset(command.asset_id)
        self._check_amount(command.amount_quantums)
        held = -self.state.ledger.balance(CUSTODY, command.asset_id)
        if held + command.amount_quantums > asset.venue_cap_quantums:
            raise Rejected(RejectReason.COLLATERAL_CAP_EXCEEDED)
        self._mutated()
        self.state.last_deposit_id = command.deposit_id
        target = SubaccountId(command.owner, command.subaccount_number)
        self._transfer(CUSTODY, target, command.asset_id, command.amount_quantums, "deposit")

    def _withdraw(self, command: Withdraw) -> None:
        self._check_subaccount_number(command.subaccount_number)
        self._asset(command.asset_id)
        self._check_amount(command.amount_quantums)
        source = SubaccountId(command.signer, command.subaccount_number)
        self._check_can_release(source, command.asset_id, command.amount_quantums)
        self._mutated()
        self._transfer(source, CUSTODY, command.asset_id, command.amount_quantums, "withdrawal")

    def _transfer_collateral(self, command: TransferCollateral) -> None:
        self._check_subaccount_number(command.source_number)
        self._check_subaccount_number(command.target_number)
        if command.source_number == command.target_number:
            raise Rejected(RejectReason.SELF_TRANSFER)
        self._asset(command.asset_id)
        self._check_amount(command.amount_quantums)
        source = SubaccountId(command.signer, command.source_number)
        self._check_can_release(source, command.asset_id, command.amount_quantums)
        self._mutated()
        target = SubaccountId(command.signer, command.target_number)
        self._transfer(source, target, command.asset_id, command.amount_quantums, "transfer")

    def _check_can_release(self, source: SubaccountId, asset_id: AssetId, amount: int) -> None:
        """Collateral may leave a subaccount only from its settled balance, only on fresh
        prices, and only while IM stays met: never unrealized profit (Mango 2022)."""
        subaccount = self.state.ledger.subaccounts.get(source)
        if subaccount is None or subaccount.balance(asset_id) < amount:
            raise Rejected(RejectReason.INSUFFICIENT_FUNDS)
        risk = self.risk_of(subaccount)
        if not risk.usable:
            raise Rejected(RejectReason.ORACLE_STALE)
        self._check_withdrawals_open(subaccount)
        if asset_id == QUOTE_ASSET:
            if amount > risk.withdrawable_quote:
                raise Rejected(RejectReason.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)
            return
        # Volatile collateral may leave only while IM stays met and what remains settled (quote
        # plus haircut collateral, no PnL) still covers any quote debt: a negative quote balance
        # may never end up backed by unrealized profit alone.
        after = self.risk_of(
            _with_balance(subaccount, asset_id, subaccount.balance(asset_id) - amount)
        )
        if not after.satisfies_initial or after.settled_collateral < 0:
            raise Rejected(RejectReason.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)

    def _check_withdrawals_open(self, subaccount: Subaccount) -> None:
        """No collateral leaves while a market the subaccount holds has a bankrupt holder (its
        profit may be what that holder cannot pay), nor in the grace period after an outage of
        a price it depends on, when no one may yet be liquidated on the returning prices."""
        for market_id in subaccount.positions:
            market = self.state.markets[market_id]
            if market.underwater_count:
                raise Rejected(RejectReason.WITHDRAWALS_PAUSED)
            if self.state.oracles[market.params.oracle_id].restart_guard:
                raise Rejected(RejectReason.WITHDRAWALS_PAUSED)
        for asset_id in subaccount.balances:
            oracle_id = self.state.assets[asset_id].oracle_id
            if oracle_id is not None and self.state.oracles[oracle_id].restart_guard:
                raise Rejected(RejectReason.WITHDRAWALS_PAUSED)

    def _asset(self, asset_id: AssetId) -> AssetParams:
        found = self.state.assets.get(asset_id)
        if found is None:
            raise Rejected(RejectReason.UNKNOWN_ASSET)
        return found

    @staticmethod
    def _check_amount(amount: int) -> None:
        if not 0 < amount <= limits.amount_quantums_max:
            raise Rejected(RejectReason.AMOUNT_NOT_POSITIVE)

    @staticmethod
    def _check_subaccount_number(number: int) -> None:
        if not 0 <= number < limits.subaccounts_per_account_max:
            raise Rejected(RejectReason.MALFORMED_COMMAND)

    # ── Orders: validation ─────────────────────────────────────────────────────────────────

    def _place_order(self, command: PlaceOrder) -> None:
        self._check_subaccount_number(command.subaccount_number)
        owner = SubaccountId(command.signer, command.subaccount_number)
        market = self._tradable_market(command.market_id)
        self._check_size(market, command.size_base_quantums)
        self._check_order_shape(market, command)
        subaccount = self.state.ledger.subaccounts.get(owner)
        self._check_order_capacity(subaccount, command)
        if command.order_type in _TRIGGERED_TYPES:
            self._arm_trigger(owner, market, command)
            return
        limit_price = self._limit_price(market, command)
        spec = OrderSpec(
            OrderId(self.state.next_order_id), owner, command.market_id, command.side,
            command.size_base_quantums, limit_price, command.time_in_force,
            command.reduce_only, command.good_til_ns, command.client_order_id,
        )  # fmt: skip
        self._execute(spec, accepted=True)

    def _tradable_market(self, market_id: MarketId) -> MarketState:
        market = self.state.markets.get(market_id)
        if market is None:
            raise Rejected(RejectReason.UNKNOWN_MARKET)
        if market.status is not MarketStatus.ACTIVE:
            raise Rejected(RejectReason.MARKET_NOT_ACTIVE)
        oracle = self.state.oracles[market.params.oracle_id]
        if not oracle.is_usable():
            raise Rejected(RejectReason.ORACLE_STALE)
        if market.params.kind is MarketKind.OPTION and not self._surface_fresh(oracle):
            raise Rejected(RejectReason.SURFACE_STALE)
        return market

    @staticmethod
    def _check_size(market: MarketState, size: int) -> None:
        params = market.params
        if not 0 < size <= limits.size_base_quantums_max:
            raise Rejected(RejectReason.AMOUNT_NOT_POSITIVE)
        if size % params.step_base_quantums != 0:
            raise Rejected(RejectReason.SIZE_OFF_STEP)
        if size < params.min_order_base_quantums:
            raise Rejected(RejectReason.SIZE_BELOW_MINIMUM)

    def _check_order_shape(self, market: MarketState, command: PlaceOrder) -> None:
        """Price grid, band, and the combinations of type and time-in-force that make sense."""
        tick = market.params.tick_quantums
        is_market = command.order_type in _MARKET_TYPES
        if command.side not in (Side.BUY, Side.SELL):
            raise Rejected(RejectReason.MALFORMED_COMMAND)
        if is_market and command.time_in_force not in (TimeInForce.IOC, TimeInForce.FOK):
            raise Rejected(RejectReason.MALFORMED_COMMAND)
        if is_market and not 0 < command.slippage_ppm <= market.params.price_band_ppm:
            raise Rejected(RejectReason.MALFORMED_COMMAND)
        if (
            command.time_in_force is TimeInForce.GTT
            and command.good_til_ns <= self.state.timestamp_ns
        ):
            raise Rejected(RejectReason.COMMAND_EXPIRED)
        if command.time_in_force is not TimeInForce.GTT and command.good_til_ns != 0:
            raise Rejected(RejectReason.MALFORMED_COMMAND)
        if command.order_type in _TRIGGERED_TYPES:
            self._check_price(
                market, command.trigger_price_quantums, tick, command.side, band=False
            )
        if not is_market:  # a stop-limit's band is checked when it fires, against that index
            triggered = command.order_type in _TRIGGERED_TYPES
            self._check_price(
                market, command.price_quantums, tick, command.side, band=not triggered
            )
        elif command.price_quantums != 0:
            raise Rejected(RejectReason.MALFORMED_COMMAND)

    def _check_price(
        self, market: MarketState, price: int, tick: int, side: Side, *, band: bool
    ) -> None:
        if not 0 < price <= limits.price_quantums_max:
            raise Rejected(RejectReason.MALFORMED_COMMAND)
        if price % tick != 0:
            raise Rejected(RejectReason.PRICE_OFF_TICK)
        if not band:
            return
        params = market.params
        index = self.state.oracles[params.oracle_id].index_price_quantums
        if params.kind is MarketKind.OPTION:
            # An option moves many times its underlying: its band is around its own mark,
            # with a floor in the underlying's terms so that cheap options can still trade.
            through = (price - market.mark_price_quantums) * side
            room = params.price_band_ppm * market.mark_price_quantums
            if through * PPM_ONE > room + params.option_band_floor_ppm * index:
                raise Rejected(RejectReason.PRICE_OUTSIDE_BAND)
            return
        through = (price - index) * side  # how far the price goes through the index
        if through * PPM_ONE > params.price_band_ppm * index:
            raise Rejected(RejectReason.PRICE_OUTSIDE_BAND)

    def _check_order_capacity(self, subaccount: Subaccount | None, command: PlaceOrder) -> None:
        if subaccount is None:
            raise Rejected(RejectReason.INSUFFICIENT_MARGIN)
        if len(subaccount.order_ids) >= limits.open_orders_per_subaccount_max:
            raise Rejected(RejectReason.TOO_MANY_OPEN_ORDERS)
        if not 0 <= command.client_order_id <= limits.client_order_id_max:
            raise Rejected(RejectReason.MALFORMED_COMMAND)
        if command.client_order_id and command.client_order_id in subaccount.client_order_ids:
            raise Rejected(RejectReason.DUPLICATE_CLIENT_ORDER_ID)
        new_market = command.market_id not in subaccount.positions
        if new_market and len(subaccount.positions) >= limits.positions_per_subaccount_max:
            raise Rejected(RejectReason.TOO_MANY_POSITIONS)

    def _limit_price(self, market: MarketState, command: PlaceOrder) -> int:
        """A market order's limit is the mark moved by its slippage bound, on the tick grid and
        inside the band (the bound protects the taker, so it rounds toward the mark)."""
        if command.order_type not in _MARKET_TYPES:
            return command.price_quantums
        return self._slippage_limit(market, command.side, command.slippage_ppm)

    def _slippage_limit(self, market: MarketState, side: Side, slippage_ppm: int) -> int:
        tick = market.params.tick_quantums
        mark = market.mark_price_quantums
        if side is Side.BUY:
            bound = mark + mark * slippage_ppm // PPM_ONE
            return max(bound // tick * tick, tick)
        bound = mark - mark * slippage_ppm // PPM_ONE
        return max(div_ceil(bound, tick) * tick, tick)

    def _arm_trigger(self, owner: SubaccountId, market: MarketState, command: PlaceOrder) -> None:
        if len(market.triggers) >= limits.trigger_orders_per_market_max:
            raise Rejected(RejectReason.BOOK_FULL)
        if self._trigger_count(owner) >= limits.trigger_orders_per_subaccount_max:
            raise Rejected(RejectReason.TOO_MANY_OPEN_ORDERS)
        if command.time_in_force is TimeInForce.POST_ONLY:
            raise Rejected(RejectReason.TRIGGER_INVALID)
        probe = TriggerOrder(
            order_id=OrderId(0), owner=owner, market_id=command.market_id, side=command.side,
            order_type=command.order_type, size_base_quantums=command.size_base_quantums,
            price_quantums=command.price_quantums,
            trigger_price_quantums=command.trigger_price_quantums,
            time_in_force=command.time_in_force, reduce_only=command.reduce_only,
            slippage_ppm=command.slippage_ppm, good_til_ns=command.good_til_ns,
            client_order_id=command.client_order_id,
        )  # fmt: skip
        if probe.fires_at(market.mark_price_quantums):
            raise Rejected(RejectReason.TRIGGER_INVALID)  # it would fire at once: wrong side
        self._mutated()
        order_id = self._next_order_id()
        trigger = dataclasses.replace(probe, order_id=order_id)
        market.triggers[order_id] = trigger
        self._dirty_orders.add(order_id)
        self._register_order(owner, order_id, command.market_id, command.client_order_id)
        if command.good_til_ns:
            market.push_expiry(command.good_til_ns, order_id)
        self._events.append(self._accepted_event(trigger.order_id, owner, command))
        self._events.append(
            OrderTriggerArmed(
                order_id=order_id, trigger_price_quantums=command.trigger_price_quantums
            )
        )

    def _trigger_count(self, owner: SubaccountId) -> int:
        """Conditional orders cost no margin until they fire, so each subaccount gets few."""
        subaccount = self.state.ledger.subaccounts[owner]
        markets = self.state.markets
        return sum(o in markets[m].triggers for o, m in subaccount.order_ids.items())

    @staticmethod
    def _accepted_event(
        order_id: OrderId, owner: SubaccountId, command: PlaceOrder
    ) -> OrderAccepted:
        return OrderAccepted(
            order_id=order_id, subaccount=str(owner), market_id=command.market_id,
            side=command.side, price_quantums=command.price_quantums,
            size_base_quantums=command.size_base_quantums, client_order_id=command.client_order_id,
        )  # fmt: skip

    # ── Orders: matching and margin ────────────────────────────────────────────────────────

    def _execute(self, spec: OrderSpec, *, accepted: bool) -> None:
        """Match an order against the book, margin-check both sides, then commit everything."""
        market = self.state.markets[spec.market_id]
        subaccount = self.state.ledger.subaccounts[spec.owner]
        if not spec.reduce_only and self._cooling_off(market):
            raise Rejected(RejectReason.MARKET_REDUCE_ONLY)
        size = self._executable_size(subaccount, spec)
        if spec.time_in_force is TimeInForce.POST_ONLY and market.book.would_cross(
            spec.side, spec.limit_price_quantums
        ):
            raise Rejected(RejectReason.POST_ONLY_WOULD_CROSS)
        plan, maker_cancels = self._plan_with_solvent_makers(market, spec, size)
        if spec.time_in_force is TimeInForce.FOK and plan.filled_base_quantums < size:
            raise Rejected(RejectReason.FOK_NOT_FILLABLE)
        trades = [self._price_trade(market, fill) for fill in plan.fills]
        rest_size = size - plan.filled_base_quantums if spec.rests else 0
        self._check_taker(subaccount, spec, trades, rest_size)
        self._mutated()
        if accepted:
            assert spec.order_id == self._next_order_id()
            self._register_order(spec.owner, spec.order_id, spec.market_id, spec.client_order_id)
        self._commit_plan(market, spec, plan, maker_cancels, trades)
        self._finish_order(market, spec, size, plan.filled_base_quantums, rest_size)

    def _commit_plan(
        self, market: MarketState, spec: OrderSpec, plan: MatchPlan,
        maker_cancels: list[tuple[OrderId, CancelCause]], trades: list[_Trade],
    ) -> None:  # fmt: skip
        """Cancel what the match walked past (own orders, failing makers), then fill."""
        for order_id in plan.self_trade_cancels:
            self._cancel_resting(market, order_id, CancelCause.SELF_TRADE)
        for order_id, cause in maker_cancels:
            self._cancel_resting(market, order_id, cause)
        for trade in trades:
            self._commit_trade(market, spec, trade)

    def _cooling_off(self, market: MarketState) -> bool:
        """After a circuit breaker trips, the market is reduce-only until cooling-off ends."""
        oracle = self.state.oracles[market.params.oracle_id]
        return oracle.cooling_off_until_ns > self.state.timestamp_ns

    def _executable_size(self, subaccount: Subaccount, spec: OrderSpec) -> int:
        if not spec.reduce_only:
            return spec.size_base_quantums
        position = subaccount.position_size(spec.market_id)
        if position == 0 or (position > 0) == (spec.side is Side.BUY):
            raise Rejected(RejectReason.REDUCE_ONLY_WOULD_INCREASE)
        return min(spec.size_base_quantums, abs(position))

    def _plan_with_solvent_makers(
        self, market: MarketState, spec: OrderSpec, size: int
    ) -> tuple[MatchPlan, list[tuple[OrderId, CancelCause]]]:
        """Plan the match; makers that could no longer carry their fill are skipped (and are
        cancelled if the order commits), and the plan is made again without them. So are
        reduce-only makers whose earlier fills in the same plan already used up their position."""
        excluded: set[OrderId] = set()
        cancels: list[tuple[OrderId, CancelCause]] = []
        for _ in range(limits.maker_rejections_per_order_max):
            plan = market.book.plan(
                side=spec.side, limit_price_quantums=spec.limit_price_quantums,
                size_base_quantums=size, owner=spec.owner, excluded=frozenset(excluded),
            )  # fmt: skip
            over_reducing = self._over_reducing_makers(market, plan, spec.side.opposite)
            if over_reducing:
                excluded.update(over_reducing)
                cancels.extend((o, CancelCause.REDUCE_ONLY) for o in over_reducing)
                continue
            failing = self._failing_makers(market, plan, spec.side.opposite)
            if not failing:
                return plan, cancels
            for fill in plan.fills:
                if fill.maker_owner in failing and fill.maker_order_id not in excluded:
                    excluded.add(fill.maker_order_id)
                    cause = failing[fill.maker_owner]
                    if cause is not None:  # None: skipped for now (a stale price), kept resting
                        cancels.append((fill.maker_order_id, cause))
            # The same owner's other orders on that side would fail alike: skip them all now,
            # so that a wall of small orders from one subaccount costs one re-plan, not many.
            excluded.update(self._orders_of(failing, market, spec.side.opposite))
        raise Rejected(RejectReason.NO_LIQUIDITY)

    def _over_reducing_makers(
        self, market: MarketState, plan: MatchPlan, maker_side: Side
    ) -> list[OrderId]:
        """Reduce-only maker orders whose fill would take their owner past flat, counting the
        owner's earlier fills in the same plan (each order alone fits the position)."""
        market_id = market.params.market_id
        reducible: dict[SubaccountId, int] = {}
        over: list[OrderId] = []
        for fill in plan.fills:
            owner = fill.maker_owner
            if owner not in reducible:
                position = self.state.ledger.subaccounts[owner].position_size(market_id)
                reducible[owner] = max(-position * maker_side, 0)
            order = market.book.get(fill.maker_order_id)
            assert order is not None, fill
            if order.reduce_only and fill.size_base_quantums > reducible[owner]:
                over.append(fill.maker_order_id)
            else:
                reducible[owner] -= fill.size_base_quantums
        return over

    def _orders_of(
        self, owners: Iterable[SubaccountId], market: MarketState, side: Side
    ) -> list[OrderId]:
        market_id = market.params.market_id
        found: list[OrderId] = []
        for owner in owners:
            for order_id, order_market in self.state.ledger.subaccounts[owner].order_ids.items():
                order = market.book.get(order_id) if order_market == market_id else None
                if order is not None and order.side is side:
                    found.append(order_id)
        return found

    def _failing_makers(
        self, market: MarketState, plan: MatchPlan, maker_side: Side
    ) -> dict[SubaccountId, CancelCause | None]:
        """Makers that may not take their planned fills, and why (None: skip, do not cancel)."""
        by_maker: dict[SubaccountId, list[PlannedFill]] = {}
        for fill in plan.fills:
            by_maker.setdefault(fill.maker_owner, []).append(fill)
        market_id = market.params.market_id
        cooling_off = self._cooling_off(market)
        failing: dict[SubaccountId, CancelCause | None] = {}
        for owner, fills in by_maker.items():
            maker = self.state.ledger.subaccounts[owner]
            trades = [self._price_trade(market, fill) for fill in fills]
            after = self._after_trades(maker, market, maker_side, trades, maker=True)
            size_before = maker.position_size(market_id)
            if cooling_off and not is_reducing(size_before, after.position_size(market_id)):
                failing[owner] = CancelCause.COOLING_OFF
            elif self._exceeds_position_limits(market, maker, after):
                failing[owner] = CancelCause.POSITION_LIMIT
            elif not self.risk_of(after).usable:
                failing[owner] = None
            elif not self._acceptable(maker, after, market_id):
                failing[owner] = CancelCause.MAKER_MARGIN
        return failing

    def _check_taker(
        self, subaccount: Subaccount, spec: OrderSpec, trades: list[_Trade], rest_size: int
    ) -> None:
        market = self.state.markets[spec.market_id]
        after = self._after_trades(subaccount, market, spec.side, trades, maker=False)
        if rest_size:
            orders = after.open_orders.setdefault(spec.market_id, OpenOrders())
            _add_to_open_orders(
                orders,
                spec.side,
                rest_size,
                self._notional(market, rest_size, spec.limit_price_quantums),
            )
            orders.count += 1  # margin skips a market whose open-order count is zero
        if len(after.positions) > limits.positions_per_subaccount_max:
            raise Rejected(RejectReason.TOO_MANY_POSITIONS)
        self._check_exposure_caps(market, subaccount, after, trades, spec.side)
        after_risk = self.risk_of(after)
        if not after_risk.usable:
            raise Rejected(RejectReason.ORACLE_STALE)
        if after_risk.satisfies_initial:
            return
        # Below IM, an order may still go through if it only reduces risk: its fills shrink the
        # position, and whatever rests is reduce-only and adds no IM on its worst side.
        before_risk = self.risk_of(subaccount)
        reducing = is_reducing(
            subaccount.position_size(spec.market_id), after.position_size(spec.market_id)
        ) and reduces_risk(before_risk, after_risk)
        rest_ok = rest_size == 0 or (spec.reduce_only and after_risk.initial <= before_risk.initial)
        if not (reducing and rest_ok):
            raise Rejected(RejectReason.INSUFFICIENT_MARGIN)

    def _check_exposure_caps(
        self, market: MarketState, taker: Subaccount, after: Subaccount, trades: list[_Trade],
        side: Side,
    ) -> None:  # fmt: skip
        """Open interest stays under the market's cap, and no position outgrows the book's depth
        (dYdX YFI 2023: a thin market cornered by one account)."""
        params = market.params.liquidation
        if params.open_interest_cap_base_quantums:
            growth = self._open_interest_growth(market, taker, trades, side)
            total = market.open_interest_base_quantums + growth
            if growth > 0 and total > params.open_interest_cap_base_quantums:
                raise Rejected(RejectReason.OPEN_INTEREST_CAP_EXCEEDED)
        if self._over_position_cap(market, taker, after):
            raise Rejected(RejectReason.POSITION_CAP_EXCEEDED)

    def _open_interest_growth(
        self, market: MarketState, taker: Subaccount, trades: list[_Trade], side: Side
    ) -> int:
        """How much open interest (summed longs) these fills add, over taker and makers."""
        market_id = market.params.market_id
        sizes: dict[SubaccountId, int] = {}
        for trade in trades:
            for owner, delta in (
                (taker.subaccount_id, trade.fill.size_base_quantums * side),
                (trade.fill.maker_owner, -trade.fill.size_base_quantums * side),
            ):
                before = sizes.get(owner)
                if before is None:
                    before = self.state.ledger.subaccounts[owner].position_size(market_id)
                sizes[owner] = before + delta
        growth = 0
        for owner, size in sizes.items():
            before = self.state.ledger.subaccounts[owner].position_size(market_id)
            growth += max(size, 0) - max(before, 0)
        return growth

    def position_cap(self, market_id: MarketId) -> int | None:
        """The largest position the book's depth supports now: max(floor, multiple × the
        thinner side's resting size within the band around the mark); None when uncapped."""
        market = self.state.markets[market_id]
        params = market.params.liquidation
        if params.position_cap_floor_base_quantums == 0:
            return None
        mark = market.mark_price_quantums
        band = div_floor(mark * params.position_cap_depth_band_ppm, PPM_ONE)
        levels = limits.depth_levels_max
        bids = market.book.size_within(Side.BUY, mark - band, levels)
        asks = market.book.size_within(Side.SELL, mark + band, levels)
        by_depth = div_floor(min(bids, asks) * params.position_cap_depth_multiple_ppm, PPM_ONE)
        return max(params.position_cap_floor_base_quantums, by_depth)

    def _exceeds_position_limits(
        self, market: MarketState, before: Subaccount, after: Subaccount
    ) -> bool:
        too_many = len(after.positions) > limits.positions_per_subaccount_max
        return too_many or self._over_position_cap(market, before, after)

    def _over_position_cap(
        self, market: MarketState, before: Subaccount, after: Subaccount
    ) -> bool:
        cap = self.position_cap(market.params.market_id)
        if cap is None:
            return False
        market_id = market.params.market_id
        size_after = abs(after.position_size(market_id))
        return size_after > cap and size_after > abs(before.position_size(market_id))

    def _acceptable(self, before: Subaccount, after: Subaccount, market_id: MarketId) -> bool:
        """IM met after the change, or the change only reduced the position and its risk."""
        after_risk = self.risk_of(after)
        if after_risk.satisfies_initial:
            return True
        reducing = is_reducing(before.position_size(market_id), after.position_size(market_id))
        return reducing and reduces_risk(self.risk_of(before), after_risk)

    def _after_trades(
        self,
        subaccount: Subaccount,
        market: MarketState,
        side: Side,
        trades: list[_Trade],
        *,
        maker: bool,
    ) -> Subaccount:
        """A copy of the subaccount as it would be after these trades (nothing is mutated)."""
        market_id = market.params.market_id
        position = subaccount.positions.get(market_id, Position(market_id))
        size, cost = position.size_base_quantums, position.cost_quote_quantums
        quote = subaccount.balance(QUOTE_ASSET)
        orders = _copy_open_orders(subaccount.open_orders.get(market_id))
        for trade in trades:
            fill = trade.fill
            change = settlement.apply_fill(
                size_base_quantums=size, cost_quote_quantums=cost,
                fill_base_quantums=fill.size_base_quantums * side,
                fill_notional_quote_quantums=trade.notional_quote_quantums,
            )  # fmt: skip
            size, cost = change.size_base_quantums, change.cost_quote_quantums
            fee = trade.maker_fee_quote_quantums if maker else trade.taker_fee_quote_quantums
            quote += change.realized_pnl_quote_quantums - fee
            if maker:
                _add_to_open_orders(
                    orders, side, -fill.size_base_quantums, -trade.notional_quote_quantums
                )
        positions = {**subaccount.positions, market_id: Position(market_id, size, cost)}
        if size == 0:
            del positions[market_id]  # flat: no position, as commit will leave it
        copy = Subaccount(
            subaccount.subaccount_id, balances={**subaccount.balances, QUOTE_ASSET: quote},
            positions=positions, open_orders={**subaccount.open_orders, market_id: orders},
        )  # fmt: skip
        return copy

    def _price_trade(self, market: MarketState, fill: PlannedFill) -> _Trade:
        notional = self._notional(market, fill.size_base_quantums, fill.price_quantums)
        params = market.params
        return _Trade(
            fill, notional, div_ceil(notional * params.maker_fee_ppm, PPM_ONE),
            div_ceil(notional * params.taker_fee_ppm, PPM_ONE),
        )  # fmt: skip

    @staticmethod
    def _notional(market: MarketState, size: int, price: int) -> int:
        """size × price / base quantums per unit: exact on the market's grid (params enforce)."""
        return div_exact(size * price, market.params.base_quantums_per_unit)

    # ── Orders: commit ─────────────────────────────────────────────────────────────────────

    def _commit_trade(self, market: MarketState, spec: OrderSpec, trade: _Trade) -> None:
        fill = trade.fill
        market_id = market.params.market_id
        maker_order = market.book.get(fill.maker_order_id)
        assert maker_order is not None and maker_order.side is spec.side.opposite
        maker = self.state.ledger.subaccounts[fill.maker_owner]
        _add_to_open_orders(
            maker.open_orders[market_id], maker_order.side, -fill.size_base_quantums,
            -trade.notional_quote_quantums,
        )  # fmt: skip
        remaining = market.book.apply_fill(fill.maker_order_id, fill.size_base_quantums)
        self._dirty_orders.add(fill.maker_order_id)
        if remaining.remaining_base_quantums == 0:
            self._forget_filled(maker, market_id, remaining)
        self._settle_side(market, maker, maker_order.side, trade, trade.maker_fee_quote_quantums)
        taker = self.state.ledger.subaccounts[spec.owner]
        self._settle_side(market, taker, spec.side, trade, trade.taker_fee_quote_quantums)
        trade_id = TradeId(self.state.next_trade_id)
        self.state.next_trade_id += 1
        market.last_trade_price_quantums = fill.price_quantums
        self._events.append(OrderFilled(
            trade_id=trade_id, market_id=market_id, maker_order_id=fill.maker_order_id,
            taker_order_id=spec.order_id, maker=str(fill.maker_owner), taker=str(spec.owner),
            taker_side=spec.side, price_quantums=fill.price_quantums,
            size_base_quantums=fill.size_base_quantums,
            maker_fee_quote_quantums=trade.maker_fee_quote_quantums,
            taker_fee_quote_quantums=trade.taker_fee_quote_quantums,
        ))  # fmt: skip
        self._enforce_reduce_only(market, maker)

    def _forget_filled(self, maker: Subaccount, market_id: MarketId, order: RestingOrder) -> None:
        """A fully filled maker order has left the book: drop it from every index."""
        orders = maker.open_orders[market_id]
        orders.count -= 1
        orders.reduce_only_count -= order.reduce_only
        if orders.count == 0:
            assert orders == OpenOrders(), orders
            del maker.open_orders[market_id]
        del self.state.order_markets[order.order_id]
        self._unregister_order(maker, order.order_id, market_id, order.client_order_id)

    def _settle_side(
        self, market: MarketState, subaccount: Subaccount, side: Side, trade: _Trade, fee: int
    ) -> None:
        """Move one side's position; realized PnL and the fee become ledger transfers."""
        market_id = market.params.market_id
        position = subaccount.positions.get(market_id)
        if position is None:
            position = Position(market_id)
            subaccount.positions[market_id] = position
            market.holders[subaccount.subaccount_id] = None
        size_before = position.size_base_quantums
        change = settlement.apply_fill(
            size_base_quantums=size_before, cost_quote_quantums=position.cost_quote_quantums,
            fill_base_quantums=trade.fill.size_base_quantums * side,
            fill_notional_quote_quantums=trade.notional_quote_quantums,
        )  # fmt: skip
        position.size_base_quantums = change.size_base_quantums
        position.cost_quote_quantums = change.cost_quote_quantums
        market.open_interest_base_quantums += max(change.size_base_quantums, 0) - max(
            size_before, 0
        )
        self._pay_pnl(market_id, subaccount.subaccount_id, change.realized_pnl_quote_quantums)
        if fee:
            self._transfer(subaccount.subaccount_id, FEES, QUOTE_ASSET, fee, "trading fee")
        if change.size_base_quantums == 0:
            del subaccount.positions[market_id]
            market.holders.pop(subaccount.subaccount_id, None)
        self._dirty_subaccounts.add(subaccount.subaccount_id)
        self._dirty_markets.add(market_id)

    def _pay_pnl(self, market_id: MarketId, subaccount_id: SubaccountId, pnl: int) -> None:
        clearing = clearing_account(market_id)
        if pnl > 0:
            self._transfer(clearing, subaccount_id, QUOTE_ASSET, pnl, "realized pnl")
        elif pnl < 0:
            self._transfer(subaccount_id, clearing, QUOTE_ASSET, -pnl, "realized pnl")

    def _finish_order(
        self, market: MarketState, spec: OrderSpec, size: int, filled: int, rest_size: int
    ) -> None:
        taker = self.state.ledger.subaccounts[spec.owner]
        if rest_size and market.book.would_cross(spec.side, spec.limit_price_quantums):
            # The walk stopped at a bound (fills or self-trade cancels per order) with liquidity
            # left at this price: the remainder cannot rest without crossing, so it is cancelled.
            rest_size = 0
        if rest_size:
            self._rest(market, taker, spec, rest_size)
        else:
            if size - filled > 0 or spec.size_base_quantums > size:
                self._events.append(OrderCancelled(
                    order_id=spec.order_id, cause=CancelCause.IOC_REMAINDER,
                    remaining_base_quantums=spec.size_base_quantums - filled,
                ))  # fmt: skip
            self._unregister_order(taker, spec.order_id, spec.market_id, spec.client_order_id)
        self._enforce_reduce_only(market, taker)

    def _rest(
        self, market: MarketState, owner: Subaccount, spec: OrderSpec, rest_size: int
    ) -> None:
        if len(market.book) >= limits.orders_per_book_max:
            self._events.append(OrderCancelled(
                order_id=spec.order_id, cause=CancelCause.IOC_REMAINDER,
                remaining_base_quantums=rest_size,
            ))  # fmt: skip
            self._unregister_order(owner, spec.order_id, spec.market_id, spec.client_order_id)
            return
        market.book.add(RestingOrder(
            order_id=spec.order_id, owner=spec.owner, side=spec.side,
            price_quantums=spec.limit_price_quantums, remaining_base_quantums=rest_size,
            reduce_only=spec.reduce_only, good_til_ns=spec.good_til_ns,
            client_order_id=spec.client_order_id,
            post_only=spec.time_in_force is TimeInForce.POST_ONLY,
            sequence=self.state.next_rest_sequence,
        ))  # fmt: skip
        self.state.next_rest_sequence += 1
        orders = owner.open_orders.setdefault(spec.market_id, OpenOrders())
        notional = self._notional(market, rest_size, spec.limit_price_quantums)
        _add_to_open_orders(orders, spec.side, rest_size, notional)
        orders.count += 1
        orders.reduce_only_count += spec.reduce_only
        if spec.good_til_ns:
            market.push_expiry(spec.good_til_ns, spec.order_id)
        self.state.order_markets[spec.order_id] = spec.market_id
        self._dirty_orders.add(spec.order_id)
        self._dirty_subaccounts.add(spec.owner)
        self._events.append(OrderRested(order_id=spec.order_id, remaining_base_quantums=rest_size))

    def _enforce_reduce_only(self, market: MarketState, subaccount: Subaccount) -> None:
        """Resting reduce-only orders may never add to a position: after the position changes,
        shrink them to it or cancel them (dYdX does the same)."""
        market_id = market.params.market_id
        orders = subaccount.open_orders.get(market_id)
        if orders is None or orders.reduce_only_count == 0:
            return
        position = subaccount.position_size(market_id)
        for order_id, order_market in sorted(subaccount.order_ids.items()):
            order = market.book.get(order_id) if order_market == market_id else None
            if order is None or not order.reduce_only:
                continue
            reducible = abs(position) if (position > 0) == (order.side is Side.SELL) else 0
            if reducible == 0:
                self._cancel_resting(market, order_id, CancelCause.REDUCE_ONLY)
            elif order.remaining_base_quantums > reducible:
                self._resize_resting(market, order, reducible)

    def _resize_resting(self, market: MarketState, order: RestingOrder, size: int) -> None:
        owner = self.state.ledger.subaccounts[order.owner]
        cut = order.remaining_base_quantums - size
        notional = self._notional(market, cut, order.price_quantums)
        _add_to_open_orders(owner.open_orders[market.params.market_id], order.side, -cut, -notional)
        market.book.resize(order.order_id, size)
        self._dirty_orders.add(order.order_id)
        self._dirty_subaccounts.add(order.owner)

    # ── Cancel and amend ───────────────────────────────────────────────────────────────────

    def _cancel_order(self, command: CancelOrder) -> None:
        self._check_subaccount_number(command.subaccount_number)
        owner = SubaccountId(command.signer, command.subaccount_number)
        order_id = self._find_order(owner, command.order_id, command.client_order_id)
        self._mutated()
        self._cancel_any(order_id, CancelCause.USER)

    def _cancel_all(self, command: CancelAll) -> None:
        self._check_subaccount_number(command.subaccount_number)
        if command.market_id is not None and command.market_id not in self.state.markets:
            raise Rejected(RejectReason.UNKNOWN_MARKET)
        owner = SubaccountId(command.signer, command.subaccount_number)
        subaccount = self.state.ledger.subaccounts.get(owner)
        if subaccount is None:
            return
        doomed = [
            order_id
            for order_id, market_id in sorted(subaccount.order_ids.items())
            if command.market_id is None or market_id == command.market_id
        ]
        if doomed:
            self._mutated()
        for order_id in doomed:
            self._cancel_any(order_id, CancelCause.USER)

    def _amend_order(self, command: AmendOrder) -> None:
        """Shrinking at the same price keeps priority; anything else is cancel + new order,
        atomically: if the new order would be rejected, the old one stays as it was."""
        self._check_subaccount_number(command.subaccount_number)
        owner = SubaccountId(command.signer, command.subaccount_number)
        order_id = self._find_order(owner, command.order_id, 0)
        market_id = self.state.order_markets.get(order_id)
        if market_id is None:
            raise Rejected(RejectReason.AMEND_NOT_ALLOWED)  # triggers are cancelled, not amended
        market = self.state.markets[market_id]
        order = market.book.get(order_id)
        assert order is not None, order_id
        self._tradable_market(market.params.market_id)
        self._check_size(market, command.size_base_quantums)
        tick = market.params.tick_quantums
        self._check_price(market, command.price_quantums, tick, order.side, band=True)
        same_price = command.price_quantums == order.price_quantums
        if same_price and command.size_base_quantums <= order.remaining_base_quantums:
            self._mutated()
            if command.size_base_quantums < order.remaining_base_quantums:
                self._resize_resting(market, order, command.size_base_quantums)
            self._events.append(OrderAmended(
                order_id=order_id, price_quantums=order.price_quantums,
                size_base_quantums=command.size_base_quantums, kept_priority=True,
            ))  # fmt: skip
            return
        self._replace_order(market, order, command)

    def _replace_order(self, market: MarketState, order: RestingOrder, command: AmendOrder) -> None:
        # Check the replacement on a state without the old order: take it out, try, put it back
        # if the replacement is rejected. The book and aggregates are restored exactly.
        owner = self.state.ledger.subaccounts[order.owner]
        time_in_force = TimeInForce.GTT if order.good_til_ns else TimeInForce.GTC
        if order.post_only:
            time_in_force = TimeInForce.POST_ONLY
        spec = OrderSpec(
            OrderId(self.state.next_order_id), order.owner, market.params.market_id, order.side,
            command.size_base_quantums, command.price_quantums, time_in_force,
            order.reduce_only, order.good_til_ns, order.client_order_id,
        )  # fmt: skip
        snapshot = _copy_open_orders(owner.open_orders.get(market.params.market_id))
        successor = market.book.successor(order.order_id)
        self._detach_resting(market, order)
        try:
            self._execute(spec, accepted=True)
        except Rejected:
            self._reattach_resting(market, order, successor, snapshot)
            raise
        # The old order is gone for good: drop it from its owner's registry (its client order id
        # now belongs to the replacement, which ``_unregister_order`` leaves in place).
        self._unregister_order(
            owner, order.order_id, market.params.market_id, order.client_order_id
        )
        self._events.insert(0, OrderCancelled(
            order_id=order.order_id, cause=CancelCause.AMENDED,
            remaining_base_quantums=order.remaining_base_quantums,
        ))  # fmt: skip
        self._dirty_orders.add(order.order_id)

    def _find_order(self, owner: SubaccountId, order_id: int, client_order_id: int) -> OrderId:
        subaccount = self.state.ledger.subaccounts.get(owner)
        if (order_id == 0) == (client_order_id == 0):
            raise Rejected(RejectReason.MALFORMED_COMMAND)
        if subaccount is None:
            raise Rejected(RejectReason.UNKNOWN_ORDER)
        if client_order_id:
            found = subaccount.client_order_ids.get(client_order_id)
            if found is None:
                raise Rejected(RejectReason.UNKNOWN_ORDER)
            return found
        if OrderId(order_id) not in subaccount.order_ids:
            known = order_id in self.state.order_markets or any(
                order_id in m.triggers for m in self.state.markets.values()
            )
            raise Rejected(RejectReason.NOT_ORDER_OWNER if known else RejectReason.UNKNOWN_ORDER)
        return OrderId(order_id)

    def _cancel_any(self, order_id: OrderId, cause: CancelCause) -> None:
        market_id = self.state.order_markets.get(order_id)
        if market_id is not None:
            self._cancel_resting(self.state.markets[market_id], order_id, cause)
            return
        for market in self.state.markets.values():
            if order_id in market.triggers:
                self._cancel_trigger(market, order_id, cause)
                return
        raise InvariantViolation(f"order {order_id} is registered but in no book")

    def _cancel_resting(self, market: MarketState, order_id: OrderId, cause: CancelCause) -> None:
        order = market.book.get(order_id)
        assert order is not None, order_id
        self._detach_resting(market, order)
        owner = self.state.ledger.subaccounts[order.owner]
        self._unregister_order(owner, order_id, market.params.market_id, order.client_order_id)
        self._events.append(OrderCancelled(
            order_id=order_id, cause=cause, remaining_base_quantums=order.remaining_base_quantums,
        ))  # fmt: skip

    def _detach_resting(self, market: MarketState, order: RestingOrder) -> None:
        """Take a resting order off the book and out of its owner's aggregates."""
        market.book.remove(order.order_id)
        owner = self.state.ledger.subaccounts[order.owner]
        market_id = market.params.market_id
        orders = owner.open_orders[market_id]
        notional = self._notional(market, order.remaining_base_quantums, order.price_quantums)
        _add_to_open_orders(orders, order.side, -order.remaining_base_quantums, -notional)
        orders.count -= 1
        orders.reduce_only_count -= order.reduce_only
        if orders.count == 0:
            assert orders == OpenOrders(), orders
            del owner.open_orders[market_id]
        del self.state.order_markets[order.order_id]
        self._dirty_orders.add(order.order_id)
        self._dirty_subaccounts.add(order.owner)

    def _reattach_resting(
        self,
        market: MarketState,
        order: RestingOrder,
        successor: OrderId | None,
        snapshot: OpenOrders,
    ) -> None:
        market.book.insert_before(order, successor)
        owner = self.state.ledger.subaccounts[order.owner]
        owner.open_orders[market.params.market_id] = snapshot
        self.state.order_markets[order.order_id] = market.params.market_id

    def _cancel_trigger(self, market: MarketState, order_id: OrderId, cause: CancelCause) -> None:
        trigger = market.triggers.pop(order_id)
        self._dirty_orders.add(order_id)
        owner = self.state.ledger.subaccounts[trigger.owner]
        self._unregister_order(owner, order_id, market.params.market_id, trigger.client_order_id)
        self._events.append(OrderCancelled(
            order_id=order_id, cause=cause, remaining_base_quantums=trigger.size_base_quantums,
        ))  # fmt: skip

    def _register_order(
        self, owner: SubaccountId, order_id: OrderId, market_id: MarketId, client_order_id: int
    ) -> None:
        subaccount = self.state.ledger.subaccounts[owner]
        subaccount.order_ids[order_id] = market_id
        if client_order_id:
            subaccount.client_order_ids[client_order_id] = order_id
        self._dirty_subaccounts.add(owner)

    def _unregister_order(
        self, subaccount: Subaccount, order_id: OrderId, market_id: MarketId, client_order_id: int
    ) -> None:
        assert subaccount.order_ids.get(order_id) == market_id, (order_id, market_id)
        del subaccount.order_ids[order_id]
        if client_order_id and subaccount.client_order_ids.get(client_order_id) == order_id:
            del subaccount.client_order_ids[client_order_id]
        self._dirty_subaccounts.add(subaccount.subaccount_id)

    # ── Block prologue: prices, marks, triggers, funding, expiry ───────────────────────────

    def _update_oracle(self, oracle: OracleState) -> None:
        now = self.state.timestamp_ns
        params = oracle.params
        result = aggregate(
            oracle.reports.values(), params, now_ns=now, previous_price=oracle.index_price_quantums
        )
        previous_status = oracle.status
        result = self._release_held_price(oracle, result)
        if result.status is PriceStatus.FRESH:
            if oracle.last_fresh_ns and now - oracle.last_fresh_ns > params.outage_ns:
                oracle.restart_guard = True  # dYdX Oct 2025: no liquidation on the first prices
                oracle.fresh_blocks = 0
            if result.breaker_tripped:
                oracle.cooling_off_until_ns = now + params.cooling_off_ns
                self._events.append(CircuitBreakerTripped(
                    oracle_id=params.oracle_id,
                    previous_price_quantums=oracle.index_price_quantums,
                    price_quantums=result.price_quantums,
                    cooling_off_until_ns=oracle.cooling_off_until_ns,
                ))  # fmt: skip
            self._take_samples(oracle, result.price_quantums)
            oracle.index_price_quantums = result.price_quantums
            oracle.last_fresh_ns = now
            oracle.fresh_blocks += 1
            if oracle.restart_guard and oracle.fresh_blocks >= params.recovery_fresh_blocks:
                oracle.restart_guard = False
        else:
            oracle.fresh_blocks = 0
        oracle.status = (
            result.status
            if result.status is not PriceStatus.STALE
            or previous_status is not PriceStatus.UNINITIALIZED
            else PriceStatus.UNINITIALIZED
        )
        self._dirty_oracles.add(params.oracle_id)
        if previous_status is not oracle.status or result.status is PriceStatus.FRESH:
            self._events.append(IndexUpdated(
                oracle_id=params.oracle_id, status=int(oracle.status),
                index_price_quantums=oracle.index_price_quantums,
            ))  # fmt: skip

    def _release_held_price(self, oracle: OracleState, result: Aggregate) -> Aggregate:
        """A big move without a supermajority is held; if a quorum keeps reporting it for
        ``breaker_hold_ns``, it is real: accept it as a trip (with cooling-off), so that one
        lagging publisher can delay the venue but never freeze it."""
        now = self.state.timestamp_ns
        if result.status is not PriceStatus.BREAKER_HELD:
            oracle.held_since_ns = 0
            return result
        if oracle.held_since_ns == 0:
            oracle.held_since_ns = now
        if now - oracle.held_since_ns < oracle.params.breaker_hold_ns:
            return result
        oracle.held_since_ns = 0
        return Aggregate(
            PriceStatus.FRESH, result.held_price_quantums, result.included_weight,
            result.total_weight, breaker_tripped=True,
        )  # fmt: skip

    def _take_samples(self, oracle: OracleState, price: int) -> None:
        """TWAP samples and the EWMA variance, each on its own fixed cadence of block time."""
        now = self.state.timestamp_ns
        params = oracle.params
        last_twap = oracle.twap_samples[-1][0] if oracle.twap_samples else 0
        if now - last_twap >= params.twap_sample_interval_ns:
            oracle.twap_samples.append((now, price))
            slot = oracle.twap_samples_taken % limits.twap_samples_max
            oracle.twap_samples_taken += 1
            self._dirty_twap_slots[(params.oracle_id, slot)] = (now, price)
        if oracle.vol_sample_ns == 0:
            oracle.variance_e18 = initial_variance_e18(params)
            oracle.vol_sample_ns, oracle.vol_sample_price_quantums = now, price
        elif now - oracle.vol_sample_ns >= params.vol_sample_interval_ns:
            oracle.variance_e18 = ewma_variance_e18(
                oracle.variance_e18, previous_price=oracle.vol_sample_price_quantums,
                price=price, lambda_ppm=params.vol_lambda_ppm,
                elapsed_ns=now - oracle.vol_sample_ns,
                sample_interval_ns=params.vol_sample_interval_ns,
            )  # fmt: skip
            oracle.vol_sample_ns, oracle.vol_sample_price_quantums = now, price

    def _market_prologue(self, market: MarketState) -> None:
        oracle = self.state.oracles[market.params.oracle_id]
        self._expire_orders(market)
        kind = market.params.kind
        if kind is not MarketKind.PERPETUAL:
            self._maybe_expire(market, oracle)  # first: no trigger may trade at or past expiry
        if kind is MarketKind.OPTION and market.status is MarketStatus.ACTIVE:
            if oracle.is_usable() and self._surface_fresh(oracle):
                market.mark_price_quantums = self._option_mark(market, oracle)
                self._maybe_revalue_risk(market, oracle)
                self._fire_triggers(market)
        elif market.status is MarketStatus.ACTIVE and oracle.is_usable():
            self._update_mark(market, oracle)
            self._update_vol_multiplier(market, oracle)
            self._fire_triggers(market)
            if market.params.kind is MarketKind.PERPETUAL:
                self._maybe_pay_funding(market, oracle)
        elif market.status is MarketStatus.EXPIRED and oracle.is_usable():
            # Awaiting settlement, a future is worth the index (an option its payoff there):
            # its holders' other risk stays measurable, so they can still reduce risk elsewhere.
            market.mark_price_quantums = self._expiry_unit_value(
                market.params, oracle.index_price_quantums
            )
        if not oracle.is_usable():
            # Time on a stale price earns no step: margins may not jump when prices come back.
            market.vol_multiplier_updated_ns = self.state.timestamp_ns
        self._dirty_markets.add(market.params.market_id)

    def _update_mark(self, market: MarketState, oracle: OracleState) -> None:
        index = oracle.index_price_quantums
        impact_mid = self._impact_mid(market)
        if impact_mid is not None:
            basis = impact_mid - index
            weight = market.params.mark_basis_ema_ppm
            blended = market.ema_basis_quantums * (PPM_ONE - weight) + basis * weight
            market.ema_basis_quantums = _div_toward_zero(blended, PPM_ONE)
        market.mark_price_quantums = mark_price(
            index_price=index, ema_basis=market.ema_basis_quantums, impact_mid=impact_mid
        )
        market.premium_sum_ppb += premium_ppb(impact_mid=impact_mid, index_price=index)
        market.premium_samples += 1

    def _impact_mid(self, market: MarketState) -> int | None:
        notional = market.params.funding.impact_notional_quote_quantums
        per_unit = market.params.base_quantums_per_unit
        impact_bid = market.book.impact_price(Side.SELL, notional, per_unit)
        impact_ask = market.book.impact_price(Side.BUY, notional, per_unit)
        if impact_bid is None or impact_ask is None:
            return None
        return (impact_bid + impact_ask) // 2

    def _update_vol_multiplier(self, market: MarketState, oracle: OracleState) -> None:
        """Move toward clamp(σ/σ_ref, 1, max), by at most the hourly step pro rata: margins
        rise with realized volatility, but never jump without warning."""
        margin = market.params.margin
        sigma = annual_volatility_ppm(oracle.variance_e18, oracle.params.vol_sample_interval_ns)
        target = clamp(
            div_ceil(sigma * PPM_ONE, margin.vol_reference_annual_ppm), PPM_ONE,
            margin.vol_multiplier_max_ppm,
        )  # fmt: skip
        elapsed = self.state.timestamp_ns - market.vol_multiplier_updated_ns
        step = margin.vol_multiplier_step_ppm_per_hour * elapsed // NS_PER_HOUR
        if step == 0:
            return  # too little time for any move: wait, so slow blocks still accumulate
        current = market.vol_multiplier_ppm
        market.vol_multiplier_ppm = clamp(target, current - step, current + step)
        market.vol_multiplier_updated_ns = self.state.timestamp_ns

    def _expire_orders(self, market: MarketState) -> None:
        now = self.state.timestamp_ns
        live = len(market.book) + len(market.triggers)
        if len(market.expiries) > 2 * live + 64:
            market.compact_expiries()
        while market.expiries and market.expiries[0][0] <= now:
            _, order_id = heapq.heappop(market.expiries)
            if order_id in market.triggers:
                self._cancel_trigger(market, order_id, CancelCause.EXPIRED)
            elif market.book.get(order_id) is not None:
                self._cancel_resting(market, order_id, CancelCause.EXPIRED)

    def _fire_triggers(self, market: MarketState) -> None:
        mark = market.mark_price_quantums
        fired = [t for _, t in sorted(market.triggers.items()) if t.fires_at(mark)]
        for trigger in fired[: limits.triggers_per_block_max]:
            del market.triggers[trigger.order_id]
            self._dirty_orders.add(trigger.order_id)
            owner = self.state.ledger.subaccounts[trigger.owner]
            self._unregister_order(
                owner, trigger.order_id, trigger.market_id, trigger.client_order_id
            )
            self._events.append(OrderTriggered(order_id=trigger.order_id, mark_price_quantums=mark))
            try:
                self._execute_trigger(market, trigger, owner)
            except Rejected as rejection:
                if rejection.reason in _RETRYABLE_TRIGGER_REASONS:
                    # A passing condition (a stale price elsewhere, no liquidity this block):
                    # the stop stays armed and tries again next block.
                    fired_event = self._events.pop()
                    assert isinstance(fired_event, OrderTriggered)
                    market.triggers[trigger.order_id] = trigger
                    self._register_order(
                        trigger.owner, trigger.order_id, trigger.market_id, trigger.client_order_id
                    )
                    continue
                self._events.append(OrderCancelled(
                    order_id=trigger.order_id, cause=CancelCause.TRIGGER_REJECTED,
                    remaining_base_quantums=trigger.size_base_quantums,
                ))  # fmt: skip

    def _execute_trigger(
        self, market: MarketState, trigger: TriggerOrder, owner: Subaccount
    ) -> None:
        is_market = trigger.order_type in _MARKET_TYPES
        if is_market:
            limit = self._slippage_limit(market, trigger.side, trigger.slippage_ppm)
        else:  # the band applies when the order enters the book, as for any limit order
            limit = trigger.price_quantums
            self._check_price(market, limit, market.params.tick_quantums, trigger.side, band=True)
        if trigger.client_order_id in owner.client_order_ids:
            raise Rejected(RejectReason.DUPLICATE_CLIENT_ORDER_ID)
        spec = OrderSpec(
            trigger.order_id, trigger.owner, trigger.market_id, trigger.side,
            trigger.size_base_quantums, limit, trigger.time_in_force, trigger.reduce_only,
            trigger.good_til_ns, trigger.client_order_id,
        )  # fmt: skip
        self._register_order(
            trigger.owner, trigger.order_id, trigger.market_id, trigger.client_order_id
        )
        try:
            self._execute(spec, accepted=False)
        except Rejected:
            self._unregister_order(
                owner, trigger.order_id, trigger.market_id, trigger.client_order_id
            )
            raise

    def _maybe_pay_funding(self, market: MarketState, oracle: OracleState) -> None:
        """Pay funding once the interval has elapsed (and only on a fresh index: otherwise the
        payment waits, with its premium samples, for the price to come back)."""
        now = self.state.timestamp_ns
        if now < market.next_funding_ns:
            return
        params = market.params
        rate = settlement.hourly_funding_rate_ppb(
            premium_sum_ppb=market.premium_sum_ppb, premium_samples=market.premium_samples,
            funding=params.funding, margin=params.margin,
        )  # fmt: skip
        holders = sorted(market.holders)
        subaccounts = [self.state.ledger.subaccounts[h] for h in holders]
        plan = settlement.funding_plan(
            [s.positions[params.market_id].size_base_quantums for s in subaccounts],
            index_price_quantums=oracle.index_price_quantums, rate_ppb=rate,
            base_quantums_per_unit=params.base_quantums_per_unit,
        )  # fmt: skip
        self._mutated()
        transit = funding_account(params.market_id)
        for holder, amount in sorted(plan.payments, key=lambda p: p[1]):  # payers first
            subaccount = subaccounts[holder]
            if amount < 0:
                self._transfer(subaccount.subaccount_id, transit, QUOTE_ASSET, -amount, "funding")
            else:
                self._transfer(transit, subaccount.subaccount_id, QUOTE_ASSET, amount, "funding")
            subaccount.positions[params.market_id].funding_paid_quote_quantums -= amount
        if plan.residue:
            self._transfer(transit, INSURANCE, QUOTE_ASSET, plan.residue, "funding residue")
        assert self.state.ledger.balance(transit, QUOTE_ASSET) == 0, "funding transit not empty"
        market.cumulative_funding_ppb += rate
        market.premium_sum_ppb = 0
        market.premium_samples = 0
        interval = params.funding.interval_ns
        market.next_funding_ns = (now // interval + 1) * interval
        self._events.append(FundingPaid(
            market_id=params.market_id, rate_ppb=rate,
            index_price_quantums=oracle.index_price_quantums, paid_quote_quantums=plan.paid,
            received_quote_quantums=plan.received, residue_quote_quantums=plan.residue,
        ))  # fmt: skip

    def _maybe_expire(self, market: MarketState, oracle: OracleState) -> None:
        params = market.params
        now = self.state.timestamp_ns
        if market.status is MarketStatus.ACTIVE and now >= params.expiry_ns:
            market.status = MarketStatus.EXPIRED
            for order_id in sorted(market.triggers):
                self._cancel_trigger(market, order_id, CancelCause.SETTLEMENT)
            for order in sorted(market.book.orders(), key=lambda o: o.order_id):
                self._cancel_resting(market, order.order_id, CancelCause.SETTLEMENT)
            self._events.append(MarketExpired(market_id=params.market_id))
        if market.status is not MarketStatus.EXPIRED:
            return
        # The settlement TWAP is the window before expiry; if the oracle failed then, the
        # settlement waits for the first full window with enough fresh samples after it.
        # The settlement TWAP is the window before expiry. If the oracle failed then, settlement
        # waits (funds stay in their positions) for the first later window that fresh samples
        # cover: a sample stands for at most the staleness bound, never across an outage.
        window = params.settlement_window_ns
        hold = oracle.params.staleness_ns
        end = params.expiry_ns
        result = twap_window(
            oracle.twap_samples, start_ns=end - window, end_ns=end, max_hold_ns=hold
        )
        if not self._settles_on(result, params) and now > end:
            result = twap_window(
                oracle.twap_samples, start_ns=now + 1 - window, end_ns=now + 1, max_hold_ns=hold
            )
        if self._settles_on(result, params):
            self._settle_market(market, result.price_quantums, result.samples)

    def _archive_settled(self) -> None:
        """A market settled for a day leaves state (its leaves go from the tree): settled
        markets never count against ``markets_max``, so default series roll on for ever."""
        now = self.state.timestamp_ns
        for market_id in sorted(self.state.markets):
            market = self.state.markets[market_id]
            if market.status is not MarketStatus.SETTLED:
                continue
            if now < market.params.expiry_ns + ARCHIVE_AFTER_NS:
                continue
            assert not market.holders and len(market.book) == 0 and not market.triggers
            assert self.state.ledger.balance(clearing_account(market_id), QUOTE_ASSET) == 0
            del self.state.markets[market_id]
            self._dirty_markets.discard(market_id)
            self._archived.add(market_id)
            self._market_risk_cache.pop(market_id, None)
            self._profile_cache.pop(market_id, None)
            self._events.append(MarketArchived(
                market_id=market_id, settlement_price_quantums=market.settlement_price_quantums
            ))  # fmt: skip

    @staticmethod
    def _settles_on(result: Twap, params: MarketParams) -> bool:
        enough_samples = result.samples >= params.settlement_min_samples
        covered = (
            result.covered_ns * PPM_ONE
            >= params.settlement_min_coverage_ppm * params.settlement_window_ns
        )
        return enough_samples and covered and result.price_quantums > 0

    def _settle_market(self, market: MarketState, price: int, samples: int) -> None:
        """Close every position at the settlement price in this one block: final, no manual step."""
        params = market.params
        clearing = clearing_account(params.market_id)
        holders = sorted(market.holders)
        for holder in holders:
            subaccount = self.state.ledger.subaccounts[holder]
            position = subaccount.positions.pop(params.market_id)
            value = settlement.expiry_value(
                position.size_base_quantums, self._expiry_unit_value(params, price),
                params.base_quantums_per_unit,
            )  # fmt: skip
            self._pay_pnl(params.market_id, holder, value - position.cost_quote_quantums)
            self._dirty_subaccounts.add(holder)
        market.holders.clear()
        market.open_interest_base_quantums = 0
        residue = self.state.ledger.balance(clearing, QUOTE_ASSET)
        assert residue >= 0, "rounding down every value leaves the clearing account a residue >= 0"
        if residue:
            self._transfer(clearing, INSURANCE, QUOTE_ASSET, residue, "settlement residue")
        market.status = MarketStatus.SETTLED
        market.settlement_price_quantums = price
        self._events.append(MarketSettled(
            market_id=params.market_id, settlement_price_quantums=price, twap_samples=samples,
            positions_closed=len(holders), residue_quote_quantums=residue,
        ))  # fmt: skip
        for holder in holders:  # a loss past its collateral: the fund, then the deficit
            status = self.state.liquidations.get(holder)
            auction = None if status is None else status.auction
            if auction is not None and auction.market_id == params.market_id:
                self._close_auction(holder)
            self._settle_bad_debt(holder, market)

    # ── Liquidation (§7): detection, the ladder, auctions, deleveraging, bad debt ──────────

    def _liquidation_pass(self) -> None:
        """Every block, after prices: track who is below MM at valid prices; the protocol takes
        a ladder step for those keepers left alone for ``keeper_grace_blocks``, so solvency
        never depends on keepers showing up; auctions advance and end."""
        height = self.state.height
        holders = {h for m in self.state.markets.values() for h in m.holders}
        watched = holders | set(self.state.liquidations)
        steps = 0
        underwater: list[Subaccount] = []
        for subaccount_id in sorted(watched):
            subaccount = self.state.ledger.subaccounts[subaccount_id]
            risk = self.risk_of(subaccount)
            if risk.equity < 0:
                underwater.append(subaccount)  # counted again after the ladder has acted
            status = self.state.liquidations.get(subaccount_id)
            if not self._may_liquidate(subaccount, risk):
                if status is not None and risk.usable and risk.satisfies_initial:
                    self._end_liquidation(subaccount_id)  # back above IM: the ladder stops
                elif status is not None and status.auction is not None:
                    status.auction.started_height += 1  # no bids on bad prices: the clock waits
                    self._dirty_liquidations.add(subaccount_id)
                continue
            market_id = self._market_to_liquidate(subaccount)
            if market_id is None:
                continue  # only positions awaiting settlement: settlement closes them
            if status is None:
                status = LiquidationStatus(since_height=height)
                self.state.liquidations[subaccount_id] = status
                self._dirty_liquidations.add(subaccount_id)
            grace = self.state.markets[market_id].params.liquidation.keeper_grace_blocks
            if risk.equity < 0:  # bankrupt: no window for the profits it owes to leave first
                grace = self.state.markets[market_id].params.liquidation.bankrupt_grace_blocks
            waiting = self._holds_options(subaccount) and not subaccount.order_ids
            if waiting and self._live_auction(subaccount) is not None:
                continue  # its auction is open: bidders act, the protocol has nothing to do
            if height - status.since_height >= grace and steps < limits.liquidations_per_block_max:
                self._mutated()
                self._liquidation_step(subaccount_id, keeper=None)
                steps += 1
            self._maybe_end_auction(subaccount_id)
        self._settle_borrowers(holders)
        self._count_underwater(underwater + self._deleveraged)
        self._deleveraged.clear()

    def _may_liquidate(self, subaccount: Subaccount, risk: Risk) -> bool:
        """Below MM (or, once the ladder started, still below IM) on fresh prices, and no price
        it depends on just came back from an outage (dYdX, Oct 2025: the first prices after a
        restart liquidate nobody)."""
        under_way = subaccount.subaccount_id in self.state.liquidations
        if not risk.usable or not (risk.liquidatable or (under_way and not risk.satisfies_initial)):
            return False  # once started, the ladder goes on until IM is met again
        oracle_ids = {self.state.markets[m].params.oracle_id for m in subaccount.positions}
        for asset_id in subaccount.balances:
            oracle_id = self.state.assets[asset_id].oracle_id
            if oracle_id is not None:
                oracle_ids.add(oracle_id)
        return not any(self.state.oracles[o].restart_guard for o in oracle_ids)

    def _market_to_liquidate(self, subaccount: Subaccount) -> MarketId | None:
        """The open auction's market, else the active market with the largest MM."""
        auction = self._live_auction(subaccount)
        if auction is not None and auction.market_id != PORTFOLIO_AUCTION:
            return auction.market_id
        best: tuple[int, MarketId] | None = None
        for market_id, position in sorted(subaccount.positions.items()):
            if self.state.markets[market_id].status is not MarketStatus.ACTIVE:
                continue
            maintenance = requirements(position.size_base_quantums, self.market_risk(market_id))[1]
            if best is None or maintenance > best[0]:
                best = (maintenance, market_id)
        return None if best is None else best[1]

    def _live_auction(self, subaccount: Subaccount) -> Auction | None:
        """The subaccount's auction, if its market is still active and still held (a position
        closed by its owner, by ADL or by settlement leaves a stale auction behind)."""
        status = self.state.liquidations.get(subaccount.subaccount_id)
        auction = None if status is None else status.auction
        if auction is not None and auction.market_id == PORTFOLIO_AUCTION:
            return auction if self._holds_options(subaccount) else None
        if auction is None or auction.market_id not in subaccount.positions:
            return None
        if self.state.markets[auction.market_id].status is not MarketStatus.ACTIVE:
            return None
        return auction

    def _liquidation_step(self, subaccount_id: SubaccountId, keeper: SubaccountId | None) -> None:
        """One rung of the ladder: cancel orders, close on the book no worse than the fillable
        price (capped per block), then the fund, auto-deleveraging or an auction for the rest."""
        subaccount = self.state.ledger.subaccounts[subaccount_id]
        status = self.state.liquidations[subaccount_id]
        if status.auction is not None and self._live_auction(subaccount) is None:
            self._close_auction(subaccount_id)
        for order_id in sorted(subaccount.order_ids):
            self._cancel_any(order_id, CancelCause.LIQUIDATION)
        if self._holds_options(subaccount):
            self._open_portfolio_auction(subaccount_id)  # §7: options go to the auction whole
            return
        market_id = self._market_to_liquidate(subaccount)
        assert market_id is not None
        market = self.state.markets[market_id]
        side = closing_side(subaccount.positions[market_id].size_base_quantums)
        risk = self.risk_of(subaccount)
        target = self._close_target(subaccount, market, side, risk)
        filled = 0
        if target:
            limit = self._liquidation_limit(subaccount, market, side, target, risk)
            filled = self._close_on_book(subaccount, market, side, target, limit, keeper)
            height = self.state.height
            status.closed_base_quantums = status.closed_in(height) + filled
            status.closed_height = height
            self._dirty_liquidations.add(subaccount_id)
        if self.risk_of(subaccount).equity < 0:
            self._resolve_bankruptcy(subaccount_id, market)
        elif filled < target and market_id in subaccount.positions:
            self._open_auction(subaccount_id, market)

    def _close_target(
        self, subaccount: Subaccount, market: MarketState, side: Side, risk: Risk
    ) -> int:
        """Just enough to bring the subaccount back above IM at the fillable price, at most the
        per-block cap; never leaving less than a minimum order behind."""
        params = market.params
        market_id = params.market_id
        size = abs(subaccount.positions[market_id].size_base_quantums)
        cap = close_size_cap(
            params.liquidation, position_base_quantums=size,
            mark_price_quantums=market.mark_price_quantums,
            base_quantums_per_unit=params.base_quantums_per_unit,
            step_base_quantums=params.step_base_quantums, equity=risk.equity,
            maintenance=risk.maintenance,
        )  # fmt: skip
        status = self.state.liquidations.get(subaccount.subaccount_id)
        if status is not None and cap < size:  # the cap is per block, whoever liquidates
            cap = max(0, cap - status.closed_in(self.state.height))
            if cap == 0:
                return 0
        price = self._fillable(subaccount, market, side, risk)
        step = params.step_base_quantums
        low, high = 1, cap // step if cap % step == 0 else cap // step + 1
        while low < high:  # the smallest number of steps after which IM is met
            middle = (low + high) // 2
            if self._meets_im_after_close(
                subaccount, market, side, min(middle * step, size), price, risk.equity
            ):
                high = middle
            else:
                low = middle + 1
        target = min(low * step, cap, size)
        return size if size - target < params.min_order_base_quantums else target

    def _meets_im_after_close(
        self, subaccount: Subaccount, market: MarketState, side: Side, size: int, price: int,
        equity: int,
    ) -> bool:  # fmt: skip
        notional = div_floor(size * price, market.params.base_quantums_per_unit)
        if notional <= 0:
            return False
        fill = PlannedFill(OrderId(0), subaccount.subaccount_id, price, size)
        fee = liquidation_fee(
            market.params.liquidation, notional_quote_quantums=notional, equity=equity
        )
        after = self._after_trades(
            subaccount, market, side, [_Trade(fill, notional, 0, fee)], maker=False
        )
        return self.risk_of(after).satisfies_initial

    def _fillable(self, subaccount: Subaccount, market: MarketState, side: Side, risk: Risk) -> int:
        position = subaccount.positions[market.params.market_id]
        market_risk = self.market_risk(market.params.market_id)
        maintenance = requirements(position.size_base_quantums, market_risk)[1]
        notional = notional_requirement_base(
            position.size_base_quantums, market.mark_price_quantums,
            market.params.base_quantums_per_unit,
        )  # fmt: skip
        return fillable_price(
            mark_price_quantums=market.mark_price_quantums, side=side,
            maintenance_fraction_ppm=div_ceil(maintenance * PPM_ONE, max(notional, 1)),
            equity=risk.equity, maintenance=max(risk.maintenance, 1),
            min_deviation_ppm=market.params.liquidation.fillable_min_deviation_ppm,
        )  # fmt: skip

    def _liquidation_limit(
        self, subaccount: Subaccount, market: MarketState, side: Side, size: int, risk: Risk
    ) -> int:
        """The fillable price, bounded so that losses past the account's equity never exceed
        what the insurance fund may still pay this block; on the tick grid."""
        bound = cover_bound_price(
            mark_price_quantums=market.mark_price_quantums, side=side, size_base_quantums=size,
            base_quantums_per_unit=market.params.base_quantums_per_unit, equity=risk.equity,
            cover=self._insurance_cover(market),
        )  # fmt: skip
        limit = more_conservative(side, self._fillable(subaccount, market, side, risk), bound)
        return min(to_tick(limit, market.params.tick_quantums, side), limits.price_quantums_max)

    def _close_on_book(
        self, subaccount: Subaccount, market: MarketState, side: Side, size: int, limit: int,
        keeper: SubaccountId | None,
    ) -> int:  # fmt: skip
        """An IOC, reduce-only liquidation order against the book; makers are margin-checked
        as for any order. Returns the size filled."""
        if limit <= 0:
            return 0  # a buy back that no price on the grid can make good: the backstop takes it
        spec = OrderSpec(
            self._next_order_id(), subaccount.subaccount_id, market.params.market_id, side, size,
            limit, TimeInForce.IOC, True, 0, 0,
        )  # fmt: skip
        try:
            plan, maker_cancels = self._plan_with_solvent_makers(market, spec, size)
        except Rejected:
            return 0  # every maker at these prices failed its margin: the backstop takes it
        trades = [
            dataclasses.replace(self._price_trade(market, f), taker_fee_quote_quantums=0)
            for f in plan.fills
        ]
        self._commit_plan(market, spec, plan, maker_cancels, trades)
        notional = sum(t.notional_quote_quantums for t in trades)
        if plan.filled_base_quantums:
            self._charge_liquidation_fee(
                subaccount.subaccount_id, market, side, plan.filled_base_quantums, notional,
                keeper, LiquidationStage.BOOK,
            )  # fmt: skip
        return plan.filled_base_quantums

    def _charge_liquidation_fee(
        self, subaccount_id: SubaccountId, market: MarketState, side: Side, size: int,
        notional: int, keeper: SubaccountId | None, stage: LiquidationStage,
    ) -> None:  # fmt: skip
        params = market.params.liquidation
        equity = self.risk_of(self.state.ledger.subaccounts[subaccount_id]).equity
        fee = liquidation_fee(params, notional_quote_quantums=notional, equity=equity)
        to_keeper = keeper_share(params, fee) if keeper is not None else 0
        if to_keeper:
            assert keeper is not None
            self._transfer(subaccount_id, keeper, QUOTE_ASSET, to_keeper, "liquidation reward")
        if fee - to_keeper:
            self._transfer(
                subaccount_id, INSURANCE, QUOTE_ASSET, fee - to_keeper, "liquidation fee"
            )
        self._events.append(Liquidated(
            subaccount=str(subaccount_id), market_id=market.params.market_id, stage=stage,
            side=side, size_base_quantums=size, notional_quote_quantums=notional,
            fee_to_keeper_quote_quantums=to_keeper, fee_to_fund_quote_quantums=fee - to_keeper,
            keeper="" if keeper is None else str(keeper),
        ))  # fmt: skip

    # Auctions.

    def _open_auction(self, subaccount_id: SubaccountId, market: MarketState) -> None:
        status = self.state.liquidations[subaccount_id]
        if status.auction is not None:
            return
        market_id = market.params.market_id
        size = self.state.ledger.subaccounts[subaccount_id].positions[market_id].size_base_quantums
        status.auction = Auction(market_id, self.state.height, abs(size))
        self._dirty_liquidations.add(subaccount_id)
        self._events.append(AuctionStarted(
            subaccount=str(subaccount_id), market_id=market_id, side=closing_side(size),
            size_base_quantums=abs(size),
        ))  # fmt: skip

    def _maybe_end_auction(self, subaccount_id: SubaccountId) -> None:
        """An auction whose time ran out hands the rest to auto-deleveraging."""
        status = self.state.liquidations.get(subaccount_id)
        if status is None or status.auction is None:
            return
        auction = status.auction
        subaccount = self.state.ledger.subaccounts[subaccount_id]
        if self._live_auction(subaccount) is None:
            self._close_auction(subaccount_id)
            return
        if auction.market_id == PORTFOLIO_AUCTION:
            return  # open at its deepest discount until bid for, or until its options settle
        market = self.state.markets[auction.market_id]
        if self.state.height - auction.started_height < market.params.liquidation.auction_blocks:
            return
        self._mutated()
        self._close_auction(subaccount_id)
        risk = self.risk_of(subaccount)
        if risk.usable and risk.satisfies_initial:
            self._end_liquidation(subaccount_id)  # the book did it after all: nothing to force
            return
        self._deleverage(subaccount_id, market)

    def _close_auction(self, subaccount_id: SubaccountId) -> None:
        status = self.state.liquidations[subaccount_id]
        auction = status.auction
        assert auction is not None
        status.auction = None
        self._dirty_liquidations.add(subaccount_id)
        position = 0
        if auction.market_id != PORTFOLIO_AUCTION:
            subaccount = self.state.ledger.subaccounts[subaccount_id]
            position = subaccount.position_size(auction.market_id)
        self._events.append(AuctionEnded(
            subaccount=str(subaccount_id), market_id=auction.market_id,
            remaining_base_quantums=abs(position),
        ))  # fmt: skip

    def _end_liquidation(self, subaccount_id: SubaccountId) -> None:
        status = self.state.liquidations[subaccount_id]
        if status.auction is not None:
            self._close_auction(subaccount_id)
        del self.state.liquidations[subaccount_id]
        self._dirty_liquidations.add(subaccount_id)

    def _count_underwater(self, candidates: list[Subaccount]) -> None:
        """Holders with equity below zero, per market: withdrawals in that market wait for
        the ladder to clear them (a profit must not leave while its payer is bankrupt)."""
        counts = dict.fromkeys(self.state.markets, 0)
        for subaccount in candidates:
            if self.risk_of(subaccount).equity < 0:
                for market_id in subaccount.positions:
                    counts[market_id] += 1
        for market_id, count in counts.items():
            market = self.state.markets[market_id]
            if market.underwater_count != count:
                market.underwater_count = count
                self._dirty_markets.add(market_id)

    # Insurance, auto-deleveraging and socialized loss.

    def _insurance_cover(self, market: MarketState) -> int:
        """What the fund may still pay for this market in this block."""
        cap = market.params.liquidation.insurance_draw_max_quote_quantums_per_block
        left = cap - market.insurance_drawn_in(self.state.height)
        return max(0, min(left, self.state.ledger.balance(INSURANCE, QUOTE_ASSET)))

    def _draw_insurance(
        self, subaccount_id: SubaccountId, market: MarketState, wanted: int,
        recipient: SubaccountId | None = None,
    ) -> int:  # fmt: skip
        """Pay up to ``wanted`` from the fund for ``subaccount_id``'s shortfall (to it, or to a
        bidder who takes its insolvent portfolio), within the market's per-block cap."""
        amount = min(wanted, self._insurance_cover(market))
        if amount <= 0:
            return 0
        height = self.state.height
        market.insurance_drawn_quote_quantums = market.insurance_drawn_in(height) + amount
        market.insurance_draw_height = height
        self._dirty_markets.add(market.params.market_id)
        target = subaccount_id if recipient is None else recipient
        self._transfer(INSURANCE, target, QUOTE_ASSET, amount, "insurance draw")
        self._events.append(InsuranceDrawn(
            subaccount=str(subaccount_id), market_id=market.params.market_id,
            amount_quote_quantums=amount,
        ))  # fmt: skip
        return amount

    def _resolve_bankruptcy(self, subaccount_id: SubaccountId, market: MarketState) -> None:
        """Equity below zero: deleverage the position at the bankruptcy price (the fund pays
        first); a flat account's remaining debt is drawn from the fund, then socialized."""
        subaccount = self.state.ledger.subaccounts[subaccount_id]
        self._seize_collateral(subaccount_id)
        if market.params.market_id in subaccount.positions and self.risk_of(subaccount).equity < 0:
            status = self.state.liquidations.get(subaccount_id)
            if status is not None and status.auction is not None:
                self._close_auction(subaccount_id)
            self._deleverage(subaccount_id, market)
        self._settle_bad_debt(subaccount_id, market)

    def _seize_collateral(self, subaccount_id: SubaccountId) -> None:
        """Before the fund, ADL or the deficit pays for a bankrupt account, its volatile
        collateral (which equity counts at a haircut) is bought at the full index by the
        ``seized`` account, the buyer of last resort: just enough to bring equity back to zero,
        so that everyone else pays exactly the real shortfall, the fund's quote is kept for
        that, and the owner can never buy the collateral back below its worth."""
        subaccount = self.state.ledger.subaccounts[subaccount_id]
        shortfall = -self.risk_of(subaccount).equity
        for asset_id in sorted(a for a in subaccount.balances if a != QUOTE_ASSET):
            if shortfall <= 0:
                return
            amount = self._seizable(asset_id, subaccount.balance(asset_id), shortfall)
            if amount <= 0:
                continue
            price = self.collateral_price(asset_id)
            paid = div_floor(amount * price.price_quantums, price.quantums_per_unit)
            gained = paid - collateral_value(amount, price)
            self._transfer(subaccount_id, SEIZED, asset_id, amount, "collateral seized")
            self._transfer(SEIZED, subaccount_id, QUOTE_ASSET, paid, "collateral seized")
            self._events.append(CollateralSeized(
                subaccount=str(subaccount_id), asset_id=asset_id, amount_quantums=amount,
                paid_quote_quantums=paid,
            ))  # fmt: skip
            shortfall -= gained

    def _seizable(self, asset_id: AssetId, held: int, shortfall: int) -> int:
        """How much of ``held`` to sell at the index to make up ``shortfall`` of haircut
        equity: each unit sold gains price × (1 − weight). Nothing on an unusable price."""
        price = self.collateral_price(asset_id)
        oracle_id = self.state.assets[asset_id].oracle_id
        assert oracle_id is not None
        guarded = self.state.oracles[oracle_id].restart_guard
        gain_per_unit = price.price_quantums * (PPM_ONE - price.haircut_weight_ppm)
        if held <= 0 or not price.usable or guarded or gain_per_unit <= 0:
            return 0
        # Two quantums more than the shortfall: the value and the haircut each round down.
        wanted = div_ceil((shortfall + 2) * price.quantums_per_unit * PPM_ONE, gain_per_unit)
        return min(held, wanted)

    def _settle_bad_debt(self, subaccount_id: SubaccountId, market: MarketState | None) -> None:
        """A flat account's debt: its collateral is seized, the fund pays within the market's
        cap, the deficit records the rest (``market`` None: a collateral loss, no market fund
        cap applies, so it goes to the deficit after the seizure)."""
        subaccount = self.state.ledger.subaccounts[subaccount_id]
        if subaccount.positions:
            return  # equity still moves with prices: the ladder goes on next block
        if self.risk_of(subaccount).equity >= 0:
            return
        self._seize_collateral(subaccount_id)
        shortfall = -self.risk_of(subaccount).equity
        if shortfall > 0 and market is not None:
            shortfall -= self._draw_insurance(subaccount_id, market, shortfall)
        if shortfall > 0:
            self._transfer(DEFICIT, subaccount_id, QUOTE_ASSET, shortfall, "socialized loss")
            self._events.append(LossSocialized(
                subaccount=str(subaccount_id),
                market_id=MarketId("") if market is None else market.params.market_id,
                amount_quote_quantums=shortfall,
            ))  # fmt: skip

    def _settle_borrowers(self, holders: set[SubaccountId]) -> None:
        """Flat subaccounts whose quote debt is backed by volatile collateral: when a price
        move leaves them below zero, their collateral is seized and the rest recorded. A flat
        account's liquidation (its last position closed) ends here too."""
        flat = (self._borrowers | set(self.state.liquidations)) - holders
        for subaccount_id in sorted(flat):
            subaccount = self.state.ledger.subaccounts[subaccount_id]
            risk = self.risk_of(subaccount)
            if risk.usable and risk.equity < 0 and self._may_liquidate(subaccount, risk):
                self._mutated()
                self._settle_bad_debt(subaccount_id, None)
            if subaccount_id in self.state.liquidations and self.risk_of(subaccount).equity >= 0:
                self._end_liquidation(subaccount_id)

    def _deleverage(self, subaccount_id: SubaccountId, market: MarketState) -> None:
        """Close the position against the top of the ADL queue at the bankruptcy price: the fund
        pays what it may, the counterparties absorb exactly the rest of the shortfall."""
        subaccount = self.state.ledger.subaccounts[subaccount_id]
        market_id = market.params.market_id
        size = subaccount.positions[market_id].size_base_quantums
        self._seize_collateral(subaccount_id)
        shortfall = max(-self.risk_of(subaccount).equity, 0)
        if shortfall:
            shortfall -= self._draw_insurance(subaccount_id, market, shortfall)
        queue = self.adl_queue(market_id, closing_side(size))
        queue = queue[: limits.adl_counterparties_per_step_max]
        closed = min(abs(size), sum(abs(c.size_base_quantums) for c in queue))
        taken = take_from_queue(queue, closed)
        value = position_value(
            size, market.mark_price_quantums, market.params.base_quantums_per_unit
        )
        share = value if closed == abs(size) else div_floor(value * closed, abs(size))
        if size < 0:  # buying back: the account must still pay at least a quantum per unit
            shortfall = min(shortfall, max(-share - closed, 0))
        cash = share + shortfall if size > 0 else -share - shortfall
        notionals = allocate(cash, [part for _, part in taken])
        marks = allocate(abs(share), [part for _, part in taken])
        side = closing_side(size)
        for (candidate, part), notional, at_mark in zip(taken, notionals, marks, strict=True):
            fill = PlannedFill(OrderId(0), candidate.subaccount_id, 0, part)
            trade = _Trade(fill, notional, 0, 0)
            self._settle_side(market, subaccount, side, trade, 0)
            counterparty = self.state.ledger.subaccounts[candidate.subaccount_id]
            self._settle_side(market, counterparty, side.opposite, trade, 0)
            self._deleveraged.append(counterparty)  # may now be under water itself
            self._enforce_reduce_only(market, counterparty)
            self._settle_bad_debt(candidate.subaccount_id, market)  # a share past its equity
            self._events.append(Deleveraged(
                market_id=market_id, subaccount=str(subaccount_id),
                counterparty=str(candidate.subaccount_id), side=side, size_base_quantums=part,
                notional_quote_quantums=notional,
                shortfall_share_quote_quantums=abs(notional - at_mark),
            ))  # fmt: skip
        self._events.append(Liquidated(
            subaccount=str(subaccount_id), market_id=market_id, stage=LiquidationStage.DELEVERAGE,
            side=side, size_base_quantums=closed, notional_quote_quantums=cash,
            fee_to_keeper_quote_quantums=0, fee_to_fund_quote_quantums=0, keeper="",
        ))  # fmt: skip

    def adl_queue(self, market_id: MarketId, closing: Side) -> list[AdlCandidate]:
        """The ADL queue facing a position closed by a ``closing`` order: the positions on the
        other side (shorts, when a long is sold), ranked by profit% × leverage, highest first."""
        market = self.state.markets[market_id]
        risk = self.market_risk(market_id)
        candidates: list[AdlCandidate] = []
        for holder in market.holders:
            subaccount = self.state.ledger.subaccounts[holder]
            position = subaccount.positions[market_id]
            if (position.size_base_quantums > 0) != (closing is Side.BUY):
                continue
            candidates.append(AdlCandidate(
                holder, position.size_base_quantums,
                adl_score(
                    unrealized_pnl=unrealized_pnl(position, risk),
                    cost_quote_quantums=position.cost_quote_quantums,
                    notional_quote_quantums=notional_requirement_base(
                        position.size_base_quantums, risk.mark_price_quantums,
                        risk.base_quantums_per_unit,
                    ),
                    equity=self.risk_of(subaccount).equity,
                ),
            ))  # fmt: skip
        return adl_order(candidates)

    def adl_rank(self, subaccount_id: SubaccountId, market_id: MarketId) -> tuple[int, int] | None:
        """Where a position stands in its market's ADL queue: (1-based rank, queue length)."""
        subaccount = self.state.ledger.subaccounts.get(subaccount_id)
        if subaccount is None or market_id not in subaccount.positions:
            return None
        size = subaccount.positions[market_id].size_base_quantums
        queue = self.adl_queue(market_id, Side.BUY if size > 0 else Side.SELL)
        ids = [c.subaccount_id for c in queue]
        return ids.index(subaccount_id) + 1, len(ids)

    def liquidatable(self) -> list[SubaccountId]:
        """Every subaccount the ladder may act on now (what a keeper looks for)."""
        found: list[SubaccountId] = []
        holders = {h for m in self.state.markets.values() for h in m.holders}
        for subaccount_id in sorted(holders):
            subaccount = self.state.ledger.subaccounts[subaccount_id]
            eligible = self._may_liquidate(subaccount, self.risk_of(subaccount))
            if eligible and self._market_to_liquidate(subaccount) is not None:
                found.append(subaccount_id)
        return found

    # Commands: keepers and bidders.

    def _liquidation_target(self, command: Liquidate | BidAuction | BidPortfolio) -> SubaccountId:
        """The subaccount a keeper or bidder acts on; never one of the signer's own (JELLY,
        2025: liquidating oneself into the backstop)."""
        self._check_subaccount_number(command.subaccount_number)
        self._check_subaccount_number(command.owner_number)
        if not is_address(command.owner):
            raise Rejected(RejectReason.MALFORMED_COMMAND)
        if command.owner == command.signer:
            raise Rejected(RejectReason.SELF_LIQUIDATION)
        return SubaccountId(command.owner, command.owner_number)

    def _liquidate_command(self, command: Liquidate) -> None:
        target = self._liquidation_target(command)
        subaccount = self.state.ledger.subaccounts.get(target)
        if subaccount is None or not self._may_liquidate(subaccount, self.risk_of(subaccount)):
            raise Rejected(RejectReason.NOT_LIQUIDATABLE)
        market_id = self._market_to_liquidate(subaccount)
        if market_id is None:
            raise Rejected(RejectReason.NOT_LIQUIDATABLE)
        if not self._step_would_act(subaccount, market_id):
            raise Rejected(RejectReason.NOTHING_TO_LIQUIDATE)
        self._mutated()
        if target not in self.state.liquidations:
            self.state.liquidations[target] = LiquidationStatus(since_height=self.state.height)
            self._dirty_liquidations.add(target)
        keeper = SubaccountId(command.signer, command.subaccount_number)
        self._liquidation_step(target, keeper)
        self._maybe_end_auction(target)

    def _step_would_act(self, subaccount: Subaccount, market_id: MarketId) -> bool:
        """Whether a ladder step would change anything now. A keeper is paid for work done; a
        command that would do nothing (the block's cap used, an auction open and no bid on the
        book within the limit) is refused rather than costing the venue a book walk."""
        risk = self.risk_of(subaccount)
        if subaccount.order_ids or risk.equity < 0:
            return True
        if self._holds_options(subaccount):
            return self._live_auction(subaccount) is None  # opening the auction is the step
        market = self.state.markets[market_id]
        side = closing_side(subaccount.positions[market_id].size_base_quantums)
        target = self._close_target(subaccount, market, side, risk)
        if target == 0:
            return False
        if self._live_auction(subaccount) is None:
            return True  # the book fills, or an auction opens
        limit = self._liquidation_limit(subaccount, market, side, target, risk)
        if limit <= 0:
            return False
        plan = market.book.plan(
            side=side, limit_price_quantums=limit, size_base_quantums=target,
            owner=subaccount.subaccount_id,
        )  # fmt: skip
        return plan.filled_base_quantums > 0

    def _bid_auction(self, command: BidAuction) -> None:
        target = self._liquidation_target(command)
        status = self.state.liquidations.get(target)
        auction = None if status is None else status.auction
        if auction is None or auction.market_id != command.market_id:
            raise Rejected(RejectReason.NO_SUCH_AUCTION)
        market = self._tradable_market(command.market_id)
        self._check_size(market, command.size_base_quantums)
        subaccount = self.state.ledger.subaccounts[target]
        position = subaccount.position_size(command.market_id)
        size = min(command.size_base_quantums, auction.size_base_quantums, abs(position))
        if size <= 0:
            raise Rejected(RejectReason.NO_SUCH_AUCTION)
        risk = self.risk_of(subaccount)
        if not risk.usable:
            raise Rejected(RejectReason.ORACLE_STALE)
        if not self._may_liquidate(subaccount, risk):
            raise Rejected(RejectReason.NOT_LIQUIDATABLE)  # recovered, or behind the guard
        side = closing_side(position)
        trade = self._auction_trade(market, command, auction, side, size)
        bidder_id = SubaccountId(command.signer, command.subaccount_number)
        bidder = self._check_bidder(bidder_id, market, side.opposite, trade)
        self._mutated()
        self._settle_side(market, subaccount, side, trade, 0)
        self._settle_side(market, bidder, side.opposite, trade, 0)
        self._enforce_reduce_only(market, bidder)
        auction.size_base_quantums -= size
        self._dirty_liquidations.add(target)
        self._charge_liquidation_fee(
            target, market, side, size, trade.notional_quote_quantums, bidder_id,
            LiquidationStage.AUCTION,
        )  # fmt: skip
        if self.risk_of(subaccount).equity < 0:
            self._resolve_bankruptcy(target, market)
        elif auction.size_base_quantums == 0 or command.market_id not in subaccount.positions:
            self._close_auction(target)

    def _check_bidder(
        self, bidder_id: SubaccountId, market: MarketState, side: Side, trade: _Trade
    ) -> Subaccount:
        """A bidder takes on the position as it would by any order: margin, positions limit,
        cooling-off and the position cap all apply."""
        bidder = self.state.ledger.subaccounts.get(bidder_id)
        if bidder is None:
            raise Rejected(RejectReason.INSUFFICIENT_MARGIN)
        market_id = market.params.market_id
        after = self._after_trades(bidder, market, side, [trade], maker=False)
        if len(after.positions) > limits.positions_per_subaccount_max:
            raise Rejected(RejectReason.TOO_MANY_POSITIONS)
        if not self.risk_of(after).usable:
            raise Rejected(RejectReason.ORACLE_STALE)
        if not self._acceptable(bidder, after, market_id):
            raise Rejected(RejectReason.INSUFFICIENT_MARGIN)
        self._check_bidder_exposure(market, bidder, after)
        return bidder

    def _check_bidder_exposure(
        self, market: MarketState, bidder: Subaccount, after: Subaccount
    ) -> None:
        """A bidder growing a position obeys cooling-off and the position cap, as an order."""
        market_id = market.params.market_id
        grows = not is_reducing(bidder.position_size(market_id), after.position_size(market_id))
        if grows and self._cooling_off(market):
            raise Rejected(RejectReason.MARKET_REDUCE_ONLY)
        if self._over_position_cap(market, bidder, after):
            raise Rejected(RejectReason.POSITION_CAP_EXCEEDED)

    def _auction_trade(
        self, market: MarketState, command: BidAuction, auction: Auction, side: Side, size: int
    ) -> _Trade:
        """The bid at the auction's price now, never past the slice's bankruptcy price."""
        auction_owner = SubaccountId(command.owner, command.owner_number)
        params = market.params
        discount = auction_discount_ppm(
            params.liquidation, self.state.height - auction.started_height
        )
        price = auction_price(market.mark_price_quantums, side, discount)
        # Never past the slice's bankruptcy price: a solvent account's auction may cost it its
        # equity, but no bidder's discount may become bad debt for the fund or for ADL.
        equity = self.risk_of(self.state.ledger.subaccounts[auction_owner]).equity
        bankruptcy = cover_bound_price(
            mark_price_quantums=market.mark_price_quantums, side=side, size_base_quantums=size,
            base_quantums_per_unit=params.base_quantums_per_unit, equity=max(equity, 0), cover=0,
        )  # fmt: skip
        price = more_conservative(side, price, bankruptcy)
        per_unit = params.base_quantums_per_unit
        product = size * price
        notional = (
            div_floor(product, per_unit) if side is Side.SELL else div_ceil(product, per_unit)
        )
        fill = PlannedFill(
            OrderId(0), SubaccountId(command.signer, command.subaccount_number), price, size
        )
        # The bankruptcy bound is a price on no grid, and the notional rounds in the bidder's
        # favour: that may leave the account a few quantums short. The bidder makes it good,
        # so that a bid never creates bad debt (nor forces ADL over rounding dust).
        target = self.state.ledger.subaccounts[auction_owner]
        trial = _Trade(fill, max(notional, 1), 0, 0)
        after = self._after_trades(target, market, side, [trial], maker=False)
        short = -self.risk_of(after).equity
        if short > 0 and equity >= 0:
            notional += short if side is Side.SELL else -short
        if notional <= 0:
            raise Rejected(RejectReason.NO_SUCH_AUCTION)
        return _Trade(fill, notional, 0, 0)

    # Options portfolios (§7): a Dutch auction of a proportional slice of every position.

    def _holds_options(self, subaccount: Subaccount) -> bool:
        return any(
            self.state.markets[m].params.kind is MarketKind.OPTION
            and self.state.markets[m].status is MarketStatus.ACTIVE
            for m in subaccount.positions
        )

    def _open_portfolio_auction(self, subaccount_id: SubaccountId) -> None:
        status = self.state.liquidations[subaccount_id]
        if status.auction is not None:
            return
        status.auction = Auction(PORTFOLIO_AUCTION, self.state.height, 0)
        self._dirty_liquidations.add(subaccount_id)
        self._events.append(AuctionStarted(
            subaccount=str(subaccount_id), market_id=PORTFOLIO_AUCTION, side=Side.SELL,
            size_base_quantums=0,
        ))  # fmt: skip

    def _portfolio_params(self, subaccount: Subaccount) -> tuple[MarketState, LiquidationParams]:
        """The first option market held names the auction's schedule and the fund's cap."""
        for market_id in sorted(subaccount.positions):
            market = self.state.markets[market_id]
            if market.params.kind is MarketKind.OPTION:
                return market, market.params.liquidation
        raise AssertionError("a portfolio auction without options")

    def _bid_portfolio(self, command: BidPortfolio) -> None:
        target = self._liquidation_target(command)
        status = self.state.liquidations.get(target)
        auction = None if status is None else status.auction
        subaccount = self.state.ledger.subaccounts.get(target)
        if auction is None or auction.market_id != PORTFOLIO_AUCTION or subaccount is None:
            raise Rejected(RejectReason.NO_SUCH_AUCTION)
        if not self._holds_options(subaccount):
            raise Rejected(RejectReason.NO_SUCH_AUCTION)
        if not 0 < command.fraction_ppm <= PPM_ONE:
            raise Rejected(RejectReason.MALFORMED_COMMAND)
        risk = self.risk_of(subaccount)
        if not risk.usable:
            raise Rejected(RejectReason.ORACLE_STALE)
        if not self._may_liquidate(subaccount, risk):
            raise Rejected(RejectReason.NOT_LIQUIDATABLE)
        fund_market, params = self._portfolio_params(subaccount)
        discount = auction_discount_ppm(params, self.state.height - auction.started_height)
        cap = self._portfolio_fraction_cap(subaccount, discount, fund_market)
        slices = self._portfolio_slices(subaccount, min(command.fraction_ppm, cap))
        after = self.risk_of(self._after_slices(subaccount, slices, True, 0))
        # A bid must take risk away: one that strips a hedge (raising MM, so that a later bid
        # is paid on the naked position) is refused.
        if not slices or after.maintenance >= risk.maintenance:
            raise Rejected(RejectReason.NOTHING_TO_LIQUIDATE)
        reward, from_fund = self._portfolio_reward(subaccount, risk, after, discount, fund_market)
        bidder_id = SubaccountId(command.signer, command.subaccount_number)
        bidder = self._check_portfolio_bidder(bidder_id, slices, reward + from_fund)
        self._mutated()
        for market, side, trade in slices:
            self._settle_side(market, subaccount, side, trade, 0)
            self._settle_side(market, bidder, side.opposite, trade, 0)
            self._enforce_reduce_only(market, bidder)
            self._events.append(Liquidated(
                subaccount=str(target), market_id=market.params.market_id,
                stage=LiquidationStage.AUCTION, side=side,
                size_base_quantums=trade.fill.size_base_quantums,
                notional_quote_quantums=trade.notional_quote_quantums,
                fee_to_keeper_quote_quantums=0, fee_to_fund_quote_quantums=0,
                keeper=str(bidder_id),
            ))  # fmt: skip
        if reward:
            self._transfer(target, bidder_id, QUOTE_ASSET, reward, "liquidation reward")
        if from_fund:
            self._draw_insurance(target, fund_market, from_fund, recipient=bidder_id)
        after = self.risk_of(subaccount)
        if after.usable and after.satisfies_initial and not self._holds_options(subaccount):
            self._end_liquidation(target)
        elif not subaccount.positions:
            self._settle_bad_debt(target, fund_market)  # the fund, then the deficit

    def _portfolio_slices(
        self, subaccount: Subaccount, fraction_ppm: int
    ) -> list[tuple[MarketState, Side, _Trade]]:
        """``fraction_ppm`` of every active position (down to the step), traded at the mark;
        the notional rounds against the liquidated account."""
        slices = []
        for market_id, position in sorted(subaccount.positions.items()):
            market = self.state.markets[market_id]
            if market.status is not MarketStatus.ACTIVE:
                continue  # awaiting settlement: it closes at the settlement price
            held = abs(position.size_base_quantums)
            step = market.params.step_base_quantums
            size = (
                held if fraction_ppm == PPM_ONE else held * fraction_ppm // PPM_ONE // step * step
            )
            if size == 0:
                continue
            side = closing_side(position.size_base_quantums)
            product = size * market.mark_price_quantums
            per_unit = market.params.base_quantums_per_unit
            notional = (
                div_floor(product, per_unit) if side is Side.SELL else div_ceil(product, per_unit)
            )
            notional = max(notional, 1)  # a worthless option still changes hands for a quantum
            fill = PlannedFill(
                OrderId(0), subaccount.subaccount_id, market.mark_price_quantums, size
            )
            slices.append((market, side, _Trade(fill, notional, 0, 0)))
        return slices

    def _portfolio_reward(
        self, subaccount: Subaccount, risk: Risk, after: Risk, discount_ppm: int,
        fund_market: MarketState,
    ) -> tuple[int, int]:  # fmt: skip
        """(from the account, from the fund): the auction's discount on the maintenance margin
        the slices actually take away. A solvent account pays it, never past the equity it has
        left after the slices; an insolvent one pays nothing, and the fund pays the bidder to
        take it, within the market's per-block cap (Lyra v2's insolvent auction): bankrupt
        portfolios do not wait for their expiry with withdrawals paused. ``after`` is the
        account's risk once the slices are gone, before any reward."""
        removed = max(risk.maintenance - after.maintenance, 0)
        reward = div_floor(removed * discount_ppm, PPM_ONE)
        # Solvency at the collateral's full price (its haircut value is for margin): what the
        # account would have after seizure. Only a truly insolvent account is the fund's.
        premium = self._collateral_premium(subaccount)
        if risk.equity + premium < 0:
            return 0, min(reward, self._insurance_cover(fund_market))
        return min(reward, max(after.equity + premium, 0)), 0

    def _collateral_premium(self, subaccount: Subaccount) -> int:
        """Full index value less haircut value of the volatile collateral (seizure's gain)."""
        premium = 0
        for asset_id, amount in sorted(subaccount.balances.items()):
            if asset_id == QUOTE_ASSET or amount <= 0:
                continue
            price = self.collateral_price(asset_id)
            if price.usable:
                full = div_floor(amount * price.price_quantums, price.quantums_per_unit)
                premium += full - collateral_value(amount, price)
        return premium

    def _after_slices(
        self, subaccount: Subaccount, slices: list[tuple[MarketState, Side, _Trade]],
        taker: bool, reward: int,
    ) -> Subaccount:  # fmt: skip
        after = subaccount
        for market, side, trade in slices:
            after = self._after_trades(after, market, side if taker else side.opposite, [trade],
                                       maker=False)  # fmt: skip
        quote = after.balance(QUOTE_ASSET) + (reward if not taker else -reward)
        return _with_balance(after, QUOTE_ASSET, quote)

    def _portfolio_fraction_cap(
        self, subaccount: Subaccount, discount_ppm: int, fund_market: MarketState
    ) -> int:
        """The smallest fraction after which a solvent account meets IM again (Lyra v2 bounds
        a bid the same way): no account loses more of its portfolio than it must. Bankrupt
        accounts have no such bound."""
        risk = self.risk_of(subaccount)
        if risk.equity < 0:
            return PPM_ONE
        low, high = 1, PPM_ONE
        while low < high:
            middle = (low + high) // 2
            slices = self._portfolio_slices(subaccount, middle)
            taken = self.risk_of(self._after_slices(subaccount, slices, True, 0))
            reward = self._portfolio_reward(subaccount, risk, taken, discount_ppm, fund_market)[0]
            after = self._after_slices(subaccount, slices, True, reward)
            if slices and self.risk_of(after).satisfies_initial:
                high = middle
            else:
                low = middle + 1
        return low

    def _check_portfolio_bidder(
        self, bidder_id: SubaccountId, slices: list[tuple[MarketState, Side, _Trade]], reward: int
    ) -> Subaccount:
        bidder = self.state.ledger.subaccounts.get(bidder_id)
        if bidder is None:
            raise Rejected(RejectReason.INSUFFICIENT_MARGIN)
        after = self._after_slices(bidder, slices, False, reward)
        if len(after.positions) > limits.positions_per_subaccount_max:
            raise Rejected(RejectReason.TOO_MANY_POSITIONS)
        risk = self.risk_of(after)
        if not risk.usable:
            raise Rejected(RejectReason.ORACLE_STALE)
        if not risk.satisfies_initial:
            raise Rejected(RejectReason.INSUFFICIENT_MARGIN)
        for market, _, _ in slices:
            self._check_bidder_exposure(market, bidder, after)
        return bidder

    # ── Options: the surface, marks, margin mode, default series ──────────────────────────

    def _report_surface(self, command: ReportSurface) -> None:
        oracle = self.state.oracles.get(command.oracle_id)
        if oracle is None:
            raise Rejected(RejectReason.UNKNOWN_ORACLE)
        if command.signer not in {p.address for p in oracle.params.publishers}:
            raise Rejected(RejectReason.UNKNOWN_PUBLISHER)
        now = self.state.timestamp_ns
        stale = now - command.timestamp_ns > oracle.params.surface_staleness_ns
        previous = oracle.surfaces.get(command.signer)
        replayed = previous is not None and command.timestamp_ns <= previous[0]
        if command.timestamp_ns > now or stale or replayed:
            raise Rejected(RejectReason.REPORT_TIMESTAMP_INVALID)
        if surface.problems(command.slices, command.timestamp_ns):
            raise Rejected(RejectReason.SURFACE_ARBITRAGE)
        self._mutated()
        oracle.surfaces[command.signer] = (command.timestamp_ns, tuple(command.slices))
        oracle.surface_version += 1
        self._dirty_oracles.add(command.oracle_id)
        self._select_surface(oracle)
        self._events.append(SurfaceUpdated(
            oracle_id=command.oracle_id, publisher=command.signer,
            timestamp_ns=command.timestamp_ns, slices=len(command.slices),
        ))  # fmt: skip

    def _select_surface(self, oracle: OracleState) -> None:
        """Which publishers' surfaces are fresh (given a quorum), and the median one among
        them (what clients read as "the" surface); the engine's volatilities are medians taken
        point by point across all of them (``_implied_vol``)."""
        fresh = self._surface_candidates(oracle)
        chosen = surface.select(
            fresh, total_weight=sum(p.weight for p in oracle.params.publishers),
            quorum_ppm=oracle.params.quorum_ppm,
        )  # fmt: skip
        publishers = () if chosen is None else tuple(Address(c.publisher) for c in fresh)
        found = ((), 0) if chosen is None else (chosen.slices, chosen.timestamp_ns)
        if (oracle.surface, oracle.surface_timestamp_ns, oracle.surface_fresh) != (
            *found,
            publishers,
        ):
            oracle.surface, oracle.surface_timestamp_ns = found
            if oracle.surface_fresh != publishers:
                oracle.surface_fresh = publishers
                oracle.surface_version += 1
            self._dirty_oracles.add(oracle.params.oracle_id)

    def _surface_candidates(self, oracle: OracleState) -> list[surface.Candidate]:
        params = oracle.params
        now = self.state.timestamp_ns
        weights = {p.address: p.weight for p in params.publishers}
        return [
            surface.Candidate(publisher, weights[publisher], timestamp, slices)
            for publisher, (timestamp, slices) in sorted(oracle.surfaces.items())
            if now - timestamp <= params.surface_staleness_ns and publisher in weights
        ]

    def _surface_fresh(self, oracle: OracleState) -> bool:
        age = self.state.timestamp_ns - oracle.surface_timestamp_ns
        return bool(oracle.surface) and age <= oracle.params.surface_staleness_ns

    def _realized_vol(self, oracle: OracleState) -> float:
        params = oracle.params
        return annual_volatility_ppm(oracle.variance_e18, params.vol_sample_interval_ns) / PPM_ONE

    def _implied_vol(
        self, oracle: OracleState, expiry_ns: int, strike: int, forward: float
    ) -> float:
        """The weighted median, across the fresh publishers' surfaces, of their volatility at
        this strike and expiry (a minority cannot move any point of the smile); realized
        volatility while no quorum of surfaces is fresh. Bounded to [1%, 1000%]."""
        candidates = [
            c for c in self._surface_candidates(oracle) if c.publisher in oracle.surface_fresh
        ]
        if not oracle.surface or not candidates:
            return min(max(self._realized_vol(oracle), 0.01), 10.0)
        k = option_math.log(strike / forward)
        vols = sorted(
            (surface.volatility(c.slices, timestamp_ns=c.timestamp_ns, expiry_ns=expiry_ns,
                                log_moneyness=k), c.weight)
            for c in candidates
            if expiry_ns > c.timestamp_ns
        )  # fmt: skip
        if not vols:
            return min(max(self._realized_vol(oracle), 0.01), 10.0)
        total = sum(weight for _, weight in vols)
        running = 0
        for vol, weight in vols:
            running += weight
            if running * 2 >= total:
                return min(max(vol, 0.01), 10.0)
        raise AssertionError("unreachable: cumulative weight reaches the total")

    def _legs(
        self, market: MarketState, oracle: OracleState, forward: float, timestamp_ns: int
    ) -> list[tuple[Instrument, float]]:
        """A contract as (instrument, units) legs: a linear leg, and a call per payoff kink."""
        payoff = market.params.payoff
        if payoff is None:
            return [(Instrument(expiry_years=0.0), 1.0)]
        left_ns = market.params.expiry_ns - timestamp_ns
        active = market.status is MarketStatus.ACTIVE and left_ns > 0
        expiry_years = surface.years(left_ns) if active else 0.0
        legs = [(Instrument(expiry_years=expiry_years), float(payoff.slope_units))]
        for strike, change in payoff.kinks:
            vol = (
                self._implied_vol(oracle, market.params.expiry_ns, strike, forward)
                if active
                else 0.0
            )
            instrument = Instrument(
                expiry_years=expiry_years, strike=float(strike), is_call=True, volatility=vol
            )
            legs.append((instrument, float(change)))
        return [(i, units) for i, units in legs if units != 0.0]

    def _maybe_revalue_risk(self, market: MarketState, oracle: OracleState) -> None:
        """An option's scenario profile is revalued (like SPAN's risk arrays) when the index
        has moved 0.25% from where it was last taken, the surface was republished, or five minutes
        have passed; marks and equity move every block regardless."""
        index = oracle.index_price_quantums
        last = market.risk_forward_quantums
        moved = abs(index - last) * PPM_ONE > RISK_REVALUE_MOVE_PPM * last
        aged = self.state.timestamp_ns - market.risk_timestamp_ns >= RISK_REVALUE_NS
        if moved or aged or oracle.surface_version != market.risk_surface_version:
            market.risk_forward_quantums = index
            market.risk_timestamp_ns = self.state.timestamp_ns
            market.risk_surface_version = oracle.surface_version
            params = oracle.params
            market.risk_vol_ppm = annual_volatility_ppm(
                oracle.variance_e18, params.vol_sample_interval_ns
            )

    def _option_mark(self, market: MarketState, oracle: OracleState) -> int:
        """Black-76 on the index as forward, volatility from the surface; rounded to the
        nearest quantum (a mark is no one's side: values then round against each account)."""
        payoff = market.params.payoff
        assert payoff is not None
        forward = float(max(oracle.index_price_quantums, 1))
        value = float(payoff.cash_quote_quantums)
        for instrument, units in self._legs(market, oracle, forward, self.state.timestamp_ns):
            value += units * unit_value(instrument, forward, 1.0)
        return min(max(round(value), 0), limits.price_quantums_max)

    @staticmethod
    def _expiry_unit_value(params: MarketParams, price: int) -> int:
        """What one whole unit pays at this settlement price: the price, or the payoff there."""
        return price if params.payoff is None else params.payoff.value(price)

    def _set_margin_mode(self, command: SetMarginMode) -> None:
        self._check_subaccount_number(command.subaccount_number)
        subaccount_id = SubaccountId(command.signer, command.subaccount_number)
        if (subaccount_id in self.state.portfolio_margin) == command.portfolio:
            raise Rejected(RejectReason.MARGIN_MODE_UNCHANGED)
        if subaccount_id in self.state.liquidations:
            raise Rejected(RejectReason.INSUFFICIENT_MARGIN)
        subaccount = self.state.ledger.subaccounts.get(subaccount_id)
        if subaccount is not None and (subaccount.positions or subaccount.order_ids):
            risk = self.risk_of(subaccount, portfolio=command.portfolio)
            if not risk.usable:
                raise Rejected(RejectReason.ORACLE_STALE)
            if not risk.satisfies_initial:
                raise Rejected(RejectReason.INSUFFICIENT_MARGIN)
        self._mutated()
        if command.portfolio:
            self.state.portfolio_margin.add(subaccount_id)
        else:
            self.state.portfolio_margin.discard(subaccount_id)
        self._dirty_modes.add(subaccount_id)
        self._events.append(
            MarginModeChanged(subaccount=str(subaccount_id), portfolio=command.portfolio)
        )

    def _list_option_series(self, command: ListOptionSeries) -> None:
        params = command.params
        if command.signer != self.state.venue.operator:
            raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
        if params.problems():
            raise Rejected(RejectReason.INVALID_PARAMETERS)
        if params.oracle_id not in self.state.oracles:
            raise Rejected(RejectReason.UNKNOWN_ORACLE)
        if params.oracle_id in self.state.option_series or QUOTE_ASSET not in self.state.assets:
            raise Rejected(RejectReason.ALREADY_EXISTS)
        self._mutated()
        series_state = OptionSeries(params)
        self.state.option_series[params.oracle_id] = series_state
        self._dirty_series.add(params.oracle_id)
        self._events.append(
            OptionSeriesRegistered(oracle_id=params.oracle_id, prefix=params.prefix)
        )
        self._roll_series(series_state)

    def _roll_series(self, series_state: OptionSeries) -> None:
        """Keep the standard expiries listed: an expiry not yet listed gets a call and a put at
        each strike around the index now (while the index is fresh and markets are left)."""
        params = series_state.params
        oracle = self.state.oracles[params.oracle_id]
        now = self.state.timestamp_ns
        if not oracle.is_usable():
            return
        for expiry_ns in series.standard_expiries(now, params):
            if expiry_ns in series_state.listed_expiries:
                continue
            listed = series.series_markets(params, expiry_ns, oracle.index_price_quantums)
            if len(self.state.markets) + len(listed) > limits.markets_max:
                return
            for market_params in listed:
                valid = not market_params.problems() and is_symbol(market_params.market_id)
                if valid and market_params.market_id not in self.state.markets:
                    self._add_market(market_params)
            series_state.listed_expiries = sorted(
                [e for e in series_state.listed_expiries if e > now] + [expiry_ns]
            )
            self._dirty_series.add(params.oracle_id)

    # Queries: Greeks per subaccount and per market (SPEC §6).

    def market_profile(self, market_id: MarketId) -> Profile:
        """One unit's scenario losses and Greeks (delta, gamma, vega, theta per year)."""
        found = self.market_risk(market_id).profile
        assert found is not None
        return found

    def greeks(self, subaccount_id: SubaccountId) -> dict[str, tuple[float, float, float, float]]:
        """(delta, gamma, vega, theta) of a subaccount's positions per underlying: delta in whole
        units of the underlying, gamma per whole quote unit of move, vega in quote units per
        1.00 of volatility, theta in quote units per year."""
        subaccount = self.state.ledger.subaccounts.get(subaccount_id)
        totals: dict[str, list[float]] = {}
        positions = {} if subaccount is None else subaccount.positions
        for market_id, position in sorted(positions.items()):
            market = self.state.markets[market_id]
            units = position.size_base_quantums / market.params.base_quantums_per_unit
            found = self.market_profile(market_id)
            row = totals.setdefault(market.params.oracle_id, [0.0, 0.0, 0.0, 0.0])
            quote = float(self.state.assets[QUOTE_ASSET].quantums_per_unit)
            scaled = (found.delta, found.gamma * quote, found.vega / quote, found.theta / quote)
            for index, value in enumerate(scaled):
                row[index] += units * value
        return {k: (v[0], v[1], v[2], v[3]) for k, v in totals.items()}

    # ── Risk ───────────────────────────────────────────────────────────────────────────────

    def market_risk(self, market_id: MarketId) -> MarketRisk:
        market = self.state.markets[market_id]
        oracle = self.state.oracles[market.params.oracle_id]
        option = market.params.kind is MarketKind.OPTION
        key = (
            market_id, market.mark_price_quantums, market.open_interest_base_quantums,
            market.vol_multiplier_ppm, market.status, oracle.status,
            oracle.cooling_off_until_ns > self.state.timestamp_ns, oracle.index_price_quantums,
            oracle.variance_e18, oracle.surface_version, market.risk_timestamp_ns,
            market.risk_forward_quantums, self._surface_fresh(oracle) if option else True,
            self._confidence(oracle),
        )  # fmt: skip
        cached = self._market_risk_cache.get(market_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        risk = self._compute_market_risk(market, oracle)
        self._market_risk_cache[market_id] = (key, risk)
        return risk

    def _compute_market_risk(self, market: MarketState, oracle: OracleState) -> MarketRisk:
        """The risk inputs of a market; cached by everything they depend on."""
        margin = market.params.margin
        open_interest = market.open_interest_base_quantums * market.mark_price_quantums
        fraction = market_im_fraction_ppm(
            margin,
            open_interest_quote_quantums=div_ceil(
                open_interest, market.params.base_quantums_per_unit
            ),
            vol_multiplier_ppm=market.vol_multiplier_ppm,
        )
        cooling_off = self._cooling_off(market)
        option = market.params.kind is MarketKind.OPTION
        usable = oracle.is_usable() and market.status is not MarketStatus.SETTLED
        if option and market.status is MarketStatus.ACTIVE:
            usable = usable and self._surface_fresh(oracle)
        contract = self._profile(market, oracle)
        return MarketRisk(
            market.mark_price_quantums, market.params.base_quantums_per_unit, fraction,
            margin.maintenance_share_ppm, margin.size_premium_ppm_per_sqrt_quote_unit, usable,
            margin.cooling_off_multiplier_ppm if cooling_off else PPM_ONE,
            underlying=market.params.oracle_id, profile=contract, is_option=option,
            index_price_quantums=max(oracle.index_price_quantums, 1),
            confidence_quantums=self._confidence(oracle),
        )  # fmt: skip

    def _profile(self, market: MarketState, oracle: OracleState) -> Profile:
        """The contract's scenario profile, cached by everything it depends on."""
        forward, at_ns, vol = self._risk_point(market, oracle)
        key = (forward, at_ns, vol, market.status, oracle.surface_version)
        cached = self._profile_cache.get(market.params.market_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        legs = self._legs(market, oracle, forward, at_ns)
        found = profile(legs, forward=forward, realized_vol=vol)
        self._profile_cache[market.params.market_id] = (key, found)
        return found

    def _risk_point(self, market: MarketState, oracle: OracleState) -> tuple[float, int, float]:
        """Where a profile is taken (forward, time, realized volatility): an active option at
        its last revaluation, everything else at the index and volatility now."""
        revalued = market.risk_forward_quantums > 0 and market.status is MarketStatus.ACTIVE
        if market.params.kind is MarketKind.OPTION and revalued:
            forward = float(market.risk_forward_quantums)
            return forward, market.risk_timestamp_ns, market.risk_vol_ppm / PPM_ONE
        index = float(max(oracle.index_price_quantums, 1))
        return index, self.state.timestamp_ns, self._realized_vol(oracle)

    def _confidence(self, oracle: OracleState) -> int:
        """The median confidence of the fresh reports the index could use (the contingency of
        §6), at most the band: an outlier publisher cannot set anyone's margin."""
        oldest = self.state.timestamp_ns - oracle.params.staleness_ns
        index = oracle.index_price_quantums
        band = oracle.params.band_ppm * index // PPM_ONE
        fresh = sorted(
            r.confidence_quantums for r in oracle.reports.values()
            if r.timestamp_ns >= oldest and abs(r.price_quantums - index) <= band
        )  # fmt: skip
        return min(fresh[(len(fresh) - 1) // 2], band) if fresh else 0

    def collateral_price(self, asset_id: AssetId) -> CollateralPrice:
        asset = self.state.assets[asset_id]
        assert asset.oracle_id is not None, asset_id
        oracle = self.state.oracles[asset.oracle_id]
        return CollateralPrice(
            oracle.index_price_quantums, asset.quantums_per_unit, asset.haircut_weight_ppm,
            oracle.is_usable(),
        )  # fmt: skip

    def risk_of(self, subaccount: Subaccount, *, portfolio: bool | None = None) -> Risk:
        """Equity, IM and MM in the subaccount's margin mode (or the mode named)."""
        markets = {
            m: self.market_risk(m)
            for m in subaccount.positions.keys() | subaccount.open_orders.keys()
        }
        collateral = {a: self.collateral_price(a) for a in subaccount.balances if a != QUOTE_ASSET}
        if portfolio is None:
            portfolio = subaccount.subaccount_id in self.state.portfolio_margin
        return subaccount_risk(subaccount, markets, collateral, portfolio=portfolio)

    # ── Plumbing ───────────────────────────────────────────────────────────────────────────

    def _transfer(
        self,
        source: SubaccountId | SystemAccount,
        target: SubaccountId | SystemAccount,
        asset_id: AssetId,
        amount: int,
        cause: str,
    ) -> None:
        self.state.ledger.apply(Transfer(source, target, asset_id, amount))
        for account in (source, target):
            if isinstance(account, SystemAccount):
                self._dirty_system.add(account)
            else:
                self._dirty_subaccounts.add(account)
                if asset_id == QUOTE_ASSET:
                    self._track_borrower(account)
        self._events.append(Transferred(
            source=str(source), target=str(target), asset_id=asset_id, amount_quantums=amount,
            cause=cause,
        ))  # fmt: skip

    def _track_borrower(self, subaccount_id: SubaccountId) -> None:
        """Keep the set of subaccounts owing quote (derived state, rebuilt by replay)."""
        if self.state.ledger.balance(subaccount_id, QUOTE_ASSET) < 0:
            self._borrowers.add(subaccount_id)
        else:
            self._borrowers.discard(subaccount_id)

    def _mutated(self) -> None:
        self._mutations += 1

    def _next_order_id(self) -> OrderId:
        order_id = OrderId(self.state.next_order_id)
        self.state.next_order_id += 1
        return order_id

    def _take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def _flush_dirty(self) -> None:
        """Re-encode each changed piece of state into its leaf (or delete the leaf)."""
        state = self.state
        tree = state.tree
        self._flush_archived()  # first: an id listed again in this block writes anew below
        tree.set(COUNTERS_KEY, encode_leaf(state.counters()))
        for subaccount_id in self._dirty_subaccounts:
            found = state.ledger.subaccounts.get(subaccount_id)
            _set_or_delete(tree, subaccount_key(subaccount_id), found.encode() if found else None)
        for account in self._dirty_system:
            balances = state.ledger.system.get(account, {})
            _set_or_delete(tree, system_key(account), dict(sorted(balances.items())) or None)
        for market_id in self._dirty_markets:
            tree.set(market_key(market_id), encode_leaf(state.markets[market_id].encode()))
        for oracle_id in self._dirty_oracles:
            oracle = state.oracles[OracleId(oracle_id)]
            tree.set(oracle_key(oracle.params.oracle_id), encode_leaf(oracle.encode()))
        for order_id in self._dirty_orders:
            _set_or_delete(tree, order_key(order_id), self._order_leaf(order_id))
        for signer in self._dirty_nonces:
            tree.set(nonce_key(signer), encode_leaf(state.nonces[signer]))
        for subaccount_id in self._dirty_liquidations:
            status = state.liquidations.get(subaccount_id)
            _set_or_delete(
                tree, liquidation_key(subaccount_id), None if status is None else status.encode()
            )
        self._flush_options()
        for key, plain in self._dirty_params.items():
            tree.set(key, encode_leaf(plain))
        self._dirty_params.clear()
        for (oracle_id, slot), sample in self._dirty_twap_slots.items():
            tree.set(twap_slot_key(oracle_id, slot), encode_leaf(list(sample)))
        self._dirty_twap_slots.clear()
        for dirty in (
            self._dirty_subaccounts, self._dirty_system, self._dirty_markets,
            self._dirty_oracles, self._dirty_orders, self._dirty_nonces,
            self._dirty_liquidations, self._dirty_modes, self._dirty_series, self._dirty_agents,
        ):  # fmt: skip
            dirty.clear()

    def _flush_archived(self) -> None:
        for market_id in sorted(self._archived):
            for key in (market_key(market_id), params_key("market", market_id)):
                _set_or_delete(self.state.tree, key, None)
        self._archived.clear()

    def _flush_options(self) -> None:
        state = self.state
        for subaccount_id in self._dirty_modes:
            portfolio = subaccount_id in state.portfolio_margin
            leaf = "portfolio" if portfolio else None
            _set_or_delete(state.tree, margin_mode_key(subaccount_id), leaf)
        for account in self._dirty_agents:
            found = state.agents.get(account)
            _set_or_delete(state.tree, agent_key(account), None if found is None else found)
        for oracle_id in self._dirty_series:
            series_leaf = state.option_series[oracle_id].encode()
            state.tree.set(series_key(oracle_id), encode_leaf(series_leaf))

    def _order_leaf(self, order_id: OrderId) -> object | None:
        market_id = self.state.order_markets.get(order_id)
        if market_id is not None:
            order = self.state.markets[market_id].book.get(order_id)
            assert order is not None
            return {"market": market_id, **order.encode()}
        for market in self.state.markets.values():
            trigger = market.triggers.get(order_id)
            if trigger is not None:
                return {"market": market.params.market_id, "trigger": to_plain(trigger)}
        return None


ARCHIVE_AFTER_NS = 24 * NS_PER_HOUR  # a settled market stays queryable for a day
RISK_REVALUE_MOVE_PPM = 2_500  # an option's profile is revalued after a 0.25% move...
RISK_REVALUE_NS = 5 * 60 * 1_000_000_000  # ...or five minutes

_TRIGGERED_TYPES = frozenset({
    OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_MARKET,
    OrderType.TAKE_PROFIT_LIMIT,
})  # fmt: skip
_MARKET_TYPES = frozenset({OrderType.MARKET, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET})
_RETRYABLE_TRIGGER_REASONS = frozenset({RejectReason.ORACLE_STALE, RejectReason.NO_LIQUIDITY})


def _listed_ids(command: ListOracle | ListAsset | ListMarket) -> list[str]:
    match command:
        case ListOracle():
            return [command.params.oracle_id]
        case ListAsset():
            oracle = command.params.oracle_id
            return [command.params.asset_id] + ([] if oracle is None else [oracle])
        case ListMarket():
            return [command.params.market_id, command.params.oracle_id]


def _bisect(values: list[int], value: int) -> int:
    low, high = 0, len(values)
    while low < high:
        middle = (low + high) // 2
        if values[middle] < value:
            low = middle + 1
        else:
            high = middle
    return low


def _div_toward_zero(numerator: int, denominator: int) -> int:
    magnitude = abs(numerator) // denominator
    return magnitude if numerator >= 0 else -magnitude


def _add_to_open_orders(orders: OpenOrders, side: Side, size: int, notional: int) -> None:
    if side is Side.BUY:
        orders.bid_base_quantums += size
        orders.bid_notional_quote_quantums += notional
    else:
        orders.ask_base_quantums += size
        orders.ask_notional_quote_quantums += notional
    assert orders.bid_base_quantums >= 0 and orders.ask_base_quantums >= 0, orders


def _copy_open_orders(orders: OpenOrders | None) -> OpenOrders:
    if orders is None:
        return OpenOrders()
    return OpenOrders(
        orders.bid_base_quantums, orders.bid_notional_quote_quantums, orders.ask_base_quantums,
        orders.ask_notional_quote_quantums, orders.count, orders.reduce_only_count,
    )  # fmt: skip


def _with_balance(subaccount: Subaccount, asset_id: AssetId, amount: int) -> Subaccount:
    balances = {**subaccount.balances, asset_id: amount}
    return Subaccount(
        subaccount.subaccount_id, balances, subaccount.positions, subaccount.open_orders,
        subaccount.order_ids, subaccount.client_order_ids,
    )  # fmt: skip


def _set_or_delete(tree: StateTree, key: bytes, value: object | None) -> None:
    if value is None:
        if key in tree:
            tree.delete(key)
        return
    tree.set(key, encode_leaf(value))
