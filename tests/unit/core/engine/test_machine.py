"""The engine's facade: an engine over a state it did not build, or blocks closed without a root,
give the same root."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.app.chain import venue_from_genesis, verify
from clearhouse.core.engine import ARCHIVE_AFTER_NS, Engine
from clearhouse.core.ids import QUOTE_ASSET
from clearhouse.core.ledger import Transfer
from clearhouse.core.messages import MarketArchived
from clearhouse.core.state import MarketStatus, params_key
from clearhouse.core.units import NS_PER_MINUTE, NS_PER_SECOND
from helpers import Venue, of_type
from options import publish_surface, short_lived_option

JOURNAL = Path(__file__).resolve().parents[3] / "golden" / "demo-seed3.sqlite"


def replayed_engine(tmp_path: Path) -> Engine:
    copy_path = tmp_path / JOURNAL.name
    shutil.copyfile(JOURNAL, copy_path)
    journal = SqliteJournal(copy_path)
    try:
        return verify(journal).engine
    finally:
        journal.close()


def test_from_state_rebuilds_every_leaf_and_index(tmp_path: Path) -> None:
    engine = replayed_engine(tmp_path)
    rebuilt = Engine.from_state(copy.deepcopy(engine.state))
    assert rebuilt.state.tree.root() == engine.state.tree.root()
    assert len(rebuilt.state.tree) == len(engine.state.tree)
    assert rebuilt.ctx.derived.borrowers == engine.ctx.derived.borrowers


def test_from_state_root_follows_the_state_not_a_stale_tree(tmp_path: Path) -> None:
    """The tree is written from the state: a state edited outside the engine gives another
    root, never the root of a tree it happened to carry."""
    engine = replayed_engine(tmp_path)
    state = copy.deepcopy(engine.state)
    some = sorted(state.ledger.subaccounts)[0]
    state.ledger.apply(Transfer(some, sorted(state.ledger.subaccounts)[1], QUOTE_ASSET, 1))
    assert Engine.from_state(state).state.tree.root() != engine.state.tree.root()


def test_blocks_closed_without_a_root_end_at_the_journal_roots(tmp_path: Path) -> None:
    """``close_block`` leaves the tree's work to the next ``state_root``: taken every few
    blocks, it is the root the journal recorded for that block (every leaf touched since the
    last one folded in at once, whatever blocks touched it)."""
    copy_path = tmp_path / JOURNAL.name
    shutil.copyfile(JOURNAL, copy_path)
    journal = SqliteJournal(copy_path)
    try:
        document = journal.genesis()
        assert document is not None
        engine = Engine(venue_from_genesis(document))
        compared = 0
        for stored in journal.blocks(1):
            engine.begin_block(stored.header.height, stored.header.timestamp_ns)
            for index, data in enumerate(stored.commands):
                engine.apply_bytes(index, data)
            engine.close_block()
            if stored.header.height % 7 == 0:
                assert engine.state_root() == stored.header.state_root, stored.header.height
                compared += 1
        assert engine.state_root() == stored.header.state_root
    finally:
        journal.close()
    assert compared >= 10


def test_blocks_closed_without_a_root_agree_when_a_market_listed_since_is_archived() -> None:
    """A market listed and archived between two roots: its parameters' leaf, written at the
    listing and deleted at the archive, stays deleted (it had come back with the listing's
    pending write when the blocks were folded in at once)."""
    venue = Venue(block_ns=5 * NS_PER_SECOND)
    publish_surface(venue)
    option = short_lived_option(venue)
    expiry = venue.state.markets[option].params.expiry_ns
    venue.advance(7 * NS_PER_MINUTE)
    assert venue.state.markets[option].status is MarketStatus.SETTLED
    archived = venue.block(dt_ns=expiry + ARCHIVE_AFTER_NS - venue.now)
    assert of_type(archived.prologue, MarketArchived)
    venue.block()
    engine = venue.replay_unrooted()
    assert engine.state_root() == venue.recorded[-1].root
    assert params_key("market", option) not in engine.state.tree
