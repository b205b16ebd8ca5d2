"""Price paths for the stress lab (``clearhouse.sim.stress.paths``): the sampled path's exact
interpolation, each model's statistics and determinism, the crash overlay, venue feeds, and
GARCH(1,1) fitted on simulated and real returns."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.core.units import NS_PER_DAY, NS_PER_HOUR, NS_PER_SECOND, NS_PER_YEAR
from clearhouse.sim.backtest import read_candles
from clearhouse.sim.solvency import Bars
from clearhouse.sim.stress.paths import (
    Crash,
    Garch11,
    Gbm,
    MertonJumps,
    PriceModel,
    PricePath,
    RegimeSwitch,
    SampledPath,
    VenueFeed,
    fit_garch,
    log_returns_on_grid,
    sample_path,
    venue_feeds,
)
from clearhouse.sim.venue import USDC

DATA = Path("../shared/data")
BTC_1H = DATA / "binance/spot_1h/BTCUSDT_1h_2018_2026.csv"
START_PRICE = 60_000 * USDC

MODELS: list[PriceModel] = [
    Gbm(annual_vol=0.8, annual_drift=0.1),
    MertonJumps(
        annual_vol=0.6, annual_drift=0.0, jumps_per_year=50, jump_mean=-0.05, jump_std=0.03
    ),
    Garch11(omega=2e-10, alpha=0.08, beta=0.9, mu=0.0, step_ns=NS_PER_SECOND),
    Garch11(omega=2e-6, alpha=0.08, beta=0.9, mu=0.0, step_ns=NS_PER_HOUR),
    RegimeSwitch(regimes=((0.5, 0.0), (2.5, -4.0)), switches_per_year=(12.0, 300.0)),
]


def day_at_one_second(model: PriceModel, seed: int) -> SampledPath:
    return model.sample(
        np.random.default_rng(seed),
        start_ns=0,
        end_ns=NS_PER_DAY,
        step_ns=NS_PER_SECOND,
        start_price_quantums=START_PRICE,
    )


def prices(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64)


# ── The sampled path ────────────────────────────────────────────────────────────────────────


def test_a_sampled_path_is_linear_between_samples_rounding_toward_minus_infinity() -> None:
    path = SampledPath(start_ns=1000, step_ns=10, prices_quantums=prices([100, 130, 40, 41]))
    assert [path.price_at(1000 + 5 * k) for k in range(7)] == [100, 115, 130, 85, 40, 40, 41]
    assert path.price_at(1028) == 40  # 40 + 1 · 8 // 10: down, not to nearest
    rising, falling = SampledPath(0, 3, prices([100, 101])), SampledPath(0, 3, prices([101, 100]))
    assert (rising.price_at(2), falling.price_at(1)) == (100, 100)  # ⌊2/3⌋ and 101 + ⌊−1/3⌋
    assert path.price_at(999) is None
    assert path.price_at(1031) is None  # after the last sample: no price
    assert path.end_ns == 1030


@given(
    st.lists(st.integers(1, 2**53), min_size=2, max_size=20),
    st.integers(1, 10**12),
    st.data(),
)
def test_a_sampled_path_stays_between_its_neighbouring_samples(
    values: list[int], step_ns: int, data: st.DataObject
) -> None:
    path = SampledPath(0, step_ns, prices(values))
    at = data.draw(st.integers(0, path.end_ns))
    index = at // step_ns
    found = path.price_at(at)
    assert found is not None
    neighbours = values[index : index + 2]
    assert min(neighbours) <= found <= max(neighbours)
    if at % step_ns == 0:
        assert found == values[index]


def test_candles_are_a_price_path_and_can_be_read_on_a_grid() -> None:
    bars = Bars("x", 3 * NS_PER_HOUR, {0: (100, 130, 40, 70)})
    path: PricePath = bars  # the protocol: real candles and models are driven alike
    grid = sample_path(path, start_ns=0, end_ns=3 * NS_PER_HOUR - 1, step_ns=NS_PER_HOUR // 2)
    assert grid.prices_quantums.tolist() == [100, 115, 130, 85, 40, 55]
    with pytest.raises(ValueError, match="no price at 1 grid times"):
        sample_path(bars, start_ns=0, end_ns=3 * NS_PER_HOUR, step_ns=NS_PER_HOUR)


def test_log_returns_leave_out_a_gap_in_the_data() -> None:
    times = [0, 10, 20, 40, 50]  # 20 → 40 is a gap of two steps
    found = log_returns_on_grid(times, [100, 110, 121, 50, 55], step_ns=10)
    assert found == pytest.approx([math.log(1.1)] * 3)


# ── The models ──────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
def test_the_same_seed_gives_the_same_path_bit_for_bit(model: PriceModel) -> None:
    first, again, other = (day_at_one_second(model, seed) for seed in (7, 7, 8))
    assert first.prices_quantums.dtype == np.int64
    assert np.array_equal(first.prices_quantums, again.prices_quantums)
    assert not np.array_equal(first.prices_quantums, other.prices_quantums)
    assert len(first.prices_quantums) == 86_401 and first.end_ns == NS_PER_DAY
    assert first.price_at(0) == START_PRICE  # the start price exactly, not exp(log(it))


def test_gbm_log_returns_have_the_stated_drift_and_volatility() -> None:
    model, step_ns = Gbm(annual_vol=0.8, annual_drift=0.4), NS_PER_HOUR
    returns = model.log_returns(np.random.default_rng(1), 1_000_000, step_ns)
    dt = step_ns / NS_PER_YEAR
    assert returns.std() == pytest.approx(0.8 * math.sqrt(dt), rel=0.005)
    # The mean is (μ − σ²/2)·dt = 1.83e-5 per hour, against a standard error of 8.5e-6.
    assert returns.mean() == pytest.approx((0.4 - 0.32) * dt, abs=4 * 8.5e-6)


def test_merton_drift_is_compensated_so_jumps_add_risk_not_trend() -> None:
    model = MertonJumps(annual_vol=0.5, annual_drift=0.0, jumps_per_year=50, jump_mean=-0.1,
                        jump_std=0.05)  # fmt: skip
    returns = model.log_returns(np.random.default_rng(2), 1_000_000, NS_PER_DAY)
    growth = np.exp(returns)
    # E[e^r] = e^{μ·dt} = 1 with the compensator; without it, e^{λκ·dt} ≈ 0.987.
    assert growth.mean() == pytest.approx(1.0, abs=4 * growth.std() / 1000)
    # Var r = σ²·dt + λ·dt·(m² + s²): the jumps more than triple a day's variance here.
    dt = 1 / 365
    assert returns.var() == pytest.approx(0.25 * dt + 50 * dt * (0.01 + 0.0025), rel=0.03)


def test_garch_returns_have_the_long_run_variance_and_cluster() -> None:
    model = Garch11(omega=1e-6, alpha=0.1, beta=0.85, mu=0.0, step_ns=NS_PER_HOUR)
    returns, variances = model.log_returns(np.random.default_rng(3), 200_000)
    assert returns.var() == pytest.approx(model.long_run_variance, rel=0.05)
    squared = returns**2
    # Volatility clusters: squared returns are autocorrelated (zero for GBM).
    assert np.corrcoef(squared[:-1], squared[1:])[0, 1] > 0.1
    assert variances.min() >= model.omega


def test_garch_on_a_finer_grid_bridges_each_of_its_steps() -> None:
    model = Garch11(omega=1e-6, alpha=0.1, beta=0.85, mu=0.0, step_ns=NS_PER_HOUR)
    path = model.sample(np.random.default_rng(4), start_ns=0, end_ns=NS_PER_DAY,
                        step_ns=NS_PER_SECOND, start_price_quantums=START_PRICE)  # fmt: skip
    again = model.sample(np.random.default_rng(4), start_ns=0, end_ns=NS_PER_DAY,
                         step_ns=NS_PER_HOUR, start_price_quantums=START_PRICE)  # fmt: skip
    assert len(path.prices_quantums) == 86_401
    hourly = path.prices_quantums[::3600]
    # The same hourly GARCH draws underneath, the bridge in between: hourly prices agree to
    # the rounding of exp over sums taken in another order.
    assert np.abs(hourly / again.prices_quantums - 1).max() < 1e-9
    with pytest.raises(ValueError, match="must divide"):
        model.sample(np.random.default_rng(4), start_ns=0, end_ns=NS_PER_DAY,
                     step_ns=7 * NS_PER_SECOND, start_price_quantums=START_PRICE)  # fmt: skip


def test_regimes_take_their_stationary_shares_of_time() -> None:
    model = RegimeSwitch(regimes=((0.5, 0.0), (2.0, -2.0)), switches_per_year=(12.0, 36.0))
    steps = 100 * 8760  # a century of hours: a calm-crash cycle lasts 1/12 + 1/36 of a year
    regime = model.regime_per_step(np.random.default_rng(5), steps, NS_PER_HOUR)
    # Calm is left at 12 a year, crash at 36: calm holds 36 / (12 + 36) = 75% of the time.
    assert (regime == 0).mean() == pytest.approx(0.75, abs=0.03)
    assert 1650 < np.count_nonzero(np.diff(regime)) < 1950  # 900 cycles, 1,800 switches
    assert regime[0] == 0


def test_each_bad_parameter_is_one_problem_and_sampling_refuses_them() -> None:
    assert Gbm(annual_vol=-1.0, annual_drift=math.nan).problems() == [
        "annual_drift must be a finite number, got nan"
    ]  # non-finite first: a range check on nan says nothing
    assert len(Gbm(annual_vol=-1.0).problems()) == 1
    assert len(MertonJumps(0.5, 0.0, -1, 9.0, -1.0).problems()) == 3
    assert Garch11(omega=1e-6, alpha=0.2, beta=0.8, mu=0.0, step_ns=1).problems() == [
        "alpha + beta = 1.0 must be < 1 (stationary)"
    ]
    assert len(Garch11(omega=0.0, alpha=-0.1, beta=0.5, mu=0.0, step_ns=0).problems()) == 3
    assert len(RegimeSwitch(regimes=((0.5, 0.0),), switches_per_year=(1.0, 2.0)).problems()) == 1
    assert len(Crash(drop=1.5, over_ns=-1, at_ns=0).problems()) == 2
    for model in MODELS:
        assert model.problems() == []
    with pytest.raises(ValueError, match="stationary"):
        day_at_one_second(Garch11(1e-6, 0.5, 0.5, 0.0, NS_PER_SECOND), 1)


# ── The crash ───────────────────────────────────────────────────────────────────────────────


def test_a_crash_ramps_down_then_holds_and_a_gap_drops_at_once() -> None:
    flat = SampledPath(0, 10, prices([1_000_000] * 11))
    crashed = Crash(drop=0.3, over_ns=40, at_ns=20).apply(flat)
    assert crashed.prices_quantums.tolist() == [
        1_000_000, 1_000_000, 1_000_000, 925_000, 850_000, 775_000, 700_000, 700_000, 700_000,
        700_000, 700_000,
    ]  # fmt: skip
    gap = Crash(drop=0.3, over_ns=0, at_ns=20).apply(flat)
    assert gap.prices_quantums.tolist()[1:4] == [1_000_000, 700_000, 700_000]


@given(
    st.lists(st.integers(1, 2**53), min_size=2, max_size=30),
    st.floats(0.001, 0.999),
    st.integers(0, 300),
    st.integers(-50, 300),
)
def test_the_crash_over_any_path_agrees_with_the_crash_on_its_samples(
    values: list[int], drop: float, over_ns: int, at_ns: int
) -> None:
    path = SampledPath(0, 10, prices(values))
    crash = Crash(drop=drop, over_ns=over_ns, at_ns=at_ns)
    on_samples, over = crash.apply(path), crash.over(path)
    for k in range(len(values)):
        expected = over.price_at(10 * k)
        assert on_samples.price_at(10 * k) == expected
        assert expected is not None and expected <= values[k]
    assert over.price_at(-1) is None


# ── Venue feeds ─────────────────────────────────────────────────────────────────────────────


def feeds_of(
    path: SampledPath,
    seed: int,
    *,
    basis_ppm_std: float = 500.0,
    noise_ppm_std: float | list[float] = 200.0,
    lags_ns: list[int] | None = None,
) -> list[VenueFeed]:
    return venue_feeds(
        path, venues=3, basis_ppm_std=basis_ppm_std, noise_ppm_std=noise_ppm_std,
        rng=np.random.default_rng(seed), start_ns=path.start_ns, end_ns=path.end_ns,
        step_ns=path.step_ns, lags_ns=lags_ns,
    )  # fmt: skip


def test_venues_see_one_path_through_their_own_basis_and_noise() -> None:
    path = SampledPath(0, NS_PER_SECOND, prices([60_000 * USDC] * 20_001))
    feeds = feeds_of(path, seed=1)
    assert [f.name for f in feeds] == ["venue-0", "venue-1", "venue-2"]
    for feed in feeds:
        seen = np.array([feed.price_at(t * NS_PER_SECOND) for t in range(20_001)])
        deviation_ppm = seen / (60_000 * USDC) * 1e6 - 1e6
        assert deviation_ppm.mean() == pytest.approx(feed.basis_ppm, abs=10)
        assert deviation_ppm.std() == pytest.approx(200, rel=0.05)
    assert len({f.basis_ppm for f in feeds}) == 3
    again = feeds_of(path, seed=1)
    assert all(np.array_equal(a.noise_ppm, b.noise_ppm) for a, b in zip(feeds, again, strict=True))


def test_a_stale_venue_reports_the_price_of_its_lag_ago_and_one_venue_can_be_swapped() -> None:
    rising = SampledPath(0, 10, prices(list(range(1_000_000, 1_000_101))))
    feeds = feeds_of(rising, seed=2, basis_ppm_std=0.0, noise_ppm_std=[0.0, 0.0, 0.0],
                     lags_ns=[0, 0, 100])  # fmt: skip
    assert feeds[0].price_at(500) == 1_000_050
    assert feeds[2].price_at(500) == 1_000_040  # 100 ns stale: ten samples behind
    assert feeds[2].price_at(50) is None  # nothing published yet that long ago
    assert feeds[0].price_at(1001) is None  # after the last report slot
    thin = dataclasses.replace(feeds[1], base=Crash(0.5, 0, 300).over(rising))
    assert thin.price_at(500) == 500_025 and feeds[1].price_at(500) == 1_000_050
    with pytest.raises(ValueError, match="2 values for 3 venues"):
        feeds_of(rising, seed=2, lags_ns=[0, 1])


# ── Fitting GARCH ───────────────────────────────────────────────────────────────────────────


def test_garch_fit_recovers_the_parameters_of_a_simulated_series() -> None:
    truth = Garch11(omega=5e-8, alpha=0.1, beta=0.85, mu=2e-5, step_ns=NS_PER_HOUR)
    returns, _ = truth.log_returns(np.random.default_rng(11), 30_000)
    fitted = fit_garch(returns, step_ns=NS_PER_HOUR)
    assert fitted.alpha == pytest.approx(truth.alpha, abs=0.02)
    assert fitted.beta == pytest.approx(truth.beta, abs=0.03)
    assert fitted.long_run_variance == pytest.approx(truth.long_run_variance, rel=0.1)
    assert fitted.mu == pytest.approx(truth.mu, abs=3 * math.sqrt(truth.long_run_variance / 30_000))
    assert fitted.step_ns == NS_PER_HOUR and fitted.problems() == []


def test_garch_fit_refuses_too_short_or_flat_series() -> None:
    with pytest.raises(ValueError, match="at least 100"):
        fit_garch(np.zeros(50), step_ns=NS_PER_HOUR)
    with pytest.raises(ValueError, match="do not vary"):
        fit_garch(np.zeros(500), step_ns=NS_PER_HOUR)


@pytest.mark.skipif(not BTC_1H.exists(), reason=f"{BTC_1H} absent: the shared data is not here")
def test_garch_fitted_on_real_bitcoin_hours_is_stationary_and_clusters() -> None:
    candles = read_candles(BTC_1H)
    times, closes = zip(*candles.closes, strict=True)
    returns = log_returns_on_grid(times, closes, candles.cadence_ns)
    assert len(returns) > 70_000
    fitted = fit_garch(returns, step_ns=candles.cadence_ns)
    assert fitted.problems() == []
    assert fitted.alpha + fitted.beta < 1
    # Crypto volatility clusters strongly: α well above 0, persistence α + β near 1.
    assert 0.02 < fitted.alpha < 0.3 and fitted.alpha + fitted.beta > 0.9
