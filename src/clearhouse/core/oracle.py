"""Price aggregation: index from publishers' reports, mark, EWMA volatility and TWAPs (SPEC §5).

Pure functions over values. The engine owns ``OracleState`` and assigns what these return.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from clearhouse.core import limits
from clearhouse.core.ids import Address, OracleId
from clearhouse.core.params import USD, OracleParams
from clearhouse.core.surface import SviSlice
from clearhouse.core.units import NS_PER_YEAR, PPB_ONE, PPM_ONE, div_ceil, div_floor, isqrt_ceil

RATE_ONE = 1_000_000  # a rate feed's index at par: 1.000000 USD per unit of the quote currency
RETURN_SCALE = 10**9  # per-sample returns are kept in parts per billion
VARIANCE_SCALE = RETURN_SCALE**2  # so variances are in parts per 10**18


class PriceStatus(IntEnum):
    UNINITIALIZED = 0  # never had a quorum
    FRESH = 1
    STALE = 2  # no quorum of fresh, in-band reports: no price-dependent action runs
    BREAKER_HELD = 3  # a move beyond the breaker without a supermajority: treated as stale


@dataclass(frozen=True, slots=True)
class Report:
    """A publisher's latest report, as it was sent: in its own quote currency."""

    publisher: Address
    price_quantums: int
    confidence_quantums: int
    timestamp_ns: int
    quote: str = USD


@dataclass(frozen=True, slots=True)
class Aggregate:
    status: PriceStatus
    price_quantums: int  # 0 unless FRESH
    included_weight: int
    total_weight: int
    breaker_tripped: bool = False
    held_price_quantums: int = 0  # BREAKER_HELD: the price the quorum reports, not yet accepted


@dataclass(slots=True)
class OracleState:
    """What the venue knows about one index. Part of state: every field is an integer."""

    params: OracleParams
    reports: dict[Address, Report] = field(default_factory=dict)
    status: PriceStatus = PriceStatus.UNINITIALIZED
    index_price_quantums: int = 0  # last good index (kept while stale, never used while stale)
    last_fresh_ns: int = 0
    fresh_since_ns: int = 0  # start of the current run of fresh blocks (0: not fresh)
    restart_guard: bool = False  # armed by an outage longer than outage_ns
    cooling_off_until_ns: int = 0
    held_since_ns: int = 0  # when the breaker started holding a quorum's new price
    variance_e18: int = 0  # EWMA variance of per-sample returns, parts per 10**18
    vol_sample_ns: int = 0
    vol_sample_price_quantums: int = 0
    twap_samples: deque[tuple[int, int]] = field(
        default_factory=lambda: deque(maxlen=limits.twap_samples_max)
    )
    twap_samples_taken: int = 0  # sample n lives in state-root slot n % twap_samples_max
    surfaces: dict[Address, tuple[int, tuple[SviSlice, ...]]] = field(default_factory=dict)
    surface: tuple[SviSlice, ...] = ()  # the median publisher's surface, while a quorum of
    surface_timestamp_ns: int = 0  # publishers' surfaces is fresh (empty: options are stale)
    surface_version: int = 0  # counts every change of the fresh surfaces: what caches key on
    surface_fresh: tuple[Address, ...] = ()  # publishers whose surfaces are fresh (quorum met)

    def is_usable(self) -> bool:
        """May price-dependent actions (trades, withdrawals) run on this index?"""
        return self.status is PriceStatus.FRESH

    def encode(self) -> dict[str, object]:
        return {
            "id": self.params.oracle_id,
            "reports": [
                [r.publisher, r.price_quantums, r.confidence_quantums, r.timestamp_ns, r.quote]
                for _, r in sorted(self.reports.items())
            ],
            "status": int(self.status),
            "index": self.index_price_quantums,
            "last_fresh_ns": self.last_fresh_ns,
            "fresh_since_ns": self.fresh_since_ns,
            "restart_guard": self.restart_guard,
            "cooling_off_until_ns": self.cooling_off_until_ns,
            "held_since_ns": self.held_since_ns,
            "variance_e18": self.variance_e18,
            "vol_sample": [self.vol_sample_ns, self.vol_sample_price_quantums],
            "twap_samples_taken": self.twap_samples_taken,
            "surfaces": [
                [publisher, timestamp, [_slice(s) for s in slices]]
                for publisher, (timestamp, slices) in sorted(self.surfaces.items())
            ],
            "surface": [self.surface_version, self.surface_timestamp_ns, list(self.surface_fresh)],
        }


