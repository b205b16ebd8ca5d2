"""The retry policy's decisions: which failures are retried, how long each wait is."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from clearhouse.client.retry import RetryPolicy, retry_after_seconds


def policy(attempts: int = 5, seed: int = 1) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, base_seconds=0.1, cap_seconds=2.0,
                       rng=random.Random(seed))  # fmt: skip


def test_backoff_doubles_its_bound_up_to_the_cap_with_jitter_below_it() -> None:
    retry = policy()
    for attempt, bound in enumerate([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]):
        waits = [retry.backoff(attempt) for _ in range(200)]
        assert all(0 <= w <= bound for w in waits)
        assert max(waits) > bound * 0.8  # jitter spans the range, not a constant
        assert len(set(waits)) > 100


@pytest.mark.parametrize("status", [429, 503])
def test_busy_answers_are_retried_until_the_attempts_are_spent(status: int) -> None:
    retry = policy(attempts=3)
    assert retry.after_answer(0, status, {}, {}) is not None
    assert retry.after_answer(1, status, {}, {}) is not None
    assert retry.after_answer(2, status, {}, {}) is None


@pytest.mark.parametrize("status", [200, 400, 401, 404, 409, 422, 500])
def test_other_answers_are_final(status: int) -> None:
    assert policy().after_answer(0, status, {}, {}) is None


def test_a_durable_503_refusal_is_final_since_the_same_bytes_get_the_same_answer() -> None:
    body = {"error": {"code": "ORACLE_STALE", "height": 12}}
    assert policy().after_answer(0, 503, {}, body) is None
    assert policy().after_answer(0, 503, {}, {"error": {"code": "NODE_BUSY"}}) is not None


def test_retry_after_is_a_floor_on_the_wait_and_beyond_the_cap_gives_up() -> None:
    assert policy().after_answer(0, 429, {"retry-after": "1"}, {}) == 1.0
    assert policy().after_answer(0, 429, {"retry-after": "30"}, {}) is None


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (retry_after_seconds(later) or 0) <= 30
    earlier = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(earlier) == 0.0


def test_a_lost_connection_is_retried_for_idempotent_requests_only_once_it_may_have_arrived() -> (
    None
):
    retry = policy()
    request = httpx.Request("POST", "http://node/v1/dev/faucet")
    read = httpx.ReadError("reset", request=request)
    refused = httpx.ConnectError("refused", request=request)
    assert retry.after_error(0, read, idempotent=True) is not None
    assert retry.after_error(0, read, idempotent=False) is None  # the faucet may have paid
    assert retry.after_error(0, refused, idempotent=False) is not None  # it never arrived
    assert retry.after_error(4, refused, idempotent=True) is None  # attempts spent


def test_a_policy_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError, match="bad retry policy"):
        RetryPolicy(attempts=0)
