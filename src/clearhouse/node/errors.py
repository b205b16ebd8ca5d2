"""API errors: JSON ``{"error": {"code", "message"}}`` with a stable code and a fitting status.

A command the engine rejected keeps its ``RejectReason`` name as its code; the status says
what kind of refusal it is: 400 bad input, 401/403 signature and authorization, 409 nonce or
duplicate, 422 refused by risk or by governance's rules (a timelock not run, a quorum not met, a
cooldown, a step too large, a proposal no longer open), 503 stale oracle, halted (or paused)
market or an unavailable node.
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
    # Governance: the operator of a governed venue, a steward or guardian beyond its role.
    R.GOVERNANCE_REQUIRED, R.ROLE_NOT_ALLOWED,
}  # fmt: skip
CONFLICT = {
    R.NONCE_TOO_OLD, R.NONCE_TOO_NEW, R.NONCE_ALREADY_USED, R.NONCE_BELOW_WINDOW,
    R.DUPLICATE_CLIENT_ORDER_ID, R.DUPLICATE_DEPOSIT, R.ALREADY_EXISTS, R.MARGIN_MODE_UNCHANGED,
    R.ALREADY_APPROVED, R.ALREADY_DISPUTED,  # the same signer's second time: done already
}  # fmt: skip
BAD_INPUT = {
    R.MALFORMED_COMMAND, R.COMMAND_EXPIRED, R.UNKNOWN_MARKET, R.UNKNOWN_ASSET, R.UNKNOWN_ORACLE,
    R.UNKNOWN_ORDER, R.SIZE_OFF_STEP, R.SIZE_BELOW_MINIMUM, R.PRICE_OFF_TICK,
    R.INVALID_PARAMETERS, R.TRIGGER_INVALID, R.AMOUNT_NOT_POSITIVE, R.SELF_TRANSFER,
    R.AMEND_NOT_ALLOWED, R.REPORT_TIMESTAMP_INVALID, R.SURFACE_ARBITRAGE, R.VALUE_OUT_OF_RANGE,
    R.SURFACE_FORWARD_INVALID,
    R.UNKNOWN_PROPOSAL, R.PARAM_UNKNOWN, R.PARAM_OUT_OF_BOUNDS,  # no waiting makes them valid
}  # fmt: skip
UNAVAILABLE = {
    R.ORACLE_STALE, R.MARKET_NOT_ACTIVE, R.WITHDRAWALS_PAUSED, R.SURFACE_STALE, R.MARKET_PAUSED,
}  # fmt: skip
# Refused by governance's rules as things stand now: time, approvals or a proposal's state
# decide, and the same command may pass later (or never). Answered 422, as risk refusals are.
GOVERNANCE_RULES = {
    R.PROPOSAL_NOT_OPEN, R.QUORUM_NOT_MET, R.TIMELOCK_NOT_ELAPSED, R.PARAM_STEP_TOO_LARGE,
    R.PARAM_COOLDOWN, R.SETTLEMENT_NOT_TIMED_OUT, R.NO_PENDING_SETTLEMENT,
    R.DISPUTE_WINDOW_CLOSED, R.TOO_MANY_PROPOSALS,
}  # fmt: skip


def status_of(reason: R) -> int:
    if reason in FORBIDDEN:
        return 403
    if reason in CONFLICT:
        return 409
    if reason in BAD_INPUT:
        return 400
    if reason in UNAVAILABLE:
        return 503
    return 422  # the rest, GOVERNANCE_RULES among it: refused by risk, the book or the rules


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
