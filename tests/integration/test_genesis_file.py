"""Genesis files: ``clearhouse init`` writes the default venue, which reads back as the same
listings; a bad file is refused with one line naming its key, and nothing is written."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from clearhouse.adapters.memory_journal import MemoryJournal
from clearhouse.app.chain import Chain
from clearhouse.core.codec import encode_command
from clearhouse.core.errors import ConfigError
from clearhouse.core.messages import ListOptionSeries
from clearhouse.node.dev import DEV_ROLES, dev_address
from clearhouse.node.genesis import default_genesis_text, load_genesis, parse_genesis
from clearhouse.sim.venue import GENESIS_NS, btc_option_series, genesis_commands


def _clearhouse(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clearhouse", *args],
                          capture_output=True, text=True, check=False)  # fmt: skip


def test_the_default_file_is_the_default_venue() -> None:
    genesis = parse_genesis(tomllib.loads(default_genesis_text(GENESIS_NS)))
    spec = DEV_ROLES.spec(GENESIS_NS)
    assert genesis.venue == spec.venue
    assert genesis.roles == DEV_ROLES
    assert (genesis.domain.chain_id, genesis.domain.verifying_contract) == (
        31337, dev_address("custody-contract"))  # fmt: skip
    later = GENESIS_NS + 3_600 * 10**9  # a relative expiry follows the genesis time
    assert [encode_command(c) for c in genesis.commands(later)] == [
        encode_command(c) for c in genesis_commands(DEV_ROLES.spec(later))
    ]


def test_init_writes_a_file_and_never_overwrites_one(tmp_path: Path) -> None:
    path = tmp_path / "genesis.toml"
    assert _clearhouse("init", str(path)).returncode == 0
    written = path.read_text()
    assert written.startswith("# A Clearhouse venue's genesis file")
    again = _clearhouse("init", str(path))
    assert again.returncode == 2
    assert "exists: not overwritten" in again.stderr
    assert path.read_text() == written


BAD = [
    ("missing key", "chain_id = 31337\n", "", "domain.chain_id: missing"),
    ("wrong type", "chain_id = 31337", 'chain_id = "1"', "chain_id: expected an integer"),
    ("unknown key", "[domain]\n", "[domain]\ncolour = 1\n", "domain.colour: unknown key"),
    ("unknown section", "[roles]\n", "[governence]\n[roles]\n", "governence: unknown key"),
    ("unknown param", 'asset_id = "USDC"\n', 'asset_id = "USDC"\nflavour = 2\n',
     "assets[0]: unknown field(s) flavour"),
    ("param type", "tick_quantums = 100_000", "tick_quantums = 1.5",
     "markets[0].tick_quantums: expected an integer"),
    ("invalid param", "initial_margin_ppm = 20_000", "initial_margin_ppm = 0", "markets[0]: "),
    ("bad kind", 'kind = "perpetual"', 'kind = "swap"', "markets[0].kind: one of"),
    ("bad address", "operator = \"0x", "operator = \"0xzz", "roles.operator: expected an address"),
    ("engine refuses", 'oracle_id = "USDT-USD"\n', 'oracle_id = "BTC-USD"\n',
     "the engine refuses the listing"),
]  # fmt: skip


@pytest.mark.parametrize(("why", "old", "new", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_file_is_refused_naming_its_key(
    tmp_path: Path, why: str, old: str, new: str, message: str
) -> None:
    text = default_genesis_text(GENESIS_NS)
    assert old in text, why
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError, match="genesis") as refused:
        load_genesis(path, GENESIS_NS)
    assert message in str(refused.value)


def test_serve_refuses_a_bad_file_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(default_genesis_text(GENESIS_NS).replace("[domain]\n", "[domain]\nx = 1\n"))
    data = tmp_path / "data"
    done = _clearhouse("serve", "--genesis", str(path), "--data", str(data), "--port", "1")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "domain.x: unknown key" in done.stderr
    assert not data.exists()
    missing = _clearhouse("serve", "--genesis", str(tmp_path / "none.toml"), "--data", str(data))
    assert missing.returncode == 2 and "no genesis file" in missing.stderr


def _uncommented_series(text: str) -> str:
    """The file with its example option series taken in (uncommented)."""
    head, _, example = text.partition("# [[option_series]]")
    return head + "[[option_series]]" + example.replace("\n# ", "\n")


def test_a_file_may_list_an_option_series_and_the_engine_lists_its_options() -> None:
    text = _uncommented_series(default_genesis_text(GENESIS_NS))
    genesis = parse_genesis(tomllib.loads(text))
    assert [s.prefix for s in genesis.option_series] == ["BTC"]
    assert genesis.option_series[0] == btc_option_series()
    commands = genesis.commands(GENESIS_NS)
    assert isinstance(commands[-1], ListOptionSeries)
    chain = Chain(genesis.venue, MemoryJournal())
    chain.produce(GENESIS_NS, commands)
    assert "BTC-USD" in chain.engine.state.option_series  # block 1 took the listing


def test_a_bad_option_series_is_refused_naming_its_key() -> None:
    text = _uncommented_series(default_genesis_text(GENESIS_NS))
    bad = text.replace('prefix = "BTC"', 'prefix = "btc"')
    with pytest.raises(ConfigError, match=r"option_series\[0\]: prefix"):
        parse_genesis(tomllib.loads(bad))
