"""The SDK installs and runs without the node's dependencies (`pip install ".[client]"`): the
client imports, signs and builds its requests with numpy, scipy, FastAPI, uvicorn, psycopg and
prometheus-client unimportable, and a command that needs them says which extra to install in
one line. The wheel ships ``py.typed``, so type checkers read the SDK's annotations."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from clearhouse.cli import EXIT_MISSING_EXTRA, NODE_EXTRA_MODULES

ROOT = Path(__file__).resolve().parents[3]
BLOCKED = sorted(NODE_EXTRA_MODULES | {"pandas", "numba", "QuantLib"})

# Installed first in the child: any import of a blocked package fails as if it were absent.
BLOCKER = f"""
import sys
class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {BLOCKED!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Absent())
"""

CLIENT = """
import asyncio
from decimal import Decimal
from clearhouse.client import AsyncClient, Client, InvalidArgument, Stream, Wallet, checksummed
from clearhouse.client.bots import KeeperBot, MarketMaker
from clearhouse.app.signing import Domain
wallet = Wallet.from_hex("11" * 32)
client = Client("http://127.0.0.1:1", wallet, account=checksummed(wallet.address))
order = client.order("BTC-PERP", "buy", size_base_quantums=10**6, price_quantums=6 * 10**10)
client._domain = Domain(31337, "0x" + "ab" * 20)
assert len(client.signed(order)["signature"]) == 132
assert issubclass(InvalidArgument, ValueError)
AsyncClient("http://127.0.0.1:1", wallet), Stream("http://127.0.0.1:1", ["book:BTC-PERP"])
loaded = [m for m in sys.modules if m.partition(".")[0] in {blocked!r}]
assert not loaded, loaded
print("client ok")
"""


def child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKER + code], capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return child(f"from clearhouse.cli import main\nsys.argv = ['clearhouse', *{list(args)!r}]\n"
                 "sys.exit(main())")  # fmt: skip


def test_the_blocker_blocks() -> None:
    done = child("import numpy")
    assert done.returncode == 1 and "No module named 'numpy'" in done.stderr


def test_the_client_imports_and_signs_without_the_node_dependencies() -> None:
    done = child(CLIENT.format(blocked=BLOCKED))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "client ok\n"


@pytest.mark.parametrize(
    "args", [["--version"], ["keeper", "--help"], ["maker", "--help"], ["gov", "--help"],
             ["gov", "propose", "--help"], ["vault", "deposit", "--help"],
             ["options-vault", "show", "--help"]],
)  # fmt: skip
def test_the_client_commands_run_without_the_node_dependencies(args: list[str]) -> None:
    done = cli(*args)
    assert done.returncode == 0, done.stderr


def test_governance_reads_and_checks_without_the_node_dependencies() -> None:
    """The gov commands get as far as the network with the node extra absent: values parsed
    and refused, the node asked (here, a port nothing listens on)."""
    bad = cli("gov", "propose", "--set", "market.taker_fee_ppm", "BTC-PERP", "0.00001%")
    assert bad.returncode == 2 and "[INVALID_ARGUMENT]" in bad.stderr, bad.stderr
    unreachable = cli("gov", "show", "1", "--url", "http://127.0.0.1:1")
    assert unreachable.returncode == 2, unreachable.stderr
    assert unreachable.stderr.startswith("error [CONFIG_ERROR] cannot reach a node")


def test_verify_reads_a_sqlite_journal_without_the_node_dependencies(tmp_path: Path) -> None:
    """A SQLite journal needs no PostgreSQL driver: verify replays it in a client-only install
    (it said ``[MISSING_EXTRA] this command needs psycopg``)."""
    journal = tmp_path / "journal.sqlite"  # a copy: SQLite leaves its -wal and -shm beside it
    shutil.copyfile(ROOT / "tests" / "golden" / "demo-seed3.sqlite", journal)
    done = cli("verify", str(journal))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("verified 180 blocks"), done.stdout


@pytest.mark.parametrize(
    "args", [["serve", "--dev"], ["demo"], ["verify", "postgresql://postgres@127.0.0.1:1/none"]]
)
def test_a_node_command_names_the_extra_to_install_in_one_line(args: list[str]) -> None:
    done = cli(*args)
    assert done.returncode == EXIT_MISSING_EXTRA, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error [MISSING_EXTRA] this command needs ")
    assert 'pip install "clearhouse[node]"' in done.stderr


def test_the_node_extra_holds_what_the_base_install_lacks() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    node = {_import_name(r) for r in project["optional-dependencies"]["node"]}
    base = {_import_name(r) for r in project["dependencies"]}
    assert node <= NODE_EXTRA_MODULES
    assert not base & NODE_EXTRA_MODULES
    assert "client" in project["optional-dependencies"]


IMPORTED_AS = {"nats_py": "nats"}  # distributions whose module has another name


def _import_name(requirement: str) -> str:
    name = requirement.split("==")[0].split("[")[0].replace("-", "_")
    return IMPORTED_AS.get(name, name)


def test_the_wheel_ships_py_typed(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w",
                    str(tmp_path)], check=True, capture_output=True, timeout=300)  # fmt: skip
    [wheel] = tmp_path.glob("clearhouse-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "clearhouse/py.typed" in names
    assert "clearhouse/client/surface.py" in names
