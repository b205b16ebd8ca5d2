"""The state machine of one venue: the ``Engine`` facade, the ordered block steps and the one
table from command type to handler.

A block is ``begin_block(height, timestamp_ns)`` (oracles, option series, per-market steps,
archival, the liquidation pass), then ``apply`` of each command in order, then ``end_block()``
which returns the state root. The same commands with the same block contexts give
byte-identical events and roots: nothing here reads a clock, draws randomness or does I/O.

A command applies completely or is rejected with a ``RejectReason`` and changes nothing but its
nonce (§3). Handlers validate first and mutate after; a mutation counter asserts it.
"""

from __future__ import annotations

from clearhouse.core import limits
from clearhouse.core.codec import MalformedCommand, decode_command
from clearhouse.core.engine.accounts import (
    agent_refusal,
    authorize_agent,
    check_nonce,
    consume_nonce,
    forget_aged_nonces,
    revoke_agent,
)
from clearhouse.core.engine.context import Context, Rejected, rebuild_derived, take_events
from clearhouse.core.engine.expiry import archive_settled, maybe_expire
from clearhouse.core.engine.forwards import forward_quantums, take_curves
from clearhouse.core.engine.funding import maybe_pay_funding
from clearhouse.core.engine.governance import (
    advance_phases,
    approve_proposal,
    cancel_proposal,
    dispute_settlement,
    execute_proposal,
    guardian_act,
    liquidatable_after,
    propose,
    queue_proposal,
    setup_governance,
    steward_update,
)
from clearhouse.core.engine.leaves import flush_dirty, touch_everything
from clearhouse.core.engine.liquidation import watch
from clearhouse.core.engine.liquidation.auctions import bid_auction, bid_portfolio
from clearhouse.core.engine.liquidation.insolvency import (
    adl_queue,
    adl_rank,
    ranked_adl_queue,
)
from clearhouse.core.engine.liquidation.ladder import (
    liquidatable,
    liquidate_command,
    liquidation_pass,
)
from clearhouse.core.engine.listing import list_option_series, list_params, roll_series
from clearhouse.core.engine.marks import maybe_revalue_risk, update_mark, update_vol_multiplier
from clearhouse.core.engine.options_vault import (
    deposit_options_vault,
    run_options_vault,
    setup_options_vault,
    withdraw_options_vault,
)
from clearhouse.core.engine.preview import MarginPreview, Trial, preview
from clearhouse.core.engine.prices import (
    report_prices,
    report_surface,
    select_surface,
    update_oracle,
    update_order,
)
from clearhouse.core.engine.risk import (
    Greeks,
    book_exposure,
    collateral_price,
    equity_of,
    greeks,
    market_profile,
    market_risk,
    risk_of,
    unit_exposure,
)
from clearhouse.core.engine.subaccounts import (
    deposit,
    deposit_insurance,
    set_margin_mode,
    transfer_collateral,
    withdraw,
)
from clearhouse.core.engine.trading.orders import (
    amend_order,
    cancel_all,
    cancel_order,
    expire_orders,
    fire_triggers,
    misindexed_triggers,
    place_order,
)
from clearhouse.core.engine.trading.schedule import fire_scheduled_cancels, schedule_cancel
from clearhouse.core.engine.trading.trades import position_cap
from clearhouse.core.engine.valuation import expiry_unit_value, option_mark, surface_fresh
from clearhouse.core.engine.vault import deposit_vault, quote_vault, withdraw_vault
from clearhouse.core.errors import InvariantViolation, RejectReason
from clearhouse.core.ids import (
    AssetId,
    MarketId,
    OracleId,
    OrderId,
    Side,
    SubaccountId,
    is_address,
)
from clearhouse.core.ledger import (
    OPTIONS_VAULT,
    Subaccount,
)
from clearhouse.core.liquidation import (
    AdlCandidate,
)
from clearhouse.core.margin import (
    CollateralPrice,
    MarketRisk,
    Risk,
)
from clearhouse.core.merkle import StateTree
from clearhouse.core.messages import (
    AgentSigned,
    AmendOrder,
    ApproveProposal,
    AuthorizeAgent,
    BidAuction,
    BidPortfolio,
    CancelAll,
    CancelOrder,
    CancelProposal,
    Command,
    CommandRejected,
    Deposit,
    DepositInsurance,
    DepositOptionsVault,
    DepositVault,
    DisputeSettlement,
    Event,
    ExecuteProposal,
    GovAction,
    GuardianAct,
    Liquidate,
    ListAsset,
    ListMarket,
    ListOptionSeries,
    ListOracle,
    PlaceOrder,
    Propose,
    QueueProposal,
    ReportPrices,
    ReportSurface,
    RevokeAgent,
    ScheduleCancel,
    SetMarginMode,
    SetupGovernance,
    SetupOptionsVault,
    StewardUpdate,
    TransferCollateral,
    Withdraw,
    WithdrawOptionsVault,
    WithdrawVault,
)
from clearhouse.core.options_vault import Exposure
from clearhouse.core.params import (
    MarketKind,
    VenueParams,
)
from clearhouse.core.scenario_grid import (
    Profile,
)
from clearhouse.core.state import (
    EngineState,
    MarketState,
    MarketStatus,
)


