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
