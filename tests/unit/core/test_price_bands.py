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


_PRICES = st.integers(-(2**40), 2**40)  # a band's low may fall below zero
_BAND = st.tuples(st.sampled_from([BTC, ETH]), _PRICES, _PRICES).map(
    lambda t: Band(t[0], min(t[1], t[2]), max(t[1], t[2]))
)
_STEP = st.tuples(
    st.integers(1, 30),  # the subaccount
    st.none() | st.lists(_BAND, max_size=2, unique_by=lambda band: band.market_id),
    st.booleans(),  # untrack instead
)


@given(st.lists(_STEP, max_size=60), _PRICES)
def test_crossed_equals_a_scan_after_any_track_and_untrack(
    steps: list[tuple[int, list[Band] | None, bool]], mark: int
) -> None:
    bands = PriceBands()
    model: dict[SubaccountId, tuple[Band, ...] | None] = {}
    for n, drawn, untrack in steps:
        if untrack:
            bands.untrack(sub(n))
            model.pop(sub(n), None)
        else:
            tracked = None if drawn is None else tuple(drawn)
            bands.track(sub(n), tracked)
            model[sub(n)] = tracked
    for market_id in (BTC, ETH):
        scanned = sorted(
            s
            for s, held in model.items()
            for band in held or ()
            if band.market_id == market_id and not band.holds(mark)
        )
        assert sorted(bands.crossed(market_id, mark)) == scanned
    assert len(bands) == len(model)
    assert bands.unbanded == {s for s, held in model.items() if held is None}
    assert all(bands.bands(s) == held for s, held in model.items())
