"""Accounts: a key's nonce set is dropped once the venue's window has passed its newest nonce,
and nothing the key may send then changes."""

from __future__ import annotations

import pytest

from clearhouse.core import limits
from clearhouse.core.engine import Engine
from clearhouse.core.errors import RejectReason
from clearhouse.core.state import nonce_key
from clearhouse.core.units import NS_PER_MS, NS_PER_SECOND
from helpers import Venue, accepted, rejected


def _window_passes_newest(venue: Venue, trader: str) -> int:
    """How long after now the block is whose time puts the trader's newest nonce at the
    window's too-old bound."""
    newest_ms = venue.state.nonces[venue.address(trader)][-1]
    window_ms = venue.state.venue.nonce_window_past_ns // NS_PER_MS
    return (newest_ms + window_ms) * NS_PER_MS - venue.now


def test_a_quiet_key_is_forgotten_once_the_window_passes_and_sends_as_before(
    venue: Venue,
) -> None:
    old = venue.cancel_all("dave")
    accepted(venue, old)
    dave = venue.address("dave")
    gap_ns = _window_passes_newest(venue, "dave")
    venue.block(dt_ns=gap_ns - NS_PER_MS)  # one millisecond inside the window: kept
    assert dave in venue.state.nonces
    assert nonce_key(dave) in venue.state.tree
    venue.block(dt_ns=NS_PER_MS)  # at the bound: every nonce it holds is too old now
    assert dave not in venue.state.nonces
    assert nonce_key(dave) not in venue.state.tree  # its leaf went with it
    rejected(venue, old, RejectReason.NONCE_TOO_OLD, consumed=False)  # as it was before
    accepted(venue, venue.cancel_all("dave"))
    assert len(venue.state.nonces[dave]) == 1
    restored = Engine.from_state(venue.engine.state)  # a restart derives the same ages
    assert list(restored.ctx.derived.nonce_ages) == list(venue.engine.ctx.derived.nonce_ages)


def test_keys_aging_out_together_go_a_bounded_number_a_block(
    venue: Venue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "nonce_sets_forgotten_per_block_max", 2)
    quiet = ("alice", "bob", "carol", "dave")
    accepted(venue, *(venue.cancel_all(trader) for trader in quiet))
    gap_ns = max(_window_passes_newest(venue, trader) for trader in quiet)
    addresses = {venue.address(trader) for trader in quiet}
    left = []
    venue.block(dt_ns=gap_ns)
    for _ in range(4):
        left.append(len(addresses & venue.state.nonces.keys()))
        venue.block(dt_ns=NS_PER_SECOND)
    # the operator's and the relayer's sets aged out too (they signed at genesis): all six go
    # two a block, oldest first
    assert left[0] >= 2 and left[-1] == 0, left
    assert left == sorted(left, reverse=True), left
