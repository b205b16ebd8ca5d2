"""Configuration files: a missing, unreadable or malformed file is one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearhouse.app.toml_file import read_toml
from clearhouse.core.errors import ConfigError


def test_a_file_reads_and_each_failure_is_named(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[scenario]\nhours = 2\n")
    assert read_toml(good, "scenario") == {"scenario": {"hours": 2}}
    with pytest.raises(ConfigError, match="no genesis file at"):
        read_toml(tmp_path / "missing.toml", "genesis")
    bad = tmp_path / "bad.toml"
    bad.write_text("[scenario\n")
    with pytest.raises(ConfigError, match="is not TOML"):
        read_toml(bad, "scenario")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot read scenario file"):
        read_toml(binary, "scenario")
    with pytest.raises(ConfigError, match="cannot read"):
        read_toml(tmp_path, "scenario")  # a folder
