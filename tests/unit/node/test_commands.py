"""What a batch of signed commands costs against the per-IP limit (``node/commands.py``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from clearhouse.node import commands, protection
from clearhouse.node.errors import ApiError
from clearhouse.node.protection import RateLimiter


def _node(rate: float, burst: float) -> Any:
    metrics = SimpleNamespace(rate_limited=SimpleNamespace(inc=lambda: None))
    return SimpleNamespace(ip_limits=RateLimiter(rate, burst), metrics=metrics)


REQUEST: Any = SimpleNamespace(client=SimpleNamespace(host="10.0.0.1"))


def test_a_batch_heavier_than_the_burst_is_refused_as_too_large_never_as_a_wait() -> None:
    """Its Retry-After could never come true: the bucket never holds more than the burst."""
    ctx = _node(50, 100)
    with pytest.raises(ApiError) as refused:
        commands.charge_batch(ctx, REQUEST, commands.BATCH_COMMANDS_MAX)
    assert (refused.value.status, refused.value.code) == (413, "BATCH_TOO_LARGE")
    assert refused.value.detail["max_commands"] == 100
    commands.charge_batch(ctx, REQUEST, 100)  # the most that fits passes


def test_a_batch_is_charged_one_per_command_beyond_its_arrival(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1_000.0]
    monkeypatch.setattr(protection.time, "monotonic", lambda: now[0])
    ctx = _node(100, 200)
    commands.charge_batch(ctx, REQUEST, 150)  # 130 beyond the 20 its arrival paid
    assert ctx.ip_limits.remaining("10.0.0.1") == 70
    with pytest.raises(ApiError) as refused:
        commands.charge_batch(ctx, REQUEST, 150)
    assert (refused.value.status, refused.value.code) == (429, "RATE_LIMITED")
    now[0] += refused.value.detail["retry_after_seconds"]
    commands.charge_batch(ctx, REQUEST, 150)  # the wait it was told is enough


def test_with_the_limit_off_any_batch_passes() -> None:
    commands.charge_batch(_node(0, 0), REQUEST, commands.BATCH_COMMANDS_MAX)


def test_a_batch_weighs_by_its_commands_or_by_its_size_whichever_is_more() -> None:
    assert commands.batch_weight(1_000, 2_000_000) == 1_000  # 2 KB commands: by count
    assert commands.batch_weight(1, 3_500_000) > 850  # one command of 3.5 MB: by size
