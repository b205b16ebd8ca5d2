"""The portfolio-margin scenario grid (SPEC §6): scenarios, each contract's profile over them,
and their combination into MM and IM for positions on one underlying. Scalar and
deterministic (``option_math``): the engine replays it bit for bit; ``core/margin.py`` applies
it to subaccounts and ``pricing/portfolio_scan.py`` runs the same grid vectorized.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from math import ceil, sqrt
from operator import add

from clearhouse.core import option_math


def ordered_sum(values: Iterable[float]) -> float:
    """The values added left to right in doubles (0.0 + a + b + ...). Not the builtin ``sum``:
    since Python 3.12 it compensates float rounding, and margin is a consensus decision that
    nodes on different Python versions must reach bit for bit."""
    return reduce(add, values, 0.0)


# ── Portfolio mode (SPEC §6): options with their hedges, per underlying ───────────────────────
#
# Portfolio margin (SPEC §6, portfolio mode): revalue a portfolio of options and linear
# positions on one underlying under a grid of scenarios, SPAN / Deribit / Lyra v2 style.
#
# Scenarios: spot moves of −15 … +15% in 5% steps, each with volatility up, unchanged and down
# (up = 1 + 0.6·(30/DTE)^p, down = 1 − 0.3·(30/DTE)^p, p = 0.3 below 30 days, 0.13 above), the
# range widened when realized volatility is high (range = max(base, z·σ·√horizon)); plus
# Deribit's extended table (its "Extended Table ... primarily meant to account for large short
# options positions that are far out of the money": moves of −66%, −33%, +50%, +100%, on
# volatility up only, a fraction of the loss counted). The fraction, 10%, is chosen so that a
# linear position's worst extended loss (+100% × 10% = 10% of its notional) stays below its
# ordinary one (15%): the extended rows never raise a perpetual's or a delta-one book's margin,
# they bite only where convexity makes the tail worse than linear (a short call 50% out of the
# money loses nothing at +15% but half the underlying at +100%: 5% of it is counted). They
# replace the SPEC's ±25%/±33% at 35% (which never reached a far out-of-the-money strike).
#
# MM = worst scenario loss + a short-option contingency (a fraction of the underlying per net
# short option) + an oracle-confidence contingency (the confidence interval times the net
# delta-equivalent size); IM = 1.25 × MM. Every requirement rounds up, against the account.
#
# The grid and the revaluation are scalar and deterministic (``option_math``): the engine can
# replay them bit for bit. ``clearhouse.pricing.portfolio_scan`` runs the same grid vectorized
# over millions of subaccounts.

MOVES_PPM = (-150_000, -100_000, -50_000, 0, 50_000, 100_000, 150_000)
EXTENDED_MOVES_PPM = (-660_000, -330_000, 500_000, 1_000_000)
EXTENDED_WEIGHT = 0.10
MAX_DOWN_MOVE = 0.95
DAYS_PER_YEAR = 365.0


@dataclass(frozen=True, slots=True)
class PortfolioParams:
    base_range: float = 0.15  # the largest ordinary move
    range_z: float = 3.0  # ... widened to z·σ·√horizon when realized volatility is high
    range_horizon_years: float = 1.0 / 365.0
    vol_up: float = 0.6
    vol_down: float = 0.3
    short_option_contingency: float = 0.01  # × underlying price per net short option
    linear_hedged_floor_share: float = 0.25  # of a hedged linear leg's standard requirement
    initial_multiplier: float = 1.25


DEFAULT_PORTFOLIO = PortfolioParams()


@dataclass(frozen=True, slots=True)
class Scenario:
    move: float  # relative spot (forward) move
    vol_state: int  # +1 up, 0 unchanged, −1 down
    weight: float  # 1, or EXTENDED_WEIGHT


@dataclass(frozen=True, slots=True)
class Instrument:
    """A position's instrument: a linear future/perpetual (``strike`` None) or an option."""

    expiry_years: float  # time to expiry (0 for a perpetual)
    strike: float | None = None
    is_call: bool = True
    volatility: float = 0.0  # the surface's implied volatility for this option now


def scenarios(params: PortfolioParams, realized_vol: float) -> list[Scenario]:
    """The grid, widened by realized volatility; extended moves scale with it too (on
    volatility up, as Deribit's extended table)."""
    return list(_grid(params, realized_vol))


