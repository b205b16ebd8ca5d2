"""Options in the stress lab (SPEC §11, §13): an option series on the path's oracle, the
publishers' volatility surfaces, the options AMM and the traders who take its quotes.

A scenario's ``[options]`` table turns this on (``OptionsSettings``; absent, a path has no
options and runs as before). Everything goes through engine commands, from the path's seed:

- **Listing**, once the oracle has an index: the operator's ``ListOptionSeries`` (calls and
  puts at ``strikes_each_side`` strikes either side of the index, ``strike_step`` of it apart,
  rounded to a round number; the next ``weekly_expiries`` Fridays and ``monthly_expiries``
  month-ends, rolled by the venue as they expire) and its ``SetupOptionsVault`` hedging on the
  scenario's perpetual (``OptionsVaultParams`` defaults, ``[options.vault]`` overrides).
- **Surfaces**: every ``surface_every_seconds`` each publisher reports raw SVI slices at the
  series' expiries and 90 days out. The at-the-money volatility follows the path: short-dated
  σ_S = max(``vol_floor``, realized volatility of the index's one-minute log returns over the
  last ``vol_window_minutes``), long-dated σ_L = ``base_vol``, between them

      σ(T)² = σ_L² + (σ_S² − σ_L²) · τ / (T + τ),   τ = ``term_days`` / 365

  so T·σ(T)² rises with T whichever is larger (its derivative is at least min(σ_S², σ_L²)):
  total variance w(k, T) = T·(a_T + b·(ρk + √(k² + s²))) with a_T = σ(T)² − b·s keeps the
  smile's shape (``wings`` b, ``skew`` ρ, ``smoothness`` s) per unit of time, as
  ``sim.venue.synthetic_surface`` does, and no two slices cross (no calendar arbitrage).
  Publisher i adds (i − (n − 1)/2) × 0.5 vol point: the venue takes the median.
- **The AMM** quotes ``quote_usdc`` of notional a side (at the index when listed) and is
  funded by one LP's ``DepositOptionsVault`` of ``amm_usdc`` when the agents are funded.
- **Takers** (``takers``, ``taker_usdc`` each) send ``taker_orders_per_hour`` IOC orders each
  against the AMM's standing quotes (a quarter, half or all of the quote, at most 1% through
  its price): a random option and side, except while the index has fallen ``panic_move`` or
  more in the last 15 minutes, when ``panic_put_share`` of the orders buy a put at or below
  the money (the crash demand for protection a real venue sees).

What the AMM did is measured by ``sim.stress.amm_watch``.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from clearhouse.core import surface
from clearhouse.core.codec import MalformedCommand, decode_plain, to_plain
from clearhouse.core.errors import ConfigError
from clearhouse.core.ids import Address, MarketId, OracleId, OrderId, Side, SubaccountId
from clearhouse.core.messages import (
    Command,
    DepositOptionsVault,
    ListOptionSeries,
    PlaceOrder,
    ReportSurface,
    SetupOptionsVault,
    TimeInForce,
)
from clearhouse.core.params import (
    MarketKind,
    MarketParams,
    OptionSeriesParams,
    OptionsVaultParams,
)
from clearhouse.core.series import standard_expiries
from clearhouse.core.state import MarketState, MarketStatus
from clearhouse.core.surface import SviSlice
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND
from clearhouse.sim.signer import Signer
from clearhouse.sim.solvency import COMMAND_TTL_NS, PPM, VenueReplay
from clearhouse.sim.venue import USDC, address_of

MINUTES_PER_YEAR = 365 * 24 * 60
VOL_MAX = 3.0  # a short-dated volatility above 300% is clipped (a surface's sanity)
LONG_SLICE_NS = 90 * 24 * NS_PER_HOUR  # the last slice, as the demo's publishers send
PUBLISHER_SPREAD = 0.005  # vol points between neighbouring publishers' views
TAKER_SLIPPAGE_PPM = 10_000  # a taker's limit: 1% through the quote it saw


@dataclass(frozen=True, slots=True)
class OptionsSettings:
    """The ``[options]`` table (docs/STRESS.md, "Options and the options AMM")."""

    enabled: bool = True
    amm_usdc: int = 2_000_000  # the LP's deposit into the options AMM
    quote_usdc: int = 30_000  # each bid and ask, in the underlying's notional at listing
    strikes_each_side: int = 3
    strike_step: float = 0.025  # of the index at listing, rounded to 1, 2, 2.5 or 5 × 10^k
    weekly_expiries: int = 2
    monthly_expiries: int = 1
    surface_every_seconds: float = 300.0
    base_vol: float = 0.6  # long-dated at-the-money volatility
    vol_floor: float = 0.3  # short-dated: realized, at least this
    vol_window_minutes: float = 60.0
    term_days: float = 7.0
    skew: float = -0.25  # SVI ρ
    wings: float = 0.2  # SVI b per year
    smoothness: float = 0.2  # SVI s
    takers: int = 8
    taker_usdc: int = 500_000
    taker_orders_per_hour: float = 20.0  # each
    panic_move: float = 0.02  # a fall this large in 15 minutes...
    panic_put_share: float = 0.8  # ...and this share of the takers' orders buy puts
    vault: Mapping[str, object] = field(default_factory=dict)  # OptionsVaultParams overrides

    def problems(self) -> tuple[str, ...]:
        found = []
        if not 0 < self.amm_usdc <= 10**12 or not 0 < self.taker_usdc <= 10**12:
            found.append("amm_usdc and taker_usdc in (0, 1e12]")
        if not 0 < self.quote_usdc <= 10**9:
            found.append("quote_usdc in (0, 1e9]")
        if not 0 <= self.strikes_each_side <= 7 or not 0.001 <= self.strike_step <= 0.5:
            found.append("strikes_each_side in [0, 7] and strike_step in [0.001, 0.5]")
        expiries = self.weekly_expiries + self.monthly_expiries
        if min(self.weekly_expiries, self.monthly_expiries) < 0 or not 1 <= expiries <= 4:
            found.append("weekly_expiries + monthly_expiries in [1, 4]")
        if not 60 <= self.surface_every_seconds <= 600:
            found.append("surface_every_seconds in [60, 600] (a surface is stale after 15 min)")
        if not 0.05 <= self.vol_floor <= self.base_vol <= VOL_MAX:
            found.append(f"0.05 <= vol_floor <= base_vol <= {VOL_MAX}")
        if self.vol_window_minutes < 5 or self.term_days <= 0:
            found.append("vol_window_minutes >= 5 and term_days > 0")
        if not -0.9 <= self.skew <= 0.9 or not 0 < self.wings <= 1 or not 0 < self.smoothness <= 1:
            found.append("skew in [-0.9, 0.9], wings and smoothness in (0, 1]")
        if not 0 <= self.takers <= 1_000 or self.taker_orders_per_hour < 0:
            found.append("takers in [0, 1000] and taker_orders_per_hour >= 0")
        if not 0 < self.panic_move < 1 or not 0 <= self.panic_put_share <= 1:
            found.append("panic_move in (0, 1) and panic_put_share in [0, 1]")
        return tuple(found)


# ── What gets listed ─────────────────────────────────────────────────────────────────────────


def round_step(raw_quantums: int) -> int:
    """The round number (1, 2, 2.5 or 5 × 10^k quantums) nearest ``raw`` in ratio."""
    assert raw_quantums > 0, raw_quantums
    best = 1
    for exponent in range(len(str(raw_quantums)) + 1):
        for mantissa_x2 in (2, 4, 5, 10):
            candidate = mantissa_x2 * 10**exponent // 2
            if candidate and abs(math.log(candidate / raw_quantums)) < abs(
                math.log(best / raw_quantums)
            ):
                best = candidate
    return best


def series_params(
    settings: OptionsSettings, perpetual: MarketParams, index_quantums: int
) -> OptionSeriesParams:
    """Calls and puts on the perpetual's oracle, in its base unit: steps of 1/100 of a unit,
    a tick of about a hundred-thousandth of the index (a power of ten), strikes
    ``strike_step`` of the index apart (a round number, a multiple of the tick)."""
    unit = perpetual.base_quantums_per_unit
    tick = 10 ** max(len(str(index_quantums)) - 6, 0)
    step = round_step(max(round(index_quantums * settings.strike_step), 1))
    step = max(step - step % tick, tick)
    prefix = perpetual.oracle_id.split("-")[0]
    return OptionSeriesParams(
        oracle_id=perpetual.oracle_id, prefix=prefix, base_quantums_per_unit=unit,
        tick_quantums=tick, step_base_quantums=max(unit // 100, 1),
        min_order_base_quantums=max(unit // 100, 1), strike_step_quantums=step,
        strikes_each_side=settings.strikes_each_side, weekly_expiries=settings.weekly_expiries,
        monthly_expiries=settings.monthly_expiries,
    )  # fmt: skip


def vault_params(
    settings: OptionsSettings, perpetual: MarketParams, index_quantums: int
) -> OptionsVaultParams:
    """The AMM on the perpetual's oracle, hedging on it: defaults, a quote size of
    ``quote_usdc`` at this index (rounded down to the options' step, at least one step) and
    the ``[options.vault]`` overrides; refused (``ConfigError``) naming the key."""
    unit = perpetual.base_quantums_per_unit
    size = settings.quote_usdc * USDC * unit // max(index_quantums, 1)
    step = max(unit // 100, 1)
    base = OptionsVaultParams(
        oracle_id=perpetual.oracle_id, hedge_market_id=perpetual.market_id,
        quote_size_base_quantums=max(size - size % step, step),
    )  # fmt: skip
    fixed = {"oracle_id", "hedge_market_id"} & set(settings.vault)
    if fixed:
        raise ConfigError(f"scenario options.vault.{sorted(fixed)[0]}: set by the scenario")
    try:
        found = decode_plain(OptionsVaultParams, {**to_plain(base), **settings.vault})
    except MalformedCommand as error:
        where = str(error).removeprefix("OptionsVaultParams")
        raise ConfigError(f"scenario options.vault{where}") from None
    assert isinstance(found, OptionsVaultParams)
    if found.problems():
        raise ConfigError(f"scenario options.vault: {found.problems()[0]}")
    return found


# ── Surfaces ─────────────────────────────────────────────────────────────────────────────────


def atm_vol(years: float, *, short: float, long: float, term_years: float) -> float:
    """σ(T) = √(σ_L² + (σ_S² − σ_L²) · τ / (T + τ)): σ_S now, σ_L far out."""
    return math.sqrt(
        long * long + (short * short - long * long) * term_years / (years + term_years)
    )


def surface_slices(
    settings: OptionsSettings, timestamp_ns: int, expiries_ns: list[int], *, short_vol: float,
    offset: float = 0.0,
) -> tuple[SviSlice, ...]:  # fmt: skip
    """Raw SVI slices at these expiries (module docstring): arbitrage-free by construction,
    checked as the engine will check them. Each reports its expiry's forward: the lab's
    path is the index alone, no carry, so a basis of 0."""
    b, rho, s = settings.wings, settings.skew, settings.smoothness
    term_years = settings.term_days / 365
    slices = []
    for expiry_ns in expiries_ns:
        years = surface.years(expiry_ns - timestamp_ns)
        vol = atm_vol(years, short=short_vol + offset, long=settings.base_vol + offset,
                      term_years=term_years)  # fmt: skip
        slices.append(SviSlice(
            expiry_ns=expiry_ns, a_e9=round(years * (vol * vol - b * s) * surface.E9),
            b_e9=round(years * b * surface.E9), rho_e9=round(rho * surface.E9), m_e9=0,
            s_e9=round(s * surface.E9), forward_basis_ppm=0,
        ))  # fmt: skip
    found = tuple(slices)
    problems = surface.problems(found, timestamp_ns)
    assert not problems, (problems, short_vol, offset)
    return found


class RealizedVol:
    """The index's one-minute log returns over a trailing window, annualized."""

    def __init__(self, window_minutes: float) -> None:
        self.window_ns = round(window_minutes * NS_PER_MINUTE)
        self.samples: deque[tuple[int, int]] = deque()  # (minute start, index)

    def observe(self, timestamp_ns: int, index: int) -> None:
        minute = timestamp_ns - timestamp_ns % NS_PER_MINUTE
        if index <= 0 or (self.samples and self.samples[-1][0] >= minute):
            return
        self.samples.append((minute, index))
        while self.samples[0][0] < minute - self.window_ns:
            self.samples.popleft()

    def annual(self) -> float | None:
        """None with fewer than five returns in the window."""
        points = list(self.samples)
        if len(points) < 6:
            return None
        variance = 0.0
        for (t0, p0), (t1, p1) in itertools.pairwise(points):
            variance += math.log(p1 / p0) ** 2 * NS_PER_MINUTE / (t1 - t0)
        return math.sqrt(variance / (len(points) - 1) * MINUTES_PER_YEAR)


# ── The desk: listing, surfaces, the LP and the takers ───────────────────────────────────────


class OptionsDesk:
    """The commands of a path's options: the operator's listing, the publishers' surfaces,
    the LP's deposit and the takers' orders, all from the path's seed."""

    def __init__(self, settings: OptionsSettings, replay: VenueReplay, seed: int) -> None:
        self.settings = settings
        self.replay = replay
        self.rng = random.Random(seed * 1_000_003 + 0x0A33)  # not the other agents' draws
        self.lp = Signer(address_of("stress-options-lp"))
        self.takers = [
            Signer(address_of(f"stress-options-taker-{i}")) for i in range(settings.takers)
        ]
        self.series: OptionSeriesParams | None = None
        self.params: OptionsVaultParams | None = None
        self.realized = RealizedVol(settings.vol_window_minutes)
        self.surface_ns: int | None = None
        self.deposited_ns: int | None = None

    @property
    def oracle_id(self) -> OracleId:
        return self.replay.market.oracle_id

    def funding(self) -> list[tuple[Address, int]]:
        s = self.settings
        return [(self.lp.address, s.amm_usdc), *((t.address, s.taker_usdc) for t in self.takers)]

    def accounts(self) -> int:
        return 1 + len(self.takers)

    def commands(self, timestamp_ns: int, *, falling_ppm: int = 0) -> list[Command]:
        """This block's: the listing once there is an index, surfaces on their cadence, the
        deposit once the agents are funded, the takers' orders after it."""
        oracle = self.replay.engine.state.oracles[self.oracle_id]
        self.realized.observe(timestamp_ns, oracle.index_price_quantums)
        if not oracle.is_usable():
            return []
        commands = self._listing(timestamp_ns, oracle.index_price_quantums)
        commands += self._surfaces(timestamp_ns)
        if self.replay.start_ns and self.deposited_ns is None:
            self.deposited_ns = timestamp_ns
            commands.append(DepositOptionsVault(
                signer=self.lp.address, nonce=self.lp.nonce(timestamp_ns),
                expiry_ns=timestamp_ns + COMMAND_TTL_NS, subaccount_number=0,
                amount_quantums=self.settings.amm_usdc * USDC,
            ))  # fmt: skip
        elif self.deposited_ns is not None:
            commands += self._takers(timestamp_ns, falling_ppm)
        return commands

    def _listing(self, timestamp_ns: int, index: int) -> list[Command]:
        if self.series is not None:
            return []
        operator = self.replay.operator
        self.series = series_params(self.settings, self.replay.market, index)
        self.params = vault_params(self.settings, self.replay.market, index)
        expiry = timestamp_ns + COMMAND_TTL_NS
        return [
            ListOptionSeries(signer=operator.address, nonce=operator.nonce(timestamp_ns),
                             expiry_ns=expiry, params=self.series),
            SetupOptionsVault(signer=operator.address, nonce=operator.nonce(timestamp_ns),
                              expiry_ns=expiry, params=self.params),
        ]  # fmt: skip

    def short_vol(self) -> float:
        realized = self.realized.annual()
        s = self.settings
        return s.base_vol if realized is None else min(max(realized, s.vol_floor), VOL_MAX)

    def _surfaces(self, timestamp_ns: int) -> list[Command]:
        every_ns = round(self.settings.surface_every_seconds * NS_PER_SECOND)
        if self.series is None or (
            self.surface_ns is not None and timestamp_ns - self.surface_ns < every_ns
        ):
            return []
        self.surface_ns = timestamp_ns
        expiries = standard_expiries(timestamp_ns, self.series)
        expiries.append(max(expiries[-1] + NS_PER_HOUR, timestamp_ns + LONG_SLICE_NS))
        short = self.short_vol()
        publishers = self.replay.publishers
        middle = (len(publishers) - 1) / 2
        commands: list[Command] = []
        for i, publisher in enumerate(publishers):
            slices = surface_slices(self.settings, timestamp_ns, expiries, short_vol=short,
                                    offset=(i - middle) * PUBLISHER_SPREAD)  # fmt: skip
            commands.append(ReportSurface(
                signer=publisher.address, nonce=publisher.nonce(timestamp_ns),
                expiry_ns=timestamp_ns + COMMAND_TTL_NS, oracle_id=self.oracle_id,
                timestamp_ns=timestamp_ns, slices=slices,
            ))  # fmt: skip
        return commands

    # ── Takers ──────────────────────────────────────────────────────────────────────────────

    def _takers(self, timestamp_ns: int, falling_ppm: int) -> list[Command]:
        s = self.settings
        chance = s.taker_orders_per_hour * self.replay.block_ns / NS_PER_HOUR
        panic = falling_ppm >= round(s.panic_move * PPM)
        commands: list[Command] = []
        for taker in self.takers:
            if self.rng.random() >= chance:
                continue
            choice = self._choose(panic)
            if choice is not None:
                commands.append(self._order(taker, *choice, timestamp_ns))
        return commands

    def _quoted(self) -> list[tuple[MarketState, Side, int, int]]:
        """Every standing quote of the AMM: (market, the taker's side, price, size)."""
        state = self.replay.engine.state
        found = []
        for market_id, record in sorted(state.options_vault.quotes.items()):
            market = state.markets[market_id]
            for side, order_id in ((Side.SELL, record.bid_order_id),
                                   (Side.BUY, record.ask_order_id)):  # fmt: skip
                order = market.book.get(OrderId(order_id)) if order_id else None
                if order is not None:
                    found.append(
                        (market, side, order.price_quantums, order.remaining_base_quantums)
                    )
        return found

    def _choose(self, panic: bool) -> tuple[MarketState, Side, int, int] | None:
        quoted = self._quoted()
        if not quoted:
            return None
        if panic and self.rng.random() < self.settings.panic_put_share:
            index = self.replay.engine.state.oracles[self.oracle_id].index_price_quantums
            puts = [q for q in quoted if q[1] is Side.BUY and _is_put_at_or_below(q[0], index)]
            if puts:
                return puts[self.rng.randrange(len(puts))]
        return quoted[self.rng.randrange(len(quoted))]

    def _order(
        self, taker: Signer, market: MarketState, side: Side, price: int, size: int,
        timestamp_ns: int,
    ) -> PlaceOrder:  # fmt: skip
        params = market.params
        share = self.rng.choice((4, 2, 1))  # a quarter, half or all of the quote
        size = max(size // share - size // share % params.step_base_quantums,
                   params.min_order_base_quantums)  # fmt: skip
        through = price * TAKER_SLIPPAGE_PPM // PPM
        tick = params.tick_quantums
        limit = price + through if side is Side.BUY else price - through
        limit = max((limit + tick - 1) // tick * tick if side is Side.BUY else limit // tick * tick,
                    tick)  # fmt: skip
        return PlaceOrder(
            signer=taker.address, nonce=taker.nonce(timestamp_ns),
            expiry_ns=timestamp_ns + COMMAND_TTL_NS, subaccount_number=0,
            market_id=MarketId(params.market_id), side=side, size_base_quantums=size,
            price_quantums=limit, time_in_force=TimeInForce.IOC,
        )  # fmt: skip

    def taker_subaccounts(self) -> list[SubaccountId]:
        return [SubaccountId(t.address, 0) for t in self.takers]


def _is_put_at_or_below(market: MarketState, index: int) -> bool:
    payoff = market.params.payoff
    if market.params.kind is not MarketKind.OPTION or payoff is None or len(payoff.kinks) != 1:
        return False
    strike = payoff.kinks[0][0]
    return payoff.slope_units != 0 and strike <= index and market.status is MarketStatus.ACTIVE
