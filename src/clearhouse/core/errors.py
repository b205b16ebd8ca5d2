"""Expected rejections are values with stable codes; broken invariants crash.

Public error tree of the package::

    * ClearhouseError
      x InvalidArgument(ClearhouseError, ValueError)  bad input at the API/CLI/file edge
        x BadProof(InvalidArgument)                   a proof file that is not one (custody)
      x ConfigError(ClearhouseError)                  bad settings or genesis at startup
      x StorageError(ClearhouseError)                 journal/snapshot failures
        x JournalNotFound(StorageError)               no journal where one was to be read
        x JournalExists(StorageError)                 a journal where a new one was to be made
        x JournalLocked(StorageError)                 another process holds the journal
        x JournalFormatError(StorageError)            a format or schema this build does not read
        x JournalCorrupt(StorageError)                the store's own pages are damaged
        x BadLocation(StorageError)                   a journal location naming no usable store
          x BadDataDir(BadLocation)                   a data folder that cannot hold a journal
      x VerificationError(ClearhouseError)            a replayed journal disagrees with itself
        x RulesMismatch(VerificationError)            a journal of other consensus rules
        x ReplicaMismatch(VerificationError)          a streamed block is not what it records
        x ReplicaGap(VerificationError)               a streamed block is not the next height
      x ReplicationError(ClearhouseError)             the block stream (NATS JetStream)
        x ReplicationUnavailable(ReplicationError)    the stream cannot be reached or answer
        x ReplicationFenced(ReplicationError)         another sequencer appended first
      x NodeFailed(ClearhouseError)                   a node stopped serving: its sequencer died
      x ProofRejected(ClearhouseError)                a well-formed proof that does not verify
    * InvariantViolation(AssertionError)              a bug: crash, keep the journal, replay it
"""

from __future__ import annotations

from enum import IntEnum


