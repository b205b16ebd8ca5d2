"""Keys: a wallet signs as eth-account does; a key file must be its owner's alone and hold a
well-formed key, or it is refused in one line that never repeats the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from clearhouse.client.wallet import Wallet
from clearhouse.core.errors import ConfigError, InvalidArgument

KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def key_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "bot.key"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("text", [KEY, "0x" + KEY, f"  0x{KEY}\n", KEY.upper()])
def test_a_key_file_of_its_owner_alone_gives_the_wallet(tmp_path: Path, text: str) -> None:
    wallet = Wallet.from_key_file(key_file(tmp_path, text))
    assert wallet.address == Account.from_key(bytes.fromhex(KEY)).address.lower()


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o640, 0o660, 0o606])
def test_a_key_file_others_can_open_is_refused(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path, KEY, mode)
    with pytest.raises(ConfigError, match=f"open to other users .mode {mode:o}.: chmod 600"):
        Wallet.from_key_file(path)


@pytest.mark.parametrize("text", ["", KEY[:-1], KEY + "00", "zz" + KEY[2:], "0" * 64, "f" * 64])
def test_a_malformed_key_is_refused_without_echoing_it(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match=r"key file .*: a private key is") as refused:
        Wallet.from_key_file(key_file(tmp_path, text))
    assert "\n" not in str(refused.value)
    assert not text or text[:16] not in str(refused.value)


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read key file"):
        Wallet.from_key_file(tmp_path / "absent.key")


def test_a_malformed_hex_key_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="64 hex digits"):
        Wallet.from_hex("0x1234")
