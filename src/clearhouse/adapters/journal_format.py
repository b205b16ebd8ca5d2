"""What a journal must look like for this build to read it: its tables and its format version.

A journal records its format version in the ``meta`` table (a key → value table that also holds
the genesis document) under the key ``format``, written when the journal is created. Journals
written before the version existed have no such row: they are format 1 when their tables are the
current ones, and refused otherwise. A version newer than ``FORMAT_VERSION`` is refused rather
than read wrongly. Both stores (SQLite, PostgreSQL) check the same way, here.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from clearhouse.core.errors import JournalFormatError

# Bump when a journal written by this build could not be read by the one before it.
FORMAT_VERSION = 1
FORMAT_KEY = "format"

# The columns each table must have (sqlite_journal.SCHEMA and postgres_journal.SCHEMA).
TABLES: Mapping[str, tuple[str, ...]] = {
    "meta": ("key", "value"),
    "blocks": (
        "height", "timestamp_ns", "parent_hash", "commands_hash", "events_hash", "state_root",
        "block_hash",
    ),
    "commands": ("height", "idx", "body", "signature"),
    "snapshots": ("height", "state_root", "body"),
}  # fmt: skip


def is_new(found: Mapping[str, Set[str]], where: str) -> bool:
    """True when none of the journal's tables exist yet (a store to create the journal in);
    False when all of them do with their columns; JournalFormatError for anything between."""
    present = [table for table in TABLES if table in found]
    if not present:
        return True
    for table, columns in TABLES.items():
        missing = [c for c in columns if c not in found.get(table, ())]
        if table not in found or missing:
            lacks = f"no table {table}" if table not in found else f"{table} lacks {missing[0]}"
            raise JournalFormatError(
                f"{where} holds an older or unknown journal schema ({lacks}); "
                f"this build reads journal format {FORMAT_VERSION}"
            )
    return False


def check_version(value: bytes | None, where: str) -> int:
    """The journal's format version from its ``meta`` row (None: before versions, so 1);
    JournalFormatError when this build cannot read it."""
    if value is None:
        return 1
    try:
        version = int(value.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        unreadable = f"{where} has an unreadable journal format version {value[:20]!r}"
        raise JournalFormatError(unreadable) from None
    if version > FORMAT_VERSION:
        raise JournalFormatError(
            f"{where} is journal format {version}, newer than this build reads "
            f"({FORMAT_VERSION}): run a newer clearhouse"
        )
    if version < 1:
        raise JournalFormatError(f"{where} has an unknown journal format {version}")
    return version


def format_row() -> tuple[str, bytes]:
    """The ``meta`` row a new journal is created with."""
    return FORMAT_KEY, str(FORMAT_VERSION).encode("ascii")