class RejectReason(IntEnum):
    """Why a command was rejected. Codes are stable: never renumber, only append."""

    MALFORMED_COMMAND = 1
    UNAUTHORIZED_SIGNER = 2
    NONCE_TOO_OLD = 3
    NONCE_TOO_NEW = 4
    NONCE_ALREADY_USED = 5
    NONCE_BELOW_WINDOW = 6
    COMMAND_EXPIRED = 7
    UNKNOWN_MARKET = 8
    UNKNOWN_ASSET = 9
    UNKNOWN_ORACLE = 10
    UNKNOWN_ORDER = 11
    SIZE_OFF_STEP = 12
    SIZE_BELOW_MINIMUM = 13
    PRICE_OFF_TICK = 14
    PRICE_OUTSIDE_BAND = 15
    ORACLE_STALE = 16
    INSUFFICIENT_MARGIN = 17
    INSUFFICIENT_FUNDS = 18
    POST_ONLY_WOULD_CROSS = 19
    FOK_NOT_FILLABLE = 20
    REDUCE_ONLY_WOULD_INCREASE = 21
    TOO_MANY_OPEN_ORDERS = 22
    TOO_MANY_POSITIONS = 23
    MARKET_NOT_ACTIVE = 24
    MARKET_REDUCE_ONLY = 25
    DUPLICATE_CLIENT_ORDER_ID = 26
    DUPLICATE_DEPOSIT = 27
    COLLATERAL_CAP_EXCEEDED = 28
    WITHDRAWAL_EXCEEDS_FREE_COLLATERAL = 29
    NOT_ORDER_OWNER = 30
    UNKNOWN_PUBLISHER = 31
    REPORT_TIMESTAMP_INVALID = 32
    ALREADY_EXISTS = 33
    INVALID_PARAMETERS = 34
    BOOK_FULL = 35
    NO_LIQUIDITY = 36
    SELF_TRANSFER = 37
    TRIGGER_INVALID = 38
    AMOUNT_NOT_POSITIVE = 39
    AMEND_NOT_ALLOWED = 40
    NOT_LIQUIDATABLE = 41
    OPEN_INTEREST_CAP_EXCEEDED = 42
    POSITION_CAP_EXCEEDED = 43
    WITHDRAWALS_PAUSED = 44
    NO_SUCH_AUCTION = 45
    SELF_LIQUIDATION = 46
    NOTHING_TO_LIQUIDATE = 47
    SURFACE_ARBITRAGE = 48  # a published volatility surface admits static arbitrage
    SURFACE_STALE = 49  # an option market has no fresh volatility surface
    MARGIN_MODE_UNCHANGED = 50
    AGENT_NOT_ALLOWED = 51  # an agent key may trade and cancel, never anything else
    AGENT_NOT_AUTHORIZED = 52  # the key is not (or no longer) an agent of the account
    UNKNOWN_QUOTE_CURRENCY = 53  # a report's quote is neither USD nor one its oracle converts
    UNKNOWN_RATE_FEED = 54  # an oracle names a rate feed (quote currency → USD) not listed
    RATE_FEED_NOT_IN_USD = 55  # a rate feed must itself take USD reports only (no chains)
    VAULT_LOCKED = 56  # vault shares are redeemable only lockup_ns after the owner's last deposit
    VAULT_INSUFFICIENT_SHARES = 57  # more shares than the owner holds
    VAULT_AMOUNT_TOO_SMALL = 58  # a deposit that would mint no share, a redemption paying nothing
    VAULT_INSOLVENT = 59  # the vault's NAV is negative: no deposit may buy into its loss
    VAULT_FULL = 60  # vault_owners_max depositors already hold shares
    VALUE_OUT_OF_RANGE = 61  # an integer beyond its bound (limits.integer_field_max): the node
    # refuses it before the engine sees it, naming the field
    SCHEDULE_OUT_OF_RANGE = 62  # a scheduled cancel sooner than its minimum delay or too far out
    # Governance (SPEC §10)
    GOVERNANCE_REQUIRED = 63  # a governed venue changes itself only through governance
    UNKNOWN_PROPOSAL = 64
    PROPOSAL_NOT_OPEN = 65  # approved, queued, executed or cancelled already, or expired
    ALREADY_APPROVED = 66  # this council member approved this proposal already
    QUORUM_NOT_MET = 67  # fewer approvals from the current council than its threshold
    TIMELOCK_NOT_ELAPSED = 68  # a queued proposal executes only once its timelock has run
    PARAM_UNKNOWN = 69  # no governed parameter of that name (core/governance.REGISTRY)
    PARAM_OUT_OF_BOUNDS = 70  # outside the parameter's hard bounds
    PARAM_STEP_TOO_LARGE = 71  # more than one step, where only one step is allowed
    PARAM_COOLDOWN = 72  # the parameter changed less than its cooldown ago
    ROLE_NOT_ALLOWED = 73  # the steward or guardian may not take this action (the guardian may
    # only reduce risk; the steward only moves parameters)
    SETTLEMENT_NOT_TIMED_OUT = 74  # governance may price an expired market only after its timeout
    NO_PENDING_SETTLEMENT = 75  # nothing to dispute: no governance price awaits its window
    DISPUTE_WINDOW_CLOSED = 76
    ALREADY_DISPUTED = 77  # each address disputes a fallback price once; holders 3 times in all
    MARKET_PAUSED = 78  # the guardian or the council paused this market: cancels only
    TOO_MANY_PROPOSALS = 79  # open proposals are bounded (limits.open_proposals_max)
    OPTIONS_VAULT_NOT_SET_UP = 80  # this venue has no options vault (``SetupOptionsVault``)
    SURFACE_FORWARD_INVALID = 81  # a slice's forward basis beyond limits.forward_basis_ppm_max


class ClearhouseError(Exception):
    """Base of every error Clearhouse raises on purpose."""

    code: str = "CLEARHOUSE_ERROR"


class InvalidArgument(ClearhouseError, ValueError):
    """Bad input at the edge (API, CLI, files): nothing was changed."""

    code = "INVALID_ARGUMENT"


