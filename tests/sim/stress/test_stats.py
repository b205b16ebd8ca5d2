"""Risk statistics of the stress lab (``clearhouse.sim.stress.stats``): percentiles across paths,
drawdowns, the within-path helpers, and margin backtesting checked against closed forms,
published tables (Basel's traffic light, Jorion's Kupiec regions) and the margin backtest's own
tests in ``sim.backtest``."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.sim import backtest
from clearhouse.sim.stress.stats import (
    Drawdown,
    Episode,
    LikelihoodRatio,
    Zone,
    adl_overshoot,
    attacker_pnl,
    breaches_per_250,
    capital_efficiency,
    christoffersen_independence,
    conditional_coverage,
    kupiec_pof,
    liquidation_episodes,
    liquidation_slippage_ppm,
    liquidations_at_risk,
    margin_backtest,
    max_drawdown,
    percentile,
    traffic_light,
    value_at_risk,
)

CHI2_95 = 3.841458820694124  # χ²(1) at 95%


def chi2_1_sf(statistic: float) -> float:
    """χ²(1)'s tail in closed form: P(Z² > x) = erfc(√(x/2))."""
    return math.erfc(math.sqrt(statistic / 2))


# ── Across paths ────────────────────────────────────────────────────────────────────────────


def test_percentile_is_the_nearest_rank_never_an_interpolation() -> None:
    twenty = list(range(1, 21))
    assert percentile(twenty, 0.95) == 19  # ⌈0.95 · 20⌉ = 19 exactly, with no float slop
    assert percentile(twenty, 0.951) == 20
    assert percentile([4, 1, 3, 2], 0.5) == 2  # not 2.5: a path's value, not a blend
    assert percentile([5, 7], 0.0) == 5 and percentile([5, 7], 1.0) == 7
    assert percentile([0.5, 0.25], 0.5) == 0.25
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)
    with pytest.raises(ValueError, match="outside"):
        percentile([1], 1.5)


@given(st.lists(st.integers(-(10**15), 10**15), min_size=1, max_size=200), st.floats(0, 1))
def test_percentile_is_the_smallest_value_with_q_of_the_sample_at_or_below_it(
    values: list[int], q: float
) -> None:
    found = percentile(values, q)
    share = Fraction(q).limit_denominator(10**9)
    assert found in values
    assert Fraction(sum(v <= found for v in values), len(values)) >= share
    smaller = [v for v in values if v < found]
    if smaller:  # the next value down does not reach q
        assert Fraction(sum(v <= max(smaller) for v in values), len(values)) < share


def test_value_at_risk_and_liquidations_at_risk_are_the_95th_percentile_across_paths() -> None:
    debts = [0] * 17 + [5, 40, 900]  # 20 paths: three ended with insolvent debt
    assert value_at_risk(debts) == 40  # the 19th of 20: one path in 20 is worse
    assert value_at_risk(debts, q=0.99) == 900
    notionals = [10 * k for k in range(100)]
    assert liquidations_at_risk(notionals) == 940  # the 95th smallest of 100


def test_max_drawdown_reports_the_deepest_fall_absolute_and_relative() -> None:
    fund = [100, 120, 90, 130, 65, 70]
    assert max_drawdown(fund) == Drawdown(absolute=65, relative=0.5, peak_index=3, trough_index=4)
    # A small fund halved early, a large one dented later: the maxima fall apart.
    assert max_drawdown([10, 5, 1000, 900]) == Drawdown(100, 0.5, 2, 3)
    assert max_drawdown([3, 4, 5]) == Drawdown(0, 0.0, 0, 0)
    assert max_drawdown([0, -5]).relative == 0.0  # no positive peak: no relative drawdown


@given(st.lists(st.integers(-(10**12), 10**12), min_size=1, max_size=60))
def test_max_drawdown_is_the_largest_fall_from_any_earlier_point(series: list[int]) -> None:
    found = max_drawdown(series)
    brute = max(series[i] - series[j] for j in range(len(series)) for i in range(j + 1))
    assert found.absolute == brute
    assert series[found.peak_index] - series[found.trough_index] == brute
    assert found.peak_index <= found.trough_index
    peaks = [max(series[: j + 1]) for j in range(len(series))]
    relative = [(p - v) / p for p, v in zip(peaks, series, strict=True) if p > 0]
    assert found.relative == pytest.approx(max(relative, default=0.0))


def test_attacker_pnl_counts_what_left_and_what_came_in() -> None:
    # Deposited 1,000, withdrew 1,500 along the way, 200 left: the attack made 700.
    assert attacker_pnl(final_equity=200, withdrawals=1500, deposits=1000) == 700


# ── Within a path ───────────────────────────────────────────────────────────────────────────


def test_adl_overshoot_is_what_counterparties_lost_beyond_the_shortfall() -> None:
    assert adl_overshoot([100, 50, 30], [80, 60, 30]) == 20  # only the first took too much
    assert adl_overshoot([], []) == 0
    with pytest.raises(ValueError, match="2 values against 1"):
        adl_overshoot([1, 2], [1])