def quote_rates(params: OracleParams, oracles: Mapping[OracleId, OracleState]) -> dict[str, int]:
    """The rate of each quote currency ``params`` converts whose rate feed is fresh now: that
    feed's index, in USD quantums per whole unit (``RATE_ONE`` at par). A quote whose feed is
    stale, held by its breaker or never priced has no rate: its reports are left out."""
    rates: dict[str, int] = {}
    for feed in params.quotes:
        rate_oracle = oracles[feed.rate_oracle_id]
        assert not rate_oracle.params.quotes, "a rate feed takes USD reports only"
        if rate_oracle.is_usable():
            assert rate_oracle.index_price_quantums > 0, feed
            rates[feed.quote] = rate_oracle.index_price_quantums
    return rates


def in_usd(reports: Iterable[Report], rates: Mapping[str, int]) -> list[Report]:
    """The reports in USD, ready for the median: a USD report as it is; one in another quote
    currency converted at that currency's current rate; one whose quote has no rate now (its
    feed is stale) left out, never converted at an old rate, so that its weight counts
    against the quorum instead of for a price no one can vouch for.

    price_usd = ⌊price × rate / RATE_ONE⌋ (rounded down: at most one quantum, far below any
    tick; the median takes one report's price, so neither longs nor shorts gain from it), and
    confidence_usd = ⌈confidence × rate / RATE_ONE⌉ (rounded up: confidence widens margins,
    so it rounds against the account). A converted price of 0 or above ``price_quantums_max``
    is left out too: no index may be made of it."""
    converted: list[Report] = []
    for report in reports:
        if report.quote == USD:
            converted.append(report)
            continue
        rate = rates.get(report.quote)
        if rate is None:
            continue
        assert rate > 0, (report.quote, rate)
        price = div_floor(report.price_quantums * rate, RATE_ONE)
        if not 0 < price <= limits.price_quantums_max:
            continue
        confidence = div_ceil(report.confidence_quantums * rate, RATE_ONE)
        converted.append(
            Report(report.publisher, price, min(confidence, price), report.timestamp_ns, USD)
        )
    return converted


def usd_reports(oracle: OracleState, oracles: Mapping[OracleId, OracleState]) -> list[Report]:
    """An oracle's latest reports in USD, at the current rates of their quote currencies
    (``quote_rates`` over the venue's ``oracles``; see ``in_usd``)."""
    if not oracle.params.quotes:
        return list(oracle.reports.values())
    return in_usd(oracle.reports.values(), quote_rates(oracle.params, oracles))