class Engine:
    """The deterministic clearing state machine of one venue: the only code that mutates its
    ``EngineState``, through the domain modules of this package."""

    __slots__ = ("_in_block", "ctx")

    def __init__(self, venue: VenueParams) -> None:
        assert is_address(venue.operator), venue.operator
        assert is_address(venue.custody_relayer), venue.custody_relayer
        assert not venue.problems(), venue.problems()
        self.ctx = Context(EngineState(venue=venue))
        self._in_block = False

    @classmethod
    def from_state(cls, state: EngineState) -> Engine:
        """An engine over a state it did not build (restored, or written directly by a
        benchmark): derived indexes are rebuilt and every state-root leaf is written anew, in
        one pass over the state; the tree's root is then the state's."""
        engine = cls(state.venue)
        state.tree = StateTree(values=False)
        engine.ctx.state = state
        rebuild_derived(engine.ctx)
        touch_everything(engine.ctx)
        flush_dirty(engine.ctx)
        state.tree.root()
        watch.rebuild(engine.ctx)
        return engine

    @property
    def state(self) -> EngineState:
        return self.ctx.state

    # ── Blocks ──────────────────────────────────────────────────────────────────────────────

    def begin_block(self, height: int, timestamp_ns: int) -> list[Event]:
        """Open a block: advance time and run every time- and price-driven step, in this
        order: dead-man's switches that are due → nonce sets past the window → forward curves
        → oracles (rate feeds first; index, breaker, samples, surfaces) → default option series
        → margin phase-ins → per market (``market_steps``) → archive settled markets → the
        vault's quotes (after the marks, so it quotes around this block's; before the pass, so
        the pass sees the margin its orders hold) → the options vault's quotes and hedge → the
        liquidation pass."""
        ctx = self.ctx
        state = ctx.state
        assert not self._in_block, "begin_block twice"
        assert height == state.height + 1, (height, state.height)
        assert timestamp_ns >= state.timestamp_ns, "block time never goes backwards"
        self._in_block = True
        state.height = height
        state.timestamp_ns = timestamp_ns
        ctx.events = []
        fire_scheduled_cancels(ctx)  # first: nothing may trade against orders whose time is up
        forget_aged_nonces(ctx)
        take_curves(ctx)  # the futures' basis as the last block left them, before prices move
        for oracle_id in update_order(ctx):
            update_oracle(ctx, state.oracles[oracle_id])
            if state.oracles[oracle_id].surfaces:
                select_surface(ctx, state.oracles[oracle_id])
        for oracle_id in sorted(state.option_series):
            roll_series(ctx, state.option_series[oracle_id])
        advance_phases(ctx)  # margin phase-ins that took a step: their holders are examined
        for market_id in sorted(state.markets):
            market_steps(ctx, state.markets[market_id])
        archive_settled(ctx)
        quote_vault(ctx)
        run_options_vault(ctx)
        liquidation_pass(ctx)
        return take_events(ctx)

    def apply(self, index: int, item: Command | AgentSigned) -> list[Event]:
        """Apply one authenticated command (signed by its account's key, or by ``agent`` for
        an ``AgentSigned`` one); returns its events (a rejection is one event)."""
        ctx = self.ctx
        assert self._in_block, "apply outside a block"
        ctx.events = []
        command, agent = (
            (item.command, item.agent) if isinstance(item, AgentSigned) else (item, None)
        )
        key = command.signer if agent is None else agent  # nonces belong to the signing key
        # A key that is not an agent of the account (a forged or foreign signature) gets no
        # nonce set: nothing it sends may leave a trace in state.
        refused = check_nonce(ctx, command, key) or agent_refusal(ctx, command, agent)
        if refused is not None:
            return [CommandRejected(index=index, reason=refused, nonce_consumed=False)]
        consume_nonce(ctx, key, command.nonce)
        mutations_before = ctx.mutations
        try:
            if ctx.state.timestamp_ns > command.expiry_ns:
                raise Rejected(RejectReason.COMMAND_EXPIRED)
            dispatch(ctx, command)
        except Rejected as rejection:
            if ctx.mutations != mutations_before:
                raise InvariantViolation(
                    f"{type(command).__name__} mutated, then rejected"
                ) from None
            assert not ctx.events, "a rejected command emitted events"
            return [CommandRejected(index=index, reason=rejection.reason, nonce_consumed=True)]
        events = take_events(ctx)
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
        self.close_block()
        return self.state_root()

    def close_block(self) -> None:
        """Close the block without committing to it: what it changed waits, with what later
        blocks change, for the next ``state_root`` (or ``end_block``), which folds it all into
        the tree at once. The root is a function of the state alone, so that one is the root
        the blocks' own would have ended at. For runs that need no root per block (a stress
        path without a journal): a leaf is then encoded and hashed once, not once a block."""
        assert self._in_block, "close_block outside a block"
        watch.band_changed(self.ctx)  # the holders the commands changed: banded while fresh
        self._in_block = False

    def state_root(self) -> bytes:
        """The root of the state as it stands between blocks, every closed block folded in."""
        assert not self._in_block, "the root is taken between blocks"
        flush_dirty(self.ctx)
        return self.ctx.state.tree.root()

    # ── Queries (read-only) ─────────────────────────────────────────────────────────────────

    def risk_of(self, subaccount: Subaccount, *, portfolio: bool | None = None) -> Risk:
        """Equity, IM and MM in the subaccount's margin mode (or the mode named)."""
        return risk_of(self.ctx, subaccount, portfolio=portfolio)

    def equity_of(self, subaccount: Subaccount) -> int:
        """``risk_of(subaccount).equity``, without computing the requirements."""
        return equity_of(self.ctx, subaccount)

    def market_risk(self, market_id: MarketId) -> MarketRisk:
        return market_risk(self.ctx, market_id)

    def collateral_price(self, asset_id: AssetId) -> CollateralPrice:
        return collateral_price(self.ctx, asset_id)

    def position_cap(self, market_id: MarketId) -> int | None:
        """The largest position the book's depth supports now; None when uncapped."""
        return position_cap(self.ctx, market_id)

    def adl_queue(self, market_id: MarketId, closing: Side) -> list[AdlCandidate]:
        """The ADL queue facing a position closed by a ``closing`` order, highest rank first
        (between blocks: ranked once until the state changes)."""
        if self._in_block:
            return adl_queue(self.ctx, market_id, closing)
        return list(ranked_adl_queue(self.ctx, market_id, closing)[0])

    def adl_rank(
        self, subaccount_id: SubaccountId, market_id: MarketId, lag_ns: int = 0
    ) -> tuple[int, int] | None:
        """Where a position stands in its market's ADL queue: (1-based rank, queue length),
        ranked at most ``lag_ns`` of block time ago (0: now)."""
        assert not self._in_block, "a read between blocks"
        return adl_rank(self.ctx, subaccount_id, market_id, lag_ns)

    def liquidatable(self) -> list[SubaccountId]:
        """Every subaccount the ladder may act on now (what a keeper looks for)."""
        return liquidatable(self.ctx)

    def unwatched_liquidatable(self) -> list[SubaccountId]:
        """Holders below maintenance margin that the next liquidation pass would not examine:
        always empty (a full scan that checks the liquidation watch; tests and simulation)."""
        return watch.unwatched_liquidatable(self.ctx)

    def misindexed_triggers(self) -> list[OrderId]:
        """Armed triggers the trigger index misplaces or misses: always empty (tests and
        simulation)."""
        return misindexed_triggers(self.ctx)

    def greeks(self, subaccount_id: SubaccountId) -> dict[str, Greeks]:
        """Delta, gamma, vega (in total and by expiry bucket), theta and rho of a subaccount's
        positions per underlying."""
        return greeks(self.ctx, subaccount_id)

    def market_profile(self, market_id: MarketId) -> Profile:
        """One unit's scenario losses and Greeks (delta, gamma, vega, theta per year)."""
        return market_profile(self.ctx, market_id)

    def preview(
        self, subaccount_id: SubaccountId, trial: Trial, adl_lag_ns: int = 0
    ) -> MarginPreview:
        """A what-if: margin before and after ``trial`` through the engine's own trade path and
        margin gate, the gate's decision, liquidation prices and ADL ranks (among the others as
        ranked at most ``adl_lag_ns`` of block time ago); nothing changes."""
        assert not self._in_block, "a read between blocks"
        return preview(self.ctx, subaccount_id, trial, adl_lag_ns)

    def options_vault_exposure(self) -> Exposure | None:
        """The options vault's book: its vega, gamma and delta values in quote quantums (None
        before anything was deposited)."""
        subaccount = self.ctx.state.ledger.subaccounts.get(OPTIONS_VAULT)
        return None if subaccount is None else book_exposure(self.ctx, subaccount)

    def options_vault_unit_exposure(self, market_id: MarketId) -> Exposure:
        """One whole long unit of a market as the options vault measures it (vega per vol
        point, gamma per 1% move, delta value; quote quantums), at this block's prices."""
        return unit_exposure(self.ctx, self.ctx.state.markets[market_id])

    def forward(self, oracle_id: OracleId, expiry_ns: int) -> int:
        """The forward of an expiry on this oracle's curve (the index without a future)."""
        index = self.ctx.state.oracles[oracle_id].index_price_quantums
        return forward_quantums(self.ctx, oracle_id, index, expiry_ns)

    def liquidatable_after(
        self, actions: tuple[GovAction, ...], holders_max: int = 100_000
    ) -> tuple[list[SubaccountId], bool]:
        """Holders healthy now that a governance change would put below maintenance once
        whole (nothing changes), and whether the holders examined were cut at
        ``holders_max``; raises ``Rejected`` for an invalid action."""
        assert not self._in_block, "a read between blocks"
        return liquidatable_after(self.ctx, actions, holders_max)


