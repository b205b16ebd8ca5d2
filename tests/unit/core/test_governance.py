"""The registry's rules (``core/governance.py``) as properties: whatever the parameter, the
values and the role, an accepted change stays in bounds, the guardian only tightens, the steward
moves one step per cooldown, nobody loosens faster; a phase-in moves monotonically from its
start to its target and never jumps ahead."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from clearhouse.core.governance import (
    PHASE_IN_STEPS,
    REGISTRY,
    Governed,
    Role,
    change_refusal,
    phase_step,
    phased_value,
    read_field,
    replace_field,
)
from clearhouse.core.params import MarginParams

ENTRIES = st.sampled_from(sorted(REGISTRY.values(), key=lambda g: g.name))


@st.composite
def changes(draw: st.DrawFn) -> tuple[Governed, int, int, Role, int | None, int]:
    entry = draw(ENTRIES)
    span = st.integers(entry.lower, entry.upper)
    current = draw(span)
    new = draw(st.one_of(span, st.integers(entry.lower - 10, entry.upper + 10)))
    now = draw(st.integers(10**15, 10**16))
    last = draw(st.one_of(st.none(), st.integers(now - 2 * entry.cooldown_ns, now)))
    return entry, current, new, draw(st.sampled_from(list(Role))), last, now


@given(changes())
def test_an_accepted_change_obeys_every_rule(
    change: tuple[Governed, int, int, Role, int | None, int],
) -> None:
    entry, current, new, role, last, now = change
    if change_refusal(entry, current, new, role=role, last_change_ns=last, now_ns=now) is not None:
        return
    assert entry.lower <= new <= entry.upper and new != current
    cooled = last is None or now >= last + entry.cooldown_ns
    one_step = abs(entry._ordered(new) - entry._ordered(current)) <= entry.max_step(current)
    if role is Role.GUARDIAN:
        assert entry.tightens(current, new)
    if role is Role.STEWARD or not entry.tightens(current, new):
        assert cooled and one_step


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 10**14), st.integers(0, 10**14))
def test_a_phase_in_moves_monotonically_and_ends_at_its_target(
    start: int, target: int, duration: int, elapsed: int
) -> None:
    at = {"start_ns": 0, "end_ns": duration}
    value = phased_value(start, target, now_ns=elapsed, **at)
    later = phased_value(start, target, now_ns=elapsed + duration // PHASE_IN_STEPS + 1, **at)
    assert min(start, target) <= value <= max(start, target)
    assert (later - value) * (target - start) >= 0  # never back toward the start
    assert phased_value(start, target, now_ns=0, **at) == start
    assert phased_value(start, target, now_ns=duration, **at) == target
    assert 0 <= phase_step(0, duration, elapsed) <= PHASE_IN_STEPS


def test_fields_are_read_and_replaced_by_their_path() -> None:
    margin = MarginParams()
    changed = replace_field(margin, "initial_margin_ppm", 70_000)
    assert read_field(changed, "initial_margin_ppm") == 70_000
    assert read_field(margin, "initial_margin_ppm") == 50_000  # frozen: a copy changed


def test_the_docs_list_every_governed_parameter() -> None:
    text = (Path(__file__).parents[3] / "docs" / "GOVERNANCE.md").read_text(encoding="utf-8")
    assert [name for name in REGISTRY if f"`{name}`" not in text] == []
