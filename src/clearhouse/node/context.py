"""What every route needs: the sequencer, the stream hub, limits, metrics and the domain."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Request, WebSocket
from fastapi.responses import Response

from clearhouse.app import signing
from clearhouse.core.engine import Engine
from clearhouse.core.ids import MarketId
from clearhouse.core.state import MarketState
from clearhouse.node.errors import ApiError, not_found
from clearhouse.node.human import ADDRESS
from clearhouse.node.metrics import NodeMetrics
from clearhouse.node.priority import CommandsFirst
from clearhouse.node.protection import RateLimiter, Recovered, agent_authorizations
from clearhouse.node.sequencer import Sequencer
from clearhouse.node.streams import Hub
from clearhouse.node.viewcache import BlockAnswers, View, ViewCache

T = TypeVar("T")
PART_PAUSE_SECONDS = 0.0002  # between parts of a view: the writer runs in between
# A view's recomputation gives way to commands (``priority``) for at most this long in all, so
# that a steady stream of commands slows a heavy view down but never holds it back for long.
YIELD_SECONDS_MAX = 0.1
SYMBOL = r"^[A-Z0-9._*-]{1,32}$"
AddressPath = Annotated[str, Path(pattern=ADDRESS)]
MarketPath = Annotated[str, Path(pattern=SYMBOL)]
NumberPath = Annotated[int, Path(ge=0, le=127)]


@dataclass(slots=True)
class NodeContext:
    sequencer: Sequencer
    hub: Hub
    metrics: NodeMetrics
    domain: signing.Domain
    account_limits: RateLimiter
    info: dict[str, Any]
    # The per-IP limit (charged by the API's middleware on arrival): a batch is charged the
    # rest of its weight here, once its commands are counted.
    ip_limits: RateLimiter = field(default_factory=lambda: RateLimiter(0, 0))
    verify_pool: Executor | None = None  # processes that recover signatures of batches
    views: ViewCache = field(default_factory=ViewCache)
    blocks: BlockAnswers = field(default_factory=BlockAnswers)  # committed blocks, rendered
    commands_first: CommandsFirst = field(default_factory=CommandsFirst)  # reads give way
    recovered: Recovered = field(default_factory=Recovered)  # signatures recovered already
    agent_limits: RateLimiter = field(default_factory=agent_authorizations)  # per account

    def __post_init__(self) -> None:
        self.views.height = self.sequencer.chain.height
        self.sequencer.commit_listeners.append(self.views.committed)

    @property
    def engine(self) -> Engine:
        return self.sequencer.chain.engine

    def locked(self, read: Callable[[], T]) -> T:
        """Run a read under the writer's lock: it sees whole, durable blocks only. After a
        failed commit the engine holds a block the journal does not: nothing is served."""
        with self.sequencer.lock:
            if self.sequencer.failure is not None:
                raise ApiError(503, "NODE_FAILED", f"the node stopped: {self.sequencer.failure}")
            return read()

    def cached(
        self, key: Hashable, read: Callable[[], object], *, owner: str | None = None
    ) -> Response:
        """A heavy read (``read`` runs under the writer's lock, as ``locked``'s does) as JSON,
        computed once and shared by every reader while fresh (``viewcache``): at the last
        committed height, or for a moment after it if no block since has touched ``owner``."""
        view = self.cached_view(key, read, owner=owner)
        return Response(view.body, media_type="application/json",
                        headers={"X-Clearhouse-Height": str(view.height)})  # fmt: skip

    def cached_view(
        self, key: Hashable, read: Callable[[], object], *, owner: str | None = None
    ) -> View:
        if self.sequencer.failure is not None:
            raise ApiError(503, "NODE_FAILED", f"the node stopped: {self.sequencer.failure}")
        return self.views.get(key, lambda: self.locked(lambda: (read(), self.views.height)),
                              owner=owner)  # fmt: skip

    def cached_parts(
        self,
        key: Hashable,
        parts: Callable[[], Sequence[Callable[[], object]]],
        assemble: Callable[[list[object]], object],
        *,
        owner: str | None = None,
    ) -> View:
        """``cached_view`` for a view made of parts (an account's subaccounts): each part is read
        whole under the writer's lock on its own, so the writer waits for one part at most,
        never for the whole view. Parts may come from consecutive heights (blocks land between
        them): each is exact at its own, and a subaccount is its own margin unit, so nothing
        in it mixes heights; the view states the last height any part saw. (Asking one height
        of all of them would read a large account whole under the lock whenever blocks come
        fast, the stall this avoids.)"""

        def compute() -> tuple[object, int]:
            listed, height = self.locked(lambda: (parts(), self.views.height))
            values = []
            give_way = self.give_way()
            for part in listed:
                value, seen = self.locked(lambda part=part: (part(), self.views.height))  # type: ignore[misc]
                values.append(value)
                height = max(height, seen)
                give_way()
                time.sleep(PART_PAUSE_SECONDS)
            return assemble(values), height

        if self.sequencer.failure is not None:
            raise ApiError(503, "NODE_FAILED", f"the node stopped: {self.sequencer.failure}")
        return self.views.get(key, compute, owner=owner)

    def give_way(self) -> Callable[[], None]:
        """For a worker thread computing a heavy view in pieces: call it between two pieces to
        wait for the commands that arrived before (``priority``), ``YIELD_SECONDS_MAX`` in all
        over the calls of one view."""
        left = YIELD_SECONDS_MAX

        def give_way() -> None:
            nonlocal left
            if left > 0:
                started = time.monotonic()
                self.commands_first.wait_blocking(left)
                left -= time.monotonic() - started

        return give_way

    def market(self, market_id: str) -> MarketState:
        found = self.engine.state.markets.get(MarketId(market_id))
        if found is None:
            raise not_found(f"market {market_id}")
        return found


async def _context(request: Request) -> NodeContext:  # async: no threadpool hop per request
    context: NodeContext = request.app.state.context
    return context


async def _socket_context(websocket: WebSocket) -> NodeContext:
    context: NodeContext = websocket.app.state.context
    return context


Context = Annotated[NodeContext, Depends(_context)]
SocketContext = Annotated[NodeContext, Depends(_socket_context)]
