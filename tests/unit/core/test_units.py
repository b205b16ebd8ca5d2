"""units: every rounding helper rounds the way its name says, checked against exact fractions."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.core.units import (
    PPM_ONE,
    clamp,
    div_ceil,
    div_exact,
    div_floor,
    isqrt_ceil,
    mul_ppm_ceil,
    mul_ppm_floor,
)

numerators = st.integers(min_value=-(10**40), max_value=10**40)
denominators = st.integers(min_value=1, max_value=10**20)
FAST = settings(max_examples=200, deadline=None)


@FAST
@given(numerators, denominators)
def test_floor_and_ceil_bracket_the_exact_quotient(numerator: int, denominator: int) -> None:
    exact = Fraction(numerator, denominator)
    low = div_floor(numerator, denominator)
    high = div_ceil(numerator, denominator)
    assert low <= exact <= high
    assert high - low in (0, 1)
    assert (high == low) == (numerator % denominator == 0)
    assert low == math.floor(exact)
    assert high == math.ceil(exact)


@FAST
@given(st.integers(min_value=-(10**30), max_value=10**30), denominators)
def test_div_exact_returns_the_quotient_of_a_multiple(quotient: int, denominator: int) -> None:
    assert div_exact(quotient * denominator, denominator) == quotient


@FAST
@given(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=2, max_value=10**20),
    st.data(),
)
def test_div_exact_asserts_on_a_remainder(
    quotient: int, denominator: int, data: st.DataObject
) -> None:
    remainder = data.draw(st.integers(min_value=1, max_value=denominator - 1))
    with pytest.raises(AssertionError):
        div_exact(quotient * denominator + remainder, denominator)


@pytest.mark.parametrize("helper", [div_floor, div_ceil, div_exact])
@pytest.mark.parametrize("denominator", [0, -1, -(10**6)])
def test_divisions_refuse_non_positive_denominators(helper: object, denominator: int) -> None:
    assert callable(helper)
    with pytest.raises(AssertionError):
        helper(10, denominator)


def test_division_rounding_on_negative_numerators() -> None:
    assert div_floor(-7, 2) == -4
    assert div_ceil(-7, 2) == -3
    assert div_floor(7, 2) == 3
    assert div_ceil(7, 2) == 4
    assert div_exact(-8, 2) == -4


amounts = st.integers(min_value=-(10**24), max_value=10**24)
fractions_ppm = st.integers(min_value=0, max_value=10 * PPM_ONE)


@FAST
@given(amounts, fractions_ppm)
def test_mul_ppm_rounds_as_named(amount: int, fraction_ppm: int) -> None:
    exact = Fraction(amount * fraction_ppm, PPM_ONE)
    low = mul_ppm_floor(amount, fraction_ppm)
    high = mul_ppm_ceil(amount, fraction_ppm)
    assert low <= exact <= high
    assert high - low in (0, 1)
    assert low == math.floor(exact)
    assert high == math.ceil(exact)


def test_mul_ppm_examples() -> None:
    assert mul_ppm_ceil(1, 1) == 1  # a requirement never rounds to nothing
    assert mul_ppm_floor(1, 1) == 0
    assert mul_ppm_floor(-1, 1) == -1  # a negative value rounds further down
    assert mul_ppm_ceil(-1, 1) == 0
    assert mul_ppm_ceil(123, PPM_ONE) == mul_ppm_floor(123, PPM_ONE) == 123


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**48))
def test_isqrt_ceil_is_the_smallest_root_at_least_the_value(value: int) -> None:
    root = isqrt_ceil(value)
    assert root >= 0
    assert root * root >= value
    assert value == 0 or (root - 1) * (root - 1) < value


@pytest.mark.parametrize(
    ("value", "root"), [(0, 0), (1, 1), (2, 2), (3, 2), (4, 2), (5, 3), (99, 10), (100, 10)]
)
def test_isqrt_ceil_examples(value: int, root: int) -> None:
    assert isqrt_ceil(value) == root


@FAST
@given(st.integers(min_value=0, max_value=10**20))
def test_isqrt_ceil_of_a_square_is_exact(root: int) -> None:
    assert isqrt_ceil(root * root) == root
    assert isqrt_ceil(root * root + 1) == root + 1


def test_isqrt_ceil_refuses_negative() -> None:
    with pytest.raises(AssertionError):
        isqrt_ceil(-1)


@FAST
@given(st.integers(), st.integers(), st.integers())
def test_clamp_lands_in_range_and_keeps_values_inside(value: int, a: int, b: int) -> None:
    low, high = min(a, b), max(a, b)
    result = clamp(value, low, high)
    assert low <= result <= high
    if low <= value <= high:
        assert result == value
    elif value < low:
        assert result == low
    else:
        assert result == high


def test_clamp_refuses_an_empty_range() -> None:
    with pytest.raises(AssertionError):
        clamp(0, 1, 0)
