"""Portfolio margin adds floats in one order on every Python: the builtin ``sum`` compensates
float rounding since Python 3.12, so a node on 3.12 and one on 3.11 would disagree on a
margin (and so on a state root) wherever the rounding matters."""

from __future__ import annotations

import ast
import inspect
import math

from clearhouse.core import margin, scenario_grid
from clearhouse.core.scenario_grid import ordered_sum


def test_ordered_sum_adds_left_to_right_without_compensation() -> None:
    values = [1e16, 1.0, -1e16]
    assert ordered_sum(values) == 0.0  # 1e16 + 1.0 rounds back to 1e16
    assert math.fsum(values) == 1.0  # what a compensated sum gives
    assert ordered_sum([]) == 0.0
    assert ordered_sum(x / 10 for x in range(10)) == (
        0.0 + 0.0 + 0.1 + 0.2 + 0.3 + 0.4 + 0.5 + 0.6 + 0.7 + 0.8 + 0.9
    )


def test_the_float_margin_modules_never_call_the_builtin_sum() -> None:
    for module in (margin, scenario_grid):
        tree = ast.parse(inspect.getsource(module))
        calls = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "sum"
        ]
        assert calls == [], f"{module.__name__} calls sum() at lines {calls}"


def _straight_fold(legs: tuple[scenario_grid.RowLeg, ...], scale: float) -> list[float]:
    totals = [0.0] * len(legs[0][0].losses)
    for pr, choices in legs:
        row = [max(scale * units * loss + now for units, now in choices) for loss in pr.losses]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
    return totals


def test_worst_rows_sum_remembered_folds_are_the_straight_fold_bit_for_bit() -> None:
    """A fold that shares its first legs with a remembered one starts from that one's running
    totals: the same additions in the same order. Changed legs (first, middle, last), another
    scale, fewer legs, a profile equal by value but not the same object: each is the fold done
    leg by leg."""
    profiles = [
        scenario_grid.Profile(tuple((i * 7 + k) * 0.1 - 1.3 for k in range(9)), 1.0, 0.3 * i)
        for i in range(12)
    ]
    legs = tuple(
        (pr, ((float(i) - 5.5, 0.0), (0.25 * i, 1e-3 * i))) for i, pr in enumerate(profiles)
    )

    def changed(at: int) -> tuple[scenario_grid.RowLeg, ...]:
        pr, choices = legs[at]
        return (*legs[:at], (pr, (*choices, (3.0, 0.5))), *legs[at + 1 :])

    twin = scenario_grid.Profile(profiles[0].losses, 1.0, 0.0)  # equal by value to profiles[0]
    cases = [
        (legs, 1.25), (legs, 1.25), (changed(7), 1.25), (changed(0), 1.25), (changed(11), 1.25),
        (legs, 1.5), (legs[:5], 1.25), (legs[3:], 1.25), (((twin, legs[0][1]), *legs[1:]), 1.25),
    ]  # fmt: skip
    for case, scale in cases:
        found = scenario_grid.worst_rows_sum(case, scale)
        assert [x.hex() for x in found] == [x.hex() for x in _straight_fold(case, scale)]
    assert len(profiles[0]._folds) <= scenario_grid.FOLDS_REMEMBERED
