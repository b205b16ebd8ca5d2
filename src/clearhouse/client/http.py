"""The REST client: builds commands, signs them (account key, or an authorized agent key),
submits them and reads the node's state. Amounts are integers in quantums, as in the engine."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import httpx

from clearhouse.app import signing
from clearhouse.client.wallet import Wallet
from clearhouse.core.codec import encode_command
from clearhouse.core.errors import InvalidArgument
from clearhouse.core.hashing import keccak
from clearhouse.core.ids import Address, AssetId, MarketId, Side
from clearhouse.core.messages import (
    AmendOrder,
    AuthorizeAgent,
    BidAuction,
    CancelAll,
    CancelOrder,
    Command,
    DepositInsurance,
    DepositVault,
    Liquidate,
    OrderType,
    PlaceOrder,
    RevokeAgent,
    SetMarginMode,
    TimeInForce,
    TransferCollateral,
    Withdraw,
    WithdrawVault,
)
from clearhouse.core.units import NS_PER_MS, NS_PER_SECOND

COMMAND_TTL_NS = 60 * NS_PER_SECOND


class ApiRejection(Exception):
    """The node refused a request: ``status`` (HTTP), ``code`` (stable) and the whole body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        error = body.get("error", {})
        self.status = status
        self.code: str = error.get("code", "UNKNOWN")
        self.body = body
        super().__init__(f"{status} {self.code}: {error.get('message', body)}")


def order_side(side: str | Side) -> Side:
    """``"buy"``/``"sell"`` (any case) or a ``Side``; anything else is refused, never guessed
    (a ``"long"`` read as a sell is an order on the wrong side)."""
    if isinstance(side, Side):
        return side
    spelled = str(side).lower()  # whatever a caller passed, never guessed
    if spelled == "buy":
        return Side.BUY
    if spelled == "sell":
        return Side.SELL
    raise InvalidArgument(f"side must be 'buy' or 'sell', not {side!r}")