def test_liquidation_slippage_is_signed_against_the_account_and_weighted_by_notional() -> None:
    assert liquidation_slippage_ppm([1], [99], [100]) == 10_000  # a long sold 1% below mark
    assert liquidation_slippage_ppm([-1], [101], [100]) == 10_000  # a short bought 1% above
    assert liquidation_slippage_ppm([1], [101], [100]) == -10_000  # better than mark
    # 3 units at 1% worse and 1 unit at 1% better: (3 − 1) / 4 of 1%.
    assert liquidation_slippage_ppm([3, -1], [99, 99], [100, 100]) == 5_000
    assert liquidation_slippage_ppm([], [], []) == 0.0


def test_time_to_liquidate_runs_from_first_liquidatable_to_safe_or_flat() -> None:
    times = [0, 10, 20, 30, 40, 50]
    episodes = liquidation_episodes(times, [False, True, True, False, True, True])
    assert episodes == [Episode(10, 30), Episode(40, None)]
    assert [e.duration_ns for e in episodes] == [20, None]  # the second outlived the path
    assert liquidation_episodes(times, [False] * 6) == []


def test_capital_efficiency_is_mean_leverage_over_account_periods_with_a_position() -> None:
    # 10× and 20× while holding; the flat period does not count.
    assert capital_efficiency([1000, 0, 500], [100, 0, 25]) == 15.0
    assert capital_efficiency([0], [0]) == 0.0
    with pytest.raises(ValueError, match="no initial margin"):
        capital_efficiency([1000], [0])


# ── Kupiec ──────────────────────────────────────────────────────────────────────────────────


def test_kupiec_for_8_breaches_in_250_at_99_percent_rejects_the_margin() -> None:
    # By hand: LR = −2[242 ln 0.99 + 8 ln 0.01] + 2[242 ln(242/250) + 8 ln(8/250)].
    by_hand = -2 * (242 * math.log(0.99) + 8 * math.log(0.01)) + 2 * (
        242 * math.log(242 / 250) + 8 * math.log(8 / 250)
    )
    found = kupiec_pof(8, 250)
    assert found.statistic == pytest.approx(by_hand, rel=1e-12)
    assert found.statistic == pytest.approx(7.7336, abs=1e-4)
    assert found.p_value == pytest.approx(chi2_1_sf(by_hand), rel=1e-9)
    assert found.p_value < 0.01
    statistic, p_value = found  # a pair, as the tests are usually quoted
    assert (statistic, p_value) == (found.statistic, found.p_value)
    assert found.p_value == pytest.approx(backtest.kupiec_pof(8, 250), rel=1e-9)


@pytest.mark.parametrize(
    ("observations", "p", "low", "high"),
    [
        (510, 0.01, 2, 10), (1000, 0.01, 5, 16), (255, 0.025, 3, 11), (510, 0.025, 7, 20),
        (1000, 0.025, 16, 35), (255, 0.05, 7, 20), (510, 0.05, 17, 35), (1000, 0.05, 38, 64),
    ],
)  # fmt: skip
def test_kupiec_keeps_jorions_non_rejection_regions(
    observations: int, p: float, low: int, high: int
) -> None:
    """Jorion, Value at Risk, table 'Model backtesting, 95% nonrejection test confidence
    regions' (after Kupiec 1995): the breach counts not rejected at 5%."""
    kept = [x for x in range(observations + 1) if kupiec_pof(x, observations, 1 - p).p_value > 0.05]
    assert (kept[0], kept[-1]) == (low, high)
    assert kept == list(range(low, high + 1))


def test_kupiec_with_no_breach_or_only_breaches_is_finite() -> None:
    none = kupiec_pof(0, 250)
    assert none.statistic == pytest.approx(-2 * 250 * math.log(0.99))
    assert none.p_value == pytest.approx(chi2_1_sf(none.statistic))
    every = kupiec_pof(250, 250)
    assert every.statistic == pytest.approx(-2 * 250 * math.log(0.01))
    assert every.p_value < 1e-100
    with pytest.raises(ValueError, match="breaches of"):
        kupiec_pof(3, 2)
    with pytest.raises(ValueError, match="coverage_target"):
        kupiec_pof(1, 2, coverage_target=1.0)


@given(st.integers(1, 5000), st.data(), st.floats(0.5, 0.999))
def test_kupiec_is_a_proper_likelihood_ratio(
    observations: int, data: st.DataObject, target: float
) -> None:
    breaches = data.draw(st.integers(0, observations))
    found = kupiec_pof(breaches, observations, target)
    assert math.isfinite(found.statistic) and found.statistic >= 0
    assert 0 <= found.p_value <= 1


@given(st.integers(1, 50), st.integers(2, 1000), st.integers(1, 999))
def test_kupiec_is_zero_when_the_breach_rate_is_exactly_the_target(
    multiple: int, denominator: int, numerator: int
) -> None:
    breach_share = Fraction(numerator % denominator or 1, denominator)
    observations = multiple * breach_share.denominator
    breaches = multiple * breach_share.numerator
    found = kupiec_pof(breaches, observations, coverage_target=float(1 - breach_share))
    assert found.statistic == pytest.approx(0.0, abs=1e-9)
    assert found.p_value == pytest.approx(1.0, abs=1e-4)
    if breach_share == Fraction(1, 100):  # the usual target, exactly
        assert kupiec_pof(breaches, observations).statistic == 0.0


