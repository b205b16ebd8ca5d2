"""The opt-in compiled build (``make compiled``, ``hatch_build.py``): mypyc accepts every module
it compiles. Building and compiling the C takes minutes, so ``make test`` runs only mypyc's own
front end, which refuses in seconds what the C build would refuse (a chained assignment in a
class body, a surrogate in a string literal: each once broke the build unnoticed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _hook_module() -> object:
    spec = importlib.util.spec_from_file_location("clearhouse_hatch_build", ROOT / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mypyc_accepts_every_module_the_compiled_build_compiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = pytest.importorskip("mypyc.build", reason="mypyc comes with mypy (the dev extra)")
    pytest.importorskip("hatchling", reason="the build backend (the dev extra)")
    sources: list[Path] = _hook_module().core_sources(ROOT)  # type: ignore[attr-defined]
    assert len(sources) > 40, sources  # the engine package and the pure modules
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["mypyc"])
    options = [
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    try:
        extensions = build.mypycify(
            options + [str(path) for path in sources], opt_level="0",
            group_name="clearhouse_core", target_dir=str(tmp_path / "c"),
        )  # fmt: skip
    except SystemExit as refused:  # mypyc prints what it refused, then exits
        pytest.fail(f"mypyc refused the compiled build's sources (exit {refused.code}): see above")
    assert len(extensions) == len(sources) + 1  # a shim per module, and the shared library
