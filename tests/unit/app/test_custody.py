"""The epoch the custody contract is given (``app/custody.py``): each subaccount's liability at
the marks, salted leaves, the withdrawals a ``Withdraw`` leaves, the proof documents and their
verification; the commands ``liabilities`` and ``verify-liabilities``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers import BTC_PERP, BUY, ONE_BTC, PRICE, SELL, USDC, Venue, accepted

from clearhouse.app.custody import (
    VAULT_SHARES_NUMBER,
    Liability,
    check_liability_proof,
    liabilities,
    liability_of,
    liability_proofs,
    parse_liability_proof,
    withdrawal_proofs,
    withdrawals_in,
    withdrawals_tree,
)
from clearhouse.core.errors import BadProof, ProofRejected
from clearhouse.core.ids import QUOTE_ASSET
from clearhouse.core.ledger import CUSTODY, VAULT
from clearhouse.core.sum_tree import Node, verify

SEED = bytes(range(32))
GOLDEN_JOURNAL = Path(__file__).resolve().parents[2] / "golden" / "demo-seed3.sqlite"


@pytest.fixture(scope="module")
def venue() -> Venue:
    """Alice long and bob short 1 BTC, the price then up 5%; carol holds BTC collateral too;
    dave withdraws 1,000 USDC."""
    venue = Venue(btc_per_trader=ONE_BTC)
    accepted(venue, venue.order("bob", BTC_PERP, SELL, ONE_BTC, PRICE))
    accepted(venue, venue.market_order("alice", BTC_PERP, BUY, ONE_BTC))
    venue.settle_prices(BTC_USD=PRICE * 105 // 100)
    accepted(venue, venue.withdraw("dave", 1_000 * USDC))
    accepted(venue, venue.deposit_vault("carol", 5_000 * USDC))
    accepted(venue, venue.deposit_vault("dave", 3_000 * USDC))
    return venue


def test_a_liability_is_quote_equity_at_the_marks(venue: Venue) -> None:
    published = liabilities(venue.engine, SEED)
    owed = {(e.owner, e.subaccount_number): e.amount for e in published.leaves
            if isinstance(e, Liability)}  # fmt: skip
    for name in ("alice", "bob", "carol", "dave"):
        risk = venue.risk(name)
        btc_value = risk.settled_collateral - risk.settled_quote
        assert btc_value > 0  # every trader holds 1 BTC: counted at a haircut, not owed in quote
        assert owed[(venue.address(name), 0)] == max(risk.equity - btc_value, 0)
    assert owed[(venue.address("alice"), 0)] > owed[(venue.address("bob"), 0)]  # the move
    custody = -venue.state.ledger.balance(CUSTODY, QUOTE_ASSET)
    assert published.tree.root.sum == sum(owed.values())
    assert published.tree.root.sum <= custody  # what the contract must hold at least


def test_a_vault_is_owed_to_its_shareholders(venue: Venue) -> None:
    published = liabilities(venue.engine, SEED)
    leaves = [e for e in published.leaves if isinstance(e, Liability)]
    assert all(e.owner != VAULT.owner for e in leaves)  # no one holds the vault's key
    shares = {e.owner: e.amount for e in leaves if e.subaccount_number == VAULT_SHARES_NUMBER}
    assert set(shares) == {venue.address("carol"), venue.address("dave")}
    vault_owed = liability_of(venue.engine, venue.state.ledger.subaccounts[VAULT])
    assert 0 < sum(shares.values()) <= vault_owed
    assert sum(shares.values()) >= vault_owed - 2  # one quantum at most lost per holder
    assert shares[venue.address("carol")] > shares[venue.address("dave")]


def test_the_same_seed_gives_the_same_root_and_another_seed_another(venue: Venue) -> None:
    first = liabilities(venue.engine, SEED)
    assert liabilities(venue.engine, SEED).tree.root == first.tree.root
    other = liabilities(venue.engine, bytes(32))
    assert other.tree.root.sum == first.tree.root.sum
    assert other.tree.root.hash != first.tree.root.hash


def test_every_proof_document_checks_and_a_forged_one_does_not(venue: Venue) -> None:
    published = liabilities(venue.engine, SEED)
    root = published.tree.root
    documents = liability_proofs(published, height=venue.state.height)
    assert len(documents) == len(published.leaves)
    for document in documents:
        proof = parse_liability_proof(json.dumps(document))
        assert check_liability_proof(proof, root=root.hash, assets=root.sum) == root.sum
    forged = {**documents[0], "amount_quantums": documents[0]["amount_quantums"] + 1}
    with pytest.raises(ProofRejected) as rejected:
        check_liability_proof(parse_liability_proof(json.dumps(forged)), root=root.hash,
                              assets=None)  # fmt: skip
    assert rejected.value.code == "NOT_INCLUDED"
    with pytest.raises(ProofRejected) as rejected:
        check_liability_proof(parse_liability_proof(json.dumps(documents[0])), root=root.hash,
                              assets=root.sum - 1)  # fmt: skip
    assert rejected.value.code == "INSOLVENT"


@pytest.mark.parametrize(
    ("change", "message"),
    [({"kind": "other"}, "kind"), ({"owner": "0x12"}, "owner"),
     ({"amount_quantums": -1}, "amount_quantums"), ({"amount_quantums": "5"}, "amount_quantums"),
     ({"amount_quantums": True}, "amount_quantums"), ({"salt": "0x00"}, "salt"),
     ({"siblings": []}, "siblings"), ({"siblings": [{"hash": "0x" + "00" * 32, "sum": -1}]}, "sum"),
     ({"siblings": [7]}, "siblings")],
)  # fmt: skip
def test_a_malformed_proof_is_bad_proof(venue: Venue, change: dict[str, object],
                                        message: str) -> None:  # fmt: skip
    published = liabilities(venue.engine, SEED)
    document = {**liability_proofs(published, height=1)[0], **change}
    with pytest.raises(BadProof, match=message):
        parse_liability_proof(json.dumps(document))


def test_a_withdrawal_becomes_a_leaf_paid_to_its_owner(venue: Venue) -> None:
    found = withdrawals_in((b.height, b.events) for b in venue.recorded)
    assert [(w.recipient, w.amount) for w in found] == [(venue.address("dave"), 1_000 * USDC)]
    assert found[0].withdrawal_id >> 32 == venue.recorded[-3].height  # two vault deposits since
    published = withdrawals_tree(found)
    assert published.tree.root.sum == 1_000 * USDC
    (document,) = withdrawal_proofs(published, epoch=1)
    siblings = [Node(bytes.fromhex(s["hash"][2:]), s["sum"]) for s in document["siblings"]]
    assert verify(found[0].leaf, 0, siblings, root_hash=published.tree.root.hash,
                  total=1_000 * USDC) is None  # fmt: skip


def _cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearhouse", *arguments], capture_output=True, text=True,
        timeout=120, check=False, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def _journal(tmp_path: Path) -> str:
    """A copy of the golden journal: a reader of a WAL-mode journal leaves SQLite's -wal and
    -shm files beside it, which belong in no source tree."""
    copy = tmp_path / "journal.sqlite"
    shutil.copyfile(GOLDEN_JOURNAL, copy)
    return str(copy)


def test_the_commands_build_and_verify_an_epoch(tmp_path: Path) -> None:
    seed_file = tmp_path / "seed"
    seed_file.write_text(SEED.hex())
    out = tmp_path / "epoch"
    done = _cli("liabilities", "--journal", _journal(tmp_path), "--out", str(out),
                "--seed-file", str(seed_file))  # fmt: skip
    assert done.returncode == 0, done.stderr
    epoch = json.loads((out / "epoch.json").read_text())
    assert epoch["height"] == 180
    assert epoch["subaccounts"] == len(list((out / "proofs").iterdir()))
    assert not (out / "seed.secret").exists()  # the seed was given: nothing drawn
    proof = sorted((out / "proofs").iterdir())[0]
    root = epoch["liabilities_root"]
    total = epoch["total_liabilities_quantums"]
    done = _cli("verify-liabilities", str(proof), "--root", root, "--assets", str(total))
    assert done.returncode == 0, done.stderr
    assert "included" in done.stdout
    for arguments, code, exit_code in (
        (["--root", root, "--assets", str(total - 1)], "INSOLVENT", 1),
        (["--root", "0x" + "00" * 32], "WRONG_ROOT", 1),
        (["--root", "0x12"], "INVALID_ARGUMENT", 2),
    ):
        done = _cli("verify-liabilities", str(proof), *arguments)
        assert done.returncode == exit_code, done.stderr
        assert done.stderr.startswith(f"error [{code}] "), done.stderr
        assert done.stderr.count("\n") == 1
    tampered = tmp_path / "tampered.json"
    document = json.loads(proof.read_text())
    document["siblings"][0]["sum"] += 1
    tampered.write_text(json.dumps(document))
    done = _cli("verify-liabilities", str(tampered), "--root", root)
    assert (done.returncode, done.stderr.split("]")[0]) == (1, "error [NOT_INCLUDED")
    for text in ("{not json", "[" * 100_000, '{"index": ' + "9" * 5_000 + "}", "x" * 10**6):
        tampered.write_text(text)
        done = _cli("verify-liabilities", str(tampered), "--root", root)
        assert (done.returncode, done.stderr.split("]")[0]) == (2, "error [BAD_PROOF")
        assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_a_drawn_seed_is_kept_private(tmp_path: Path) -> None:
    out = tmp_path / "epoch"
    done = _cli("liabilities", "--journal", _journal(tmp_path), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "seed.secret").stat().st_mode & 0o777 == 0o600
    # Each proof holds its owner's balance and salt, for that owner only (review 14: they were
    # written as the umask had it, 0644 under the usual 022, beside the private seed).
    assert (out / "proofs").stat().st_mode & 0o777 == 0o700
    proofs = list((out / "proofs").iterdir())
    assert proofs and all(p.stat().st_mode & 0o777 == 0o600 for p in proofs)
    assert len(bytes.fromhex((out / "seed.secret").read_text().strip())) == 32


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000,  # nested past the parser's recursion limit
     '{"amount_quantums": ' + "9" * 5_000 + "}",  # past Python's integer-string limit
     '{"kind": "clearhouse.liabilities-proof", "version": 1, "owner": "0x' + "1" * 40
     + '", "salt": 1e999}'],  # an infinity: refused by the field's type
)  # fmt: skip
def test_any_bad_proof_text_is_bad_proof(text: str) -> None:
    """Review 14: the first two escaped as RecursionError and ValueError (a traceback from
    ``verify-liabilities``, not one line with BAD_PROOF)."""
    with pytest.raises(BadProof):
        parse_liability_proof(text)


def test_a_later_epoch_names_its_first_block(tmp_path: Path) -> None:
    """Epoch N > 1 without --from-height would repeat every earlier epoch's withdrawals, which
    the contract reserves again and never frees (tests/custody, review 14): refused."""
    out = tmp_path / "epoch"
    done = _cli("liabilities", "--journal", _journal(tmp_path), "--out", str(out), "--epoch", "2")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error [INVALID_ARGUMENT] ") and "--from-height" in done.stderr
    assert done.stderr.count("\n") == 1 and not out.exists()
    done = _cli("liabilities", "--journal", _journal(tmp_path), "--out", str(out), "--epoch", "2",
                "--from-height", "150")  # fmt: skip
    assert done.returncode == 0, done.stderr
    epoch = json.loads((out / "epoch.json").read_text())
    assert (epoch["epoch"], epoch["from_height"]) == (2, 150)
