"""API errors: JSON ``{"error": {"code", "message"}}`` with a stable code and a fitting status.

A command the engine rejected keeps its ``RejectReason`` name as its code; the status says
what kind of refusal it is: 400 bad input, 401/403 signature and authorization, 409 nonce or
duplicate, 422 refused by risk, 503 stale oracle, halted market or an unavailable node.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.responses import JSONResponse

from clearhouse.core.errors import RejectReason as R

FORBIDDEN = {
    R.UNAUTHORIZED_SIGNER, R.AGENT_NOT_ALLOWED, R.AGENT_NOT_AUTHORIZED, R.NOT_ORDER_OWNER,
    R.UNKNOWN_PUBLISHER,
}  # fmt: skip
CONFLICT = {
    R.NONCE_TOO_OLD, R.NONCE_TOO_NEW, R.NONCE_ALREADY_USED, R.NONCE_BELOW_WINDOW,
    R.DUPLICATE_CLIENT_ORDER_ID, R.DUPLICATE_DEPOSIT, R.ALREADY_EXISTS, R.MARGIN_MODE_UNCHANGED,
}  # fmt: skip
BAD_INPUT = {
    R.MALFORMED_COMMAND, R.COMMAND_EXPIRED, R.UNKNOWN_MARKET, R.UNKNOWN_ASSET, R.UNKNOWN_ORACLE,
    R.UNKNOWN_ORDER, R.SIZE_OFF_STEP, R.SIZE_BELOW_MINIMUM, R.PRICE_OFF_TICK,
    R.INVALID_PARAMETERS, R.TRIGGER_INVALID, R.AMOUNT_NOT_POSITIVE, R.SELF_TRANSFER,
    R.AMEND_NOT_ALLOWED, R.REPORT_TIMESTAMP_INVALID, R.SURFACE_ARBITRAGE, R.VALUE_OUT_OF_RANGE,
}  # fmt: skip
UNAVAILABLE = {R.ORACLE_STALE, R.MARKET_NOT_ACTIVE, R.WITHDRAWALS_PAUSED, R.SURFACE_STALE}


def status_of(reason: R) -> int:
    if reason in FORBIDDEN:
        return 403
    if reason in CONFLICT:
        return 409
    if reason in BAD_INPUT:
        return 400
    if reason in UNAVAILABLE:
        return 503
    return 422  # everything else is a refusal by risk or by the book


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.detail}}


def not_found(what: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{what} not found")


class JsonAnswer(JSONResponse):
    """Every JSON answer of the node. An answer may quote the request (a field's name, a
    validation problem), and a request may hold text that is no Unicode (a lone surrogate such
    as ``"\\ud800"``, which JSON's escapes allow): such characters are answered as U+FFFD
    instead of failing the whole answer with a 500."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        try:
            return text.encode()
        except UnicodeEncodeError:
            return _SURROGATE.sub("\ufffd", text).encode()


_SURROGATE = re.compile("[\ud800-\udfff]")  # in a str, only ever a lone one