def median_confidence(
    oracle: OracleState, oracles: Mapping[OracleId, OracleState], now_ns: int
) -> int:
    """The median confidence of the fresh reports the index could use (in USD, within its
    band), at most the band: an outlier publisher cannot set anyone's margin; 0 without any."""
    oldest = now_ns - oracle.params.staleness_ns
    index = oracle.index_price_quantums
    band = oracle.params.band_ppm * index // PPM_ONE
    fresh = sorted(
        r.confidence_quantums for r in usd_reports(oracle, oracles)
        if r.timestamp_ns >= oldest and abs(r.price_quantums - index) <= band
    )  # fmt: skip
    return min(fresh[(len(fresh) - 1) // 2], band) if fresh else 0


def _slice(s: SviSlice) -> list[int]:
    """A slice in its oracle's leaf; the forward basis only where reported (leaves of surfaces
    without one are what they always were)."""
    found = [s.expiry_ns, s.a_e9, s.b_e9, s.rho_e9, s.m_e9, s.s_e9]
    if s.forward_basis_ppm is not None:
        found.append(s.forward_basis_ppm)
    return found


def weighted_median(entries: list[tuple[int, int]]) -> int:
    """Lower weighted median of (price, weight) pairs: the first price at which the cumulative
    weight reaches half the total. Deterministic for ties (pairs sort by price, then weight)."""
    assert entries, "median of nothing"
    ordered = sorted(entries)
    total = sum(weight for _, weight in ordered)
    assert total > 0, total
    running = 0
    for price, weight in ordered:
        running += weight
        if running * 2 >= total:
            return price
    raise AssertionError("unreachable: cumulative weight reaches the total")


def aggregate(
    reports: Iterable[Report], params: OracleParams, *, now_ns: int, previous_price: int
) -> Aggregate:
    """The index: weighted median of fresh reports within the band around their median, given a
    quorum; a move beyond the breaker against ``previous_price`` needs a supermajority."""
    weights = {p.address: p.weight for p in params.publishers}
    total_weight = sum(weights.values())
    fresh = [
        (r.price_quantums, weights[r.publisher])
        for r in reports
        if r.publisher in weights and now_ns - params.staleness_ns <= r.timestamp_ns <= now_ns
    ]
    if not fresh:
        return Aggregate(PriceStatus.STALE, 0, 0, total_weight)
    center = weighted_median(fresh)
    in_band = [(p, w) for p, w in fresh if abs(p - center) * PPM_ONE <= params.band_ppm * center]
    included = sum(w for _, w in in_band)
    if included * PPM_ONE < params.quorum_ppm * total_weight:
        return Aggregate(PriceStatus.STALE, 0, included, total_weight)
    price = weighted_median(in_band)
    moved = previous_price > 0 and (
        abs(price - previous_price) * PPM_ONE > params.breaker_move_ppm * previous_price
    )
    if not moved:
        return Aggregate(PriceStatus.FRESH, price, included, total_weight)
    if included * PPM_ONE >= params.breaker_supermajority_ppm * total_weight:
        return Aggregate(PriceStatus.FRESH, price, included, total_weight, breaker_tripped=True)
    return Aggregate(PriceStatus.BREAKER_HELD, 0, included, total_weight, held_price_quantums=price)


def samples_per_year(sample_interval_ns: int) -> int:
    return NS_PER_YEAR // sample_interval_ns


def initial_variance_e18(params: OracleParams) -> int:
    """Per-sample variance equivalent to the configured initial annual volatility (rounded up)."""
    sigma_e9 = params.vol_initial_annual_ppm * (RETURN_SCALE // PPM_ONE)
    return div_ceil(sigma_e9 * sigma_e9, samples_per_year(params.vol_sample_interval_ns))


def ewma_variance_e18(
    variance_e18: int,
    *,
    previous_price: int,
    price: int,
    lambda_ppm: int,
    elapsed_ns: int = 0,
    sample_interval_ns: int = 0,
) -> int:
    """RiskMetrics EWMA in block time: var' = d·var + (1 − d)·r², r the simple return in ppb.

    λ is the weight per sample interval (a minute), so a return seen over k whole intervals
    (a slow block, a gap, a backtest at a 5-minute or hourly cadence) weighs as the k per-minute
    returns it stands for would have: d = λ^k, and r² is scaled to one interval,
    r² × interval / elapsed, so that a gap never reads as one violent minute. The memory is in
    time, not in samples: an hour of calm forgets a crash as fast whether it came in 60
    samples or in one. With one interval (k = 1) this is the plain λ update. |r| and var'
    round up: volatility feeds margins, so rounding goes against the account.
    """
    assert previous_price > 0 and price > 0, (previous_price, price)
    return_e9 = div_ceil(abs(price - previous_price) * RETURN_SCALE, previous_price)
    squared = return_e9 * return_e9
    intervals = 1
    if elapsed_ns > sample_interval_ns > 0:
        squared = div_ceil(squared * sample_interval_ns, elapsed_ns)
        intervals = elapsed_ns // sample_interval_ns
    decay_e18 = decay_power_e18(lambda_ppm, intervals)
    weighted = decay_e18 * variance_e18 + (DECAY_ONE - decay_e18) * squared
    return div_ceil(weighted, DECAY_ONE)


DECAY_ONE = 10**18  # λ^k in parts per 10**18
DECAY_INTERVALS_MAX = 1 << 20  # λ^k for more intervals than this (two years of minutes) is λ^max


def decay_power_e18(lambda_ppm: int, intervals: int) -> int:
    """λ^k in parts per 10**18, by squaring, each product rounded down (exact for k = 1); the
    loop is bounded by the bits of k, and k by DECAY_INTERVALS_MAX (beyond it, λ^k is 0 for
    any λ < 1 at this precision anyway)."""
    assert 0 < lambda_ppm < PPM_ONE, lambda_ppm
    assert intervals >= 1, intervals
    remaining = min(intervals, DECAY_INTERVALS_MAX)
    base = lambda_ppm * (DECAY_ONE // PPM_ONE)
    result = DECAY_ONE
    while remaining:
        if remaining & 1:
            result = result * base // DECAY_ONE
        base = base * base // DECAY_ONE
        remaining >>= 1
    assert 0 <= result < DECAY_ONE, result
    return result


def annual_volatility_ppm(variance_e18: int, sample_interval_ns: int) -> int:
    """σ_annual = sqrt(var_per_sample × samples per year), in ppm, rounded up."""
    sigma_e9 = isqrt_ceil(variance_e18 * samples_per_year(sample_interval_ns))
    return div_ceil(sigma_e9, RETURN_SCALE // PPM_ONE)


@dataclass(frozen=True, slots=True)
class Twap:
    price_quantums: int  # 0 when nothing covers the window
    samples: int  # samples taken inside the window
    covered_ns: int  # how much of the window the samples cover


def twap_window(
    samples: Iterable[tuple[int, int]], *, start_ns: int, end_ns: int, max_hold_ns: int = 0
) -> Twap:
    """Time-weighted average price over [start_ns, end_ns).

    Each sample holds until the next one or ``end_ns``, but for at most ``max_hold_ns`` when that
    is set: across an oracle outage the last price does not stand in for the missing time, which
    stays uncovered. The time before the first sample in the window is held at the last sample
    before it (within the same bound). The average rounds down.
    """
    assert start_ns < end_ns, (start_ns, end_ns)
    assert max_hold_ns >= 0, max_hold_ns
    ordered = [s for s in samples if s[0] < end_ns]
    weighted = 0
    covered = 0
    count = 0
    for index, (timestamp_ns, price) in enumerate(ordered):
        next_ns = ordered[index + 1][0] if index + 1 < len(ordered) else end_ns
        if max_hold_ns:
            next_ns = min(next_ns, timestamp_ns + max_hold_ns)
        span_start = max(timestamp_ns, start_ns)
        count += timestamp_ns >= start_ns
        if next_ns <= span_start:
            continue
        weighted += price * (next_ns - span_start)
        covered += next_ns - span_start
    if covered == 0:
        return Twap(0, 0, 0)
    return Twap(weighted // covered, count, covered)


def twap(samples: Iterable[tuple[int, int]], *, start_ns: int, end_ns: int) -> tuple[int, int]:
    """(price, samples in the window) of ``twap_window`` with samples held until the next one."""
    result = twap_window(samples, start_ns=start_ns, end_ns=end_ns)
    return result.price_quantums, result.samples


def mark_price(*, index_price: int, ema_basis: int, impact_mid: int | None, band_ppm: int) -> int:
    """Mark = median(index + EMA of basis, impact mid, index), held within ``band_ppm`` of the
    index. A missing impact mid counts as the index, so that a thin or empty book never moves
    the mark on its own; the band bounds what a dislocated book can do while it lasts, and how
    far the mark can jump when it ends. The band's edges round toward the index."""
    assert index_price > 0 and 0 <= band_ppm < PPM_ONE, (index_price, band_ppm)
    candidates = sorted([index_price + ema_basis, impact_mid or index_price, index_price])
    room = index_price * band_ppm // PPM_ONE
    return max(min(candidates[1], index_price + room), index_price - room, 1)


def basis_ema_step(*, ema_basis: int, basis: int, elapsed_ns: int, time_constant_ns: int) -> int:
    """The EMA of the basis after a sample that stood for ``elapsed_ns`` of block time.

    The weight is elapsed / (time constant + elapsed), floored, and the step rounds toward the
    old value: however a span Δt is cut into blocks, the EMA moves at most
    (1 − e^(−Δt/τ)) ≤ Δt/τ of the largest gap between a sample and where it started. Whoever
    sends commands decides how many blocks there are, not how much time passes.
    """
    assert elapsed_ns >= 0 and time_constant_ns > 0, (elapsed_ns, time_constant_ns)
    weight_ppm = elapsed_ns * PPM_ONE // (time_constant_ns + elapsed_ns)
    gap = (basis - ema_basis) * weight_ppm
    step = abs(gap) // PPM_ONE
    return ema_basis + (step if gap >= 0 else -step)


def premium_ppb(*, impact_mid: int | None, index_price: int) -> int:
    """(impact mid − index) / index in ppb, rounded toward zero; 0 without an impact mid."""
    assert index_price > 0, index_price
    if impact_mid is None:
        return 0
    difference = (impact_mid - index_price) * PPB_ONE
    magnitude = abs(difference) // index_price
    return magnitude if difference >= 0 else -magnitude
