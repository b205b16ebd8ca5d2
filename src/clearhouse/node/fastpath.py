"""The read fast path: a heavy view that is fresh in the view cache (``viewcache``) answered
straight from the ASGI layer, before routing, validation and the thread pool.

Eight readers hammering account views spent two thirds of the event loop in the framework's
request machinery, and an order's acknowledgement queued behind them there. A fresh view is
already rendered bytes: answering it costs a dictionary lookup and two sends. Only the exact
requests a route would answer the same way take this path (the same key, the same defaults);
anything else — an error to report, a query it does not know, a view to compute — goes the
usual way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable

from clearhouse.core import limits
from clearhouse.node import human
from clearhouse.node.errors import ApiError
from clearhouse.node.viewcache import View

ADL_LIMIT_DEFAULT, ADL_LIMIT_MAX = 50, 500  # queries.adl's
LIQUIDATIONS_LIMIT_DEFAULT, LIQUIDATIONS_LIMIT_MAX = 100, 1_000  # queries.liquidations'
# Whole strings (``\Z``): a ``$`` also matches before a final newline, and a fresh account's
# view was answered for `/v1/accounts/0x…%0A`, which its route refuses (400) once not fresh.
_LIMIT = re.compile(rb"\Alimit=([1-9][0-9]{0,3})\Z")
_ACCOUNT = re.compile(r"\A/v1/accounts/(0x[0-9a-fA-F]{40})\Z")
_SUBACCOUNT = re.compile(r"\A/v1/accounts/(0x[0-9a-fA-F]{40})/subaccounts/([0-9]{1,3})\Z")
_ADL = re.compile(r"\A/v1/markets/([A-Z0-9._*-]{1,32})/adl\Z")
_LIQUIDATIONS = "/v1/liquidations"


def view_key(path: str, query: bytes) -> Hashable | None:
    """The view cache's key for a GET of ``path?query``, as the route would use it; None for a
    request the fast path does not answer."""
    try:
        if found := _ACCOUNT.match(path):
            return ("account", human.address(found[1])) if not query else None
        if found := _SUBACCOUNT.match(path):
            number = int(found[2])
            if query or number >= limits.subaccounts_per_account_max:
                return None
            return ("subaccount", human.address(found[1]), number)
    except ApiError:  # a bad checksum: the route answers it
        return None
    if found := _ADL.match(path):
        limit = _limit(query, ADL_LIMIT_DEFAULT, ADL_LIMIT_MAX)
        return None if limit is None else ("adl", found[1], limit)
    if path == _LIQUIDATIONS:
        limit = _limit(query, LIQUIDATIONS_LIMIT_DEFAULT, LIQUIDATIONS_LIMIT_MAX)
        return None if limit is None else ("liquidations", limit)
    return None


def is_heavy(path: str) -> bool:
    """Whether ``path`` is one of the heavy views (whatever its query): what the per-IP limit
    weighs more (``api.HEAVY_READ_WEIGHT``)."""
    return bool(
        _ACCOUNT.match(path) or _SUBACCOUNT.match(path) or _ADL.match(path)
        or path == _LIQUIDATIONS
    )  # fmt: skip


def _limit(query: bytes, default: int, most: int) -> int | None:
    if not query:
        return default
    found = _LIMIT.match(query)
    if found is None or int(found[1]) > most:
        return None
    return int(found[1])


def fresh_view(path: str, query: bytes, peek: Callable[[Hashable], View | None]) -> View | None:
    key = view_key(path, query)
    return None if key is None else peek(key)
