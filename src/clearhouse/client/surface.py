"""What both clients say, in one place: the commands they build and sign, the requests they
make and how an answer is read. ``Client`` (sync) and ``AsyncClient`` differ only in how a
request travels; each method here returns whatever its transport returns for one (an answer,
or an awaitable of one).

Amounts are integers in quantums, as in the engine; ``units()`` and the ``*_decimal`` methods
take and give ``Decimal`` human units, converted exactly (``clearhouse.client.units``).
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from clearhouse.app import signing
from clearhouse.client.addresses import normalize_address
from clearhouse.client.governance import ActionInput, finish, needs_units
from clearhouse.client.retry import RetryPolicy
from clearhouse.client.units import Human, Units
from clearhouse.client.wallet import Wallet
from clearhouse.core import limits
from clearhouse.core.codec import decode_command, encode_command, out_of_range, to_plain
from clearhouse.core.errors import InvalidArgument
from clearhouse.core.hashing import keccak
from clearhouse.core.ids import QUOTE_ASSET, Address, AssetId, MarketId, Side
from clearhouse.core.messages import (
    AmendOrder,
    ApproveProposal,
    AuthorizeAgent,
    BidAuction,
    CancelAll,
    CancelOrder,
    CancelProposal,
    Command,
    DepositInsurance,
    DepositOptionsVault,
    DepositVault,
    DisputeSettlement,
    ExecuteProposal,
    GovAction,
    GuardianAct,
    Liquidate,
    OrderType,
    PlaceOrder,
    Propose,
    QueueProposal,
    RevokeAgent,
    ScheduleCancel,
    SetMarginMode,
    StewardUpdate,
    TimeInForce,
    TransferCollateral,
    Withdraw,
    WithdrawOptionsVault,
    WithdrawVault,
)
from clearhouse.core.units import NS_PER_MS, NS_PER_SECOND

COMMAND_TTL_NS = 60 * NS_PER_SECOND
GENESIS_HEIGHT = 1

Obj = TypeVar("Obj")  # what a request for one JSON object gives: a dict, or an awaitable of one
Lst = TypeVar("Lst")  # ... and for a JSON list


class ApiRejection(Exception):
    """The node refused a request: ``status`` (HTTP), ``code`` (stable), the whole body, and
    ``request`` (``"POST /v1/commands"``) when known."""

    def __init__(self, status: int, body: dict[str, Any], request: str = "") -> None:
        error = body.get("error", {})
        self.status = status
        self.code: str = error.get("code", "UNKNOWN")
        self.message: str = str(error.get("message", body))
        self.body = body
        self.request = request
        super().__init__(f"{status} {self.code}: {self.message}")


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


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request. ``idempotent``: sending it twice does what sending it once does (reads,
    and signed commands: the node answers the same bytes with the first answer)."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    idempotent: bool = True


def body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"error": {"code": "NOT_JSON", "message": response.text[:200]}}


def answer_of(response: httpx.Response, body: Any) -> Any:
    """The answer's JSON, or ApiRejection for anything but a 200."""
    if response.status_code != 200:
        request = f"{response.request.method} {response.request.url.path}"
        raise ApiRejection(response.status_code, body, request)
    return body


def as_object(body: Any) -> dict[str, Any]:
    assert isinstance(body, dict), body
    return body


def as_list(body: Any) -> list[dict[str, Any]]:
    assert isinstance(body, list), body
    return body


def domain_of(info: Mapping[str, Any]) -> signing.Domain:
    return signing.Domain(
        info["chain_id"], info["verifying_contract"],
        info.get("name", signing.DOMAIN_NAME), info.get("version", signing.DOMAIN_VERSION),
    )  # fmt: skip


def envelope(command: Command, key: Wallet, domain: signing.Domain) -> dict[str, Any]:
    """The JSON a node takes: the command as the codec writes it, and its signature (whatever
    it holds: ``submit`` checks, this signs, so that a test can send the node anything)."""
    signature = key.sign(command, domain)
    return {"command": json.loads(encode_command(command)), "signature": "0x" + signature.hex()}


def checked(command: Command) -> Command:
    """``command`` if the node would read it: a float or a bool where an integer belongs
    (``price_quantums=61234.5``: USDC meant, a quantum count expected) or an integer beyond
    its field's bound is refused (InvalidArgument) before it is signed, never sent."""
    decode_command(encode_command(command))  # the node's strict reading: MalformedCommand
    beyond = out_of_range(command)
    if beyond is not None:
        field, bound, unit = beyond
        raise InvalidArgument(f"{field}: at most {bound} {unit}")
    return command