def _grid(params: PortfolioParams, realized_vol: float) -> tuple[Scenario, ...]:
    """``scenarios`` as a shared tuple. It depends on realized volatility only through the
    widening, which is 1 below ~96% a year: every profile of a block, and of most blocks, asks
    for the same grid (kept by its arguments, at most ``GRIDS_REMEMBERED``)."""
    widest = max(
        params.base_range, params.range_z * realized_vol * sqrt(params.range_horizon_years)
    )
    key = (params, widest)
    found = _GRIDS.get(key)
    if found is None:
        scale = widest / params.base_range
        ordinary = [(move, state) for move in MOVES_PPM for state in (1, 0, -1)]
        grid = [Scenario(_bounded(move * scale), state, 1.0) for move, state in ordinary]
        grid += [
            Scenario(_bounded(move * scale), 1, EXTENDED_WEIGHT) for move in EXTENDED_MOVES_PPM
        ]
        if len(_GRIDS) >= GRIDS_REMEMBERED:
            _GRIDS.clear()
        found = _GRIDS[key] = tuple(grid)
    return found


GRIDS_REMEMBERED = 64
_GRIDS: dict[tuple[PortfolioParams, float], tuple[Scenario, ...]] = {}


def _bounded(move_ppm: float) -> float:
    """A widened down-move stops at −95%: a price never reaches zero in a scenario."""
    return max(move_ppm / 1e6, -MAX_DOWN_MOVE)


def vol_multiplier(params: PortfolioParams, expiry_years: float, vol_state: int) -> float:
    """1 + 0.6·(30/DTE)^p up, 1 − 0.3·(30/DTE)^p down (never below 5% of the volatility)."""
    if vol_state == 0:
        return 1.0
    dte = max(expiry_years * DAYS_PER_YEAR, 1.0)
    power = 0.3 if dte < 30 else 0.13
    shape = option_math.exp(power * option_math.log(30.0 / dte))
    if vol_state > 0:
        return 1.0 + params.vol_up * shape
    return max(1.0 - params.vol_down * shape, 0.05)


