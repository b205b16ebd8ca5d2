"""Re-check the signatures a journal keeps beside its commands: every signed command must
recover to the key the journal says signed it (the account's, or the agent it names).

Replay (``chain.verify``) checks what the commands did; this checks who sent them. Which
commands may go unsigned is a fact of the journal, never read from a missing signature: the
genesis block's listings, options-vault set-up and hand-over to governance by the operator its
genesis document names, and after it only what a node signing for the addresses of its
``node_signers`` meta key makes itself (a dev node: its publishers' price reports and its
relayer's faucet deposits; a venue's node: none). Those are counted, not checked; any other
command without a signature fails the audit at its height.

The venue's signing domain is journaled too (``domain.*`` meta keys, written when the node
starts a venue), so that an auditor checks against the domain the venue really signed for.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass

from clearhouse.app import signing
from clearhouse.app.chain import venue_from_genesis
from clearhouse.app.ports import Journal
from clearhouse.core.codec import MalformedCommand, decode_command
from clearhouse.core.errors import InvalidArgument, StorageError, VerificationError
from clearhouse.core.ids import Address, is_address
from clearhouse.core.messages import (
    AgentSigned,
    Command,
    Deposit,
    ListAsset,
    ListMarket,
    ListOptionSeries,
    ListOracle,
    ReportPrices,
    SetupGovernance,
    SetupOptionsVault,
)

CHUNK = 2_048  # signatures sent to the pool at once
GENESIS_HEIGHT = 1  # the block of the venue's listings, made by the node as its operator
# Meta keys (the journal's ``meta`` table): the signing domain, and whom the node signs for.
DOMAIN_KEYS = ("domain.name", "domain.version", "domain.chain_id", "domain.verifying_contract")
NODE_SIGNERS_KEY = "node_signers"  # comma-separated addresses; empty or absent: none
_GENESIS_KINDS = (
    ListOracle, ListAsset, ListMarket, ListOptionSeries, SetupOptionsVault, SetupGovernance,
)  # fmt: skip
_NODE_KINDS = (ReportPrices, Deposit)  # a dev node's price feed and faucet


def record_domain(journal: Journal, domain: signing.Domain) -> None:
    values = (domain.name, domain.version, str(domain.chain_id), domain.verifying_contract)
    for key, value in zip(DOMAIN_KEYS, values, strict=True):
        journal.write_meta(key, value)


def journal_domain(journal: Journal) -> signing.Domain | None:
    """The signing domain the journal records, or None for a journal written before it did."""
    found = [journal.read_meta(key) for key in DOMAIN_KEYS]
    if all(value is None for value in found):
        return None
    name, version, chain_id, contract = found
    if name is None or version is None or chain_id is None or contract is None:
        raise StorageError("corrupt journal: its signing domain is incomplete")
    if not chain_id.isdigit():
        raise StorageError(f"corrupt journal: domain chain id {chain_id!r}")
    try:
        return signing.Domain(int(chain_id), contract, name, version)
    except InvalidArgument as error:
        raise StorageError(f"corrupt journal: {error}") from None


def record_node_signers(journal: Journal, signers: tuple[Address, ...]) -> None:
    journal.write_meta(NODE_SIGNERS_KEY, ",".join(signers))


def node_signers(journal: Journal) -> frozenset[str]:
    value = journal.read_meta(NODE_SIGNERS_KEY) or ""
    found = frozenset(a for a in value.split(",") if a)
    if not all(is_address(a) for a in found):
        raise StorageError(f"corrupt journal: {NODE_SIGNERS_KEY} {value!r}")
    return found


@dataclass(frozen=True, slots=True)
class SignatureAudit:
    checked: int
    unsigned: int  # the node's own commands


@dataclass(frozen=True, slots=True)
class _Signed:
    command: Command
    signature: bytes
    claimed: str  # the key the journal says signed
    height: int
    index: int


def check_signatures(
    journal: Journal, domain: signing.Domain, executor: Executor | None = None
) -> SignatureAudit:
    """Raise VerificationError at the first command whose signature is not its signer's."""
    checked = unsigned = 0
    batch: list[_Signed] = []
    document = journal.genesis()
    if document is None:
        raise VerificationError(0, "the journal has no genesis")
    try:
        operator = venue_from_genesis(document).operator
        ours = node_signers(journal)
    except StorageError as error:
        raise VerificationError(0, str(error)) from None
    for item in _signed(journal, operator, ours):
        if item is None:
            unsigned += 1
            continue
        batch.append(item)
        if len(batch) == CHUNK:
            checked += _check(batch, domain, executor)
            batch = []
    checked += _check(batch, domain, executor)
    return SignatureAudit(checked, unsigned)


def _signed(journal: Journal, operator: str, ours: frozenset[str]) -> Iterator[_Signed | None]:
    for stored in journal.blocks():
        height = stored.header.height
        for index, data in enumerate(stored.commands):
            try:
                item = decode_command(data)
            except MalformedCommand as error:
                raise VerificationError(height, f"command {index}: {error}") from None
            command, claimed = (
                (item.command, item.agent) if isinstance(item, AgentSigned) else (item, item.signer)
            )
            signature = stored.signature(index)
            if signature:
                yield _Signed(command, signature, claimed, height, index)
            elif not isinstance(item, AgentSigned) and _node_made(height, item, operator, ours):
                yield None
            else:
                raise VerificationError(
                    height,
                    f"command {index} ({type(command).__name__} by {claimed}) carries no "
                    "signature, and it is not one the node makes itself",
                )


def _node_made(height: int, command: Command, operator: str, ours: frozenset[str]) -> bool:
    """May this command be unsigned? Only if the journal says the node made it."""
    if height == GENESIS_HEIGHT:
        return isinstance(command, _GENESIS_KINDS) and command.signer == operator
    return isinstance(command, _NODE_KINDS) and command.signer in ours


def _check(batch: list[_Signed], domain: signing.Domain, executor: Executor | None) -> int:
    pairs = [(s.command, s.signature) for s in batch]
    for signed, found in zip(
        batch, signing.authenticate_batch(pairs, domain, executor), strict=True
    ):
        where = f"command {signed.index}"
        if isinstance(found, InvalidArgument):
            raise VerificationError(signed.height, f"{where}: {found}")
        key = found.agent if isinstance(found, AgentSigned) else found.signer
        if key != signed.claimed:
            raise VerificationError(
                signed.height, f"{where}: signed by {key}, journaled as signed by {signed.claimed}"
            )
    return len(batch)
