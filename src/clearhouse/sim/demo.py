"""``clearhouse demo``: a venue, a seeded market, a simulated day, a journal and a summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from clearhouse.adapters.locks import JournalLock
from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.app.chain import Chain
from clearhouse.core.engine import Engine, Greeks
from clearhouse.core.errors import BadDataDir, JournalExists
from clearhouse.core.ids import QUOTE_ASSET, MarketId, OrderId, SubaccountId
from clearhouse.core.ledger import DEFICIT, FEES, INSURANCE, OPTIONS_VAULT, VAULT
from clearhouse.core.messages import (
    AuctionStarted,
    CollateralSeized,
    CommandRejected,
    Deleveraged,
    Event,
    FundingPaid,
    InsuranceDrawn,
    Liquidated,
    LiquidationStage,
    LossSocialized,
    MarketSettled,
    OptionsVaultHedged,
    OrderFilled,
)
from clearhouse.core.options_vault import Caps
from clearhouse.core.params import MarketKind, OptionsVaultParams
from clearhouse.core.state import MarketStatus
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND
from clearhouse.sim.market import DemoMarket
from clearhouse.sim.venue import BTC_SATS, GENESIS_NS, USDC, default_venue, genesis_commands

JOURNAL_NAME = "journal.sqlite"


@dataclass(slots=True)
class AmmStats:
    """The options AMM through the run: its fills as a maker on options, its hedges, after
    each block how many of the options it could quote it did quote, and its caps' use."""

    fills: int = 0
    premium_quote_quantums: int = 0
    hedges: int = 0
    hedged_base_quantums: int = 0
    blocks_live: int = 0  # blocks after its first deposit with a usable price and surface
    blocks_all_quoted: int = 0  # ... in which it quoted every active option
    quoted_share_min: float = 1.0
    sides_resting: int = 0  # over those blocks: bids and asks of active options on the book
    sides_listed: int = 0  # ... of the 2 per active option
    cap_use_max: dict[str, float] = field(  # |exposure| / cap, the most seen each minute
        default_factory=lambda: {"vega": 0.0, "gamma": 0.0, "delta": 0.0}
    )
    next_sample_ns: int = 0

    def observe(self, engine: Engine) -> None:
        """After a block: coverage of the active options (those not yet in their settlement
        window, where it quotes no more); each minute of block time, the caps' use at its NAV
        (a margin computation of its whole book)."""
        state = engine.state
        params = state.options_vault.params
        quotes = state.options_vault.quotes
        if params is None or not quotes:  # quotes rest only on usable prices and surface
            return
        active = [
            m for m in state.markets.values()
            if m.params.kind is MarketKind.OPTION and m.params.oracle_id == params.oracle_id
            and m.status is MarketStatus.ACTIVE and not m.params.settling(state.timestamp_ns)
            and m.mark_price_quantums > 0  # worth nothing (nothing to quote around)
        ]  # fmt: skip
        if active:
            share = sum(m.params.market_id in quotes for m in active) / len(active)
            self.blocks_live += 1
            self.blocks_all_quoted += share >= 1.0
            self.quoted_share_min = min(self.quoted_share_min, share)
            self.sides_listed += 2 * len(active)
            for m in active:
                record = quotes.get(m.params.market_id)
                ids = () if record is None else (record.bid_order_id, record.ask_order_id)
                self.sides_resting += sum(bool(i) and m.book.get(OrderId(i)) is not None
                                          for i in ids)  # fmt: skip
        if state.timestamp_ns >= self.next_sample_ns:
            self.next_sample_ns = state.timestamp_ns + NS_PER_MINUTE
            self._sample_caps(engine, params)

    def _sample_caps(self, engine: Engine, params: OptionsVaultParams) -> None:
        vault = engine.state.ledger.subaccounts.get(OPTIONS_VAULT)
        exposure = engine.options_vault_exposure()
        if vault is None or exposure is None:
            return
        caps = Caps.of(params, engine.risk_of(vault).equity)
        pairs = {
            "vega": (exposure.vega_quantums, caps.vega_quantums),
            "gamma": (exposure.gamma_quantums, caps.gamma_quantums),
            "delta": (exposure.delta_quantums, caps.delta_quantums),
        }
        for name, (value, cap) in pairs.items():  # unclamped: a breach would show above 1
            used = abs(value) / cap if cap > 0 else float(value != 0)
            self.cap_use_max[name] = max(self.cap_use_max[name], used)