def _present(**params: object) -> dict[str, object]:
    """Query parameters without the ones not given."""
    return {key: value for key, value in params.items() if value is not None}


def _check_length(what: str, text: str, most: int) -> None:
    if len(text) > most:
        raise InvalidArgument(
            f"a proposal's {what} holds at most {most:,} characters, not {len(text):,}"
        )


class Surface(ABC, Generic[Obj, Lst]):
    """One account's view of a node. With ``agent``, commands are signed by the agent key
    (which the account must have authorized) and still act for ``wallet``'s account.
    Addresses may be given lowercase or EIP-55 checksummed."""

    def __init__(
        self,
        wallet: Wallet | None = None,
        *,
        agent: Wallet | None = None,
        account: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.wallet = wallet
        self.agent = agent
        self.account: Address | None = (
            normalize_address(account) if account else (wallet.address if wallet else None)
        )
        self.retry = retry or RetryPolicy()
        self._domain: signing.Domain | None = None
        self._units: Units | None = None
        self._last_nonce = 0

    # ── What each transport provides ───────────────────────────────────────────────────────

    @abstractmethod
    def _object(self, request: Request) -> Obj: ...

    @abstractmethod
    def _list(self, request: Request) -> Lst: ...

    @abstractmethod
    def submit(self, command: Command) -> Obj:
        """Submit and wait for the durable answer; raises ApiRejection on a refusal."""

    @abstractmethod
    def submit_batch(self, commands: Sequence[Command]) -> Lst:
        """Up to 1,000 commands in one request; each result says its own ``http_status``."""

    @abstractmethod
    def _with_units(self, then: Callable[[Units], Obj]) -> Obj:
        """What ``then`` answers given the venue's units (read once, then kept)."""

    def _submit_built(self, build: Callable[[Units], Command]) -> Obj:
        """Submit the command ``build`` makes from the venue's units."""
        return self._with_units(lambda units: self.submit(build(units)))

    def _with_actions(
        self, actions: Sequence[ActionInput], then: Callable[[tuple[GovAction, ...]], Obj]
    ) -> Obj:
        """What ``then`` answers for the actions finished; the venue's units are asked for
        only when an action's value is in them (an amount, a price)."""
        drafts = tuple(actions)
        if not needs_units(drafts):
            return then(finish(drafts, None))
        return self._with_units(lambda units: then(finish(drafts, units)))

    # ── Signing ────────────────────────────────────────────────────────────────────────────

    def nonce(self) -> int:
        """Milliseconds since the epoch, strictly increasing per client (SPEC §3)."""
        self._last_nonce = max(self._last_nonce + 1, time.time_ns() // NS_PER_MS)
        return self._last_nonce

    def common(self) -> dict[str, Any]:
        if self.account is None:
            raise ValueError("this client has no account to sign for")
        return {"signer": self.account, "nonce": self.nonce(),
                "expiry_ns": time.time_ns() + COMMAND_TTL_NS}  # fmt: skip

    def _envelope(self, command: Command, domain: signing.Domain) -> dict[str, Any]:
        key = self.agent or self.wallet
        if key is None:
            raise ValueError("this client has no key to sign with")
        return envelope(command, key, domain)

    @staticmethod
    def _command_request(body: dict[str, Any]) -> Request:
        return Request("POST", "/v1/commands", json=body)

    @staticmethod
    def _batch_request(bodies: list[dict[str, Any]]) -> Request:
        return Request("POST", "/v1/commands/batch", json={"commands": bodies})

    @staticmethod
    def command_hash(command: Command) -> str:
        """What ``/v1/commands/{hash}`` knows a command by (for an account-signed command)."""
        return "0x" + keccak(encode_command(command)).hex()

    def _address(self, address: str | None) -> Address:
        if address is None:
            if self.account is None:
                raise ValueError("this client has no account: name an address")
            return self.account
        return normalize_address(address)

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
    ) -> Obj:
        return self.submit(self.order(
            market_id, side, size_base_quantums=size_base_quantums, price_quantums=price_quantums,
            subaccount_number=subaccount_number, order_type=order_type,
            time_in_force=time_in_force, reduce_only=reduce_only,
            client_order_id=client_order_id, slippage_ppm=slippage_ppm, good_til_ns=good_til_ns,
            trigger_price_quantums=trigger_price_quantums,
        ))  # fmt: skip

    def place_order_decimal(
        self, market_id: str, side: str | Side, *, size: Human, price: Human | None = None,
        **options: Any,
    ) -> Obj:  # fmt: skip
        """``place_order`` in human units: ``size`` in base units (``Decimal("0.01")`` BTC),
        ``price`` in quote units per base unit (``Decimal("61234.5")``); each converted
        exactly to quantums on the market's grid, or refused (InvalidArgument) before signing.
        ``options`` are ``place_order``'s other keywords."""
        side = order_side(side)  # refused before any request

        def build(units: Units) -> Command:
            grid = units.market(market_id)
            price_quantums = 0 if price is None else grid.price_quantums(price)
            return self.order(market_id, side, size_base_quantums=grid.size_base_quantums(size),
                              price_quantums=price_quantums, **options)  # fmt: skip

        return self._submit_built(build)

    def order(self, market_id: str, side: str | Side, **fields: Any) -> PlaceOrder:
        """A PlaceOrder for this account, not yet sent (for batches)."""
        fields.setdefault("subaccount_number", 0)
        return PlaceOrder(
            **self.common(), market_id=MarketId(market_id), side=order_side(side), **fields
        )

    def cancel(
        self, *, order_id: int = 0, client_order_id: int = 0, subaccount_number: int = 0
    ) -> Obj:
        return self.submit(CancelOrder(
            **self.common(), subaccount_number=subaccount_number, order_id=order_id,
            client_order_id=client_order_id,
        ))  # fmt: skip

    def cancel_all(self, market_id: str | None = None, *, subaccount_number: int = 0) -> Obj:
        market = None if market_id is None else MarketId(market_id)
        return self.submit(
            CancelAll(**self.common(), subaccount_number=subaccount_number, market_id=market)
        )

    def schedule_cancel(self, after_seconds: float | None, *, subaccount_number: int = 0) -> Obj:
        """The dead-man's switch: every order of the subaccount is cancelled at the first block
        ``after_seconds`` from now (by this machine's clock; the venue takes 5 s to 24 h), unless
        a later call moves it; None clears it. Call it every few seconds while quoting: if this
        program stops, or loses the node, its quotes go when the time comes."""
        at_ns = (
            0 if after_seconds is None else time.time_ns() + round(after_seconds * NS_PER_SECOND)
        )
        return self.submit(ScheduleCancel(
            **self.common(), subaccount_number=subaccount_number, cancel_at_ns=at_ns
        ))  # fmt: skip

    def amend(
        self, order_id: int, *, price_quantums: int, size_base_quantums: int,
        subaccount_number: int = 0,
    ) -> Obj:  # fmt: skip
        return self.submit(AmendOrder(
            **self.common(), subaccount_number=subaccount_number, order_id=order_id,
            price_quantums=price_quantums, size_base_quantums=size_base_quantums,
        ))  # fmt: skip

    def withdraw(self, amount_quantums: int, *, asset_id: str = "USDC",
                 subaccount_number: int = 0) -> Obj:  # fmt: skip
        return self.submit(Withdraw(
            **self.common(), subaccount_number=subaccount_number, asset_id=AssetId(asset_id),
            amount_quantums=amount_quantums,
        ))  # fmt: skip

    def withdraw_decimal(self, amount: Human, *, asset_id: str = "USDC",
                         subaccount_number: int = 0) -> Obj:  # fmt: skip
        """``withdraw`` in the asset's units (``Decimal("12.5")`` USDC), converted exactly."""
        return self._submit_built(lambda units: Withdraw(
            **self.common(), subaccount_number=subaccount_number, asset_id=AssetId(asset_id),
            amount_quantums=units.amount_quantums(asset_id, amount),
        ))  # fmt: skip

    def transfer(self, amount_quantums: int, *, source_number: int, target_number: int,
                 asset_id: str = "USDC") -> Obj:  # fmt: skip
        return self.submit(TransferCollateral(
            **self.common(), source_number=source_number, target_number=target_number,
            asset_id=AssetId(asset_id), amount_quantums=amount_quantums,
        ))  # fmt: skip

    def deposit_insurance(self, amount_quantums: int, *, subaccount_number: int = 0) -> Obj:
        """Add quote from a subaccount to the insurance fund (it does not come back)."""
        return self.submit(DepositInsurance(
            **self.common(), subaccount_number=subaccount_number, amount_quantums=amount_quantums,
        ))  # fmt: skip

    def deposit_vault(self, amount_quantums: int, *, subaccount_number: int = 0) -> Obj:
        """Buy market-making vault shares at NAV with quote from a subaccount."""
        return self.submit(DepositVault(
            **self.common(), subaccount_number=subaccount_number, amount_quantums=amount_quantums,
        ))  # fmt: skip

    def deposit_vault_decimal(self, amount: Human, *, subaccount_number: int = 0) -> Obj:
        """``deposit_vault`` in USDC (``Decimal("2500.5")``), converted exactly."""
        return self._submit_built(lambda units: DepositVault(
            **self.common(), subaccount_number=subaccount_number,
            amount_quantums=units.amount_quantums(QUOTE_ASSET, amount),
        ))  # fmt: skip

    def withdraw_vault(self, shares: int, *, subaccount_number: int = 0) -> Obj:
        """Redeem vault shares at NAV into a subaccount (after the lock-up)."""
        return self.submit(WithdrawVault(
            **self.common(), subaccount_number=subaccount_number, shares=shares,
        ))  # fmt: skip

    def deposit_options_vault(self, amount_quantums: int, *, subaccount_number: int = 0) -> Obj:
        """Buy options-vault shares at NAV with quote from a subaccount (refused with
        ``OPTIONS_VAULT_NOT_SET_UP`` on a venue without one)."""
        return self.submit(DepositOptionsVault(
            **self.common(), subaccount_number=subaccount_number, amount_quantums=amount_quantums,
        ))  # fmt: skip

    def deposit_options_vault_decimal(self, amount: Human, *, subaccount_number: int = 0) -> Obj:
        """``deposit_options_vault`` in USDC (``Decimal("2500.5")``), converted exactly."""
        return self._submit_built(lambda units: DepositOptionsVault(
            **self.common(), subaccount_number=subaccount_number,
            amount_quantums=units.amount_quantums(QUOTE_ASSET, amount),
        ))  # fmt: skip

    def withdraw_options_vault(self, shares: int, *, subaccount_number: int = 0) -> Obj:
        """Redeem options-vault shares at NAV into a subaccount (after its lock-up)."""
        return self.submit(WithdrawOptionsVault(
            **self.common(), subaccount_number=subaccount_number, shares=shares,
        ))  # fmt: skip

    def authorize_agent(self, agent: str, *, valid_for_ns: int) -> Obj:
        return self.submit(AuthorizeAgent(
            **self.common(), agent=normalize_address(agent),
            valid_until_ns=time.time_ns() + valid_for_ns,
        ))  # fmt: skip

    def revoke_agent(self, agent: str) -> Obj:
        return self.submit(RevokeAgent(**self.common(), agent=normalize_address(agent)))

    def set_margin_mode(self, *, portfolio: bool, subaccount_number: int = 0) -> Obj:
        return self.submit(SetMarginMode(
            **self.common(), subaccount_number=subaccount_number, portfolio=portfolio
        ))  # fmt: skip

    def liquidate(self, owner: str, owner_number: int, *, subaccount_number: int = 0) -> Obj:
        return self.submit(Liquidate(
            **self.common(), subaccount_number=subaccount_number,
            owner=normalize_address(owner), owner_number=owner_number,
        ))  # fmt: skip

    def bid_auction(
        self, owner: str, owner_number: int, market_id: str, size_base_quantums: int,
        *, subaccount_number: int = 0,
    ) -> Obj:  # fmt: skip
        return self.submit(BidAuction(
            **self.common(), subaccount_number=subaccount_number,
            owner=normalize_address(owner), owner_number=owner_number,
            market_id=MarketId(market_id), size_base_quantums=size_base_quantums,
        ))  # fmt: skip

    # ── Governance (SPEC §10) ──────────────────────────────────────────────────────────────
    #
    # Actions come from ``clearhouse.client.governance`` (``set_param``, ``pause``, …), checked
    # and converted exactly before anything is signed; the node decides who may do what.

    def propose(
        self, actions: Sequence[ActionInput], *, memo: str = "", simulation: str = ""
    ) -> Obj:
        """A council member proposes ``actions`` (its proposal counts as its approval);
        ``simulation`` is the stress lab's diff as JSON (``clearhouse gov propose --simulate``)."""
        _check_length("memo", memo, limits.proposal_memo_length_max)
        _check_length("simulation", simulation, limits.proposal_simulation_length_max)
        return self._with_actions(actions, lambda done: self.submit(Propose(
            **self.common(), actions=done, memo=memo, simulation=simulation,
        )))  # fmt: skip

    def approve_proposal(self, proposal_id: int) -> Obj:
        return self.submit(ApproveProposal(**self.common(), proposal_id=proposal_id))

    def queue_proposal(self, proposal_id: int) -> Obj:
        """Start the timelock of a proposal the council's threshold approved (anyone may)."""
        return self.submit(QueueProposal(**self.common(), proposal_id=proposal_id))

    def execute_proposal(self, proposal_id: int) -> Obj:
        """Apply a queued proposal whose timelock has run (anyone may): all its actions or none."""
        return self.submit(ExecuteProposal(**self.common(), proposal_id=proposal_id))

    def cancel_proposal(self, proposal_id: int) -> Obj:
        """A council member or the guardian cancels a pending or queued proposal."""
        return self.submit(CancelProposal(**self.common(), proposal_id=proposal_id))

    def steward_update(self, actions: Sequence[ActionInput]) -> Obj:
        """The risk steward moves parameters, each by at most one step per cooldown, at once."""
        return self._with_actions(
            actions, lambda done: self.submit(StewardUpdate(**self.common(), actions=done))
        )

    def guardian_act(self, actions: Sequence[ActionInput]) -> Obj:
        """The guardian reduces risk at once: pause, reduce-only, tighten a parameter."""
        return self._with_actions(
            actions, lambda done: self.submit(GuardianAct(**self.common(), actions=done))
        )

    def dispute_settlement(self, market_id: str, *, subaccount_number: int = 0) -> Obj:
        """Stop a governance settlement price inside its dispute window: as a holder of the
        market (``subaccount_number`` holds the position), a council member or the guardian."""
        return self.submit(DisputeSettlement(
            **self.common(), market_id=MarketId(market_id), subaccount_number=subaccount_number,
        ))  # fmt: skip

    def faucet(self, amount_usdc: int, *, subaccount_number: int = 0) -> Obj:
        """Dev nodes only: test USDC for this account (not idempotent: each call credits)."""
        body = {"address": self._address(None), "subaccount_number": subaccount_number,
                "amount_usdc": amount_usdc}  # fmt: skip
        return self._object(Request("POST", "/v1/dev/faucet", json=body, idempotent=False))

    # ── Queries ────────────────────────────────────────────────────────────────────────────

    def info(self) -> Obj:
        return self._object(Request("GET", "/v1/info"))

    def markets(self) -> Lst:
        return self._list(Request("GET", "/v1/markets"))

    def market(self, market_id: str) -> Obj:
        return self._object(Request("GET", f"/v1/markets/{market_id}"))

    def book(self, market_id: str, levels: int = 50) -> Obj:
        return self._object(Request("GET", f"/v1/markets/{market_id}/book", {"levels": levels}))

    def trades(self, market_id: str, limit: int = 100) -> Lst:
        return self._list(Request("GET", f"/v1/markets/{market_id}/trades", {"limit": limit}))

    def candles(self, market_id: str, limit: int = 60) -> Lst:
        return self._list(Request("GET", f"/v1/markets/{market_id}/candles", {"limit": limit}))

    def account_state(self, address: str | None = None) -> Obj:
        return self._object(Request("GET", f"/v1/accounts/{self._address(address)}"))

    def subaccount(self, number: int = 0, address: str | None = None) -> Obj:
        path = f"/v1/accounts/{self._address(address)}/subaccounts/{number}"
        return self._object(Request("GET", path))

    def open_orders(self, number: int = 0, address: str | None = None) -> Lst:
        path = f"/v1/accounts/{self._address(address)}/subaccounts/{number}/orders"
        return self._list(Request("GET", path))

    def order_status(self, order_id: int) -> Obj:
        return self._object(Request("GET", f"/v1/orders/{order_id}"))

    def order_by_client_id(self, client_order_id: int, number: int = 0) -> Obj:
        path = f"/v1/accounts/{self._address(None)}/subaccounts/{number}/orders/by-client-id/"
        return self._object(Request("GET", path + str(client_order_id)))

    def liquidations(self) -> Obj:
        return self._object(Request("GET", "/v1/liquidations"))

    def insurance(self) -> Obj:
        return self._object(Request("GET", "/v1/insurance"))

    def vault(self) -> Obj:
        return self._object(Request("GET", "/v1/vault"))

    def vault_shares(self, address: str | None = None) -> Obj:
        """An owner's market-making vault shares (this account's by default), their value at
        NAV now and the end of its lock-up."""
        return self._object(Request("GET", f"/v1/vault/owners/{self._address(address)}"))

    def options_vault(self) -> Obj:
        """The options vault: ``set_up``, NAV, shares, its book's vega, gamma and delta values
        and their caps, quotes, hedge, parameters."""
        return self._object(Request("GET", "/v1/options-vault"))

    def options_vault_shares(self, address: str | None = None) -> Obj:
        """An owner's options-vault shares (this account's by default), their value at NAV
        now and the end of its lock-up."""
        path = f"/v1/options-vault/owners/{self._address(address)}"
        return self._object(Request("GET", path))

    def adl(self, market_id: str) -> Obj:
        return self._object(Request("GET", f"/v1/markets/{market_id}/adl"))

    def latest_block(self) -> Obj:
        return self._object(Request("GET", "/v1/blocks/latest"))

    def block(self, height: int) -> Obj:
        return self._object(Request("GET", f"/v1/blocks/{height}"))

    def nonces(self, signer: str | None = None) -> Obj:
        return self._object(Request("GET", f"/v1/nonces/{self._address(signer)}"))

    def command_status(self, command_hash: str) -> Obj:
        return self._object(Request("GET", f"/v1/commands/{command_hash}"))

    def governance(self) -> Obj:
        """Who governs (council, threshold, steward, guardian, waits); ``{"governed": false}``
        on a venue without governance."""
        return self._object(Request("GET", "/v1/gov"))

    def governed_params(
        self, *, scope: str | None = None, name: str | None = None, target: str | None = None
    ) -> Lst:
        """The parameter registry: each parameter's bounds, step, cooldown, which way is safer,
        and its value for each target (``values``); ``scope`` (``market``, ``oracle``, …),
        ``name`` and ``target`` narrow it."""
        return self._list(Request("GET", "/v1/gov/params", _present(
            scope=scope, name=name, target=target
        )))  # fmt: skip

    def proposals(
        self, status: str | None = None, *, before: int | None = None, limit: int | None = None
    ) -> Lst:
        """Proposals, newest first, each with its status as of now; ``status`` (``pending``,
        ``queued``, ``executed``, ``cancelled``, ``expired`` or ``open``) filters them, and
        ``before`` (the last id seen) pages."""
        return self._list(Request("GET", "/v1/gov/proposals", _present(
            status=status, before=before, limit=limit
        )))  # fmt: skip

    def proposal(self, proposal_id: int) -> Obj:
        """One proposal, its ``simulation`` parsed (or null) and its steps (``events``)."""
        return self._object(Request("GET", f"/v1/gov/proposals/{proposal_id}"))

    def param_history(
        self, *, name: str | None = None, target: str | None = None, cursor: str | None = None,
        limit: int | None = None,
    ) -> Obj:  # fmt: skip
        """Parameter changes, newest first (``items``); pass ``next_cursor`` back as ``cursor``."""
        return self._object(Request("GET", "/v1/gov/history", _present(
            name=name, target=target, cursor=cursor, limit=limit
        )))  # fmt: skip

    def governance_events(self, *, cursor: str | None = None, limit: int | None = None) -> Obj:
        """Governance's events, newest first (``items``), paged like ``param_history``."""
        params = _present(cursor=cursor, limit=limit)
        return self._object(Request("GET", "/v1/gov/events", params))

    def impact(self, actions: Sequence[ActionInput]) -> Obj:
        """The holders healthy now that ``actions`` would put below maintenance once whole
        (``liquidatable``, ``truncated``, ``height``); nothing changes on the node."""
        return self._with_actions(actions, lambda done: self._object(Request(
            "POST", "/v1/gov/impact", json={"actions": [to_plain(a) for a in done]},
        )))  # fmt: skip
