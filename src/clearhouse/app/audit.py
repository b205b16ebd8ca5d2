"""Re-check the signatures a journal keeps beside its commands: every signed command must
recover to the key the journal says signed it (the account's, or the agent it names).

Replay (``chain.verify``) checks what the commands did; this checks who sent them. Commands the
node made itself (genesis listings, a dev node's prices and faucet) carry no signature and are
counted, not checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass

from clearhouse.app import signing
from clearhouse.app.ports import Journal
from clearhouse.core.codec import MalformedCommand, decode_command
from clearhouse.core.errors import InvalidArgument, VerificationError
from clearhouse.core.messages import AgentSigned, Command

CHUNK = 2_048  # signatures sent to the pool at once


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
    for item in _signed(journal):
        if item is None:
            unsigned += 1
            continue
        batch.append(item)
        if len(batch) == CHUNK:
            checked += _check(batch, domain, executor)
            batch = []
    checked += _check(batch, domain, executor)
    return SignatureAudit(checked, unsigned)


def _signed(journal: Journal) -> Iterator[_Signed | None]:
    for stored in journal.blocks():
        for index, data in enumerate(stored.commands):
            signature = stored.signature(index)
            if not signature:
                yield None
                continue
            try:
                item = decode_command(data)
            except MalformedCommand as error:
                raise VerificationError(stored.header.height, f"command {index}: {error}") from None
            command, claimed = (
                (item.command, item.agent) if isinstance(item, AgentSigned) else (item, item.signer)
            )
            yield _Signed(command, signature, claimed, stored.header.height, index)


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