@dataclass(slots=True)
class DemoStats:
    blocks: int = 0
    commands: int = 0
    trades: Counter[MarketId] = field(default_factory=Counter)
    volume_quote_quantums: Counter[MarketId] = field(default_factory=Counter)
    funding_paid_quote_quantums: Counter[MarketId] = field(default_factory=Counter)
    funding_payments: int = 0
    rejections: Counter[str] = field(default_factory=Counter)
    settlements: dict[MarketId, int] = field(default_factory=dict)
    liquidations: Counter[str] = field(default_factory=Counter)  # ladder steps by stage
    liquidated_subaccounts: set[str] = field(default_factory=set)
    liquidated_notional_quote_quantums: int = 0
    keeper_fees_quote_quantums: int = 0
    fund_fees_quote_quantums: int = 0
    auctions: int = 0
    adl_events: int = 0
    adl_shortfall_quote_quantums: int = 0
    insurance_drawn_quote_quantums: int = 0
    socialized_quote_quantums: int = 0
    seized_quote_quantums: int = 0  # paid at the index for bankrupt accounts' collateral
    amm: AmmStats = field(default_factory=AmmStats)

    def record(self, events: list[Event] | tuple[Event, ...], engine: Engine) -> None:
        for event in events:
            match event:
                case OrderFilled():
                    self.trades[event.market_id] += 1
                    params = engine.state.markets[event.market_id].params
                    notional = event.size_base_quantums * event.price_quantums
                    premium = notional // params.base_quantums_per_unit
                    self.volume_quote_quantums[event.market_id] += premium
                    if event.maker == str(OPTIONS_VAULT) and params.kind is MarketKind.OPTION:
                        self.amm.fills += 1  # its quotes filled (its hedges are IOC: takers)
                        self.amm.premium_quote_quantums += premium
                case FundingPaid():
                    self.funding_paid_quote_quantums[event.market_id] += event.paid_quote_quantums
                    self.funding_payments += 1
                case CommandRejected():
                    self.rejections[event.reason.name] += 1
                case MarketSettled():
                    self.settlements[event.market_id] = event.settlement_price_quantums
                case OptionsVaultHedged():
                    self.amm.hedges += 1
                    self.amm.hedged_base_quantums += event.filled_base_quantums
                case _:
                    self._record_liquidation(event)

    def _record_liquidation(self, event: Event) -> None:
        match event:
            case Liquidated():
                self.liquidations[event.stage.name] += 1
                self.liquidated_subaccounts.add(event.subaccount)
                self.liquidated_notional_quote_quantums += event.notional_quote_quantums
                self.keeper_fees_quote_quantums += event.fee_to_keeper_quote_quantums
                self.fund_fees_quote_quantums += event.fee_to_fund_quote_quantums
            case AuctionStarted():
                self.auctions += 1
            case Deleveraged():
                self.adl_events += 1
                self.adl_shortfall_quote_quantums += event.shortfall_share_quote_quantums
            case InsuranceDrawn():
                self.insurance_drawn_quote_quantums += event.amount_quote_quantums
            case LossSocialized():
                self.socialized_quote_quantums += event.amount_quote_quantums
            case CollateralSeized():
                self.seized_quote_quantums += event.paid_quote_quantums


@dataclass(frozen=True, slots=True)
class DemoResult:
    summary: dict[str, object]
    journal_path: Path


def run_demo(
    *,
    seed: int,
    hours: float,
    out_dir: Path,
    block_seconds: int = 10,
    on_progress: Callable[[int, int], None] | None = None,
    force: bool = False,
) -> DemoResult:
    """Run the demo into a new journal in ``out_dir``. A journal already there is refused
    (JournalExists), or with ``force`` replaced, but never one that another process holds
    (JournalLocked): the demo keeps the journal's lock for its whole run."""
    journal_path = out_dir / JOURNAL_NAME
    lock = claim_journal(out_dir, journal_path, force=force)
    try:
        return _run(seed, hours, journal_path, block_seconds, on_progress)
    finally:
        lock.release()


