"""The stress lab's risk statistics (SPEC §13; definitions and worked examples in
docs/STRESS.md): pure functions of numbers the per-path loop collects.

Across paths: value at risk and liquidations at risk (Gauntlet's: the 95th percentile of
insolvent debt and of liquidated notional), drawdowns, attacker PnL. Within a path: ADL
overshoot, liquidation slippage, time to liquidate, capital efficiency. And margin backtesting
as central counterparties run it: coverage, breaches per 250, the Basel traffic light, Kupiec's
proportion-of-failures test, Christoffersen's independence and conditional coverage tests.

Amounts are integers in quote quantums and stay integers where the statistic picks one of them
(a percentile, a drawdown); ratios and test statistics are floats.

Not in ``clearhouse.core``: floats and scipy.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt
from scipy.special import xlogy
from scipy.stats import binom, chi2

COVERAGE_TARGET = 0.99  # CCPs' confidence level for futures margins (EMIR: at least 99%)
RISK_QUANTILE = 0.95  # Gauntlet's VaR and LaR
BASEL_OBSERVATIONS = 250  # a year of trading days: the traffic light's unit
PPM = 1_000_000

_Number = TypeVar("_Number", int, float)


# ── Across paths ────────────────────────────────────────────────────────────────────────────


def percentile(values: Iterable[_Number], q: float) -> _Number:
    """The nearest-rank percentile: the smallest value with at least a share q of the sample at
    or below it, i.e. the ⌈q·n⌉-th smallest (the smallest for q = 0).

    Why this method: it is always one of the paths (a debt some seed produced, which can be run
    again alone), never an interpolation between two paths, and it is exact: q is read as the
    fraction it was written as (0.95 = 19/20), so ⌈q·n⌉ has no float rounding at n = 20, 100…"""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("a percentile of no values")
    if not 0 <= q <= 1:
        raise ValueError(f"q {q} outside [0, 1]")
    share = _fraction(q)
    rank = -(-share.numerator * len(ordered) // share.denominator)  # ⌈q·n⌉
    return ordered[max(rank, 1) - 1]


def value_at_risk(insolvent_debts_quantums: Iterable[int], q: float = RISK_QUANTILE) -> int:
    """VaR: the q-percentile (nearest rank) of insolvent debt across paths, one debt per path
    (0 on a path where every loss stayed within the accounts' equity)."""
    return percentile(insolvent_debts_quantums, q)


def liquidations_at_risk(
    liquidated_notionals_quantums: Iterable[int], q: float = RISK_QUANTILE
) -> int:
    """LaR: the q-percentile (nearest rank) of liquidated notional across paths."""
    return percentile(liquidated_notionals_quantums, q)


@dataclass(frozen=True, slots=True)
class Drawdown:
    """The deepest fall from a running peak: ``absolute`` in the series' unit (its peak and
    trough indices), and ``relative`` = max (peak − value) / peak over points whose running
    peak is positive — the two maxima may fall at different points of the series."""

    absolute: int
    relative: float
    peak_index: int
    trough_index: int


def max_drawdown(series: Sequence[int]) -> Drawdown:
    """The insurance fund's or the vault's drawdown over a path, from its balance at each block."""
    values = np.asarray(series, dtype=np.int64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("a drawdown needs a non-empty series")
    peaks = np.maximum.accumulate(values)
    falls = peaks - values
    trough = int(np.argmax(falls))
    peak = int(np.argmax(values[: trough + 1]))  # the first time the running peak was reached
    positive = peaks > 0
    relative = float((falls[positive] / peaks[positive]).max()) if positive.any() else 0.0
    return Drawdown(int(falls[trough]), relative, peak, trough)


def attacker_pnl(final_equity: int, withdrawals: int, deposits: int) -> int:
    """What an attacker's accounts made: final equity + withdrawals − deposits (quote quantums).
    Positive means the attack paid, whoever lost it (counterparties, the fund, socialization)."""
    return final_equity + withdrawals - deposits


# ── Within a path ───────────────────────────────────────────────────────────────────────────


def adl_overshoot(taken_quantums: Sequence[int], shortfall_quantums: Sequence[int]) -> int:
    """Σ over ADL events of max(0, taken − shortfall): what counterparties lost beyond the
    bankrupt account's shortfall (a deleveraging at a price worse for them than needed)."""
    _same_length(taken_quantums, shortfall_quantums)
    return sum(max(0, t - s) for t, s in zip(taken_quantums, shortfall_quantums, strict=True))


def liquidation_slippage_ppm(
    closed_sizes: Sequence[int], fill_prices: Sequence[int], mark_prices: Sequence[int]
) -> float:
    """Notional-weighted slippage of liquidation fills against the mark at the time, signed
    against the liquidated account (positive = worse for it), in ppm:

        10⁶ · Σ size_i · (mark_i − fill_i) / Σ |size_i| · mark_i

    ``closed_sizes`` is the liquidated position each fill closes (positive: a long, sold off;
    negative: a short, bought back), in any one size unit; prices per whole unit. Each fill's
    slippage (mark − fill) / mark for a long, (fill − mark) / mark for a short, weighted by its
    notional |size| · mark, sums to the formula. 0.0 when there were no fills."""
    _same_length(closed_sizes, fill_prices)
    _same_length(closed_sizes, mark_prices)
    cost = sum(q * (m - f) for q, f, m in zip(closed_sizes, fill_prices, mark_prices, strict=True))
    notional = sum(abs(q) * m for q, m in zip(closed_sizes, mark_prices, strict=True))
    return PPM * cost / notional if notional else 0.0


@dataclass(frozen=True, slots=True)
class Episode:
    """One account's time liquidatable: from the first block it was liquidatable to the first
    later block it was not (safe again, or flat); ``end_ns`` None when the path ended first."""

    start_ns: int
    end_ns: int | None

    @property
    def duration_ns(self) -> int | None:
        return None if self.end_ns is None else self.end_ns - self.start_ns


def liquidation_episodes(
    timestamps_ns: Sequence[int], liquidatable: Sequence[bool]
) -> list[Episode]:
    """An account's episodes from its flag at each block (time-ordered); a flat account is
    not liquidatable, so 'safe or flat' both end an episode."""
    _same_length(timestamps_ns, liquidatable)
    episodes: list[Episode] = []
    started: int | None = None
    for timestamp_ns, flagged in zip(timestamps_ns, liquidatable, strict=True):
        if flagged and started is None:
            started = timestamp_ns
        elif not flagged and started is not None:
            episodes.append(Episode(started, timestamp_ns))
            started = None
    if started is not None:
        episodes.append(Episode(started, None))
    return episodes


def capital_efficiency(
    notionals_quantums: Sequence[int], initial_margins_quantums: Sequence[int]
) -> float:
    """Average allowed leverage: mean of notional / initial margin requirement over the
    account-periods holding a position (notional > 0); 0.0 when none did. The IM is the
    requirement, not the collateral posted: what the venue allows, not what traders chose."""
    _same_length(notionals_quantums, initial_margins_quantums)
    ratios = []
    for notional, initial in zip(notionals_quantums, initial_margins_quantums, strict=True):
        if notional > 0:
            if initial <= 0:
                raise ValueError("a position with no initial margin requirement")
            ratios.append(notional / initial)
    return math.fsum(ratios) / len(ratios) if ratios else 0.0


def _same_length(first: Sequence[object], second: Sequence[object]) -> None:
    if len(first) != len(second):
        raise ValueError(f"{len(first)} values against {len(second)}")


# ── Margin backtesting ──────────────────────────────────────────────────────────────────────


class LikelihoodRatio(NamedTuple):
    """A likelihood-ratio test: the statistic and its χ² p-value (1 degree of freedom, 2 for
    conditional coverage); a pair, so ``lr, p = kupiec_pof(...)`` reads as the tests are quoted."""

    statistic: float
    p_value: float


class Zone(enum.StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


def breaches_per_250(breaches: int, observations: int) -> float:
    """Breaches scaled to 250 observations (the Basel unit: 2.5 expected at 99%)."""
    _check_counts(breaches, observations)
    return BASEL_OBSERVATIONS * breaches / observations


def traffic_light(
    breaches: int, observations: int = BASEL_OBSERVATIONS, coverage_target: float = COVERAGE_TARGET
) -> Zone:
    """The Basel traffic light (BCBS 1996, 'Supervisory framework for the use of backtesting'):
    green while the binomial probability of at most this many breaches is below 95%, red from
    99.99%, yellow in between. For 250 observations at 99%: green 0–4, yellow 5–9, red ≥ 10."""
    _check_counts(breaches, observations)
    at_most = float(binom.cdf(breaches, observations, _breach_probability(coverage_target)))
    if at_most < 0.95:
        return Zone.GREEN
    return Zone.YELLOW if at_most < 0.9999 else Zone.RED


def kupiec_pof(
    breaches: int, observations: int, coverage_target: float = COVERAGE_TARGET
) -> LikelihoodRatio:
    """Kupiec's proportion-of-failures test (1995): is the breach rate 1 − coverage_target?

        LR = −2 ln[(1 − p)^(n−x) p^x] + 2 ln[(1 − x/n)^(n−x) (x/n)^x] ~ χ²(1)

    with p = 1 − coverage_target, x breaches of n, and 0 · ln 0 = 0 (so x = 0 and x = n are
    finite: −2n ln(1 − p) and −2n ln p)."""
    _check_counts(breaches, observations)
    p = _breach_probability(coverage_target)
    rate = breaches / observations
    restricted = _bernoulli_log_likelihood(observations - breaches, breaches, p)
    unrestricted = _bernoulli_log_likelihood(observations - breaches, breaches, rate)
    return _chi2_test(-2 * (restricted - unrestricted), dof=1)


def christoffersen_independence(breach_sequence: Sequence[bool]) -> LikelihoodRatio:
    """Christoffersen's independence test (1998): does a breach make the next one likelier?
    From the transitions n_ij (state i then j; 1 = breach) of the time-ordered sequence:

        π₀₁ = n₀₁ / (n₀₀ + n₀₁), π₁₁ = n₁₁ / (n₁₀ + n₁₁), π = (n₀₁ + n₁₁) / Σ n_ij
        LR = −2 ln[(1 − π)^(n₀₀+n₁₀) π^(n₀₁+n₁₁)]
             + 2 ln[(1 − π₀₁)^n₀₀ π₀₁^n₀₁ (1 − π₁₁)^n₁₀ π₁₁^n₁₁] ~ χ²(1)

    with 0 · ln 0 = 0. A sequence with no breach, only breaches, or fewer than two periods
    gives LR = 0, p = 1: there is nothing to cluster (and nothing to reject)."""
    n00, n01, n10, n11 = _transitions(breach_sequence)
    total = n00 + n01 + n10 + n11
    if total == 0:
        return LikelihoodRatio(0.0, 1.0)
    pi = (n01 + n11) / total
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    restricted = _bernoulli_log_likelihood(n00 + n10, n01 + n11, pi)
    unrestricted = _bernoulli_log_likelihood(n00, n01, pi01) + _bernoulli_log_likelihood(
        n10, n11, pi11
    )
    return _chi2_test(-2 * (restricted - unrestricted), dof=1)


def conditional_coverage(
    breach_sequence: Sequence[bool], coverage_target: float = COVERAGE_TARGET
) -> LikelihoodRatio:
    """Christoffersen's conditional coverage: LR_cc = LR_pof + LR_ind ~ χ²(2), the right rate
    and no clustering at once. LR_pof is Kupiec's over the whole sequence (the usual practice;
    Christoffersen's own version conditions on the first observation, which differs by one
    observation's term)."""
    breaches = sum(bool(b) for b in breach_sequence)
    pof = kupiec_pof(breaches, len(breach_sequence), coverage_target)
    independence = christoffersen_independence(breach_sequence)
    return _chi2_test(pof.statistic + independence.statistic, dof=2)


@dataclass(frozen=True, slots=True)
class MarginBacktest:
    """Coverage of margin over account-periods: an observation is one account holding a
    position over one period; a breach is a loss over the period above the margin held at its
    start (a loss equal to the margin is covered)."""

    observations: int
    breaches: int
    coverage: float  # share of observations covered: 1 − breaches / observations
    breaches_per_250: float
    zone: Zone
    kupiec: LikelihoodRatio
    christoffersen: LikelihoodRatio  # on "some account breached in period t"
    conditional: LikelihoodRatio


def margin_backtest(
    margin_held_quantums: npt.ArrayLike,
    loss_quantums: npt.ArrayLike,
    *,
    held: npt.ArrayLike | None = None,
    coverage_target: float = COVERAGE_TARGET,
) -> MarginBacktest:
    """Arrays of shape (periods,) or (periods, accounts), time along the first axis;
    ``held`` marks the account-periods with a position (all by default). Kupiec and the traffic
    light count every observation; Christoffersen's tests, which need one time series, use
    whether any account breached in each period (clustered breaches: margins that react late)."""
    margin, loss, mask = _backtest_arrays(margin_held_quantums, loss_quantums, held)
    breached = (loss > margin) & mask
    observations, breaches = int(mask.sum()), int(breached.sum())
    if observations == 0:
        raise ValueError("no account-period held a position")
    per_period: npt.NDArray[np.bool_] = np.any(breached.reshape(len(breached), -1), axis=1)
    in_time = [bool(b) for b in per_period]
    independence = christoffersen_independence(in_time)
    pof = kupiec_pof(breaches, observations, coverage_target)
    return MarginBacktest(
        observations=observations,
        breaches=breaches,
        coverage=1 - breaches / observations,
        breaches_per_250=breaches_per_250(breaches, observations),
        zone=traffic_light(breaches, observations, coverage_target),
        kupiec=pof,
        christoffersen=independence,
        conditional=_chi2_test(pof.statistic + independence.statistic, dof=2),
    )


def _backtest_arrays(
    margin_held: npt.ArrayLike, loss: npt.ArrayLike, held: npt.ArrayLike | None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    margin = np.asarray(margin_held, dtype=np.int64)
    losses = np.asarray(loss, dtype=np.int64)
    mask = (
        np.ones(margin.shape, dtype=np.bool_) if held is None else np.asarray(held, dtype=np.bool_)
    )
    if not margin.shape == losses.shape == mask.shape or margin.ndim not in (1, 2):
        raise ValueError(
            f"shapes {margin.shape}, {losses.shape}, {mask.shape}: one (periods[, accounts])"
        )
    return margin, losses, mask


def _transitions(sequence: Sequence[bool]) -> tuple[int, int, int, int]:
    """(n₀₀, n₀₁, n₁₀, n₁₁): consecutive pairs by state (1 = breach)."""
    flags = [bool(b) for b in sequence]
    counts = [0, 0, 0, 0]
    for before, after in itertools.pairwise(flags):
        counts[2 * before + after] += 1
    return counts[0], counts[1], counts[2], counts[3]


def _bernoulli_log_likelihood(misses: int, hits: int, p: float) -> float:
    """ln[(1 − p)^misses · p^hits] with 0 · ln 0 = 0 (scipy's xlogy)."""
    return float(xlogy(misses, 1 - p) + xlogy(hits, p))


def _chi2_test(statistic: float, *, dof: int) -> LikelihoodRatio:
    # A likelihood ratio is ≥ 0; float cancellation can leave −1e-15 where it is 0.
    lr = max(statistic, 0.0)
    return LikelihoodRatio(lr, float(chi2.sf(lr, dof)))


def _fraction(value: float) -> Fraction:
    """A share as the simple fraction it was written as: 0.95 → 19/20, 0.99 → 99/100."""
    return Fraction(value).limit_denominator(10**9)


def _breach_probability(coverage_target: float) -> float:
    """1 − coverage, computed on the fraction: 1 − 0.99 is 0.010000000000000009 in floats, and
    a breach rate of exactly 1 in 100 must test as exactly on target (LR = 0)."""
    if not 0 < coverage_target < 1:
        raise ValueError(f"coverage_target {coverage_target} must be in (0, 1)")
    return float(1 - _fraction(coverage_target))


def _check_counts(breaches: int, observations: int) -> None:
    if not 0 <= breaches <= observations or observations <= 0:
        raise ValueError(f"{breaches} breaches of {observations} observations")