class MalformedCommand(InvalidArgument):
    """Command bytes the strict decoder refuses (``core/codec.py``); raised there. (It lives here,
    with the other error classes, so that the compiled build keeps its ``code``.)"""

    code = "MALFORMED_COMMAND"


class BadProof(InvalidArgument):
    """A proof file (liabilities, withdrawal) that is not one: unreadable, not JSON, a field
    missing, of the wrong type or out of range (``app/custody.py``)."""

    code = "BAD_PROOF"


class ConfigError(ClearhouseError):
    """Bad settings or genesis at startup."""

    code = "CONFIG_ERROR"


class StorageError(ClearhouseError):
    """The journal or a snapshot could not be read or written."""

    code = "STORAGE_ERROR"


class JournalNotFound(StorageError):
    """No journal where one was to be read (a missing or empty file, a missing schema)."""

    code = "NOT_FOUND"


class JournalExists(StorageError):
    """A journal already lies where a new one was to be written: it is not ours to delete."""

    code = "JOURNAL_EXISTS"


class JournalLocked(StorageError):
    """Another process (a running node, a demo) holds the journal's exclusive lock."""

    code = "JOURNAL_LOCKED"


class JournalFormatError(StorageError):
    """A journal format version or schema that this build does not read (newer, or unknown)."""

    code = "JOURNAL_FORMAT"


class JournalCorrupt(StorageError):
    """The store itself is damaged (a SQLite page, a file that is not a database)."""

    code = "JOURNAL_CORRUPT"


class BadLocation(StorageError):
    """A journal location that names no usable store: an unknown URL scheme, a URL without a
    path."""

    code = "BAD_LOCATION"


class BadDataDir(BadLocation):
    """A data folder (``--data``, ``--out``) that is a file, or cannot be created or written."""

    code = "BAD_DATA_DIR"


class VerificationError(ClearhouseError):
    """A replayed journal disagrees with what it recorded."""

    code = "VERIFICATION_FAILED"

    def __init__(self, height: int, what: str) -> None:
        super().__init__(f"height {height}: {what}")
        self.height = height
        self.what = what


class RulesMismatch(VerificationError):
    """A journal written under consensus rules other than this build's: replaying it here
    would fail at the first block the rules decide differently, and prove nothing."""

    code = "RULES_VERSION_MISMATCH"


class ReplicaMismatch(VerificationError):
    """A block from the stream (or the stream against a journal) disagrees with what its
    record says or with the chain it would extend: a tampered or forked record. Nothing of it
    is stored."""

    code = "REPLICA_MISMATCH"


class ReplicaGap(VerificationError):
    """The stream's next block is not the height after the journal's head."""

    code = "REPLICA_GAP"


class ReplicationError(ClearhouseError):
    """The block stream (NATS JetStream, ``adapters/nats_stream.py``) refused or failed."""

    code = "REPLICATION_ERROR"


class ReplicationUnavailable(ReplicationError):
    """The stream's server cannot be reached, or did not acknowledge in time: nothing may be
    acknowledged to a client until it does."""

    code = "REPLICATION_UNAVAILABLE"


class ReplicationFenced(ReplicationError):
    """The stream refused a block because its last sequence is not the one this sequencer
    expected: another sequencer has appended (a takeover). This one must stop."""

    code = "REPLICATION_FENCED"


class ProofRejected(ClearhouseError):
    """A well-formed proof that does not verify: not under the root (``NOT_INCLUDED``), a total
    other than the root's (``WRONG_TOTAL``), liabilities above the assets (``INSOLVENT``), a
    malformed path (``BAD_DEPTH``, ``BAD_INDEX``, ``BAD_SUM``, ``BAD_AMOUNT``). ``code`` is the
    reason's (``core/sum_tree.py``)."""

    code = "PROOF_REJECTED"

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class NodeFailed(ClearhouseError):
    """A node stopped serving because its sequencer stopped on an error (a journal that cannot
    commit): it exits rather than answer from a chain that no longer moves."""

    code = "NODE_FAILED"


class InvariantViolation(AssertionError):
    """A broken invariant: a bug. The process must stop; the journal is kept for replay."""