def dispatch(ctx: Context, command: Command) -> None:  # noqa: C901, PLR0912, PLR0915
    """Every command type has exactly one handler; mypy narrows ``command`` in each case."""
    match command:
        case PlaceOrder():
            place_order(ctx, command)
        case CancelOrder():
            cancel_order(ctx, command)
        case CancelAll():
            cancel_all(ctx, command)
        case AmendOrder():
            amend_order(ctx, command)
        case ScheduleCancel():
            schedule_cancel(ctx, command)
        case ReportPrices():
            report_prices(ctx, command)
        case ReportSurface():
            report_surface(ctx, command)
        case Deposit():
            deposit(ctx, command)
        case Withdraw():
            withdraw(ctx, command)
        case TransferCollateral():
            transfer_collateral(ctx, command)
        case DepositInsurance():
            deposit_insurance(ctx, command)
        case DepositVault():
            deposit_vault(ctx, command)
        case WithdrawVault():
            withdraw_vault(ctx, command)
        case SetupOptionsVault():
            setup_options_vault(ctx, command)
        case DepositOptionsVault():
            deposit_options_vault(ctx, command)
        case WithdrawOptionsVault():
            withdraw_options_vault(ctx, command)
        case Liquidate():
            liquidate_command(ctx, command)
        case BidAuction():
            bid_auction(ctx, command)
        case BidPortfolio():
            bid_portfolio(ctx, command)
        case SetMarginMode():
            set_margin_mode(ctx, command)
        case ListOracle() | ListAsset() | ListMarket():
            list_params(ctx, command)
        case ListOptionSeries():
            list_option_series(ctx, command)
        case AuthorizeAgent():
            authorize_agent(ctx, command)
        case RevokeAgent():
            revoke_agent(ctx, command)
        case SetupGovernance():
            setup_governance(ctx, command)
        case Propose():
            propose(ctx, command)
        case ApproveProposal():
            approve_proposal(ctx, command)
        case QueueProposal():
            queue_proposal(ctx, command)
        case ExecuteProposal():
            execute_proposal(ctx, command)
        case CancelProposal():
            cancel_proposal(ctx, command)
        case StewardUpdate():
            steward_update(ctx, command)
        case GuardianAct():
            guardian_act(ctx, command)
        case DisputeSettlement():
            dispute_settlement(ctx, command)
        case _:
            raise Rejected(RejectReason.MALFORMED_COMMAND)


