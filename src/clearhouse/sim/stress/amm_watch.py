"""What the options AMM did on a path (SPEC §11, §13), measured block by block from the
engine's state and events, and the limits it must keep, checked as it goes.

Each block is read twice: after its prologue, before any command (``after_prologue``: the
hedge and the quotes exactly as the vault made them), and after its commands
(``after_block``: the takers' fills). Definitions (docs/STRESS.md, "Options and the options
AMM"):

- **NAV**: the ``OPTIONS_VAULT`` subaccount's equity; start (after the LP's deposit), low,
  end, and the drawdown from the running peak, absolute and relative.
- **Utilization** of a cap: |exposure| / cap, the exposure (vega, gamma, delta values: the
  engine's ``options_vault_exposure``) against ``Caps.of(params, NAV)`` at the NAV the vault
  quoted on that block; measured after the prologue and after the block's fills, the largest
  kept (ppm, may pass 10⁶ when the market moved the book past a cap).
- **Caps held by fills**: with E_q the book when the vault quoted, E_f the book after the
  block's fills (the same per-unit exposures: the engine's Greeks change only between
  blocks) and C the caps at the block's NAV (the larger of the NAV it quoted on and the NAV
  after the fills: each fill is checked at its own NAV, which fills only raise), every
  exposure x must end within its cap or no further from zero than it was: |E_f.x| <= C.x or
  |E_f.x| <= |E_q.x| (``within_caps``). A market move may carry the book past a cap between
  blocks; fills may then only bring it back.
- **Quotes**: on a block whose surface is fresh (the engine's rule: a quorum of publishers'
  surfaces younger than the oracle's ``surface_staleness_ns``, prices usable), every active
  option of the underlying has a standing quote; one made this block has each side that
  ``make_option_quote`` gives at that block's book, caps and marks (a side is withheld only
  where its fill would pass a cap, or its price would be nothing), at that price (within
  ``requote_tolerance``: a side still that close is kept, not replaced), and at the
  block's size (smaller than the full one when its margin cannot carry every quote at full
  size). A block whose margin has no room at all for new quotes (its positions' initial
  margin alone at ``QUOTE_MARGIN_SHARE_PPM`` of NAV: in a violent crash the volatility
  multiplier can do that) quotes nothing but the side that reduces each position it holds,
  reduce-only. A block whose margin is **bound** (no room, or its quotes' initial margin
  already at that share) is counted apart: a quote may then be refused by the margin gate,
  the judge of what every account may rest; on any other block a missing side is a
  violation. The quoted share is the options with a resting side over the active ones; its
  minimum is taken over the blocks whose margin is not bound.
- **Hedge**: after the prologue, |delta value| <= band + the value of the smallest hedge
  (``delta_band_nav_ppm`` of NAV, plus min order + step at the mark: below that no order is
  sent), unless the hedge's IOC order took everything the perpetual's book held within its
  limit (``hedge_slippage_ppm``) and still fell short (no liquidity), or the perpetual could
  not be traded.

A block that breaks one of these is a **violation**, recorded with its time and numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from clearhouse.core import limits
from clearhouse.core.ids import MarketId, OrderId, Side
from clearhouse.core.ledger import OPTIONS_VAULT, Subaccount
from clearhouse.core.matching import RestingOrder
from clearhouse.core.messages import (
    Event,
    LiquidationReceipt,
    OptionsVaultHedged,
    OrderFilled,
)
from clearhouse.core.options_vault import (
    QUOTE_MARGIN_SHARE_PPM,
    Caps,
    Exposure,
    hedge_limit_price_quantums,
    hedge_slippage_ppm,
    quote_on,
    reducing_only,
    requote_tolerance,
    within_caps,
)
from clearhouse.core.params import MarketKind, OptionsVaultParams
from clearhouse.core.state import MarketState, MarketStatus
from clearhouse.core.units import NS_PER_HOUR, NS_PER_SECOND
from clearhouse.sim.solvency import PPM, VenueReplay
from clearhouse.sim.venue import USDC

BOOK_LEVELS_MAX = 10_000  # every level of the perpetual's book within a hedge's limit
VIOLATIONS_KEPT = 20  # the first ones, with their numbers; every one is counted
KINDS = ("vega", "gamma", "delta")
AMM = str(OPTIONS_VAULT)
ZERO = Exposure(vega_quantums=0, gamma_quantums=0, delta_quantums=0)


@dataclass(slots=True)
class OptionsResult:
    """The options AMM on one path (quote quantums, ppm, block counts)."""

    nav_start: int = 0
    nav_low: int = 0
    nav_end: int = 0
    drawdown: int = 0  # the largest fall from the running peak
    drawdown_ppm: int = 0  # ... relative to that peak
    utilization_max_ppm: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    blocks: int = 0  # blocks measured (after the deposit)
    fresh_blocks: int = 0  # ... with a fresh surface and usable prices
    listed_max: int = 0  # the most active options at once
    quoted_share_min_ppm: int = PPM  # options with a resting side / active, fresh blocks with
    quoted_share_sum_ppm: int = 0  # room for quotes; summed over every fresh block (the mean)
    requotes: int = 0  # quotes made (option × block)
    sides_withheld: int = 0  # sides of those not quoted because a fill would pass a cap
    margin_blocks: int = 0  # fresh blocks whose margin was bound (the module docstring)
    shrunk_blocks: int = 0  # blocks it quoted below the full size (its margin: ``make_...``)
    quote_size_min_ppm: int = PPM  # the smallest quote size of a block / the full size
    fills: int = 0  # the takers' fills against its quotes
    fills_bought: int = 0  # ... where it bought
    premium: int = 0  # Σ price × size of those fills
    hedges: int = 0
    hedge_asked_base: int = 0
    hedge_filled_base: int = 0
    hedges_short: int = 0  # hedges that filled less than asked (the book within the limit)
    liquidatable_blocks: int = 0
    liquidated: bool = False
    violations: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("cap", "quote", "hedge"), 0))  # fmt: skip
    violation_notes: list[str] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)

    @property
    def quoted_share_mean_ppm(self) -> int:
        return self.quoted_share_sum_ppm // self.fresh_blocks if self.fresh_blocks else 0


@dataclass(slots=True)
class _Quoted:
    """The block as the vault quoted it: NAV, caps, book and per-unit exposures."""

    timestamp_ns: int
    nav: int
    caps: Caps
    book: Exposure
    units: dict[MarketId, Exposure]
    prologue_events: int


class AmmWatch:
    """Reads the engine of a path with an options AMM, block by block."""

    def __init__(self, replay: VenueReplay, sample_ns: int) -> None:
        self.replay = replay
        self.sample_ns = sample_ns
        self.next_sample_ns = 0
        self.result = OptionsResult()
        self.peak = 0
        self.quoted: _Quoted | None = None
        self.series: dict[str, list[float]] = {
            k: [] for k in ("t_hours", "nav", "vega", "gamma", "delta", "quoted_share")
        }
        self.last_share_ppm = 0
        self.block_utilization = dict.fromkeys(KINDS, 0)

    # ── Reads ───────────────────────────────────────────────────────────────────────────────

    def _params(self) -> OptionsVaultParams | None:
        return self.replay.engine.state.options_vault.params

    def _subaccount(self) -> Subaccount | None:
        state = self.replay.engine.state
        if state.options_vault.total_shares == 0:
            return None
        return state.ledger.subaccounts.get(OPTIONS_VAULT)

    def _fresh(self, params: OptionsVaultParams) -> bool:
        """The engine's test for quoting: usable prices, no restart guard, a fresh surface."""
        state = self.replay.engine.state
        oracle = state.oracles[params.oracle_id]
        age = state.timestamp_ns - oracle.surface_timestamp_ns
        return (
            oracle.is_usable() and not oracle.restart_guard and bool(oracle.surface)
            and age <= oracle.params.surface_staleness_ns
        )  # fmt: skip

    def _active(self, params: OptionsVaultParams) -> list[MarketState]:
        """The options the vault should quote: active, unexpired, marked, on its underlying
        (the stress venue has no governance: nothing is paused or reduce-only)."""
        state = self.replay.engine.state
        return [
            state.markets[m] for m in sorted(state.markets)
            if state.markets[m].params.kind is MarketKind.OPTION
            and state.markets[m].params.oracle_id == params.oracle_id
            and state.markets[m].status is MarketStatus.ACTIVE
            and state.markets[m].params.expiry_ns > state.timestamp_ns
            and state.markets[m].mark_price_quantums > 0
        ]  # fmt: skip

    # ── After the prologue ──────────────────────────────────────────────────────────────────

    def after_prologue(self, events: Sequence[Event]) -> None:
        self.quoted = None
        params, subaccount = self._params(), self._subaccount()
        if (
            params is None
            or subaccount is None
            or OPTIONS_VAULT in self.replay.engine.state.liquidations
        ):
            return
        engine = self.replay.engine
        risk = engine.risk_of(subaccount)
        hedges = [e for e in events if isinstance(e, OptionsVaultHedged)]
        if not risk.usable:
            return
        # The vault sized its caps on its NAV before the hedge (the hedge's event says it).
        nav = hedges[0].nav_quote_quantums if hedges else risk.equity
        caps = Caps.of(params, nav)
        book = engine.options_vault_exposure() or ZERO
        active = self._active(params)
        held = sorted(subaccount.positions)
        units = {m: engine.options_vault_unit_exposure(m) for m in sorted({*held, *(
            a.params.market_id for a in active)})}  # fmt: skip
        now = engine.state.timestamp_ns
        self.quoted = _Quoted(now, nav, caps, book, units, len(events))
        self._utilization(book, caps)
        for hedge in hedges:
            self._count_hedge(hedge)
        self._check_hedge(params, hedges, nav, book)
        if self._fresh(params):
            room = self._room(risk.equity)
            used = risk.initial * PPM >= QUOTE_MARGIN_SHARE_PPM * max(risk.equity, 0)
            self._check_quotes(params, subaccount, active, room=room, bound=used or not room)

    def _room(self, equity: int) -> bool:
        """Has its margin room for new quotes (``quote_size_for_margin``: its positions'
        initial margin alone below ``QUOTE_MARGIN_SHARE_PPM`` of equity)? Without it, the
        vault quotes only the sides that reduce what it holds, reduce-only."""
        subaccount = self._subaccount()
        assert subaccount is not None
        if not subaccount.positions:
            return True
        bare = Subaccount(subaccount.subaccount_id, balances=subaccount.balances,
                          positions=subaccount.positions)  # fmt: skip
        initial = self.replay.engine.risk_of(bare, portfolio=True).initial
        return max(equity, 0) * QUOTE_MARGIN_SHARE_PPM // PPM - initial > 0

    def _count_hedge(self, hedge: OptionsVaultHedged) -> None:
        r = self.result
        r.hedges += 1
        r.hedge_asked_base += hedge.size_base_quantums
        r.hedge_filled_base += hedge.filled_base_quantums
        r.hedges_short += hedge.filled_base_quantums < hedge.size_base_quantums

    def _check_hedge(
        self, params: OptionsVaultParams, hedges: list[OptionsVaultHedged], nav: int,
        book: Exposure,
    ) -> None:  # fmt: skip
        state = self.replay.engine.state
        perp = state.markets[params.hedge_market_id]
        oracle = state.oracles[params.oracle_id]
        mark = perp.mark_price_quantums
        if not oracle.is_usable() or oracle.restart_guard or mark <= 0:
            return  # the vault may not trade: nothing to check
        unit = perp.params.base_quantums_per_unit
        smallest = (perp.params.min_order_base_quantums + perp.params.step_base_quantums) * mark
        slack = smallest // unit + 1
        band = max(nav, 0) * params.delta_band_nav_ppm // PPM
        if abs(book.delta_quantums) <= band + slack:
            return
        if hedges and hedges[0].filled_base_quantums < hedges[0].size_base_quantums:
            hedge = hedges[0]
            through = hedge_slippage_ppm(params, vol_multiplier_ppm=perp.vol_multiplier_ppm)
            limit = hedge_limit_price_quantums(
                params, hedge.side, mark, perp.params.tick_quantums, slippage_ppm=through
            )
            other = Side.SELL if hedge.side is Side.BUY else Side.BUY
            if perp.book.size_within(other, limit, BOOK_LEVELS_MAX) == 0:
                return  # it took all the liquidity there was within its limit
        delta, over = book.delta_quantums / USDC, band / USDC
        self._violation("hedge", f"delta value {delta:,.0f} USDC past the band {over:,.0f} "
                        f"after the hedge ({len(hedges)} orders)")  # fmt: skip

    def _check_quotes(
        self, params: OptionsVaultParams, subaccount: Subaccount, active: list[MarketState], *,
        room: bool, bound: bool,
    ) -> None:  # fmt: skip
        """``room``: for new quotes at all; ``bound``: its margin is used up to its share
        (no room, or its quotes already hold it): a quote may then be refused."""
        assert self.quoted is not None
        r = self.result
        r.fresh_blocks += 1
        r.margin_blocks += bound
        r.listed_max = max(r.listed_max, len(active))
        room = len(subaccount.positions) < (
            limits.positions_per_subaccount_max - limits.options_vault_positions_reserved
        )
        quotes = self.replay.engine.state.options_vault.quotes
        made: list[tuple[MarketState, list[RestingOrder | None]]] = []
        resting = 0
        for market in active:
            market_id = market.params.market_id
            record = quotes.get(market_id)
            if record is None:
                if room or market_id in subaccount.positions:
                    self._violation("quote", f"{market_id}: no quote with a fresh surface")
                continue
            sides = [market.book.get(OrderId(i)) if i else None
                     for i in (record.bid_order_id, record.ask_order_id)]  # fmt: skip
            resting += any(o is not None for o in sides)
            if record.quoted_ns == self.quoted.timestamp_ns:
                made.append((market, sides))
        share = resting * PPM // len(active) if active else PPM
        if not bound:  # margin-bound, a quote may be refused; without room only reductions
            r.quoted_share_min_ppm = min(r.quoted_share_min_ppm, share)
        r.quoted_share_sum_ppm += share
        self.last_share_ppm = share
        # This block's quote size: the largest it placed (the engine shrinks every quote alike
        # when its margin cannot carry them all at full size; a placement its margin refused
        # was retried at half, a quarter, ...).
        size = max((o.remaining_base_quantums for _, sides in made for o in sides if o), default=0)
        if size:
            full = params.quote_size_base_quantums
            r.quote_size_min_ppm = min(r.quote_size_min_ppm, size * PPM // full)
            r.shrunk_blocks += size < full
        for market, sides in made:
            held = subaccount.position_size(market.params.market_id)
            self._check_quote(params, market, sides, size, None if room else held, bound)

    def _check_quote(
        self, params: OptionsVaultParams, market: MarketState, sides: list[RestingOrder | None],
        size: int, reducing: int | None, bound: bool,
    ) -> None:  # fmt: skip
        """A quote made this block: each side where and as ``make_option_quote`` puts it at
        this block's size (a side smaller than that: its margin refused the full one); with
        no room, nothing but the side that reduces the position ``reducing``, at most the full
        size (and the margin gate may refuse even that: every resting order counts on its
        worst side)."""
        assert self.quoted is not None
        q, p = self.quoted, market.params
        unit = q.units[p.market_id]
        target = quote_on(
            params, p, market.mark_price_quantums, book=q.book, unit=unit, caps=q.caps,
            size_base_quantums=None if reducing is not None else size or None,
        )  # fmt: skip
        if reducing is not None:
            target = reducing_only(target, reducing, p.step_base_quantums,
                                    p.min_order_base_quantums)  # fmt: skip
        self.result.requotes += 1
        tolerance = requote_tolerance(params, market.mark_price_quantums, p.tick_quantums)
        wanted = ((target.bid_price_quantums, target.bid_base_quantums),
                  (target.ask_price_quantums, target.ask_base_quantums))  # fmt: skip
        for name, order, (price, wanted_size) in zip(("bid", "ask"), sides, wanted, strict=True):
            if wanted_size == 0:
                self.result.sides_withheld += order is None and price > 0
                if order is not None:
                    self._violation("quote", f"{p.market_id}: a {name} that passes a cap rests")
            elif order is None:
                if not bound:  # bound: the margin gate may refuse it (it is the judge)
                    self._violation("quote", f"{p.market_id}: no {name}, expected "
                                    f"{wanted_size} at {price}")  # fmt: skip
            elif (
                abs(order.price_quantums - price) >= tolerance  # a side kept within it
                or order.remaining_base_quantums > wanted_size
            ):
                got = f"{order.remaining_base_quantums} at {order.price_quantums}"
                self._violation("quote", f"{p.market_id}: {name} {got}, expected "
                                f"{wanted_size} at {price}")  # fmt: skip

    # ── After the block ─────────────────────────────────────────────────────────────────────

    def after_block(self, events: Sequence[Event], liquidatable: Sequence[object]) -> None:
        subaccount = self._subaccount()
        if subaccount is None:
            return
        engine = self.replay.engine
        r = self.result
        r.blocks += 1
        r.liquidatable_blocks += OPTIONS_VAULT in liquidatable
        r.liquidated |= OPTIONS_VAULT in engine.state.liquidations or any(
            isinstance(e, LiquidationReceipt) and e.subaccount == AMM for e in events
        )
        risk = engine.risk_of(subaccount)
        q = self.quoted
        if q is not None:
            self._count_fills(events[q.prologue_events :])
            after = _book(subaccount, q.units, engine.state.markets)
            if after is not None:
                self._utilization(after, q.caps)
                # The engine checks each fill against the caps at its NAV then, which the
                # fills only raise (each earns its spread over the mark): the larger NAV.
                params = engine.state.options_vault.params
                assert params is not None
                caps = Caps.of(params, max(q.nav, risk.equity if risk.usable else 0))
                if not within_caps(after, q.book, caps):
                    self._violation("cap", _past_cap(q.book, after, caps))
        if risk.usable:
            self._nav(risk.equity)
        self._sample(engine.state.timestamp_ns)

    def _count_fills(self, events: Sequence[Event]) -> None:
        r = self.result
        markets = self.replay.engine.state.markets
        for event in events:
            if isinstance(event, OrderFilled) and event.maker == AMM:
                r.fills += 1
                r.fills_bought += event.taker_side is Side.SELL
                unit = markets[event.market_id].params.base_quantums_per_unit
                r.premium += event.price_quantums * event.size_base_quantums // unit

    def _utilization(self, book: Exposure, caps: Caps) -> None:
        r = self.result
        for kind in KINDS:
            value = abs(getattr(book, f"{kind}_quantums"))
            cap = getattr(caps, f"{kind}_quantums")
            used = value * PPM // cap if cap > 0 else (0 if value == 0 else 10 * PPM)
            r.utilization_max_ppm[kind] = max(r.utilization_max_ppm[kind], used)
            self.block_utilization[kind] = used

    def _nav(self, nav: int) -> None:
        r = self.result
        if r.blocks == 1:
            r.nav_start = r.nav_low = self.peak = nav
        r.nav_end = nav
        r.nav_low = min(r.nav_low, nav)
        self.peak = max(self.peak, nav)
        fall = self.peak - nav
        r.drawdown = max(r.drawdown, fall)
        if self.peak > 0:
            r.drawdown_ppm = max(r.drawdown_ppm, fall * PPM // self.peak)

    def _sample(self, timestamp_ns: int) -> None:
        if timestamp_ns < self.next_sample_ns:
            return
        self.next_sample_ns = timestamp_ns + self.sample_ns
        series = self.series
        series["t_hours"].append((timestamp_ns - self.replay.start_ns) / NS_PER_HOUR)
        series["nav"].append(self.result.nav_end / USDC)
        for kind in KINDS:
            series[kind].append(self.block_utilization[kind] / PPM)
        series["quoted_share"].append(self.last_share_ppm / PPM)

    def _violation(self, kind: str, note: str) -> None:
        r = self.result
        r.violations[kind] += 1
        if len(r.violation_notes) < VIOLATIONS_KEPT:
            at = (self.replay.engine.state.timestamp_ns - self.replay.start_ns) / NS_PER_SECOND
            r.violation_notes.append(f"{kind} at {at:,.0f} s: {note}")

    def finish(self) -> OptionsResult:
        self.result.series = self.series
        return self.result


def _book(
    subaccount: Subaccount, units: dict[MarketId, Exposure], markets: Mapping[MarketId, MarketState]
) -> Exposure | None:
    """The book's exposure at the per-unit exposures the vault quoted on (as the engine's
    ``book_exposure`` sums it: positions in id order, each rounded toward zero); None when it
    holds a market it did not quote on this block (only a liquidation could give it one)."""
    total = ZERO
    for market_id, position in sorted(subaccount.positions.items()):
        unit = units.get(market_id)
        if unit is None:
            return None
        per_unit = markets[market_id].params.base_quantums_per_unit
        total = total.plus(unit, position.size_base_quantums, per_unit)
    return total


def _past_cap(before: Exposure, after: Exposure, caps: Caps) -> str:
    parts = []
    for kind in KINDS:
        b, a = getattr(before, f"{kind}_quantums"), getattr(after, f"{kind}_quantums")
        cap = getattr(caps, f"{kind}_quantums")
        if abs(a) > cap and abs(a) > abs(b):
            parts.append(f"{kind} {b / USDC:,.0f} -> {a / USDC:,.0f} USDC (cap {cap / USDC:,.0f})")
    return "fills took " + "; ".join(parts)