class Client:
    """One account's view of a node. With ``agent``, commands are signed by the agent key (which
    the account must have authorized) and still act for ``wallet``'s account."""

    def __init__(
        self,
        url: str,
        wallet: Wallet | None = None,
        *,
        agent: Wallet | None = None,
        account: Address | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.http = httpx.Client(base_url=url, timeout=timeout)
        self.wallet = wallet
        self.agent = agent
        self.account = account or (wallet.address if wallet else None)
        self._domain: signing.Domain | None = None
        self._last_nonce = 0

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ── Signing and submitting ─────────────────────────────────────────────────────────────

    @property
    def domain(self) -> signing.Domain:
        if self._domain is None:
            info = self.info()
            self._domain = signing.Domain(
                info["chain_id"], info["verifying_contract"],
                info.get("name", signing.DOMAIN_NAME), info.get("version", signing.DOMAIN_VERSION),
            )  # fmt: skip
        return self._domain

    def nonce(self) -> int:
        """Milliseconds since the epoch, strictly increasing per client (SPEC §3)."""
        self._last_nonce = max(self._last_nonce + 1, time.time_ns() // NS_PER_MS)
        return self._last_nonce

    def common(self) -> dict[str, Any]:
        if self.account is None:
            raise ValueError("this client has no account to sign for")
        return {"signer": self.account, "nonce": self.nonce(),
                "expiry_ns": time.time_ns() + COMMAND_TTL_NS}  # fmt: skip

    def signed(self, command: Command) -> dict[str, Any]:
        """The JSON a node takes: the command as the codec writes it, and its signature."""
        key = self.agent or self.wallet
        if key is None:
            raise ValueError("this client has no key to sign with")
        signature = key.sign(command, self.domain)
        return {"command": json.loads(encode_command(command)), "signature": "0x" + signature.hex()}

    def submit(self, command: Command) -> dict[str, Any]:
        """Submit and wait for the durable answer; raises ApiRejection on a refusal."""
        return self._object("POST", "/v1/commands", json=self.signed(command))

    def submit_batch(self, commands: Sequence[Command]) -> list[dict[str, Any]]:
        """Up to 1,000 commands in one request; each result says its own ``http_status``."""
        body = {"commands": [self.signed(c) for c in commands]}
        results: list[dict[str, Any]] = self._object("POST", "/v1/commands/batch", json=body)[
            "results"
        ]
        return results

    @staticmethod
    def command_hash(command: Command) -> str:
        """What ``/v1/commands/{hash}`` knows a command by (for an account-signed command)."""
        return "0x" + keccak(encode_command(command)).hex()

    # ── Commands ───────────────────────────────────────────────────────────────────────────

    def place_order(
        self,
        market_id: str,
        side: str | Side,
        *,
        size_base_quantums: int,
        price_quantums: int = 0,
        subaccount_number: int = 0,
        order_type: OrderType = OrderType.LIMIT,
        time_in_force: TimeInForce = TimeInForce.GTC,
        reduce_only: bool = False,
        client_order_id: int = 0,
        slippage_ppm: int = 0,
        good_til_ns: int = 0,
        trigger_price_quantums: int = 0,
    ) -> dict[str, Any]:
        return self.submit(self.order(
            market_id, side, size_base_quantums=size_base_quantums, price_quantums=price_quantums,
            subaccount_number=subaccount_number, order_type=order_type,
            time_in_force=time_in_force, reduce_only=reduce_only,
            client_order_id=client_order_id, slippage_ppm=slippage_ppm, good_til_ns=good_til_ns,
            trigger_price_quantums=trigger_price_quantums,
        ))  # fmt: skip

    def order(self, market_id: str, side: str | Side, **fields: Any) -> PlaceOrder:
        """A PlaceOrder for this account, not yet sent (for batches)."""
        fields.setdefault("subaccount_number", 0)
        return PlaceOrder(
            **self.common(), market_id=MarketId(market_id), side=order_side(side), **fields
        )

    def cancel(
        self, *, order_id: int = 0, client_order_id: int = 0, subaccount_number: int = 0
    ) -> dict[str, Any]:
        return self.submit(CancelOrder(
            **self.common(), subaccount_number=subaccount_number, order_id=order_id,
            client_order_id=client_order_id,
        ))  # fmt: skip

    def cancel_all(
        self, market_id: str | None = None, *, subaccount_number: int = 0
    ) -> dict[str, Any]:
        market = None if market_id is None else MarketId(market_id)
        return self.submit(
            CancelAll(**self.common(), subaccount_number=subaccount_number, market_id=market)
        )

    def amend(
        self, order_id: int, *, price_quantums: int, size_base_quantums: int,
        subaccount_number: int = 0,
    ) -> dict[str, Any]:  # fmt: skip
        return self.submit(AmendOrder(
            **self.common(), subaccount_number=subaccount_number, order_id=order_id,
            price_quantums=price_quantums, size_base_quantums=size_base_quantums,
        ))  # fmt: skip

    def withdraw(self, amount_quantums: int, *, asset_id: str = "USDC",
                 subaccount_number: int = 0) -> dict[str, Any]:  # fmt: skip
        return self.submit(Withdraw(
            **self.common(), subaccount_number=subaccount_number, asset_id=AssetId(asset_id),
            amount_quantums=amount_quantums,
        ))  # fmt: skip

    def transfer(self, amount_quantums: int, *, source_number: int, target_number: int,
                 asset_id: str = "USDC") -> dict[str, Any]:  # fmt: skip
        return self.submit(TransferCollateral(
            **self.common(), source_number=source_number, target_number=target_number,
            asset_id=AssetId(asset_id), amount_quantums=amount_quantums,
        ))  # fmt: skip

    def deposit_insurance(
        self, amount_quantums: int, *, subaccount_number: int = 0
    ) -> dict[str, Any]:
        """Add quote from a subaccount to the insurance fund (it does not come back)."""
        return self.submit(DepositInsurance(
            **self.common(), subaccount_number=subaccount_number, amount_quantums=amount_quantums,
        ))  # fmt: skip

    def deposit_vault(self, amount_quantums: int, *, subaccount_number: int = 0) -> dict[str, Any]:
        """Buy market-making vault shares at NAV with quote from a subaccount."""
        return self.submit(DepositVault(
            **self.common(), subaccount_number=subaccount_number, amount_quantums=amount_quantums,
        ))  # fmt: skip

    def withdraw_vault(self, shares: int, *, subaccount_number: int = 0) -> dict[str, Any]:
        """Redeem vault shares at NAV into a subaccount (after the lock-up)."""
        return self.submit(WithdrawVault(
            **self.common(), subaccount_number=subaccount_number, shares=shares,
        ))  # fmt: skip

    def authorize_agent(self, agent: Address, *, valid_for_ns: int) -> dict[str, Any]:
        return self.submit(AuthorizeAgent(
            **self.common(), agent=agent, valid_until_ns=time.time_ns() + valid_for_ns
        ))  # fmt: skip

    def revoke_agent(self, agent: Address) -> dict[str, Any]:
        return self.submit(RevokeAgent(**self.common(), agent=agent))

    def set_margin_mode(self, *, portfolio: bool, subaccount_number: int = 0) -> dict[str, Any]:
        return self.submit(SetMarginMode(
            **self.common(), subaccount_number=subaccount_number, portfolio=portfolio
        ))  # fmt: skip

    def liquidate(
        self, owner: Address, owner_number: int, *, subaccount_number: int = 0
    ) -> dict[str, Any]:
        return self.submit(Liquidate(
            **self.common(), subaccount_number=subaccount_number, owner=owner,
            owner_number=owner_number,
        ))  # fmt: skip

    def bid_auction(
        self, owner: Address, owner_number: int, market_id: str, size_base_quantums: int,
        *, subaccount_number: int = 0,
    ) -> dict[str, Any]:  # fmt: skip
        return self.submit(BidAuction(
            **self.common(), subaccount_number=subaccount_number, owner=owner,
            owner_number=owner_number, market_id=MarketId(market_id),
            size_base_quantums=size_base_quantums,
        ))  # fmt: skip

    def faucet(self, amount_usdc: int, *, subaccount_number: int = 0) -> dict[str, Any]:
        """Dev nodes only: test USDC for this account."""
        body = {"address": self.account, "subaccount_number": subaccount_number,
                "amount_usdc": amount_usdc}  # fmt: skip
        return self._object("POST", "/v1/dev/faucet", json=body)

    # ── Queries ────────────────────────────────────────────────────────────────────────────

    def info(self) -> dict[str, Any]:
        return self._object("GET", "/v1/info")

    def markets(self) -> list[dict[str, Any]]:
        return self._list("GET", "/v1/markets")

    def market(self, market_id: str) -> dict[str, Any]:
        return self._object("GET", f"/v1/markets/{market_id}")

    def book(self, market_id: str, levels: int = 50) -> dict[str, Any]:
        return self._object("GET", f"/v1/markets/{market_id}/book", params={"levels": levels})

    def trades(self, market_id: str, limit: int = 100) -> list[dict[str, Any]]:
        return self._list("GET", f"/v1/markets/{market_id}/trades", params={"limit": limit})

    def candles(self, market_id: str, limit: int = 60) -> list[dict[str, Any]]:
        return self._list("GET", f"/v1/markets/{market_id}/candles", params={"limit": limit})

    def account_state(self, address: str | None = None) -> dict[str, Any]:
        return self._object("GET", f"/v1/accounts/{address or self.account}")

    def subaccount(self, number: int = 0, address: str | None = None) -> dict[str, Any]:
        return self._object("GET", f"/v1/accounts/{address or self.account}/subaccounts/{number}")

    def open_orders(self, number: int = 0, address: str | None = None) -> list[dict[str, Any]]:
        return self._list(
            "GET", f"/v1/accounts/{address or self.account}/subaccounts/{number}/orders"
        )

    def order_status(self, order_id: int) -> dict[str, Any]:
        return self._object("GET", f"/v1/orders/{order_id}")

    def order_by_client_id(self, client_order_id: int, number: int = 0) -> dict[str, Any]:
        path = f"/v1/accounts/{self.account}/subaccounts/{number}/orders/by-client-id/"
        return self._object("GET", path + str(client_order_id))

    def liquidations(self) -> dict[str, Any]:
        return self._object("GET", "/v1/liquidations")

    def insurance(self) -> dict[str, Any]:
        return self._object("GET", "/v1/insurance")

    def vault(self) -> dict[str, Any]:
        return self._object("GET", "/v1/vault")

    def vault_shares(self, address: str | None = None) -> dict[str, Any]:
        return self._object("GET", f"/v1/vault/owners/{address or self.account}")

    def adl(self, market_id: str) -> dict[str, Any]:
        return self._object("GET", f"/v1/markets/{market_id}/adl")

    def latest_block(self) -> dict[str, Any]:
        return self._object("GET", "/v1/blocks/latest")

    def block(self, height: int) -> dict[str, Any]:
        return self._object("GET", f"/v1/blocks/{height}")

    def nonces(self, signer: str | None = None) -> dict[str, Any]:
        return self._object("GET", f"/v1/nonces/{signer or self.account}")

    def command_status(self, command_hash: str) -> dict[str, Any]:
        return self._object("GET", f"/v1/commands/{command_hash}")

    def _object(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body = self._request(method, path, **kwargs)
        assert isinstance(body, dict), body
        return body

    def _list(self, method: str, path: str, **kwargs: Any) -> list[dict[str, Any]]:
        body = self._request(method, path, **kwargs)
        assert isinstance(body, list), body
        return body

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = {"error": {"code": "NOT_JSON", "message": response.text[:200]}}
        if response.status_code != 200:
            raise ApiRejection(response.status_code, body)
        return body
