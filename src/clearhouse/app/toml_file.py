"""A configuration file read as TOML (a venue's genesis, a stress scenario): its table, or one
line saying why not (``ConfigError``: a missing file, an unreadable one, bad TOML)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from clearhouse.core.errors import ConfigError


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The document of ``path``; ``what`` names the kind of file in the refusals."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no {what} file at {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {what} file {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{what} file {path} is not TOML: {error}") from None