# ── Christoffersen ──────────────────────────────────────────────────────────────────────────


def test_christoffersen_counts_transitions_as_the_closed_form_does() -> None:
    sequence = [False, False, True, True, False, False, False, True, False, False]
    # Pairs: 00 01 11 10 00 00 01 10 00 → n00 = 4, n01 = 2, n10 = 2, n11 = 1.
    pi, pi01, pi11 = 3 / 9, 2 / 6, 1 / 3
    restricted = 6 * math.log(1 - pi) + 3 * math.log(pi)
    unrestricted = (
        4 * math.log(1 - pi01) + 2 * math.log(pi01) + 2 * math.log(1 - pi11) + math.log(pi11)
    )
    found = christoffersen_independence(sequence)
    assert found.statistic == pytest.approx(-2 * (restricted - unrestricted), abs=1e-12)
    assert found.statistic == pytest.approx(0.0, abs=1e-12)  # π₀₁ = π₁₁: no dependence at all


def test_christoffersen_rejects_clustered_breaches() -> None:
    clustered = [False] * 120 + [True] * 10 + [False] * 120
    spread = [i % 25 == 0 for i in range(250)]
    assert christoffersen_independence(clustered).p_value < 0.001
    assert christoffersen_independence(spread).p_value > 0.05


@pytest.mark.parametrize("sequence", [[], [True], [False] * 30, [True] * 30, [False] * 29 + [True]])
def test_christoffersen_on_degenerate_sequences_has_nothing_to_reject(
    sequence: list[bool],
) -> None:
    assert christoffersen_independence(sequence) == LikelihoodRatio(0.0, 1.0)


@given(st.lists(st.booleans(), max_size=300))
def test_christoffersen_agrees_with_the_margin_backtest_and_is_a_proper_ratio(
    sequence: list[bool],
) -> None:
    found = christoffersen_independence(sequence)
    assert math.isfinite(found.statistic) and found.statistic >= 0
    assert 0 <= found.p_value <= 1
    if len(sequence) >= 2:
        assert found.p_value == pytest.approx(
            backtest.christoffersen_independence(sequence), abs=1e-9
        )


@given(st.lists(st.booleans(), min_size=1, max_size=300))
def test_conditional_coverage_adds_both_statistics_on_two_degrees_of_freedom(
    sequence: list[bool],
) -> None:
    found = conditional_coverage(sequence)
    pof = kupiec_pof(sum(sequence), len(sequence))
    independence = christoffersen_independence(sequence)
    assert found.statistic == pytest.approx(pof.statistic + independence.statistic)
    assert found.p_value == pytest.approx(math.exp(-found.statistic / 2))  # χ²(2)'s tail


# ── Coverage and the traffic light ──────────────────────────────────────────────────────────


def test_the_traffic_light_for_250_observations_at_99_percent() -> None:
    zones = [traffic_light(k) for k in range(15)]
    assert zones == [Zone.GREEN] * 5 + [Zone.YELLOW] * 5 + [Zone.RED] * 5


def test_the_traffic_light_scales_to_other_sample_sizes_by_the_same_rule() -> None:
    # 1,000 observations at 99%: 10 expected; P(X ≤ 14) = 91.7%, P(X ≤ 15) = 95.1%.
    assert traffic_light(14, 1000) == Zone.GREEN
    assert traffic_light(15, 1000) == Zone.YELLOW
    assert breaches_per_250(4, 1000) == 1.0


def test_margin_backtest_counts_account_periods_and_clusters_by_period() -> None:
    margin = np.full((6, 2), 100)
    loss = np.array([[100, 0], [101, 0], [0, 150], [0, 0], [-500, 0], [0, 0]])
    held = np.array([[True, True], [True, True], [True, True], [True, False], [True, True],
                     [False, False]])  # fmt: skip
    found = margin_backtest(margin, loss, held=held)
    assert found.observations == 9
    assert found.breaches == 2  # a loss equal to the margin is covered
    assert found.coverage == pytest.approx(7 / 9)
    assert found.breaches_per_250 == pytest.approx(250 * 2 / 9)
    assert found.zone is Zone.RED
    assert found.kupiec == kupiec_pof(2, 9)
    # In time, one flag per period: breached in periods 1 and 2, back to back.
    assert found.christoffersen == christoffersen_independence([False, True, True] + [False] * 3)
    assert found.conditional.statistic == pytest.approx(
        found.kupiec.statistic + found.christoffersen.statistic
    )


def test_margin_backtest_on_one_account_and_its_refusals() -> None:
    found = margin_backtest([10] * 250, [0] * 248 + [11, 11])
    assert (found.breaches, found.zone, found.coverage) == (2, Zone.GREEN, 0.992)
    with pytest.raises(ValueError, match="shapes"):
        margin_backtest([1, 2], [1])
    with pytest.raises(ValueError, match="no account-period"):
        margin_backtest([1], [1], held=[False])
