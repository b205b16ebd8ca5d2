"""PriceBands: the index of marks inside which tracked subaccounts are known to be safe."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from clearhouse.core.ids import Address, MarketId, SubaccountId
from clearhouse.core.price_bands import Band, PriceBands

BTC = MarketId("BTC-PERP")
ETH = MarketId("ETH-PERP")


def sub(n: int) -> SubaccountId:
    return SubaccountId(Address(f"0x{n:040x}"), 0)


def test_crossed_names_exactly_the_bands_that_no_longer_hold_the_mark() -> None:
    bands = PriceBands()
    bands.track(sub(1), (Band(BTC, 90, 110),))
    bands.track(sub(2), (Band(BTC, 95, 105),))
    bands.track(sub(3), (Band(BTC, 50, 150), Band(ETH, 9, 11)))
    assert bands.crossed(BTC, 100) == []
    assert bands.crossed(BTC, 95) == []  # the edges are inside
    assert bands.crossed(BTC, 94) == [sub(2)]
    assert sorted(bands.crossed(BTC, 111)) == [sub(1), sub(2)]
    assert bands.crossed(ETH, 12) == [sub(3)]
    assert bands.crossed(MarketId("SOL-PERP"), 1) == []


def test_untrack_and_retrack_leave_no_stale_entry() -> None:
    bands = PriceBands()
    bands.track(sub(1), (Band(BTC, 90, 110),))
    bands.track(sub(1), None)  # re-tracked unbanded: the old band is gone
    assert bands.crossed(BTC, 10) == [] and bands.unbanded == {sub(1)}
    bands.untrack(sub(1))
    assert sub(1) not in bands and not bands.unbanded
    bands.untrack(sub(1))  # untracking the untracked is a no-op


@given(
    st.lists(
        st.tuples(st.integers(1, 30), st.integers(0, 1000), st.integers(0, 1000)), max_size=40
    ),
    st.integers(-10, 1100),
)
def test_crossed_equals_a_scan(entries: list[tuple[int, int, int]], mark: int) -> None:
    bands = PriceBands()
    expected: dict[SubaccountId, Band] = {}
    for n, a, b in entries:
        band = Band(BTC, min(a, b), max(a, b))
        bands.track(sub(n), (band,))
        expected[sub(n)] = band
    scanned = sorted(s for s, band in expected.items() if not band.holds(mark))
    assert sorted(bands.crossed(BTC, mark)) == scanned
    assert len(bands) == len(expected)
