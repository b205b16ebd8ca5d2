"""The guard mutations stay meaningful: each guard switched off in a scratch copy makes the test
that relies on it fail (and a guard whose code moved fails loudly instead of passing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "mutate_guards.py"


@pytest.mark.slow
def test_every_guard_mutation_is_caught() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "14 of 14 guard mutations caught" in result.stdout
