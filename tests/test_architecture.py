"""The layering rules of docs/ARCHITECTURE.md, enforced on the source itself.

* the core imports nothing from the shell (app, adapters, sim, cli, bootstrap);
* the core imports no clock, randomness, I/O, threads or async;
* the core calls no I/O builtins (open, print, input);
* matching knows nothing of balances or margin;
* the SDK imports nothing from the node, the adapters or the simulator;
* every command type has exactly one handler in the engine's dispatch.
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
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10, "the core modules were not found"
    return files


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(CORE)))
def test_core_imports_no_shell_and_no_io(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN_IN_CORE, f"{path.name} imports {name}"
        assert not name.startswith(SHELL_PACKAGES), f"{path.name} imports shell module {name}"


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(CORE)))
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


def _dispatched_classes() -> list[str]:
    """The command classes named by the ``case`` patterns of ``machine.dispatch``."""
    tree = ast.parse((CORE / "engine" / "machine.py").read_text())
    [dispatch] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "dispatch"]
    [match] = [n for n in dispatch.body if isinstance(n, ast.Match)]
    names: list[str] = []
    for case in match.cases:
        for pattern in ast.walk(case.pattern):
            if isinstance(pattern, ast.MatchClass):
                assert isinstance(pattern.cls, ast.Name)
                names.append(pattern.cls.id)
    return names


def test_every_command_type_has_exactly_one_handler() -> None:
    """TigerBeetle's exhaustive switch: a command type added to ``USER_COMMANDS`` without a
    handler would otherwise be rejected as malformed on every replica, silently."""
    from clearhouse.core.messages import USER_COMMANDS

    dispatched = _dispatched_classes()
    assert len(dispatched) == len(set(dispatched)), "a command type has two cases"
    assert sorted(dispatched) == sorted(c.__name__ for c in USER_COMMANDS)


def test_dispatch_reaches_a_handler_for_every_command_type() -> None:
    """Each command type, dispatched for real, reaches its handler rather than the fallback
    (the fallback is the one place that rejects as MALFORMED_COMMAND without looking)."""
    from clearhouse.core.engine import machine
    from clearhouse.core.messages import USER_COMMANDS
    from helpers import skip_if_compiled

    skip_if_compiled(machine, "dispatch's handlers")

    reached: list[str] = []

    class Reached(Exception):
        pass

    def handler_for(name: str):  # type: ignore[no-untyped-def]
        def handler(ctx: object, command: object) -> None:
            reached.append(type(command).__name__)
            raise Reached

        return handler

    patch = pytest.MonkeyPatch()
    for name, value in vars(machine).items():
        if (
            callable(value)
            and getattr(value, "__module__", "").startswith("clearhouse.core.engine.")
            and name in _handler_names()
        ):
            patch.setattr(machine, name, handler_for(name))
    try:
        for command_type in USER_COMMANDS:
            command = object.__new__(command_type)
            with pytest.raises(Reached):
                machine.dispatch(None, command)  # type: ignore[arg-type]
    finally:
        patch.undo()
    assert sorted(reached) == sorted(c.__name__ for c in USER_COMMANDS)


def _handler_names() -> set[str]:
    """The functions ``dispatch`` calls, read from its source."""
    tree = ast.parse((CORE / "engine" / "machine.py").read_text())
    [dispatch] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "dispatch"]
    return {
        call.func.id
        for call in ast.walk(dispatch)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
    } - {"Rejected"}
