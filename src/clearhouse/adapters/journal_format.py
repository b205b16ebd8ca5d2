"""What a journal must look like for this build to read it: its tables and its format version.

A journal records its format version in the ``meta`` table (a key → value table that also holds
the genesis document) under the key ``format``, written when the journal is created. Journals
written before the version existed have no such row: they are format 1 when their tables are the
current ones, and refused otherwise. A version newer than ``FORMAT_VERSION`` is refused rather
than read wrongly. Both stores (SQLite, PostgreSQL) check the same way, here.

A block's record (``encode_record``) is what the journal keeps of it, its ``blocks`` row and its
``commands`` rows, as one byte string: the block stream (``adapters/nats_stream.py``) carries
exactly these bytes, so a replica decodes and stores the very values the sequencer stored.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Set

from clearhouse.app.ports import StoredBlock
from clearhouse.core.block import BlockHeader
from clearhouse.core.errors import JournalFormatError, ReplicaMismatch

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


# ── A block's record ─────────────────────────────────────────────────────────────────────────

RECORD_MAGIC = b"clearhouse-block-1\n"  # changes with the record's layout (and FORMAT_VERSION)
_RECORD_HEAD = struct.Struct(">qq")  # height, timestamp_ns
_LENGTH = struct.Struct(">I")
_HASHES = 5  # parent, commands, events, state root, block hash: each length-prefixed
RECORD_COMMANDS_MAX = 1 << 20  # far above limits.commands_per_block_max: a bound on a bad count


def encode_record(block: StoredBlock) -> bytes:
    """The journal's record of one block: its header's columns, its hash, then each command's
    body and signature, every byte string length-prefixed (4 bytes, big-endian)."""
    header = block.header
    parts = [RECORD_MAGIC, _RECORD_HEAD.pack(header.height, header.timestamp_ns)]
    hashes = (header.parent_hash, header.commands_hash, header.events_hash, header.state_root,
              block.block_hash)  # fmt: skip
    parts += [_LENGTH.pack(len(h)) + h for h in hashes]
    parts.append(_LENGTH.pack(len(block.commands)))
    for index, body in enumerate(block.commands):
        signature = block.signature(index)
        parts += [_LENGTH.pack(len(body)), body, _LENGTH.pack(len(signature)), signature]
    return b"".join(parts)


def decode_record(data: bytes) -> StoredBlock:
    """The block a record holds (``encode_record``'s inverse, byte for byte), or
    ReplicaMismatch: a record that is not whole, has bytes left over, or another layout."""
    reader = _Reader(data)
    if reader.take(len(RECORD_MAGIC)) != RECORD_MAGIC:
        raise ReplicaMismatch(0, "the block record is not a clearhouse-block-1 record")
    height, timestamp_ns = _RECORD_HEAD.unpack(reader.take(_RECORD_HEAD.size))
    parent, commands_hash, events_hash, root, block_hash = (reader.chunk() for _ in range(_HASHES))
    count = reader.length()
    if count > RECORD_COMMANDS_MAX:
        raise ReplicaMismatch(height, f"the block record claims {count} commands")
    bodies: list[bytes] = []
    signatures: list[bytes] = []
    for _ in range(count):
        bodies.append(reader.chunk())
        signatures.append(reader.chunk())
    if reader.offset != len(data):
        raise ReplicaMismatch(height, "the block record has bytes past its last command")
    header = BlockHeader(
        height=height, timestamp_ns=timestamp_ns, parent_hash=parent,
        commands_hash=commands_hash, events_hash=events_hash, state_root=root,
    )  # fmt: skip
    # The journal keeps no signatures for a block whose commands all went unsigned (b"" each):
    # the same tuple either way, as ``StoredBlock.signature`` reads it.
    return StoredBlock(header, block_hash, tuple(bodies), tuple(signatures))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, size: int) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise ReplicaMismatch(0, "the block record ends early (torn or truncated)")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def length(self) -> int:
        (value,) = _LENGTH.unpack(self.take(_LENGTH.size))
        return int(value)

    def chunk(self) -> bytes:
        return self.take(self.length())
