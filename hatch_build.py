"""The opt-in compiled build: ``clearhouse.core`` compiled with mypyc (``make compiled``).

This hook is off by default, so ``pip install .`` and the editable install that ``make demo``
and ``make test`` use stay pure Python and need no compiler. With
``HATCH_BUILD_HOOK_ENABLE_CUSTOM=true`` in the environment, building the wheel compiles every
module of ``src/clearhouse/core`` (the engine package included) but those in ``EXCLUDED``, with
mypyc (pinned with its C build tools in ``pyproject.toml``), in a temporary directory, and adds
the extension modules to the wheel beside the sources: Python imports an extension module in
place of the ``.py`` beside it. The source tree is left untouched, so an editable install next to
it stays pure. The compiled code lives in one shared library, the top-level module
``clearhouse_core__mypyc`` (mypyc derives each module's ``__file__`` and a package's
``__path__`` from a shared library placed above the package tree); each module's own extension
is a small shim that loads its part of it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

CORE = Path("src") / "clearhouse" / "core"

# Modules left to the interpreter, and why.
EXCLUDED = {
    # InvariantViolation subclasses AssertionError, and mypyc compiles no class that inherits a
    # built-in class other than Exception ("Inheriting from most builtin types is
    # unimplemented"). The module holds exception classes and the RejectReason codes: nothing
    # that runs per command.
    "errors.py",
    # mypyc 2.4.1 crashes (a segmentation fault while compiling) on the sparse Merkle tree's
    # nested node tuples; the tree's cost is keccak and tuple building, which compiling barely
    # changed before (end_block gained 1.1x).
    "merkle.py",
}


def core_sources(root: Path) -> list[Path]:
    """The core's modules to compile, in a stable order."""
    core = root / CORE
    return sorted(
        path for path in core.rglob("*.py") if path.relative_to(core).as_posix() not in EXCLUDED
    )


class MypycBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return  # an editable install imports the sources themselves
        from mypyc.build import mypycify
        from setuptools import Distribution

        root = Path(self.root)
        self._work = Path(tempfile.mkdtemp(prefix="clearhouse-mypyc-"))
        paths = ["--config-file", str(root / "pyproject.toml")]
        extensions = mypycify(
            paths + [str(path) for path in core_sources(root)],
            opt_level="3",
            group_name="clearhouse_core",
            target_dir=str(self._work / "c"),
        )
        distribution = Distribution({"name": "clearhouse", "ext_modules": extensions})
        build_ext: Any = distribution.get_command_obj("build_ext")
        build_ext.build_lib = str(self._work / "lib")
        build_ext.build_temp = str(self._work / "tmp")
        build_ext.parallel = os.cpu_count() or 1
        build_ext.ensure_finalized()
        build_ext.run()
        built = sorted((self._work / "lib").rglob("*.so")) + sorted(
            (self._work / "lib").rglob("*.pyd")
        )
        if not built:
            raise RuntimeError("mypyc built no extension module")
        for path in built:
            build_data["force_include"][str(path)] = path.relative_to(self._work / "lib").as_posix()
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        work = getattr(self, "_work", None)
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
