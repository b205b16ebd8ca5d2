"""The asynchronous REST client (httpx.AsyncClient): ``Client``'s methods, each awaited.
Everything it says is in ``surface``; this module only carries requests, retrying them as
``RetryPolicy`` decides.

    async with AsyncClient("http://127.0.0.1:8400", wallet) as client:
        answer = await client.place_order_decimal("BTC-PERP", "buy", size="0.01", price="60000")
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from clearhouse.app import signing
from clearhouse.client.retry import RetryPolicy
from clearhouse.client.surface import (
    GENESIS_HEIGHT,
    Request,
    Surface,
    answer_of,
    as_list,
    as_object,
    body_of,
    checked,
    domain_of,
)
from clearhouse.client.units import Units, listed_assets
from clearhouse.client.wallet import Wallet
from clearhouse.core.messages import Command

Answer = dict[str, Any]


class AsyncClient(Surface[Awaitable[Answer], Awaitable[list[Answer]]]):
    __doc__ = Surface.__doc__

    def __init__(
        self,
        url: str,
        wallet: Wallet | None = None,
        *,
        agent: Wallet | None = None,
        account: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(wallet, agent=agent, account=account, retry=retry)
        self.http = httpx.AsyncClient(base_url=url, timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def signing_domain(self) -> signing.Domain:
        """The node's EIP-712 signing domain (asked once)."""
        if self._domain is None:
            self._domain = domain_of(await self.info())
        return self._domain

    async def signed(self, command: Command) -> dict[str, Any]:
        """The JSON a node takes: the command as the codec writes it, and its signature."""
        return self._envelope(command, await self.signing_domain())

    async def submit(self, command: Command) -> Answer:
        return await self._object(self._command_request(await self.signed(checked(command))))

    async def submit_batch(self, commands: Sequence[Command]) -> list[Answer]:
        bodies = [await self.signed(checked(c)) for c in commands]
        return as_list((await self._object(self._batch_request(bodies)))["results"])

    async def units(self, *, refresh: bool = False) -> Units:
        """The venue's scales, for exact ``Decimal`` conversions (asked once; ``refresh``
        asks again, for a market listed since)."""
        if self._units is None or refresh:
            info = await self.info()
            genesis = None if "assets" in info else await self.block(GENESIS_HEIGHT)
            self._units = Units.from_node(await self.markets(), listed_assets(info, genesis))
        return self._units

    async def _with_units(self, then: Callable[[Units], Awaitable[Answer]]) -> Answer:
        return await then(await self.units())

    async def _object(self, request: Request) -> Answer:
        return as_object(await self._send(request))

    async def _list(self, request: Request) -> list[Answer]:
        return as_list(await self._send(request))

    async def _send(self, request: Request) -> Any:
        """The answer's JSON; the same bytes sent again while the policy allows it."""
        attempt = 0
        while True:
            try:
                response = await self.http.request(
                    request.method, request.path, params=request.params, json=request.json
                )
            except httpx.TransportError as error:
                wait = self.retry.after_error(attempt, error, idempotent=request.idempotent)
                if wait is None:
                    raise
            else:
                body = body_of(response)
                wait = self.retry.after_answer(attempt, response.status_code,
                                               response.headers, body)  # fmt: skip
                if wait is None:
                    return answer_of(response, body)
            await asyncio.sleep(wait)
            attempt += 1
