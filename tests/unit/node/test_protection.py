"""Rate limits and the status each engine rejection gets over HTTP."""

from __future__ import annotations

from clearhouse.core.errors import RejectReason
from clearhouse.node.errors import status_of
from clearhouse.node.protection import RateLimiter


def test_a_bucket_allows_its_burst_then_says_how_long_to_wait() -> None:
    limiter = RateLimiter(rate=1.0, burst=3.0)
    assert [limiter.allow("1.2.3.4") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.allow("1.2.3.4")
    assert 0.9 < wait <= 1.0
    assert limiter.allow("5.6.7.8") == 0.0  # another key has its own bucket


def test_weights_count_against_the_bucket() -> None:
    limiter = RateLimiter(rate=10.0, burst=20.0)
    assert limiter.allow("k", 20.0) == 0.0
    assert limiter.allow("k", 1.0) > 0.0


def test_a_rate_of_zero_turns_the_limit_off() -> None:
    limiter = RateLimiter(rate=0.0, burst=0.0)
    assert all(limiter.allow("k", 1_000.0) == 0.0 for _ in range(100))


def test_every_rejection_has_a_fitting_status() -> None:
    allowed = {400, 403, 409, 422, 503}
    assert {status_of(r) for r in RejectReason} <= allowed
    assert status_of(RejectReason.NONCE_ALREADY_USED) == 409
    assert status_of(RejectReason.AGENT_NOT_ALLOWED) == 403
    assert status_of(RejectReason.INSUFFICIENT_MARGIN) == 422
    assert status_of(RejectReason.ORACLE_STALE) == 503
    assert status_of(RejectReason.MALFORMED_COMMAND) == 400
