"""Open a journal from where it lives: a PostgreSQL URL, or a SQLite file.

``postgresql://`` and ``postgres://`` URLs open a ``PostgresJournal``; ``sqlite:///abs/path``
and a bare path open a ``SqliteJournal``. Any other ``scheme://`` is refused rather than taken
for a file name: ``mysql://host/db`` is a mistake, not a file to create.

``read_only`` opens a journal that must already exist and writes nothing (``clearhouse
verify``); ``exclusive`` takes the journal's lock first (a node: one writer per journal).
"""

from __future__ import annotations

import re
from pathlib import Path

from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.adapters.urls import mask_password
from clearhouse.app.ports import Journal
from clearhouse.core.errors import BadLocation

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite://"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def open_journal(
    location: str | Path, *, read_only: bool = False, exclusive: bool = False
) -> Journal:
    """The journal at ``location``; StorageError (of the kind that says why) if it cannot be
    opened, or read only, if there is no journal there."""
    if isinstance(location, Path):
        return SqliteJournal(location, read_only=read_only, exclusive=exclusive)
    if location.startswith(POSTGRES_SCHEMES):
        # Imported here: a SQLite journal needs no PostgreSQL driver (a client-only install).
        from clearhouse.adapters.postgres_journal import PostgresJournal

        return PostgresJournal(location, read_only=read_only, exclusive=exclusive)
    return SqliteJournal(sqlite_path(location), read_only=read_only, exclusive=exclusive)


def sqlite_path(location: str) -> Path:
    """The file a SQLite location names: ``sqlite:///abs/path`` is ``/abs/path``."""
    if location.startswith(SQLITE_SCHEME):
        path = location.removeprefix(SQLITE_SCHEME)
        if not path:
            raise BadLocation(f"no file in journal location {location!r}")
        return Path(path)
    if _URL.match(location):
        raise BadLocation(
            f"unsupported journal location {describe(location)}: "
            "give a file path, sqlite:///path or postgresql://..."
        )
    return Path(location)


def describe(location: str | Path) -> str:
    """``location`` fit for a log line: a URL's password, if any, shows as ``***``."""
    text = str(location)
    return mask_password(text) if _URL.match(text) else text
