"""The custody commands (SPEC §14): ``liabilities`` builds an epoch's proof of liabilities and
withdrawals tree from a journal; ``verify-liabilities`` checks one user's proof against the
published root and, given the assets in custody, that they cover the total."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from clearhouse.cli.output import console
from clearhouse.core import limits
from clearhouse.core.errors import BadDataDir, BadProof, InvalidArgument
from clearhouse.core.sum_tree import SALT_BYTES

SEED_FILE = "seed.secret"


def liabilities(
    journal: Annotated[
        str, typer.Option("--journal", help="A journal: a SQLite file, or a postgresql:// URL.")
    ],
    out: Annotated[Path, typer.Option("--out", help="The folder to write the epoch into.")],
    epoch: Annotated[int, typer.Option(help="The epoch's number (the contract's, from 1).")] = 1,
    from_height: Annotated[
        int | None,
        typer.Option(help="The epoch's first block (the last epoch's height + 1): withdrawals "
                     "from here to the head. Epoch 1 starts at 1; a later epoch must say."),
    ] = None,
    seed_file: Annotated[
        Path | None,
        typer.Option(help="The epoch's secret salt seed (64 hex digits); else a new one is "
                     f"drawn and kept in OUT/{SEED_FILE} (mode 600)."),
    ] = None,
) -> None:  # fmt: skip
    """Build an epoch from a journal's head: the liabilities root and total, each subaccount's
    inclusion proof (OUT/proofs/), the withdrawals tree and proofs (OUT/withdrawals/), and the
    arguments of the contract's ``commit`` (OUT/epoch.json)."""
    from clearhouse.adapters.stores import open_journal
    from clearhouse.app.custody import epoch_from_journal

    # A later epoch that started at block 1 would commit every earlier epoch's withdrawals
    # again: the contract pays each id once but reserves it again, for good (it cannot tell
    # that reserve from a withdrawal still owed). So a later epoch names where it starts.
    if from_height is None and epoch > 1:
        raise InvalidArgument(f"--from-height: epoch {epoch} starts after the last epoch's "
                              "height (its epoch.json's height + 1)")  # fmt: skip
    from_height = 1 if from_height is None else from_height
    if epoch < 1 or from_height < 1:
        raise InvalidArgument("--epoch and --from-height count from 1")
    seed = _seed(seed_file)
    _make_folder(out)
    journal_handle = open_journal(journal, read_only=True)
    try:
        built = epoch_from_journal(journal_handle, seed, epoch=epoch, from_height=from_height)
    finally:
        journal_handle.close()
    if seed_file is None:
        _write_secret(out / SEED_FILE, seed.hex() + "\n")
    (out / "epoch.json").write_text(json.dumps(built.document, indent=2) + "\n")
    # Each liabilities proof is its owner's alone (a balance, and the salt that opens its leaf):
    # the folder and every file in it kept from other users of the machine, as the seed is.
    private = out / "proofs"
    private.mkdir(mode=0o700, exist_ok=True)
    private.chmod(0o700)
    for proof in built.liability_proofs:
        name = f"{proof['owner']}-{proof['subaccount_number']}.json"
        _write_secret(private / name, json.dumps(proof, indent=2) + "\n")
    (out / "withdrawals").mkdir(exist_ok=True)
    for proof in built.withdrawal_proofs:
        name = f"{proof['withdrawal_id']}.json"
        (out / "withdrawals" / name).write_text(json.dumps(proof, indent=2) + "\n")
    document = built.document
    console.print(
        f"epoch {epoch} at height {document['height']}: liabilities root "
        f"{document['liabilities_root']}, total {document['total_liabilities_quantums']} "
        f"quantums over {document['subaccounts']} subaccounts; {document['withdrawals']} "
        f"withdrawals ({document['withdrawals_total_quantums']} quantums), root "
        f"{document['withdrawals_root']}; written to {out}"
    )


def verify_liabilities(
    proof: Annotated[Path, typer.Argument(help="A liabilities proof (from `liabilities`).")],
    root: Annotated[str, typer.Option(help="The published liabilities root (0x, 64 hex).")],
    assets: Annotated[
        int | None,
        typer.Option(help="The quote quantums the custody contract holds: the total must not "
                     "exceed them."),
    ] = None,
) -> None:  # fmt: skip
    """Check that a subaccount's liability is included under the published root, and that the
    total liabilities are at most the assets in custody."""
    from clearhouse.app.custody import check_liability_proof, parse_liability_proof

    root_bytes = _root(root)
    if assets is not None and assets < 0:
        raise InvalidArgument("--assets is a number of quantums, at least 0")
    try:
        with proof.open("rb") as handle:  # no more than a proof can be: never a whole big file
            data = handle.read(limits.proof_bytes_max + 1)
        text = data.decode()
    except (OSError, UnicodeDecodeError) as error:
        raise BadProof(f"cannot read {proof}: {error}") from None
    parsed = parse_liability_proof(text)
    total = check_liability_proof(parsed, root=root_bytes, assets=assets)
    leaf = parsed.liability
    covered = "" if assets is None else f", covered by assets of {assets}"
    console.print(
        f"included: {leaf.owner}/{leaf.subaccount_number} is owed {leaf.amount} quantums under "
        f"root {root}; total liabilities {total}{covered}"
    )


def _root(text: str) -> bytes:
    if not text.startswith("0x") or len(text) != 66:
        raise InvalidArgument("--root is 32 bytes in hex (0x and 64 hex digits)")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise InvalidArgument("--root is 32 bytes in hex (0x and 64 hex digits)") from None


def _seed(path: Path | None) -> bytes:
    if path is None:
        return os.urandom(SALT_BYTES)
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidArgument(f"cannot read the seed file {path}: {error}") from None
    try:
        seed = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        seed = b""
    if len(seed) != SALT_BYTES:
        raise InvalidArgument(f"the seed file holds {SALT_BYTES} bytes in hex (64 hex digits)")
    return seed


def _make_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadDataDir(f"--out {out} cannot be made: {error.strerror or error}") from None
    if not os.access(out, os.W_OK):
        raise BadDataDir(f"--out {out} cannot be written")


def _write_secret(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a file left by an earlier run keeps its mode otherwise
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