def claim_journal(out_dir: Path, journal_path: Path, *, force: bool) -> JournalLock:
    """The lock of a journal the demo may write from scratch: none there yet, or (``force``)
    one no running process holds, deleted here."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        why = "not a folder" if out_dir.exists() else error.strerror
        raise BadDataDir(f"cannot use --out {out_dir} for the demo's journal: {why}") from None
    lock = JournalLock(journal_path)  # a running node's journal stays locked: never touched
    files = (journal_path, Path(f"{journal_path}-wal"), Path(f"{journal_path}-shm"))
    try:
        if any(f.exists() for f in files) and not force:
            raise JournalExists(
                f"{out_dir} already holds a journal ({journal_path}): the demo writes a new "
                "one; choose another --out, or pass --force to replace it"
            )
        for stale in files:
            stale.unlink(missing_ok=True)
    except OSError as error:
        lock.release()
        raise BadDataDir(f"cannot replace {journal_path}: {error.strerror}") from None
    except BaseException:
        lock.release()
        raise
    return lock


def _run(
    seed: int,
    hours: float,
    journal_path: Path,
    block_seconds: int,
    on_progress: Callable[[int, int], None] | None,
) -> DemoResult:
    # Reports may be up to 2 s old when sent and are read at the next block: the staleness
    # bound must cover one block interval plus that delay (10 s, the SPEC default, at 5 s blocks).
    staleness = max(10, block_seconds + 5) * NS_PER_SECOND
    spec = default_venue(GENESIS_NS, oracle_staleness_ns=staleness, options=True)
    journal = SqliteJournal(journal_path)
    chain = Chain(spec.venue, journal)
    interval = block_seconds * NS_PER_SECOND
    market = DemoMarket(seed, spec, interval)
    total_blocks = max(2, int(hours * NS_PER_HOUR // interval))
    stats = DemoStats()
    genesis = genesis_commands(spec)
    executed = chain.produce(GENESIS_NS, genesis)
    stats.record(executed.events, chain.engine)
    stats.commands += len(genesis)
    for height in range(2, total_blocks + 1):
        timestamp = GENESIS_NS + (height - 1) * interval
        commands = market.commands(chain.engine, timestamp, height)
        executed = chain.produce(timestamp, commands)
        stats.record(executed.events, chain.engine)
        stats.amm.observe(chain.engine)
        stats.commands += len(commands)
        if height % 2_000 == 0:
            chain.flush()
        if on_progress is not None:
            on_progress(height, total_blocks)
    chain.flush()
    journal.close()
    stats.blocks = chain.height
    summary = summarize(chain.engine, stats, seed, hours, chain.parent_hash)
    summary["options"] = summarize_options(chain.engine, stats, market.options.subaccounts())
    summary["options_vault"] = summarize_options_vault(chain.engine, stats.amm)
    return DemoResult(summary, journal_path)


def summarize_options_vault(engine: Engine, amm: AmmStats) -> dict[str, object]:
    """The options AMM: NAV and shares, what it holds and quotes now, its exposure against its
    caps, and through the run its fills, hedges and coverage of the active options."""
    state = engine.state
    sub = state.ledger.subaccounts.get(OPTIONS_VAULT)
    exposure = engine.options_vault_exposure()
    return {
        "nav_usdc": 0 if sub is None else engine.risk_of(sub).equity / USDC,
        "total_shares": state.options_vault.total_shares,
        "owners": len(state.options_vault.owners),
        "positions": 0 if sub is None else len(sub.positions),
        "quoted_markets": len(state.options_vault.quotes),
        "exposure_usdc": None
        if exposure is None
        else {
            "vega_per_vol_point": exposure.vega_quantums / USDC,
            "gamma_per_1pct": exposure.gamma_quantums / USDC,
            "delta_value": exposure.delta_quantums / USDC,
        },
        "cap_use_max": dict(amm.cap_use_max),
        "fills": amm.fills,
        "premium_usdc": amm.premium_quote_quantums / USDC,
        "hedges": amm.hedges,
        "hedged_btc": amm.hedged_base_quantums / BTC_SATS,
        "blocks_quoting": amm.blocks_live,
        "blocks_all_options_quoted": amm.blocks_all_quoted,
        "quoted_share_min": amm.quoted_share_min if amm.blocks_live else 0.0,
        "sides_resting_share": amm.sides_resting / amm.sides_listed if amm.sides_listed else 0.0,
    }


def summarize_vault(engine: Engine, stats: DemoStats) -> dict[str, object]:
    """The market-making vault: NAV, shares, positions, resting quotes, takeovers."""
    state = engine.state
    sub = state.ledger.subaccounts.get(VAULT)
    positions = {} if sub is None else {
        m: p.size_base_quantums / state.markets[m].params.base_quantums_per_unit
        for m, p in sorted(sub.positions.items())
    }  # fmt: skip
    return {
        "nav_usdc": 0 if sub is None else engine.risk_of(sub).equity / USDC,
        "total_shares": state.vault.total_shares,
        "owners": len(state.vault.owners),
        "positions": positions,
        "resting_orders": 0 if sub is None else len(sub.order_ids),
        "takeovers": stats.liquidations[LiquidationStage.VAULT.name],
    }


def summarize(
    engine: Engine, stats: DemoStats, seed: int, hours: float, head_hash: bytes
) -> dict[str, object]:
    state = engine.state
    markets = {}
    for market_id in sorted(state.markets):
        market = state.markets[market_id]
        if market.params.kind is MarketKind.OPTION and not stats.trades[market_id]:
            continue  # the summary of options is below
        per_unit = market.params.base_quantums_per_unit
        markets[market_id] = {
            "status": market.status.name,
            "trades": stats.trades[market_id],
            "volume_usdc": stats.volume_quote_quantums[market_id] / USDC,
            "open_interest": market.open_interest_base_quantums / per_unit,
            "mark_price_usdc": market.mark_price_quantums / USDC,
            "funding_paid_usdc": stats.funding_paid_quote_quantums[market_id] / USDC,
            "settlement_price_usdc": stats.settlements.get(market_id, 0) / USDC or None,
        }
    return {
        "seed": seed,
        "hours": hours,
        "blocks": stats.blocks,
        "commands": stats.commands,
        "trades": sum(stats.trades.values()),
        "volume_usdc": sum(stats.volume_quote_quantums.values()) / USDC,
        "funding_payments": stats.funding_payments,
        "insurance_fund_usdc": state.ledger.balance(INSURANCE, QUOTE_ASSET) / USDC,
        "fee_pool_usdc": state.ledger.balance(FEES, QUOTE_ASSET) / USDC,
        "liquidations": {
            "steps": sum(stats.liquidations.values()),
            "by_stage": {s.name: stats.liquidations[s.name] for s in LiquidationStage},
            "subaccounts": len(stats.liquidated_subaccounts),
            "notional_usdc": stats.liquidated_notional_quote_quantums / USDC,
            "fees_to_keepers_usdc": stats.keeper_fees_quote_quantums / USDC,
            "fees_to_fund_usdc": stats.fund_fees_quote_quantums / USDC,
            "auctions": stats.auctions,
            "adl_events": stats.adl_events,
            "adl_shortfall_usdc": stats.adl_shortfall_quote_quantums / USDC,
            "insurance_drawn_usdc": stats.insurance_drawn_quote_quantums / USDC,
            "socialized_loss_usdc": stats.socialized_quote_quantums / USDC,
            "collateral_seized_usdc": stats.seized_quote_quantums / USDC,
            "deficit_usdc": -state.ledger.balance(DEFICIT, QUOTE_ASSET) / USDC,
        },
        "rejections": dict(sorted(stats.rejections.items())),
        "vault": summarize_vault(engine, stats),
        "markets": markets,
        "state_root": "0x" + state.tree.root().hex(),
        "head_block_hash": "0x" + head_hash.hex(),
    }


def summarize_options(
    engine: Engine, stats: DemoStats, subaccounts: dict[str, SubaccountId]
) -> dict[str, object]:
    """Option markets, and the margin and Greeks of the options desk's portfolios (SPEC §6)."""
    state = engine.state
    options = [m for m in state.markets.values() if m.params.kind is MarketKind.OPTION]
    portfolios: dict[str, object] = {}
    for name, subaccount_id in subaccounts.items():
        subaccount = state.ledger.subaccounts.get(subaccount_id)
        if subaccount is None:
            continue
        risk = engine.risk_of(subaccount)
        greeks = engine.greeks(subaccount_id).get("BTC-USD", Greeks())
        portfolios[name] = {
            "mode": "portfolio" if subaccount_id in state.portfolio_margin else "standard",
            "positions": {
                m: p.size_base_quantums / state.markets[m].params.base_quantums_per_unit
                for m, p in sorted(subaccount.positions.items())
            },
            "equity_usdc": risk.equity / USDC,
            "initial_margin_usdc": risk.initial / USDC,
            "maintenance_margin_usdc": risk.maintenance / USDC,
            "standard_mode_initial_usdc": engine.risk_of(subaccount, portfolio=False).initial
            / USDC,
            "delta_btc": greeks.delta,
            "gamma_per_usd": greeks.gamma,
            "vega_usdc": greeks.vega,
            "theta_usdc_per_day": greeks.theta / 365.0,
            "rho_usdc": greeks.rho,
        }
    return {
        "markets_listed": len(options),
        "markets_settled": sum(m.status is MarketStatus.SETTLED for m in options),
        "trades": sum(stats.trades[m.params.market_id] for m in options),
        "volume_usdc": sum(stats.volume_quote_quantums[m.params.market_id] for m in options) / USDC,
        "settlements": {
            m.params.market_id: m.settlement_price_quantums / USDC
            for m in options
            if m.status is MarketStatus.SETTLED
        },
        "portfolios": portfolios,
    }
