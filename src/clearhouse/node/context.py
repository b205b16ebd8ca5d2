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
from clearhouse.node.protection import RateLimiter
from clearhouse.node.sequencer import Sequencer
from clearhouse.node.streams import Hub
from clearhouse.node.viewcache import View, ViewCache

T = TypeVar("T")
PART_PAUSE_SECONDS = 0.0002  # between parts of a view: the writer runs in between
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
    verify_pool: Executor | None = None  # processes that recover signatures of batches
    views: ViewCache = field(default_factory=ViewCache)

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
            for part in listed:
                value, seen = self.locked(lambda part=part: (part(), self.views.height))  # type: ignore[misc]
                values.append(value)
                height = max(height, seen)
                time.sleep(PART_PAUSE_SECONDS)
            return assemble(values), height

        if self.sequencer.failure is not None:
            raise ApiError(503, "NODE_FAILED", f"the node stopped: {self.sequencer.failure}")
        return self.views.get(key, compute, owner=owner)

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
