"""The Python SDK: sign commands with a local or agent key, submit, query, and subscribe.

    from decimal import Decimal
    from clearhouse.client import Client, Wallet

    client = Client("http://127.0.0.1:8400", Wallet.create())
    client.place_order_decimal("BTC-PERP", "buy", size=Decimal("0.01"), price=Decimal("60000"))

``AsyncClient`` has the same methods, each awaited. Amounts are integer quantums, or exact
``Decimal`` human units through ``units()`` and the ``*_decimal`` methods, which raise
``InvalidArgument`` rather than round. Requests are retried with backoff on a lost
connection, 429 and 503 (``RetryPolicy``): a signed command is idempotent, so sending it
again never applies it twice.

Governance (SPEC §10): ``client.propose``, ``approve_proposal``, ``steward_update``,
``guardian_act`` and the rest take actions built from human input by
``clearhouse.client.governance`` (``set_param("market.taker_fee_ppm", "BTC-PERP", "0.075%")``,
``pause("ETH-PERP")``, …), exact or refused before anything is signed.

It needs none of the node's dependencies: ``pip install "clearhouse[client]"``.
"""

from clearhouse.client.addresses import normalize_address
from clearhouse.client.aio import AsyncClient
from clearhouse.client.http import Client
from clearhouse.client.retry import RetryPolicy
from clearhouse.client.stream import Stream
from clearhouse.client.surface import ApiRejection
from clearhouse.client.units import MarketUnits, Units
from clearhouse.client.wallet import Wallet
from clearhouse.core.errors import InvalidArgument
from clearhouse.core.ids import checksummed

__all__ = [
    "ApiRejection",
    "AsyncClient",
    "Client",
    "InvalidArgument",
    "MarketUnits",
    "RetryPolicy",
    "Stream",
    "Units",
    "Wallet",
    "checksummed",
    "normalize_address",
]
