"""Open a journal from where it lives: a PostgreSQL URL, or a SQLite file.

``postgresql://`` and ``postgres://`` URLs open a ``PostgresJournal``; ``sqlite:///abs/path``
and a bare path open a ``SqliteJournal``. Any other ``scheme://`` is refused rather than taken
for a file name: ``mysql://host/db`` is a mistake, not a file to create.
"""

from __future__ import annotations

import re
from pathlib import Path

from clearhouse.adapters.postgres_journal import PostgresJournal, mask_password
from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.app.ports import Journal
from clearhouse.core.errors import StorageError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite://"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def open_journal(location: str | Path) -> Journal:
    """The journal at ``location``; StorageError if it cannot be opened."""
    if isinstance(location, Path):
        return SqliteJournal(location)
    if location.startswith(POSTGRES_SCHEMES):
        return PostgresJournal(location)
    return SqliteJournal(sqlite_path(location))


def sqlite_path(location: str) -> Path:
    """The file a SQLite location names: ``sqlite:///abs/path`` is ``/abs/path``."""
    if location.startswith(SQLITE_SCHEME):
        path = location.removeprefix(SQLITE_SCHEME)
        if not path:
            raise StorageError(f"no file in journal location {location!r}")
        return Path(path)
    if _URL.match(location):
        raise StorageError(f"unsupported journal location {describe(location)}")
    return Path(location)


def describe(location: str | Path) -> str:
    """``location`` fit for a log line: a URL's password, if any, shows as ``***``."""
    text = str(location)
    return mask_password(text) if _URL.match(text) else text
