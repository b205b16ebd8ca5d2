"""Genesis files: ``clearhouse init`` writes the default venue, which reads back as the same
listings; a bad file is refused with one line naming its key, and nothing is written. A file's
``[options_vault]`` table sets the options vault up in block 1 (before any hand-over to
governance); without it the venue has none."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from eth_account import Account
from tests.node.conftest import free_port

from clearhouse.adapters.memory_journal import MemoryJournal
from clearhouse.app.chain import Chain
from clearhouse.core.codec import encode_command
from clearhouse.core.errors import ConfigError
from clearhouse.core.ids import MarketId, OracleId
from clearhouse.core.messages import (
    CommandRejected,
    ListOptionSeries,
    SetupGovernance,
    SetupOptionsVault,
)
from clearhouse.core.params import OptionsVaultParams
from clearhouse.node.dev import DEV_ROLES, dev_address
from clearhouse.node.genesis import (
    default_genesis_text,
    load_genesis,
    parse_genesis,
    public_keys,
)
from clearhouse.sim.venue import GENESIS_NS, btc_option_series, genesis_commands
from helpers import of_type


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
    port = str(free_port())
    done = _clearhouse("serve", "--genesis", str(path), "--data", str(data), "--port", port)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "domain.x: unknown key" in done.stderr
    assert not data.exists()
    missing = _clearhouse("serve", "--genesis", str(tmp_path / "none.toml"), "--data", str(data))
    assert missing.returncode == 2 and "no genesis file" in missing.stderr


def uncommented(text: str, header: str) -> str:
    """The file with one of its commented examples (from ``# header`` to the next blank line)
    taken in."""
    head, found, rest = text.partition(f"# {header}\n")
    assert found, header
    example, blank, tail = rest.partition("\n\n")
    taken = "\n".join(line.removeprefix("# ") for line in example.split("\n"))
    return f"{head}{header}\n{taken}{blank}{tail}"


def _uncommented_series(text: str) -> str:
    """The file with its example option series taken in (uncommented)."""
    return uncommented(text, "[[option_series]]")


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


def test_a_file_may_set_up_the_options_vault_and_block_1_does() -> None:
    text = uncommented(default_genesis_text(GENESIS_NS), "[options_vault]")
    genesis = parse_genesis(
        tomllib.loads(
            text.replace(
                "quote_size_base_quantums = 10_000_000", "quote_size_base_quantums = 20_000_000"
            )
        )
    )
    assert genesis.options_vault == OptionsVaultParams(
        oracle_id=OracleId("BTC-USD"), hedge_market_id=MarketId("BTC-PERP"),
        quote_size_base_quantums=20_000_000,
    )  # fmt: skip
    commands = genesis.commands(GENESIS_NS)
    assert isinstance(commands[-1], SetupOptionsVault)
    assert commands[-1].signer == DEV_ROLES.operator
    chain = Chain(genesis.venue, MemoryJournal())
    executed = chain.produce(GENESIS_NS, commands)
    assert not of_type(executed.events, CommandRejected)
    assert chain.engine.state.options_vault.params == genesis.options_vault


def test_the_default_file_sets_up_no_options_vault() -> None:
    genesis = parse_genesis(tomllib.loads(default_genesis_text(GENESIS_NS)))
    assert genesis.options_vault is None
    assert not [c for c in genesis.commands(GENESIS_NS) if isinstance(c, SetupOptionsVault)]


def test_a_governed_venue_sets_up_its_options_vault_before_the_hand_over() -> None:
    text = uncommented(default_genesis_text(GENESIS_NS), "[options_vault]")
    genesis = parse_genesis(tomllib.loads(uncommented(text, "[governance]")))
    kinds = [type(c) for c in genesis.commands(GENESIS_NS)[-2:]]
    assert kinds == [SetupOptionsVault, SetupGovernance]
    genesis.check_listings(GENESIS_NS)  # the operator may still set it up: nothing refused
    assert genesis.labels()[-2:] == ["options_vault", "governance"]


BAD_OPTIONS_VAULT = [
    ("unknown key", "lockup_ns = 86_400_000_000_000", "colour = 1",
     "genesis options_vault: unknown field(s) colour"),
    ("no default", 'oracle_id = "BTC-USD"\nhedge', "hedge",
     "genesis options_vault: missing field oracle_id"),
    ("wrong type", "half_spread_ppm = 20_000", 'half_spread_ppm = "2%"',
     "genesis options_vault.half_spread_ppm: expected an integer"),
    ("invalid", "half_spread_ppm = 20_000", "half_spread_ppm = 0",
     "genesis options_vault: half_spread_ppm in (0, 50%)"),
    ("no such perpetual", 'hedge_market_id = "BTC-PERP"', 'hedge_market_id = "BTC-FUT-720H"',
     "genesis options_vault: the engine refuses the set-up (INVALID_PARAMETERS)"),
]  # fmt: skip


@pytest.mark.parametrize(("why", "old", "new", "message"), BAD_OPTIONS_VAULT,
                         ids=[b[0] for b in BAD_OPTIONS_VAULT])  # fmt: skip
def test_a_bad_options_vault_is_refused_naming_its_key(
    tmp_path: Path, why: str, old: str, new: str, message: str
) -> None:
    text = uncommented(default_genesis_text(GENESIS_NS), "[options_vault]")
    head, table, tail = text.partition("[options_vault]\n")
    assert old in tail, why
    path = tmp_path / "bad.toml"
    path.write_text(head + table + tail.replace(old, new, 1))
    with pytest.raises(ConfigError, match="genesis") as refused:
        load_genesis(path, GENESIS_NS)
    assert message in str(refused.value)


def test_init_writes_fresh_role_keys_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "venue.toml"
    assert _clearhouse("init", str(path)).returncode == 0
    keys_path = tmp_path / "venue.keys.toml"
    assert stat.S_IMODE(keys_path.stat().st_mode) == 0o600
    keys = tomllib.loads(keys_path.read_text())["keys"]
    genesis = load_genesis(path, time.time_ns())
    assert public_keys(genesis) == []  # nothing in it anyone else can sign for

    def address(key: str) -> str:
        return Account.from_key(key).address.lower()

    assert address(keys["operator"]) == genesis.roles.operator
    assert address(keys["custody_relayer"]) == genesis.roles.relayer
    assert tuple(address(k) for k in keys["publishers"]) == genesis.roles.publishers
    assert genesis.domain.verifying_contract != dev_address("custody-contract")
    other = tmp_path / "other.toml"
    assert _clearhouse("init", str(other)).returncode == 0
    assert load_genesis(other, time.time_ns()).roles != genesis.roles  # fresh each time


def test_serve_refuses_a_venue_on_the_dev_nodes_public_keys_in_one_line(tmp_path: Path) -> None:
    """Anyone can derive the dev node's keys: a venue naming its custody relayer would credit
    anyone's deposits. Served only with ``--public-keys``."""
    path = tmp_path / "venue.toml"
    path.write_text(default_genesis_text(GENESIS_NS))
    assert public_keys(load_genesis(path, GENESIS_NS))[:2] == [
        f"roles.operator {dev_address('operator')}",
        f"roles.custody_relayer {dev_address('custody-relayer')}",
    ]
    data = tmp_path / "data"
    done = _clearhouse("serve", "--genesis", str(path), "--data", str(data),
                       "--port", str(free_port()))  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "[CONFIG_ERROR]" in line and "roles.operator" in line and "--public-keys" in line
    assert not data.exists()
    flags = ["--operator", dev_address("operator"), "--relayer", "0x" + "11" * 20,
             "--chain-id", "7", "--verifying-contract", "0x" + "22" * 20]  # fmt: skip
    for i in range(3):
        flags += ["--publisher", "0x" + f"{i + 3}" * 40]
    named = _clearhouse("serve", *flags, "--data", str(data), "--port", str(free_port()))
    assert named.returncode == 2 and not data.exists()
    assert f"--operator {dev_address('operator')} is the dev node's" in named.stderr
