"""The surface held in state (SPEC §5): its scalar SVI agrees with the numpy twin in
``clearhouse.pricing.svi``, its checks accept the synthetic surface and refuse each kind of bad
surface for its own reason, and ``volatility`` reads slices exactly, holds volatility flat
outside them and interpolates total variance linearly between them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from clearhouse.core import limits, surface
from clearhouse.core.surface import E9, SviSlice, problems, volatility, years
from clearhouse.core.units import NS_PER_DAY, NS_PER_HOUR, NS_PER_SECOND
from clearhouse.pricing import svi
from clearhouse.sim.venue import GENESIS_NS, synthetic_surface

# 2020-01-01 .. 2100-01-01, in ns: the timestamps a surface is published at.
TIMESTAMPS = st.integers(1_577_836_800, 4_102_444_800).map(lambda s: s * NS_PER_SECOND)
LOG_MONEYNESS = st.floats(-1.5, 1.5)


@st.composite
def svi_slices(draw: st.DrawFn, expiry_ns: int = GENESIS_NS + 30 * NS_PER_DAY) -> SviSlice:
    """Raw SVI with b >= 0, |rho| < 1, s > 0 and a positive minimum variance (arbitrage allowed)."""
    found = SviSlice(
        expiry_ns=expiry_ns,
        a_e9=draw(st.integers(-E9 // 2, 2 * E9)),
        b_e9=draw(st.integers(0, 3 * E9)),
        rho_e9=draw(st.integers(-E9 + 1, E9 - 1)),
        m_e9=draw(st.integers(-E9, E9)),
        s_e9=draw(st.integers(1_000_000, 2 * E9)),
    )
    assume(found.minimum_variance() > 1e-6)
    return found


def numpy_twin(found: SviSlice, expiry_years: float = 1.0) -> svi.SviSlice:
    return svi.SviSlice(
        expiry_years, found.a_e9 / 1e9, found.b_e9 / 1e9, found.rho_e9 / 1e9, found.m_e9 / 1e9,
        found.s_e9 / 1e9,
    )  # fmt: skip


# ── The scalar SVI is the numpy SVI ──────────────────────────────────────────────────────


@settings(max_examples=300, deadline=None)
@given(found=svi_slices(), k=st.floats(-3.0, 3.0))
def test_total_variance_agrees_with_the_numpy_twin(found: SviSlice, k: float) -> None:
    twin = float(numpy_twin(found).total_variance(k))
    assert found.total_variance(k) == pytest.approx(twin, rel=1e-12, abs=0.0)


@settings(max_examples=300, deadline=None)
@given(found=svi_slices(), k=st.floats(-3.0, 3.0))
def test_density_agrees_with_the_numpy_twin(found: SviSlice, k: float) -> None:
    twin = numpy_twin(found)
    expected = float(twin.density(k))
    # g(k) is a sum of terms that may cancel: "1e-12 relative" is relative to their magnitude.
    w = float(twin.total_variance(k))
    d = k - twin.m
    root = math.hypot(d, twin.s)
    w1 = twin.b * (twin.rho + d / root)
    scale = (1 + abs(k * w1 / (2 * w))) ** 2 + w1 * w1 / 4 * (1 / w + 0.25) + twin.b / root
    assert math.isfinite(found.density(k))
    assert found.density(k) == pytest.approx(expected, rel=1e-12, abs=1e-12 * scale)


def test_density_is_minus_infinity_without_variance() -> None:
    negative = SviSlice(expiry_ns=1, a_e9=-E9, b_e9=E9 // 10, rho_e9=0, m_e9=0, s_e9=E9 // 10)
    assert negative.total_variance(0.0) < 0
    assert negative.density(0.0) == float("-inf")
    assert float(numpy_twin(negative).density(0.0)) == float("-inf")


# ── problems(): the synthetic surface passes, every defect is refused for its reason ──────


@settings(max_examples=40, deadline=None)
@given(timestamp_ns=TIMESTAMPS)
def test_the_synthetic_surface_is_accepted(timestamp_ns: int) -> None:
    slices = synthetic_surface(timestamp_ns)
    assert len(slices) >= 2
    assert problems(slices, timestamp_ns) == []


def _rejected(
    slices: tuple[SviSlice, ...] | list[SviSlice], timestamp_ns: int, reason: str
) -> None:
    found = problems(slices, timestamp_ns)
    assert len(found) == 1, found
    assert reason in found[0], found


def test_expiries_must_increase() -> None:
    slices = synthetic_surface(GENESIS_NS)
    swapped = (slices[1], slices[0], *slices[2:])
    _rejected(swapped, GENESIS_NS, "distinct, increasing")
    repeated = (slices[0], dataclasses.replace(slices[1], expiry_ns=slices[0].expiry_ns),
                *slices[2:])  # fmt: skip
    _rejected(repeated, GENESIS_NS, "distinct, increasing")


def test_the_first_expiry_must_be_after_the_timestamp() -> None:
    slices = synthetic_surface(GENESIS_NS)
    first = slices[0].expiry_ns
    assert problems(slices, first - 1) == []  # one ns before the first expiry is still fine
    _rejected(slices, first, "after the surface's timestamp")
    _rejected(slices, first + NS_PER_HOUR, "after the surface's timestamp")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"b_e9": -1}, "parameters outside"),
        ({"rho_e9": E9}, "parameters outside"),
        ({"rho_e9": -E9}, "parameters outside"),
        ({"s_e9": 0}, "parameters outside"),
        ({"s_e9": -E9 // 10}, "parameters outside"),
        ({"a_e9": 101 * E9}, "parameters outside"),
        ({"a_e9": -E9}, "not positive everywhere"),
        ({"b_e9": 50 * E9, "a_e9": E9 // 10}, "butterfly arbitrage"),
    ],
)
def test_a_bad_slice_is_refused_for_its_reason(change: dict[str, int], reason: str) -> None:
    slices = list(synthetic_surface(GENESIS_NS))
    slices[1] = dataclasses.replace(slices[1], **change)
    _rejected(slices, GENESIS_NS, reason)


def test_a_butterfly_arbitrage_is_refused_where_the_numpy_twin_sees_it() -> None:
    bad = SviSlice(expiry_ns=GENESIS_NS + NS_PER_DAY, a_e9=E9 // 10, b_e9=50 * E9, rho_e9=0,
                   m_e9=0, s_e9=E9 // 10)  # fmt: skip
    assert bad.minimum_variance() > 0
    points = surface.check_points(bad.total_variance(0.0))
    assert any(bad.density(k) < -1e-9 for k in points)
    assert any("butterfly" in p for p in numpy_twin(bad).problems())
    _rejected([bad], GENESIS_NS, "butterfly arbitrage")


def test_a_calendar_arbitrage_is_refused() -> None:
    slices = list(synthetic_surface(GENESIS_NS))
    early, late = slices[0], slices[1]
    assert problems(slices, GENESIS_NS) == []
    # Swap the smiles, keep the expiries: the later slice now has less total variance.
    slices[0] = dataclasses.replace(late, expiry_ns=early.expiry_ns)
    slices[1] = dataclasses.replace(early, expiry_ns=late.expiry_ns)
    assert slices[1].total_variance(0.0) < slices[0].total_variance(0.0)
    _rejected(slices, GENESIS_NS, "calendar arbitrage between expiries")


def _growing_surface(count: int) -> list[SviSlice]:
    """``count`` calendar-free slices a day apart: the same smile, scaled up with time."""
    return [
        SviSlice(expiry_ns=GENESIS_NS + (i + 1) * NS_PER_DAY, a_e9=(i + 1) * 1_000_000,
                 b_e9=(i + 1) * 500_000, rho_e9=-E9 // 4, m_e9=0, s_e9=E9 // 5)
        for i in range(count)
    ]  # fmt: skip


def test_slice_count_is_bounded() -> None:
    most = _growing_surface(limits.surface_slices_max)
    assert problems(most, GENESIS_NS) == []
    _rejected(_growing_surface(limits.surface_slices_max + 1), GENESIS_NS, "surface_slices_max")
    _rejected([], GENESIS_NS, "surface_slices_max")


# ── volatility(): exact at slices, flat outside, linear in total variance between ─────────


@st.composite
def surfaces(draw: st.DrawFn) -> tuple[int, tuple[SviSlice, ...]]:
    """A timestamp and an arbitrage-free surface of 1..6 slices: one smile whose level and wings
    only grow with expiry (so no calendar arbitrage), expiries hours to a year apart."""
    timestamp_ns = draw(TIMESTAMPS)
    count = draw(st.integers(1, 6))
    gaps = draw(st.lists(st.integers(NS_PER_HOUR, 365 * NS_PER_DAY), min_size=count,
                         max_size=count))  # fmt: skip
    a_steps = draw(st.lists(st.integers(0, E9 // 10), min_size=count, max_size=count))
    b_steps = draw(st.lists(st.integers(0, E9 // 10), min_size=count, max_size=count))
    rho_e9 = draw(st.integers(-9 * E9 // 10, 9 * E9 // 10))
    m_e9 = draw(st.integers(-E9 // 5, E9 // 5))
    s_e9 = draw(st.integers(E9 // 100, E9 // 2))
    slices = []
    expiry_ns, a_e9, b_e9 = timestamp_ns, 1_000_000, 0
    for gap, a_step, b_step in zip(gaps, a_steps, b_steps, strict=True):
        expiry_ns, a_e9, b_e9 = expiry_ns + gap, a_e9 + a_step, b_e9 + b_step
        slices.append(SviSlice(expiry_ns=expiry_ns, a_e9=a_e9, b_e9=b_e9, rho_e9=rho_e9,
                               m_e9=m_e9, s_e9=s_e9))  # fmt: skip
    assume(problems(slices, timestamp_ns) == [])
    return timestamp_ns, tuple(slices)


def twin_surface(slices: tuple[SviSlice, ...], timestamp_ns: int) -> svi.VolSurface:
    return svi.VolSurface(tuple(numpy_twin(s, years(s.expiry_ns - timestamp_ns)) for s in slices))


def slice_vol(found: SviSlice, timestamp_ns: int, k: float) -> float:
    return math.sqrt(found.total_variance(k) / years(found.expiry_ns - timestamp_ns))


@settings(max_examples=100, deadline=None)
@given(surface_at=surfaces(), k=LOG_MONEYNESS, data=st.data())
def test_volatility_at_a_slice_is_that_slices_own(
    surface_at: tuple[int, tuple[SviSlice, ...]], k: float, data: st.DataObject
) -> None:
    timestamp_ns, slices = surface_at
    index = data.draw(st.integers(0, len(slices) - 1))
    found = slices[index]
    read = volatility(slices, timestamp_ns=timestamp_ns, expiry_ns=found.expiry_ns,
                      log_moneyness=k)  # fmt: skip
    own = slice_vol(found, timestamp_ns, k)
    if index in (0, len(slices) - 1):
        assert read == own  # the first and last are read directly
    else:  # w_early + 1.0·(w_late − w_early): w_late up to the last bit of the subtraction
        assert read == pytest.approx(own, rel=1e-15, abs=0.0)


@settings(max_examples=100, deadline=None)
@given(surface_at=surfaces(), k=LOG_MONEYNESS, data=st.data())
def test_volatility_is_flat_outside_the_slices(
    surface_at: tuple[int, tuple[SviSlice, ...]], k: float, data: st.DataObject
) -> None:
    timestamp_ns, slices = surface_at
    first, last = slices[0], slices[-1]
    before = data.draw(st.integers(timestamp_ns + 1, first.expiry_ns))
    after = data.draw(st.integers(last.expiry_ns, last.expiry_ns + 2 * 365 * NS_PER_DAY))
    read_before = volatility(slices, timestamp_ns=timestamp_ns, expiry_ns=before, log_moneyness=k)
    read_after = volatility(slices, timestamp_ns=timestamp_ns, expiry_ns=after, log_moneyness=k)
    assert read_before == slice_vol(first, timestamp_ns, k)
    assert read_after == slice_vol(last, timestamp_ns, k)


@settings(max_examples=100, deadline=None)
@given(surface_at=surfaces(), k=LOG_MONEYNESS, data=st.data())
def test_total_variance_is_linear_in_time_between_slices(
    surface_at: tuple[int, tuple[SviSlice, ...]], k: float, data: st.DataObject
) -> None:
    timestamp_ns, slices = surface_at
    assume(len(slices) >= 2)
    index = data.draw(st.integers(1, len(slices) - 1))
    early, late = slices[index - 1], slices[index]
    expiry_ns = data.draw(st.integers(early.expiry_ns, late.expiry_ns))
    read = volatility(slices, timestamp_ns=timestamp_ns, expiry_ns=expiry_ns, log_moneyness=k)
    share = (expiry_ns - early.expiry_ns) / (late.expiry_ns - early.expiry_ns)
    w_early, w_late = early.total_variance(k), late.total_variance(k)
    expected = w_early * (1 - share) + w_late * share
    assert read * read * years(expiry_ns - timestamp_ns) == pytest.approx(expected, rel=1e-12)
    assert min(w_early, w_late) * (1 - 1e-12) <= expected <= max(w_early, w_late) * (1 + 1e-12)


@settings(max_examples=150, deadline=None)
@given(surface_at=surfaces(), k=LOG_MONEYNESS, data=st.data())
def test_volatility_agrees_with_the_numpy_surface(
    surface_at: tuple[int, tuple[SviSlice, ...]], k: float, data: st.DataObject
) -> None:
    timestamp_ns, slices = surface_at
    last = slices[-1].expiry_ns
    expiry_ns = data.draw(
        st.one_of(
            st.integers(timestamp_ns + NS_PER_SECOND, last + 365 * NS_PER_DAY),
            st.sampled_from([s.expiry_ns for s in slices]),
        )
    )
    read = volatility(slices, timestamp_ns=timestamp_ns, expiry_ns=expiry_ns, log_moneyness=k)
    twin = twin_surface(slices, timestamp_ns)
    expected = float(twin.volatility(np.array(k), years(expiry_ns - timestamp_ns)))
    assert read == pytest.approx(expected, rel=1e-12, abs=0.0)


def test_volatility_needs_a_future_expiry() -> None:
    slices = synthetic_surface(GENESIS_NS)
    with pytest.raises(AssertionError):
        volatility(slices, timestamp_ns=GENESIS_NS, expiry_ns=GENESIS_NS, log_moneyness=0.0)
    with pytest.raises(AssertionError):
        volatility((), timestamp_ns=GENESIS_NS, expiry_ns=GENESIS_NS + 1, log_moneyness=0.0)


# ── Issue 16: the checked range is the quoted range plus a margin, in σ_ATM·√T ──────────────


def test_slices_crossing_far_outside_their_quoted_range_are_accepted() -> None:
    """A one- and a two-day slice that cross only at log-moneyness ≈ −0.9 (20 standard
    deviations of the two-day expiry, where nothing is quoted) are no calendar arbitrage; a fixed
    ±1.5 range refused them. Crossing inside the checked range is still refused."""
    day = GENESIS_NS + NS_PER_DAY
    early = SviSlice(expiry_ns=day, a_e9=600_000, b_e9=30_000_000, rho_e9=-600_000_000,
                     m_e9=0, s_e9=20_000_000)  # fmt: skip
    late = SviSlice(expiry_ns=day + NS_PER_DAY, a_e9=1_300_000, b_e9=29_500_000,
                    rho_e9=-600_000_000, m_e9=0, s_e9=20_000_000)  # fmt: skip
    assert late.total_variance(-1.2) < early.total_variance(-1.2)  # they do cross, far out
    half = 10 * math.sqrt(late.total_variance(0.0))  # CHECK_SD standard deviations
    assert all(late.total_variance(k) > early.total_variance(k)
               for k in np.linspace(-half, half, 41))  # fmt: skip
    assert problems([early, late], GENESIS_NS) == []
    lower = dataclasses.replace(late, a_e9=early.a_e9 - 300_000)  # below at the money
    _rejected([early, lower], GENESIS_NS, "calendar arbitrage")


def test_the_checked_range_scales_with_each_expiry() -> None:
    short = synthetic_surface(GENESIS_NS)[0]
    w_atm = short.total_variance(0.0)
    points = surface.check_points(w_atm)
    assert len(points) == surface.CHECK_STEPS + 1
    assert points[0] == pytest.approx(-surface.CHECK_SD * math.sqrt(w_atm))
    assert points[-1] == pytest.approx(surface.CHECK_SD * math.sqrt(w_atm))
    assert svi.check_grid(w_atm).tolist() == points  # the numpy twin checks the same floats