def market_steps(ctx: Context, market: MarketState) -> None:
    oracle = ctx.state.oracles[market.params.oracle_id]
    expire_orders(ctx, market)
    kind = market.params.kind
    if kind is not MarketKind.PERPETUAL:
        maybe_expire(ctx, market, oracle)  # first: no trigger may trade at or past expiry
    if kind is MarketKind.OPTION and market.status is MarketStatus.ACTIVE:
        if oracle.is_usable() and surface_fresh(ctx, oracle):
            market.mark_price_quantums = option_mark(ctx, market, oracle)
            maybe_revalue_risk(ctx, market, oracle)
            fire_triggers(ctx, market)
    elif market.status is MarketStatus.ACTIVE and oracle.is_usable():
        update_mark(ctx, market, oracle)
        update_vol_multiplier(ctx, market, oracle)
        fire_triggers(ctx, market)
        if market.params.kind is MarketKind.PERPETUAL:
            maybe_pay_funding(ctx, market, oracle)
    elif market.status is MarketStatus.EXPIRED and oracle.is_usable():
        # Awaiting settlement, a future is worth the index (an option its payoff there):
        # its holders' other risk stays measurable, so they can still reduce risk elsewhere.
        market.mark_price_quantums = expiry_unit_value(market.params, oracle.index_price_quantums)
    if not oracle.is_usable():
        # Time on a stale price earns no step and no sample weight: margins, the mark's basis
        # and the funding premium may not jump when prices come back.
        market.vol_multiplier_updated_ns = ctx.state.timestamp_ns
        if market.basis_sampled_ns:
            market.basis_sampled_ns = ctx.state.timestamp_ns
    ctx.touched.markets.add(market.params.market_id)
