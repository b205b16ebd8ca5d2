"""The HTTP and WebSocket API (FastAPI; OpenAPI at /openapi.json): assembly, errors, limits.

Reads run in the threadpool under the sequencer's lock (``context``); writes are in
``commands``; streams in ``sockets``. Every error is ``{"error": {"code", "message"}}``.
Every HTTP answer says the caller's per-IP budget (``X-RateLimit-Limit``: the size of its token
bucket, ``ip_burst``, twice the rate; ``X-RateLimit-Remaining``: what is left of it), a 429
also when to come back (``Retry-After``). ``/docs`` (Swagger UI) and ``/redoc`` load their
scripts from the node itself (the fastapi-offline package ships them): no CDN, no internet.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearhouse.app import signing
from clearhouse.node import commands, dashboard, fastpath, governance, queries, sockets
from clearhouse.node.context import NodeContext
from clearhouse.node.errors import ApiError, JsonAnswer
from clearhouse.node.metrics import NodeMetrics
from clearhouse.node.protection import HEAVY_READ_WEIGHT, OpenPerKey, RateLimiter
from clearhouse.node.readmodel import BlockUpdate
from clearhouse.node.sequencer import Sequencer
from clearhouse.node.streams import Depth, Hub
from clearhouse.node.viewcache import View

log = logging.getLogger("clearhouse.node.api")

BODY_BYTES_MAX = 64 * 1024  # one signed command is well under 2 KB
BATCH_BODY_BYTES_MAX = 4 * 1024 * 1024
NESTING_MAX = 16  # a batch of commands nests 7 levels deep at most
# Reads from one address the node is still answering. An answer its client does not read stays
# in the node's memory until the connection goes (a block of megabytes, asked for on hundreds
# of connections, took a node from 0.4 to 1.9 GB): a reader needs a few at once, not hundreds.
READS_IN_FLIGHT_PER_IP_MAX = 32
IMPACT_PATH = "/v1/gov/impact"
COMMANDS_PATH = "/v1/commands"  # and /v1/commands/batch: reads give way to them
BATCH_PATH = "/v1/commands/batch"  # the one route whose body may be larger than BODY_BYTES_MAX
FAUCET_PATH = "/v1/dev/faucet"
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"  # Swagger UI 5 and Redoc
DOCS_ASSETS_URL = "/docs-assets"


class ApiSettings(BaseModel):
    chain_id: int
    verifying_contract: str
    domain_name: str = signing.DOMAIN_NAME
    domain_version: str = signing.DOMAIN_VERSION
    dev: bool = False
    ip_rate: float = 2_000.0  # request weight per second per IP (0: off)
    ip_burst: float = 4_000.0
    account_rate: float = 1_000.0  # commands per second per account (0: off)
    account_burst: float = 2_000.0


def create_app(
    sequencer: Sequencer,
    settings: ApiSettings,
    metrics: NodeMetrics,
    verify_pool: Executor | None = None,
) -> FastAPI:
    venue = sequencer.chain.engine.state.venue
    hub = Hub(sequencer.books, sequencer.read_model.governance)  # before the writer starts
    context = NodeContext(
        sequencer=sequencer, hub=hub, metrics=metrics,
        domain=signing.Domain(settings.chain_id, settings.verifying_contract,
                              settings.domain_name, settings.domain_version),
        account_limits=RateLimiter(settings.account_rate, settings.account_burst),
        ip_limits=RateLimiter(settings.ip_rate, settings.ip_burst),
        info={"name": settings.domain_name, "version": settings.domain_version,
              "chain_id": settings.chain_id,
              "verifying_contract": settings.verifying_contract, "dev": settings.dev,
              "operator": venue.operator, "custody_relayer": venue.custody_relayer},
        verify_pool=verify_pool,
    )  # fmt: skip

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        hub = context.hub

        def forward(update: BlockUpdate, books: dict[str, Depth]) -> None:
            loop.call_soon_threadsafe(hub.publish, update, books)

        sequencer.listeners.append(forward)
        sequencer.start()
        yield
        await asyncio.to_thread(sequencer.stop)  # every queued command still gets its block
        if verify_pool is not None:
            verify_pool.shutdown()
        log.info("sequencer stopped", extra={"height": sequencer.chain.height})

    app = FastAPI(
        lifespan=lifespan, title="Clearhouse node", version="1", default_response_class=JsonAnswer,
        description="The signed-order API of a Clearhouse venue. Amounts are integers in "
        "quantums (`price_quantums`), each with a decimal string in whole units beside it "
        "(`price`); times are `*_ns` with `*_ms` beside them. Commands are EIP-712 messages "
        "(see /v1/info for the domain). Addresses may be EIP-55 checksummed.",
        docs_url=None, redoc_url=None,
    )  # fmt: skip
    app.state.context = context
    app.include_router(queries.router)
    app.include_router(governance.router)
    app.include_router(commands.router)
    app.include_router(sockets.router)
    app.include_router(dashboard.router)
    if settings.dev:
        app.include_router(commands.dev_router)
    _install_errors(app)
    _install_docs(app)
    app.add_middleware(_Protection, limiter=context.ip_limits, metrics=metrics, context=context)
    return app


def _install_docs(app: FastAPI) -> None:
    """Swagger UI at /docs and Redoc at /redoc, their assets served from the package."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="Clearhouse node: API",
            swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
        )  # fmt: skip

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json", title="Clearhouse node: API",
            redoc_js_url=f"{DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png", with_google_fonts=False,
        )  # fmt: skip


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JsonAnswer:
        headers = None
        wait = error.detail.get("retry_after_seconds")
        if isinstance(wait, int | float):
            headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        return JsonAnswer(error.body(), status_code=error.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JsonAnswer:
        problems = [
            {"at": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
            for e in error.errors()
        ]
        body = {"error": {"code": "INVALID_REQUEST", "message": "the request is not valid",
                          "problems": problems}}  # fmt: skip
        return JsonAnswer(body, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JsonAnswer:
        codes = {400: "INVALID_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
        code = codes.get(error.status_code, "HTTP_ERROR")
        body = {"error": {"code": code, "message": str(error.detail)}}
        return JsonAnswer(body, status_code=error.status_code)


class _Protection:
    """Per-IP rate limits and request size limits, before anything is parsed."""

    def __init__(
        self, app: ASGIApp, limiter: RateLimiter, metrics: NodeMetrics, context: NodeContext
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.metrics = metrics
        self.context = context
        self.reads_in_flight = OpenPerKey(READS_IN_FLIGHT_PER_IP_MAX)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        batch = scope["method"] == "POST" and scope["path"] == BATCH_PATH
        limit = BATCH_BODY_BYTES_MAX if batch else BODY_BYTES_MAX
        client = scope.get("client")
        ip = client[0] if client else "?"
        arrival = _weight(scope, batch)
        wait = self.limiter.allow(ip, arrival)
        send = _with_limits(send, lambda: self._limit_headers(ip))
        if wait:
            await self._rate_limited(send, wait)
            return
        commands_first = self.context.commands_first
        if not _is_command(scope):
            if not self.reads_in_flight.admit(ip):
                await _refuse(send, 429, "TOO_MANY_READS_IN_FLIGHT",
                              f"at most {READS_IN_FLIGHT_PER_IP_MAX} unanswered reads per "
                              "address: read the answers")  # fmt: skip
                return
            try:
                await commands_first.wait()  # a read gives way to the commands before it
                if not await self._fast_view(scope, send):
                    await self._serve(scope, receive, send, limit, (ip, arrival))
            finally:
                self.reads_in_flight.release(ip)
            return
        # A command counts from when its whole body is here: one whose body trickles in (or
        # never comes) would otherwise hold every read back, for as long as its client likes.
        body = await self._body(scope, receive, send, limit, (ip, arrival))
        if body is None:
            return
        number = commands_first.arrived()  # reads that arrive from now on wait for its answer
        try:
            await self.app(scope, _replay(body, receive), _counting(send, self.metrics))
        finally:
            commands_first.answered(number)

    async def _fast_view(self, scope: Scope, send: Send) -> bool:
        """Whether the request was a GET answered from a fresh view (no routing, no thread)."""
        if scope["method"] != "GET" or self.context.sequencer.failure is not None:
            return False
        view = fastpath.fresh_view(scope["path"], scope["query_string"], self.context.views.peek)
        if view is None:
            return False
        await _send_view(_counting(send, self.metrics), view)
        return True

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, limit: int, paid: tuple[str, float]
    ) -> None:
        body = await self._body(scope, receive, send, limit, paid)
        if body is not None:
            await self.app(scope, _replay(body, receive), _counting(send, self.metrics))

    async def _body(
        self, scope: Scope, receive: Receive, send: Send, limit: int, paid: tuple[str, float]
    ) -> bytes | None:
        """The whole body, within its limits and paid for by its size; None once it is refused
        (the refusal sent). ``paid``: the address and what its arrival cost."""
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(send, 413, "REQUEST_TOO_LARGE", f"bodies are at most {limit} bytes")
            return None
        body = await _read_body(receive, limit)
        if body is None:
            await _refuse(send, 413, "REQUEST_TOO_LARGE", f"bodies are at most {limit} bytes")
            return None
        if not await self._paid_for_size(send, len(body), *paid, scope["path"] == BATCH_PATH):
            return None
        if _nested_too_deep(body):
            await _refuse(send, 400, "INVALID_REQUEST",
                          f"JSON nested deeper than {NESTING_MAX} levels")  # fmt: skip
            return None
        return body

    async def _paid_for_size(
        self, send: Send, size: int, ip: str, arrival: float, batch: bool
    ) -> bool:
        """Whether the address can pay for a body of ``size`` bytes beyond its arrival (the
        charge taken), before the body is parsed: parsing and validating it cost by its size
        (a 4 MB batch that fails validation took ~170 ms, and paid only its arrival's 20);
        else the refusal is sent."""
        weight = commands.body_weight(size)
        if weight <= arrival or self.limiter.rate <= 0:
            return True
        if weight > self.limiter.burst:  # a Retry-After that could never come true
            code = "BATCH_TOO_LARGE" if batch else "REQUEST_TOO_LARGE"
            most = commands.body_bytes_max(self.limiter.burst)
            await _refuse(send, 413, code, f"at most {most} bytes in a body on this node "
                          "(its per-IP limit)")  # fmt: skip
            return False
        wait = self.limiter.allow(ip, weight - arrival)
        if wait:
            await self._rate_limited(send, wait)
            return False
        return True

    async def _rate_limited(self, send: Send, wait: float) -> None:
        """The refusal of a request over the address's budget, counted."""
        self.metrics.rate_limited.inc()
        await _refuse(send, 429, "RATE_LIMITED", "too many requests from this address",
                      retry_after_seconds=round(wait, 3))  # fmt: skip

    def _limit_headers(self, ip: str) -> list[tuple[bytes, bytes]]:
        """The caller's budget after this request: none when the limit is off (rate 0)."""
        if self.limiter.rate <= 0:
            return []
        return [(b"x-ratelimit-limit", b"%d" % int(self.limiter.burst)),
                (b"x-ratelimit-remaining", b"%d" % self.limiter.remaining(ip))]  # fmt: skip


def _is_command(scope: Scope) -> bool:
    """A request that puts commands in blocks: what reads give way to (``priority``)."""
    path: str = scope["path"]
    return scope["method"] == "POST" and (path.startswith(COMMANDS_PATH) or path == FAUCET_PATH)


def _weight(scope: Scope, batch: bool) -> float:
    if batch:
        return commands.BATCH_WEIGHT_ON_ARRIVAL  # the rest once its commands are counted
    path = scope["path"]
    heavy = (scope["method"] == "GET" and fastpath.is_heavy(path)) or path == IMPACT_PATH
    return HEAVY_READ_WEIGHT if heavy else 1.0


def _with_limits(send: Send, headers: Callable[[], list[tuple[bytes, bytes]]]) -> Send:
    """``send`` with the caller's budget as the answer starts (after every charge)."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *headers()]}
        await send(message)

    return wrapped


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, counted as it arrives (a chunked one has no Content-Length to trust);
    None past ``limit``. Bodies here are small, so holding one costs little."""
    chunks: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client left: the app sees an empty body and the disconnect after
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _nested_too_deep(body: bytes) -> bool:
    """Whether the body nests arrays or objects deeper than NESTING_MAX (or its brackets do not
    pair: no JSON either). The parser recurses once per level in C, and a dependency (py_ecc)
    raises the interpreter's recursion limit to 100,000 on import: a few hundred kilobytes of
    brackets would overflow the stack and kill the node. Strings are taken out first (a bracket
    in one is text); then each pass removes the innermost pairs, all in C."""
    if body.count(b"[") + body.count(b"{") <= NESTING_MAX:
        return False
    brackets = _STRING.sub(b"", body).translate(_AS_SQUARE, _NOT_BRACKETS)  # depth only
    for _ in range(NESTING_MAX):
        if not brackets:
            return False
        if _TOO_DEEP_RUN in brackets:
            return True
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


# A string, or an unterminated one running to the end of the body (its brackets are text to the
# parser too: it never gets past the string). The possessive group and the match at the end make
# every attempt succeed at once: with a plain `"…"`, each quote of `"\"\"\"…` began a string
# that failed at the end, quadratic in the body (64 KiB held the event loop for 18.7 s).
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_TOO_DEEP_RUN = b"[" * (NESTING_MAX + 1)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def wrapped() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return wrapped


def _counting(send: Send, metrics: NodeMetrics) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            metrics.requests.labels(str(message["status"])).inc()
        await send(message)

    return wrapped


async def _send_view(send: Send, view: View) -> None:
    headers = [(b"content-type", b"application/json"),
               (b"content-length", b"%d" % len(view.body)),
               (b"x-clearhouse-height", b"%d" % view.height)]  # fmt: skip
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": view.body})


async def _refuse(send: Send, status: int, code: str, message: str, **detail: Any) -> None:
    body = json.dumps({"error": {"code": code, "message": message, **detail}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if "retry_after_seconds" in detail:  # whole seconds, rounded up, as the header wants
        headers.append((b"retry-after", b"%d" % max(1, math.ceil(detail["retry_after_seconds"]))))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
