"""Price paths for the stress lab (SPEC §13): real candles or synthetic models, seen by several
publishers.

A path answers one question, ``price_at(timestamp_ns)``: the price in quote quantums per whole
base unit at that block time, or None where there is none (a gap in a venue's data, or outside
the path). ``sim.solvency.Bars`` (real candles) is one; ``SampledPath`` (a synthetic model's
samples on a regular grid) is another; ``VenueFeed`` and ``CrashOverlay`` wrap any path.

The models work in log-prices with numpy floats; what leaves this module is integers, so no
float reaches the engine. Every draw comes from the ``numpy.random.Generator`` the caller
passes in: the same seed gives the same path, bit for bit, on the same numpy and platform.
Time is block time in ns; a year is 365 days (``core.units.NS_PER_YEAR``).

Not in ``clearhouse.core``: it draws random numbers and uses floats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.signal import lfilter

from clearhouse.core.units import NS_PER_YEAR, PPM_ONE
from clearhouse.sim.solvency import PricePath

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# Samples stay below 2^53 quantums (9 billion USDC a unit): exact as floats, and a sample times
# PPM_ONE splits into two int64 products without overflow (``_scale_ppm``).
PRICE_MAX_QUANTUMS = 2**53
_LOG_PRICE_MAX = math.log(PRICE_MAX_QUANTUMS)
STEPS_MAX = 50_000_000  # a year at under a second: bounds the memory a scenario can ask for


class PriceModel(Protocol):
    """A synthetic model: parameters, their problems, and a seeded sample on a grid."""

    def problems(self) -> list[str]: ...

    def sample(
        self,
        rng: np.random.Generator,
        *,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        start_price_quantums: int,
    ) -> SampledPath: ...


# ── A path on a grid ────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True, eq=False)
class SampledPath:
    """Prices at ``start_ns + k · step_ns`` for k = 0 … len − 1, linear in between.

    Between two samples the price is ``left + (right − left) · elapsed // step_ns``: exact
    integer arithmetic, rounded toward −∞ (as ``Bars`` does inside a candle). Outside
    [start_ns, end_ns] there is no price."""

    start_ns: int
    step_ns: int
    prices_quantums: IntArray

    def __post_init__(self) -> None:
        prices = self.prices_quantums
        assert self.step_ns > 0, self.step_ns
        assert prices.dtype == np.int64 and prices.ndim == 1 and len(prices) >= 1, prices.shape
        assert int(prices.min()) >= 1, "a price is a positive number of quantums"
        prices.flags.writeable = False  # a path is a value: shared by every venue that sees it

    @property
    def end_ns(self) -> int:
        return self.start_ns + (len(self.prices_quantums) - 1) * self.step_ns

    @property
    def times_ns(self) -> IntArray:
        return self.start_ns + self.step_ns * np.arange(len(self.prices_quantums), dtype=np.int64)

    def price_at(self, timestamp_ns: int) -> int | None:
        if not self.start_ns <= timestamp_ns <= self.end_ns:
            return None
        index, into_ns = divmod(timestamp_ns - self.start_ns, self.step_ns)
        left = int(self.prices_quantums[index])
        if into_ns == 0:
            return left
        right = int(self.prices_quantums[index + 1])
        return left + (right - left) * into_ns // self.step_ns


def sample_path(path: PricePath, *, start_ns: int, end_ns: int, step_ns: int) -> SampledPath:
    """Any path (real candles included) read on a grid; refused where it has a gap, since a
    sampled path has a price everywhere on its span."""
    times = range(start_ns, end_ns + 1, step_ns)
    prices = [path.price_at(t) for t in times]
    missing = [t for t, p in zip(times, prices, strict=True) if p is None]
    if missing:
        raise ValueError(f"no price at {len(missing)} grid times, the first at {missing[0]} ns")
    return SampledPath(start_ns, step_ns, np.array(prices, dtype=np.int64))


def _grid_steps(start_ns: int, end_ns: int, step_ns: int) -> int:
    """Steps of the grid start, start + step, …, up to end (the last sample at or before it)."""
    if step_ns <= 0 or end_ns <= start_ns:
        raise ValueError(f"a grid needs step_ns > 0 and end_ns > start_ns, got {step_ns}")
    steps = (end_ns - start_ns) // step_ns
    if steps > STEPS_MAX:
        raise ValueError(f"{steps} steps: at most {STEPS_MAX} in one path")
    return steps


def _from_log_returns(
    start_ns: int, step_ns: int, start_price_quantums: int, log_returns: FloatArray
) -> SampledPath:
    """Integer samples of start_price · exp(cumulative log return), rounded to nearest and held
    inside [1, PRICE_MAX_QUANTUMS]; the first sample is the start price, exactly."""
    if not 1 <= start_price_quantums <= PRICE_MAX_QUANTUMS:
        raise ValueError(f"start price {start_price_quantums} outside [1, 2^53] quantums")
    log_prices = np.empty(len(log_returns) + 1)
    log_prices[0] = math.log(start_price_quantums)
    np.cumsum(log_returns, out=log_prices[1:])
    log_prices[1:] += log_prices[0]
    np.clip(log_prices, 0.0, _LOG_PRICE_MAX, out=log_prices)
    prices = np.rint(np.exp(log_prices)).astype(np.int64)
    prices[0] = start_price_quantums
    np.clip(prices, 1, PRICE_MAX_QUANTUMS, out=prices)
    return SampledPath(start_ns, step_ns, prices)


def _years(step_ns: int) -> float:
    return step_ns / NS_PER_YEAR


def _finite(name: str, value: float) -> list[str]:
    return [] if math.isfinite(value) else [f"{name} must be a finite number, got {value}"]


class _Checked(Protocol):
    def problems(self) -> list[str]: ...


def _raise_problems(parameters: _Checked) -> None:
    found = parameters.problems()
    if found:
        raise ValueError("; ".join(found))


class _ReturnModel(_Checked, Protocol):
    def log_returns(self, rng: np.random.Generator, steps: int, step_ns: int) -> FloatArray: ...


def _sample_returns(
    model: _ReturnModel,
    rng: np.random.Generator,
    start_ns: int,
    end_ns: int,
    step_ns: int,
    start_price_quantums: int,
) -> SampledPath:
    """A model given by its log returns per step, sampled on the grid."""
    _raise_problems(model)
    returns = model.log_returns(rng, _grid_steps(start_ns, end_ns, step_ns), step_ns)
    return _from_log_returns(start_ns, step_ns, start_price_quantums, returns)


# ── Synthetic models ────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Gbm:
    """Geometric Brownian motion: d ln S = (μ − σ²/2) dt + σ dW, so E[S_t] = S_0 e^{μt}.
    σ = ``annual_vol``, μ = ``annual_drift``, t in years."""

    annual_vol: float
    annual_drift: float = 0.0

    def problems(self) -> list[str]:
        found = _finite("annual_vol", self.annual_vol) + _finite("annual_drift", self.annual_drift)
        if not found and not 0 <= self.annual_vol <= 20:
            found.append(f"annual_vol {self.annual_vol} outside [0, 20]")
        return found

    def log_returns(self, rng: np.random.Generator, steps: int, step_ns: int) -> FloatArray:
        dt = _years(step_ns)
        drift = (self.annual_drift - self.annual_vol**2 / 2) * dt
        return drift + self.annual_vol * math.sqrt(dt) * rng.standard_normal(steps)

    def sample(
        self,
        rng: np.random.Generator,
        *,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        start_price_quantums: int,
    ) -> SampledPath:
        return _sample_returns(self, rng, start_ns, end_ns, step_ns, start_price_quantums)


@dataclass(frozen=True, slots=True)
class MertonJumps:
    """Merton's jump diffusion: GBM plus N_t ~ Poisson(λt) jumps of the log-price, each
    ~ Normal(m, s²). The drift is compensated, d ln S = (μ − σ²/2 − λκ) dt + σ dW + dJ with
    κ = e^{m + s²/2} − 1, so E[S_t] = S_0 e^{μt} whatever the jumps: they add risk, not trend."""

    annual_vol: float
    annual_drift: float
    jumps_per_year: float
    jump_mean: float  # m: mean log-jump (−0.1 ≈ a 9.5% drop)
    jump_std: float  # s

    def problems(self) -> list[str]:
        found = Gbm(self.annual_vol, self.annual_drift).problems()
        for name in ("jumps_per_year", "jump_mean", "jump_std"):
            found += _finite(name, getattr(self, name))
        if found:
            return found
        if not 0 <= self.jumps_per_year <= 1e6:
            found.append(f"jumps_per_year {self.jumps_per_year} outside [0, 1e6]")
        if not -5 <= self.jump_mean <= 5:
            found.append(f"jump_mean {self.jump_mean} outside [−5, 5] (a log-jump)")
        if not 0 <= self.jump_std <= 5:
            found.append(f"jump_std {self.jump_std} outside [0, 5]")
        return found

    @property
    def compensator(self) -> float:
        """κ = E[e^J] − 1: the mean relative size of a jump."""
        return math.expm1(self.jump_mean + self.jump_std**2 / 2)

    def log_returns(self, rng: np.random.Generator, steps: int, step_ns: int) -> FloatArray:
        compensated = self.annual_drift - self.jumps_per_year * self.compensator
        returns = Gbm(self.annual_vol, compensated).log_returns(rng, steps, step_ns)
        # The sum of n Normal(m, s²) jumps is Normal(n·m, n·s²): one draw per step, not per jump.
        counts = rng.poisson(self.jumps_per_year * _years(step_ns), steps)
        spread = np.sqrt(counts) * self.jump_std * rng.standard_normal(steps)
        return returns + counts * self.jump_mean + spread

    def sample(
        self,
        rng: np.random.Generator,
        *,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        start_price_quantums: int,
    ) -> SampledPath:
        return _sample_returns(self, rng, start_ns, end_ns, step_ns, start_price_quantums)


@dataclass(frozen=True, slots=True)
class Garch11:
    """GARCH(1,1) log returns per step of ``step_ns`` (the cadence it was fitted on):
    r_t = μ + ε_t, ε_t = σ_t z_t, z_t ~ Normal(0, 1), σ²_t = ω + α ε²_{t−1} + β σ²_{t−1}.

    Stationary when α + β < 1; the long-run variance per step is ω / (1 − α − β), where the
    recursion starts. Sampled on a finer grid that divides ``step_ns``, each GARCH step's return
    is spread over its sub-steps by a Brownian bridge: the clustering is the fitted one, and the
    path inside a step is as rough as a random walk with that step's variance."""

    omega: float
    alpha: float
    beta: float
    mu: float
    step_ns: int

    def problems(self) -> list[str]:
        found: list[str] = []
        for name in ("omega", "alpha", "beta", "mu"):
            found += _finite(name, getattr(self, name))
        if found:
            return found
        if not self.omega > 0:
            found.append(f"omega {self.omega} must be > 0")
        if not (self.alpha >= 0 and self.beta >= 0):
            found.append(f"alpha {self.alpha} and beta {self.beta} must be ≥ 0")
        if not self.alpha + self.beta < 1:
            found.append(f"alpha + beta = {self.alpha + self.beta} must be < 1 (stationary)")
        if self.step_ns <= 0:
            found.append(f"step_ns {self.step_ns} must be > 0")
        return found

    @property
    def long_run_variance(self) -> float:
        """Unconditional variance of ε per step: ω / (1 − α − β)."""
        return self.omega / (1 - self.alpha - self.beta)

    @property
    def annual_vol(self) -> float:
        return math.sqrt(self.long_run_variance * NS_PER_YEAR / self.step_ns)

    def log_returns(self, rng: np.random.Generator, steps: int) -> tuple[FloatArray, FloatArray]:
        """``steps`` returns of the model's own cadence and each one's conditional variance,
        the recursion started at the long-run variance."""
        draws = rng.standard_normal(steps)
        # The recursion is sequential: a plain loop on Python floats (≈ 15 ms for 86,400
        # steps), each shock recomputed below from the same floats, so bit for bit the same.
        sqrt, omega, alpha, beta = math.sqrt, self.omega, self.alpha, self.beta
        variance = self.long_run_variance
        variances: list[float] = []
        remember = variances.append
        for z in draws.tolist():
            remember(variance)
            shock = sqrt(variance) * z
            variance = omega + alpha * shock * shock + beta * variance
        conditional = np.array(variances)
        return self.mu + np.sqrt(conditional) * draws, conditional

    def sample(
        self,
        rng: np.random.Generator,
        *,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        start_price_quantums: int,
    ) -> SampledPath:
        _raise_problems(self)
        steps = _grid_steps(start_ns, end_ns, step_ns)
        if self.step_ns % step_ns:
            raise ValueError(f"step_ns {step_ns} must divide the model's step {self.step_ns}")
        per_step = self.step_ns // step_ns
        coarse, variances = self.log_returns(rng, -(-steps // per_step))
        returns = _bridge(rng, coarse, per_step, variances)[:steps]
        return _from_log_returns(start_ns, step_ns, start_price_quantums, returns)


def _bridge(
    rng: np.random.Generator, totals: FloatArray, parts: int, variances: FloatArray
) -> FloatArray:
    """Each total split into ``parts`` increments of a random walk with that total: the mean
    share plus Normal(0, variance / parts) draws less their own mean (a Brownian bridge)."""
    if parts == 1:
        return totals
    noise = rng.standard_normal((len(totals), parts)) * np.sqrt(variances / parts)[:, None]
    noise -= noise.mean(axis=1, keepdims=True)
    return (totals[:, None] / parts + noise).ravel()


@dataclass(frozen=True, slots=True)
class RegimeSwitch:
    """GBM whose (σ, μ) follow a continuous-time Markov chain between regimes, e.g. calm and
    crash: regime i is left at rate ``switches_per_year[i]`` (an exponential holding time of
    mean 1/rate years), for another regime chosen uniformly. The path starts in regime 0; a
    step takes the regime in force at its start."""

    regimes: tuple[tuple[float, float], ...]  # (annual_vol, annual_drift) each
    switches_per_year: tuple[float, ...]

    def problems(self) -> list[str]:
        found: list[str] = []
        if not 1 <= len(self.regimes) <= 16:
            found.append(f"{len(self.regimes)} regimes: between 1 and 16")
        if len(self.switches_per_year) != len(self.regimes):
            found.append("switches_per_year needs one rate per regime")
        for i, (vol, drift) in enumerate(self.regimes):
            found += [f"regime {i}: {p}" for p in Gbm(vol, drift).problems()]
        for i, rate in enumerate(self.switches_per_year):
            if not (math.isfinite(rate) and 0 <= rate <= 1e6):
                found.append(f"switches_per_year[{i}] {rate} outside [0, 1e6]")
        return found

    def regime_per_step(self, rng: np.random.Generator, steps: int, step_ns: int) -> IntArray:
        """Which regime each step is in: holding times drawn one switch at a time (switches
        are few), then read at each step's start."""
        horizon_years = steps * _years(step_ns)
        starts, regimes = [0.0], [0]
        while True:
            rate = self.switches_per_year[regimes[-1]]
            if rate == 0 or len(self.regimes) == 1:
                break
            switch_at = starts[-1] + rng.exponential(1 / rate)
            if switch_at >= horizon_years or len(starts) > steps:
                break
            offset = int(rng.integers(1, len(self.regimes)))
            starts.append(switch_at)
            regimes.append((regimes[-1] + offset) % len(self.regimes))
        step_starts = np.arange(steps) * _years(step_ns)
        index = np.searchsorted(np.array(starts), step_starts, side="right") - 1
        return np.array(regimes, dtype=np.int64)[index]

    def sample(
        self,
        rng: np.random.Generator,
        *,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        start_price_quantums: int,
    ) -> SampledPath:
        _raise_problems(self)
        steps = _grid_steps(start_ns, end_ns, step_ns)
        regime = self.regime_per_step(rng, steps, step_ns)
        vol = np.array([v for v, _ in self.regimes])[regime]
        drift = np.array([d for _, d in self.regimes])[regime]
        dt = _years(step_ns)
        returns = (drift - vol**2 / 2) * dt + vol * math.sqrt(dt) * rng.standard_normal(steps)
        return _from_log_returns(start_ns, step_ns, start_price_quantums, returns)


# ── A deterministic crash ───────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Crash:
    """The price multiplied by a factor that is 1 before ``at_ns``, falls linearly to
    1 − ``drop`` over ``over_ns`` and stays there: ``over_ns = 0`` is a gap (the whole drop at
    ``at_ns``). The factor is exact parts per million, the product rounded toward −∞."""

    drop: float  # a fraction of the price: 0.3 = −30%
    over_ns: int
    at_ns: int

    def problems(self) -> list[str]:
        found = _finite("drop", self.drop)
        if not found and not 0 < self.drop < 1:
            found.append(f"drop {self.drop} must be a fraction in (0, 1)")
        if self.over_ns < 0:
            found.append(f"over_ns {self.over_ns} must be ≥ 0")
        return found

    @property
    def drop_ppm(self) -> int:
        return round(self.drop * PPM_ONE)

    def factor_ppm(self, timestamp_ns: int) -> int:
        """The multiplier at this time, in ppm (rounded toward −∞ on the ramp)."""
        elapsed_ns = timestamp_ns - self.at_ns
        if elapsed_ns < 0:
            return PPM_ONE
        if elapsed_ns >= self.over_ns:
            return PPM_ONE - self.drop_ppm
        return PPM_ONE - -(-self.drop_ppm * elapsed_ns // self.over_ns)

    def apply(self, path: SampledPath) -> SampledPath:
        """The same grid with the crash on it (vectorized, the same integers as ``over``)."""
        _raise_problems(self)
        times = path.times_ns
        elapsed = np.clip(times - self.at_ns, 0, self.over_ns)
        ramp = -(-self.drop_ppm * elapsed // max(self.over_ns, 1))  # up: the factor rounds down
        ramp[times >= self.at_ns + self.over_ns] = self.drop_ppm
        scaled = np.maximum(_scale_ppm(path.prices_quantums, PPM_ONE - ramp), 1)
        return SampledPath(path.start_ns, path.step_ns, scaled)

    def over(self, path: PricePath) -> CrashOverlay:
        """Any path (real candles included) with the crash on it."""
        _raise_problems(self)
        return CrashOverlay(path, self)


@dataclass(frozen=True, slots=True)
class CrashOverlay:
    base: PricePath
    crash: Crash

    def price_at(self, timestamp_ns: int) -> int | None:
        price = self.base.price_at(timestamp_ns)
        if price is None:
            return None
        return max(price * self.crash.factor_ppm(timestamp_ns) // PPM_ONE, 1)


def _scale_ppm(prices: IntArray, factor_ppm: IntArray) -> IntArray:
    """⌊price · factor / 10⁶⌋ exactly in int64: price = q·10⁶ + r gives q·factor + ⌊r·factor /
    10⁶⌋, whose products stay far below 2^63 for prices below 2^53 and factors below 10⁹."""
    whole, rest = np.divmod(prices, PPM_ONE)
    return (whole * factor_ppm + rest * factor_ppm // PPM_ONE).astype(np.int64)


# ── Several publishers' views of one path ───────────────────────────────────────────────────


@dataclass(frozen=True, slots=True, eq=False)
class VenueFeed:
    """One publisher's view of a path: the price ``lag_ns`` ago (a stale venue), times
    (1 + basis + noise) in ppm, where the basis is the venue's own persistent premium and the
    noise is drawn once per report slot (``start_ns + k · step_ns``) and held until the next.
    None where the path has no price or outside the slots.

    A field per venue, so a scenario overrides one venue (a thin venue an attacker moves
    swaps ``base`` for a manipulated path with ``dataclasses.replace``)."""

    name: str
    base: PricePath
    basis_ppm: int
    lag_ns: int
    start_ns: int
    step_ns: int
    noise_ppm: IntArray

    def price_at(self, timestamp_ns: int) -> int | None:
        slot = (timestamp_ns - self.start_ns) // self.step_ns
        if not 0 <= slot < len(self.noise_ppm):
            return None
        price = self.base.price_at(timestamp_ns - self.lag_ns)
        if price is None:
            return None
        factor = PPM_ONE + self.basis_ppm + int(self.noise_ppm[slot])
        return max(price * factor // PPM_ONE, 1)


FEED_DEVIATION_MAX_PPM = 200_000  # basis + noise kept within ±20%: a view, not another market


def venue_feeds(
    path: PricePath,
    *,
    venues: int,
    basis_ppm_std: float,
    noise_ppm_std: float | Sequence[float],
    rng: np.random.Generator,
    start_ns: int,
    end_ns: int,
    step_ns: int,
    lags_ns: Sequence[int] | None = None,
) -> list[VenueFeed]:
    """``venues`` publishers of one path: venue i's basis ~ Normal(0, basis_ppm_std²) once,
    its noise ~ Normal(0, noise_ppm_std[i]²) per slot of ``step_ns`` from start_ns to end_ns,
    both rounded to whole ppm and together held within ±FEED_DEVIATION_MAX_PPM; ``lags_ns[i]``
    makes venue i stale by that much (0 by default)."""
    noise_std = _per_venue("noise_ppm_std", noise_ppm_std, venues)
    lags = _per_venue("lags_ns", [0] * venues if lags_ns is None else lags_ns, venues)
    if min(noise_std) < 0 or basis_ppm_std < 0 or min(lags) < 0:
        raise ValueError("standard deviations and lags must be ≥ 0")
    slots = _grid_steps(start_ns, end_ns, step_ns) + 1
    limit = FEED_DEVIATION_MAX_PPM
    basis = np.clip(np.rint(rng.normal(0.0, basis_ppm_std, venues)), -limit, limit)
    feeds = []
    for i in range(venues):
        noise = np.rint(rng.normal(0.0, noise_std[i], slots)).astype(np.int64)
        np.clip(noise, -limit - int(basis[i]), limit - int(basis[i]), out=noise)
        noise.flags.writeable = False
        feeds.append(
            VenueFeed(f"venue-{i}", path, int(basis[i]), int(lags[i]), start_ns, step_ns, noise)
        )
    return feeds


_Number = TypeVar("_Number", int, float)


def _per_venue(name: str, value: _Number | Sequence[_Number], venues: int) -> list[_Number]:
    if venues < 1:
        raise ValueError(f"venues {venues} must be ≥ 1")
    if isinstance(value, int | float):
        return [value] * venues
    if len(value) != venues:
        raise ValueError(f"{name} has {len(value)} values for {venues} venues")
    return list(value)


# ── Fitting GARCH(1,1) ──────────────────────────────────────────────────────────────────────


def log_returns_on_grid(times_ns: Sequence[int], prices: Sequence[int], step_ns: int) -> FloatArray:
    """ln(p_{i+1} / p_i) for consecutive samples exactly ``step_ns`` apart: a return across a
    gap in the data is left out, not spread over the gap."""
    times = np.asarray(times_ns, dtype=np.int64)
    values = np.log(np.asarray(prices, dtype=np.float64))
    adjacent = np.diff(times) == step_ns
    returns: FloatArray = np.diff(values)[adjacent]
    return returns


def fit_garch(log_returns: npt.ArrayLike, *, step_ns: int) -> Garch11:
    """GARCH(1,1) by Gaussian maximum likelihood (SLSQP, bounds 0 ≤ α, β and α + β ≤ 0.9999).

    The returns are scaled to unit variance first, so that ω, α, β are all of order one for
    the optimizer, and the fit starts from variance targeting (ω = 1 − α − β at α = 0.05,
    β = 0.90: the long-run variance equal to the sample's). The recursion starts at the sample
    variance."""
    returns = np.asarray(log_returns, dtype=np.float64)
    if returns.ndim != 1 or len(returns) < 100 or not np.all(np.isfinite(returns)):
        raise ValueError("fitting GARCH needs at least 100 finite log returns")
    scale = float(returns.std())
    if scale == 0:
        raise ValueError("the returns do not vary: there is no volatility to fit")
    standard = returns / scale
    start = np.array([float(standard.mean()), 0.05, 0.05, 0.90])  # μ, ω, α, β
    result = minimize(
        _negative_log_likelihood,
        start,
        args=(standard,),
        method="SLSQP",
        bounds=[(-1.0, 1.0), (1e-8, 10.0), (0.0, 1.0), (0.0, 1.0)],
        constraints=[{"type": "ineq", "fun": lambda x: 0.9999 - x[2] - x[3]}],
        options={"maxiter": 500, "ftol": 1e-10},
    )
    if not result.success:
        raise ValueError(f"the GARCH fit did not converge: {result.message}")
    mu, omega, alpha, beta = (float(v) for v in result.x)
    return Garch11(omega * scale**2, alpha, beta, mu * scale, step_ns)


def _negative_log_likelihood(params: FloatArray, returns: FloatArray) -> float:
    """−ln L / n = ½ mean(ln 2π + ln σ²_t + ε²_t / σ²_t): per observation, so that the
    gradient is of order one whatever the sample's length (SLSQP stalls on large gradients).
    σ² by the recursion as a linear filter, σ²_t − β σ²_{t−1} = ω + α ε²_{t−1}: one C loop
    per evaluation, not a Python one."""
    mu, omega, alpha, beta = (float(v) for v in params)
    shocks = returns - mu
    squared = shocks * shocks
    initial = float(squared.mean())
    drive = np.empty_like(squared)
    drive[0] = initial
    drive[1:] = omega + alpha * squared[:-1]
    variance = lfilter([1.0], [1.0, -beta], drive)
    variance = np.maximum(variance, 1e-12)
    total = np.log(2 * math.pi) + np.log(variance) + squared / variance
    return 0.5 * float(total.mean())
