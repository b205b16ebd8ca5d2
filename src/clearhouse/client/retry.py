"""When to send a request again, and after how long: exponential backoff with full jitter on
a lost connection, 429 and 503, at least as long as the node's ``Retry-After``, a bounded
number of times. Decisions only, no I/O: the sync and async clients share them.

Resending is safe because a signed command is idempotent: the node knows a command by the
hash of its bytes and answers the same bytes again with the first answer (``duplicate``:
true), so a command whose answer was lost is never applied twice. The dev faucet is not
idempotent; it is resent only when it certainly did not arrive (the connection never opened)
or the node said it did nothing (429, 503).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

RETRY_STATUSES = frozenset({429, 503})
# Errors raised before a byte of the request could reach the node.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` in all (1: never retry); waits grow from ``base_seconds`` by doubling up
    to ``cap_seconds``, each drawn uniformly below its bound (full jitter: clients that failed
    together do not come back together); a ``Retry-After`` longer than ``cap_seconds`` is
    not waited for (the error is raised: the caller decides)."""

    attempts: int = 5
    base_seconds: float = 0.1
    cap_seconds: float = 10.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_seconds < 0 or self.cap_seconds < self.base_seconds:
            raise ValueError(f"bad retry policy: {self}")

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (0-based)."""
        bound = min(self.cap_seconds, self.base_seconds * 2**attempt)
        return self.rng.uniform(0.0, bound)

    def after_error(self, attempt: int, error: Exception, *, idempotent: bool) -> float | None:
        """The wait before the next attempt after a transport error, or None: give up."""
        if attempt + 1 >= self.attempts or not isinstance(error, httpx.TransportError):
            return None
        if not idempotent and not isinstance(error, NOT_SENT):
            return None  # it may have been applied: only the caller can tell
        return self.backoff(attempt)

    def after_answer(self, attempt: int, status: int, headers: Any, body: Any) -> float | None:
        """The wait before the next attempt after an answer, or None: it is final."""
        if status not in RETRY_STATUSES or attempt + 1 >= self.attempts or _settled(body):
            return None
        wait = self.backoff(attempt)
        asked = retry_after_seconds(headers.get("retry-after"))
        if asked is None:
            return wait
        return None if asked > self.cap_seconds else max(wait, asked)


def _settled(body: Any) -> bool:
    """A 503 that carries a block height is a command's durable answer (an engine refusal such
    as ORACLE_STALE), not an unavailable node: sending the same bytes again returns it again."""
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and "height" in error


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None  # unreadable: fall back to the backoff
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
