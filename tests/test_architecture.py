"""The layering rules of docs/ARCHITECTURE.md, enforced on the source itself.

* the core imports nothing from the shell (app, adapters, sim, cli, bootstrap);
* the core imports no clock, randomness, I/O, threads or async;
* the core calls no I/O builtins (open, print, input);
* matching knows nothing of balances or margin;
* the SDK imports nothing from the node, the adapters or the simulator.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "src" / "clearhouse" / "core"
SHELL_PACKAGES = (
    "clearhouse.app", "clearhouse.adapters", "clearhouse.sim", "clearhouse.cli",
    "clearhouse.node", "clearhouse.client",
)  # fmt: skip
SDK = ROOT / "src" / "clearhouse" / "client"
FORBIDDEN_IN_CORE = {
    "time", "datetime", "random", "secrets", "os", "io", "sqlite3", "asyncio", "threading",
    "multiprocessing", "socket", "subprocess", "pathlib", "shutil", "tempfile", "uuid",
    "numpy", "typer", "rich", "psycopg", "nats",
}  # fmt: skip
FORBIDDEN_CALLS = {"open", "print", "input", "breakpoint", "exec", "eval"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def _core_files() -> list[Path]:
    files = sorted(CORE.glob("*.py"))
    assert len(files) > 10, "the core modules were not found"
    return files


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: p.name)
def test_core_imports_no_shell_and_no_io(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN_IN_CORE, f"{path.name} imports {name}"
        assert not name.startswith(SHELL_PACKAGES), f"{path.name} imports shell module {name}"


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: p.name)
def test_core_calls_no_io_builtins(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in FORBIDDEN_CALLS, f"{path.name} calls {node.func.id}()"


def test_matching_knows_nothing_of_balances() -> None:
    imported = _imports(CORE / "matching.py")
    for forbidden in ("ledger", "margin", "engine", "state", "settlement"):
        assert f"clearhouse.core.{forbidden}" not in imported


@pytest.mark.parametrize("path", sorted(SDK.glob("*.py")), ids=lambda p: p.name)
def test_the_sdk_speaks_only_http(path: Path) -> None:
    """A client never reaches into a node: everything it knows comes over the API."""
    for name in _imports(path):
        assert not name.startswith(("clearhouse.node", "clearhouse.adapters", "clearhouse.sim"))


def test_rule_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom clearhouse.adapters import sqlite_journal\n")
    names = _imports(bad)
    assert names == ["time", "clearhouse.adapters"]


def test_import_linter_contracts_hold() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    if not linter.exists():
        pytest.skip("import-linter is not installed in this environment")
    result = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