def unit_value(instrument: Instrument, forward: float, vol_factor: float) -> float:
    """Value of one unit at this forward: the forward itself for a linear instrument (its PnL is
    the change), the Black-76 price for an option (undiscounted: margin is over hours)."""
    if instrument.strike is None:
        return forward
    return option_math.price(
        is_call=instrument.is_call, forward=forward, strike=instrument.strike,
        expiry_years=instrument.expiry_years, volatility=instrument.volatility * vol_factor,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Profile:
    """One contract under the grid: its weighted loss per whole unit in every scenario, its net
    option count (calls per contract: the short-option contingency counts them) and its Greeks
    per unit. Losses are linear in size, so a portfolio's scenario loss is a dot product: this is
    what the vectorized scan does for a million subaccounts at once."""

    losses: tuple[float, ...]
    options: float
    delta: float
    gamma: float = 0.0
    vega: float = 0.0
    theta: float = 0.0
    # ∂value/∂r per unit, r the rate that both carries the forward (F = S·e^{rT}) and
    # discounts the payoff: T·(F·delta − V) for an option, T·F for a dated future, 0 for a
    # perpetual (quote units per 1.00 of rate).
    rho: float = 0.0
    # The largest and smallest loss: a contract alone is margined at one of them (``alone``),
    # for every position, order and what-if of every account holding it.
    loss_max: float = field(init=False, repr=False, compare=False)
    loss_min: float = field(init=False, repr=False, compare=False)
    # ``worst_row``'s answers, by its arguments: a margin check of a large book asks again for
    # most of its legs exactly what the last one asked (pure in the key; at most
    # ``ROWS_REMEMBERED``, forgotten all at once when full).
    _rows: dict[tuple[tuple[tuple[float, float], ...], float], list[float]] = field(
        init=False, repr=False, compare=False
    )
    # ``worst_rows_sum``'s folds that began with this contract: each one's legs, scale and
    # running totals after every leg (at most ``FOLDS_REMEMBERED``, the oldest forgotten).
    _folds: list[_Fold] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        assert self.losses, "a profile has a loss in every scenario of its grid"
        object.__setattr__(self, "loss_max", max(self.losses))
        object.__setattr__(self, "loss_min", min(self.losses))
        object.__setattr__(self, "_rows", {})
        object.__setattr__(self, "_folds", [])

    def worst_row(self, choices: tuple[tuple[float, float], ...], scale: float) -> list[float]:
        """Per scenario, the worst of ``choices`` (signed units, what it costs at once) for
        this contract: ``scale × units × loss + at once``, the largest. Not to be mutated."""
        key = (choices, scale)
        found = self._rows.get(key)
        if found is None:
            rows = [[scale * units * loss + now for loss in self.losses] for units, now in choices]
            found = rows[0] if len(rows) == 1 else list(map(max, *rows))
            if len(self._rows) >= ROWS_REMEMBERED:
                self._rows.clear()
            self._rows[key] = found
        return found


ROWS_REMEMBERED = 8  # per profile: a leg's position, its bids and its asks, a few times over

# One leg of a ``worst_rows_sum``: its contract and its choices (signed units, cost at once).
RowLeg = tuple[Profile, tuple[tuple[float, float], ...]]
# A fold remembered: its legs, its scale, and the running totals after each leg.
_Fold = tuple[tuple[RowLeg, ...], float, list[list[float]]]
FOLDS_REMEMBERED = 8  # per first contract: a book whole, its expiries' remainders, two states


def worst_rows_sum(legs: tuple[RowLeg, ...], scale: float) -> list[float]:
    """Per scenario, Σ over ``legs`` in their order (0.0 + a + b + ...) of each one's
    ``worst_row(choices, scale)``. Not to be mutated.

    A large book is margined several times a block and again the next block with most legs as
    they were (a requote changes a few markets' orders; a mark moves no profile): the running
    totals after every leg are remembered on the first leg's profile, by the legs' contracts
    (compared by value: equal profiles have equal rows) and choices. A fold whose first k legs
    equal a remembered one's starts from that one's totals after k legs, which are the very
    floats it would have summed: the same additions in the same order, bit for bit."""
    assert legs, "a fold of no legs has no grid"
    head = legs[0][0]
    folds = head._folds
    for found_legs, found_scale, found_partials in reversed(folds):  # the latest most likely
        if found_scale == scale and found_legs == legs:
            return found_partials[-1]
    done = 0
    partials: list[list[float]] = []
    for found_legs, found_scale, found_partials in folds:
        same = _common_prefix(found_legs, legs) if found_scale == scale else 0
        if same > done:
            done, partials = same, found_partials[:same]
    totals = partials[-1] if partials else [0.0] * len(head.losses)
    for pr, choices in legs[done:]:
        totals = list(map(add, totals, pr.worst_row(choices, scale)))
        partials.append(totals)
    assert len(partials) == len(legs)
    if len(folds) >= FOLDS_REMEMBERED:
        del folds[0]
    folds.append((legs, scale, partials))
    return totals


def _common_prefix(a: tuple[RowLeg, ...], b: tuple[RowLeg, ...]) -> int:
    """How many leading legs ``a`` and ``b`` share (the same contract by value, the same
    choices)."""
    count = 0
    for left, right in zip(a, b, strict=False):  # the shorter one bounds the prefix
        if left != right:
            break
        count += 1
    return count


def profile(
    legs: Sequence[tuple[Instrument, float]], *, forward: float, realized_vol: float,
    params: PortfolioParams | None = None, values: Valuations | None = None,
) -> Profile:  # fmt: skip
    """The profile of one contract made of (instrument, units) legs on one underlying.
    ``values`` may hold option values and Greeks taken before with the same arguments (a put
    and a call at one strike share their call leg): the same floats, taken once."""
    p = params or DEFAULT_PORTFOLIO
    memo = Valuations() if values is None else values
    now = [memo.value(i, forward, 1.0) for i, _ in legs]
    # A linear leg's value is the forward whatever the volatility: no factors, no valuation.
    factors = [
        None if i.strike is None
        else {state: vol_multiplier(p, i.expiry_years, state) for state in (-1, 0, 1)}
        for i, _ in legs
    ]  # fmt: skip
    losses = []
    for scenario in _grid(p, realized_vol):
        shocked = forward * (1.0 + scenario.move)
        loss = 0.0
        for (instrument, units), value, factor in zip(legs, now, factors, strict=True):
            shocked_value = (
                shocked if factor is None
                else memo.value(instrument, shocked, factor[scenario.vol_state])
            )  # fmt: skip
            loss += units * (value - shocked_value)
        losses.append(loss * scenario.weight)
    greeks = [0.0, 0.0, 0.0, 0.0]
    rho = 0.0
    for (instrument, units), value in zip(legs, now, strict=True):
        leg = memo.greeks(instrument, forward)
        for index, greek in enumerate(leg):
            greeks[index] += units * greek
        rho += (
            units
            * instrument.expiry_years
            * (forward * leg[0] - (value if instrument.strike is not None else 0.0))
        )
    options = ordered_sum(units for instrument, units in legs if instrument.strike is not None)
    delta, gamma, vega, theta = greeks
    return Profile(tuple(losses), options, delta, gamma, vega, theta, rho)


class Valuations:
    """Option values (``unit_value``) and Greeks (``leg_greeks``) already taken, by their
    arguments: pure functions of those, so a repeat is the same float without the work."""

    __slots__ = ("_greeks", "_values")

    def __init__(self) -> None:
        self._values: dict[tuple[bool, float, float, float, float], float] = {}
        self._greeks: dict[
            tuple[bool, float, float, float, float], tuple[float, float, float, float]
        ] = {}

    def value(self, instrument: Instrument, forward: float, vol_factor: float) -> float:
        """``unit_value(instrument, forward, vol_factor)``."""
        if instrument.strike is None:
            return forward
        volatility = instrument.volatility * vol_factor
        key = (instrument.is_call, forward, instrument.strike, instrument.expiry_years, volatility)
        found = self._values.get(key)
        if found is None:
            found = self._values[key] = option_math.price(
                is_call=instrument.is_call, forward=forward, strike=instrument.strike,
                expiry_years=instrument.expiry_years, volatility=volatility,
            )  # fmt: skip
        return found

    def call(self, forward: float, strike: float, expiry_years: float, volatility: float) -> float:
        """The value of a call: ``value`` of that instrument at a volatility factor of 1."""
        key = (True, forward, strike, expiry_years, volatility)
        found = self._values.get(key)
        if found is None:
            found = self._values[key] = option_math.price(
                is_call=True, forward=forward, strike=strike, expiry_years=expiry_years,
                volatility=volatility,
            )  # fmt: skip
        return found

    def greeks(self, instrument: Instrument, forward: float) -> tuple[float, float, float, float]:
        if instrument.strike is None:
            return leg_greeks(instrument, forward)
        key = (
            instrument.is_call, forward, instrument.strike, instrument.expiry_years,
            instrument.volatility,
        )  # fmt: skip
        found = self._greeks.get(key)
        if found is None:
            found = self._greeks[key] = leg_greeks(instrument, forward)
        return found


def leg_greeks(instrument: Instrument, forward: float) -> tuple[float, float, float, float]:
    """(delta, gamma, vega, theta) of one unit; a linear instrument has delta 1 and no other."""
    if instrument.strike is None:
        return 1.0, 0.0, 0.0, 0.0
    return option_math.greeks(
        is_call=instrument.is_call, forward=forward, strike=instrument.strike,
        expiry_years=instrument.expiry_years, volatility=instrument.volatility,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class PortfolioRisk:
    worst_loss: float
    short_option_contingency: float
    confidence_contingency: float
    maintenance: int  # quote units, rounded up
    initial: int


def combine(
    exposures: Sequence[tuple[Profile, float]], *, forward: float, confidence: float = 0.0,
    params: PortfolioParams | None = None, initial_multiplier: float = 1.0,
) -> PortfolioRisk:  # fmt: skip
    """MM and IM of (profile, signed size) exposures on one underlying whose profiles share
    one grid: MM = worst scenario loss + short-option + confidence contingencies (rounded up),
    IM = 1.25 × MM (× a cooling-off multiplier)."""
    p = params or DEFAULT_PORTFOLIO
    worst = 0.0
    if len(exposures) == 1:  # one contract: the extreme scenario of its sign, bit for bit
        pr, size = exposures[0]
        worst = max(worst, size * (max(pr.losses) if size >= 0 else min(pr.losses)))
    elif exposures:
        # Each scenario's loss summed over the exposures in their order (0 + a + b + ...),
        # taken a whole grid row at a time; 1.0 × size × loss + 0.0 is size × loss (a zero's
        # sign aside).
        totals = worst_rows_sum(tuple((pr, ((size, 0.0),)) for pr, size in exposures), 1.0)
        worst = max([worst, *totals])
    net_short = max(0.0, -ordered_sum(size * pr.options for pr, size in exposures))
    short_contingency = p.short_option_contingency * forward * net_short
    confidence_contingency = (
        abs(ordered_sum(size * pr.delta for pr, size in exposures)) * confidence
    )
    maintenance = ceil(worst + short_contingency + confidence_contingency)
    return PortfolioRisk(
        worst, short_contingency, confidence_contingency, maintenance,
        ceil(maintenance * p.initial_multiplier * initial_multiplier),
    )  # fmt: skip


def alone(
    pr: Profile, size: float, *, forward: float, confidence: float, params: PortfolioParams,
    initial_multiplier: float,
) -> tuple[int, int]:  # fmt: skip
    """(IM, MM) that ``combine`` gives one contract alone, by the same operations (a sum of
    one term is that term: ``0 + x`` and ``x`` are the same float once ``max`` meets 0.0)."""
    worst = max(0.0, size * (pr.loss_max if size >= 0 else pr.loss_min))
    net_short = max(0.0, -(size * pr.options))
    short_contingency = params.short_option_contingency * forward * net_short
    confidence_contingency = abs(size * pr.delta) * confidence
    maintenance = ceil(worst + short_contingency + confidence_contingency)
    return ceil(maintenance * params.initial_multiplier * initial_multiplier), maintenance


def portfolio_risk(
    positions: Sequence[tuple[Instrument, float]], *, forward: float, realized_vol: float,
    confidence: float = 0.0, params: PortfolioParams | None = None,
) -> PortfolioRisk:  # fmt: skip
    """MM and IM of (instrument, signed size) positions on one underlying at ``forward``."""
    exposures = [
        (profile([(i, 1.0)], forward=forward, realized_vol=realized_vol, params=params), size)
        for i, size in positions
    ]
    return combine(exposures, forward=forward, confidence=confidence, params=params)
