"""The synchronous REST client (httpx.Client). Everything it says is in ``surface``; this
module only carries requests, retrying them as ``RetryPolicy`` decides."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from clearhouse.app import signing
from clearhouse.client.retry import RetryPolicy
from clearhouse.client.surface import (
    GENESIS_HEIGHT,
    ApiRejection,
    Request,
    Surface,
    answer_of,
    as_list,
    as_object,
    body_of,
    checked,
    domain_of,
    order_side,
)
from clearhouse.client.units import Units, listed_assets
from clearhouse.client.wallet import Wallet
from clearhouse.core.messages import Command

__all__ = ["ApiRejection", "Client", "order_side"]

Answer = dict[str, Any]


class Client(Surface[Answer, list[Answer]]):
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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(wallet, agent=agent, account=account, retry=retry)
        self.http = httpx.Client(base_url=url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def domain(self) -> signing.Domain:
        """The node's EIP-712 signing domain (asked once)."""
        if self._domain is None:
            self._domain = domain_of(self.info())
        return self._domain

    def signed(self, command: Command) -> dict[str, Any]:
        """The JSON a node takes: the command as the codec writes it, and its signature."""
        return self._envelope(command, self.domain)

    def submit(self, command: Command) -> Answer:
        return self._object(self._command_request(self.signed(checked(command))))

    def submit_batch(self, commands: Sequence[Command]) -> list[Answer]:
        body = self._object(self._batch_request([self.signed(checked(c)) for c in commands]))
        return as_list(body["results"])

    def units(self, *, refresh: bool = False) -> Units:
        """The venue's scales, for exact ``Decimal`` conversions (asked once; ``refresh``
        asks again, for a market listed since)."""
        if self._units is None or refresh:
            info = self.info()
            genesis = None if "assets" in info else self.block(GENESIS_HEIGHT)
            self._units = Units.from_node(self.markets(), listed_assets(info, genesis))
        return self._units

    def _with_units(self, then: Callable[[Units], Answer]) -> Answer:
        return then(self.units())

    def _object(self, request: Request) -> Answer:
        return as_object(self._send(request))

    def _list(self, request: Request) -> list[Answer]:
        return as_list(self._send(request))

    def _send(self, request: Request) -> Any:
        """The answer's JSON; the same bytes sent again while the policy allows it."""
        attempt = 0
        while True:
            try:
                response = self.http.request(
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
            time.sleep(wait)
            attempt += 1
