"""The engine's facade: an engine over a state it did not build gives the same root."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.app.chain import verify
from clearhouse.core.engine import Engine
from clearhouse.core.ids import QUOTE_ASSET
from clearhouse.core.ledger import Transfer

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
