"""Write routes: signed commands (one or a batch) and the dev faucet.

A command is authenticated here (EIP-712 recovery: the account's key, or an agent's), queued,
and answered once its block is durable: 200 with its events, or the engine's rejection code
with the status that fits it. A byte-identical resubmission gets the first one's answer.
Addresses in a command may be EIP-55 checksummed: they are checked and lower-cased before
the signature is recovered (EIP-712 signs an address's 20 bytes, not its spelling).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from clearhouse.app import signing
from clearhouse.core import limits
from clearhouse.core.codec import (
    MalformedCommand,
    canonical_json,
    decode_command,
    plain_out_of_range,
)
from clearhouse.core.errors import InvalidArgument
from clearhouse.core.errors import RejectReason as R
from clearhouse.core.ids import Address, SubaccountId
from clearhouse.core.messages import AgentSigned, AuthorizeAgent, Command
from clearhouse.core.state import EngineState
from clearhouse.node import human, models
from clearhouse.node.context import Context, NodeContext
from clearhouse.node.errors import ApiError, JsonAnswer, status_of
from clearhouse.node.human import ADDRESS
from clearhouse.node.protection import (
    COMMAND_WORK_FREE_SECONDS,
    Recovered,
    Recovery,
    charge_work,
    refuse_if_limited,
)
from clearhouse.node.readmodel import CommandResult
from clearhouse.node.sequencer import DuplicateClientOrder, NodeUnavailable

router = APIRouter(tags=["commands"], responses=models.COMMON)
dev_router = APIRouter(tags=["dev"], responses=models.COMMON)
ANSWERS = {**models.errors(401, 403, 409, 422)}
BATCH_COMMANDS_MAX = 1_000
# What a batch costs against the per-IP limit: this much on arrival (a read costs 1), then one
# per command it carries (``charge_batch``): each is a signature to recover, ~0.25 ms of the
# node's CPU, so a batch of 1,000 forged commands must cost its sender 1,000 reads, not 20.
BATCH_WEIGHT_ON_ARRIVAL = 20.0
BATCH_WEIGHT_PER_COMMAND = 1.0
# ... or one per this many bytes of its body, when that is more: reading a body costs by its
# size (a batch of one command may be 4 MB where a signed command is under 2 KB).
BATCH_BYTES_PER_WEIGHT = 4 * 1024
HEX_SIGNATURE = r"^0x[0-9a-fA-F]{130}$"


class CommandEnvelope(BaseModel):
    """A command as the codec writes it: its type name and its fields."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: str = Field(max_length=64, examples=["PlaceOrder"])
    body: dict[str, Any]


class SignedCommand(BaseModel):
    """A command and its 65-byte EIP-712 signature (r ‖ s ‖ v, hex)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    command: CommandEnvelope
    signature: str = Field(pattern=HEX_SIGNATURE)


class SignedBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    commands: list[SignedCommand] = Field(min_length=1, max_length=BATCH_COMMANDS_MAX)


class FaucetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    address: str = Field(pattern=ADDRESS)
    subaccount_number: int = Field(default=0, ge=0, le=127)
    amount_usdc: int = Field(gt=0, le=10_000_000)


Authenticated = tuple[Command | AgentSigned, bytes]


@router.post("/v1/commands", response_model=models.CommandAnswer, responses=ANSWERS)
async def submit_command(ctx: Context, signed: SignedCommand, request: Request) -> JsonAnswer:
    """Submit one signed command; answered once its block is durable."""
    item, signature = authenticate(ctx, signed)
    charge(ctx, item)
    try:
        future, duplicate = ctx.sequencer.submit(item, signature)
        result = await answered(future)
    except NodeUnavailable as error:
        raise ApiError(503, error.code, str(error)) from None
    except DuplicateClientOrder as error:
        raise duplicate_client_order(error) from None
    if not duplicate:
        charge_done(ctx, _address_of(request), item, ctx.sequencer.work_seconds(future))
    return answer(result, duplicate, ctx.sequencer.scales)


@router.post("/v1/commands/batch", response_model=models.BatchAnswer)
async def submit_batch(ctx: Context, batch: SignedBatch, request: Request) -> dict[str, Any]:
    """Up to 1,000 signed commands; each answered as ``/v1/commands`` would, in order, with
    its own ``http_status``. Signatures are recovered off the event loop, on the node's
    process pool when it has one (``--verify-workers``). A batch weighs one per command, or
    one per 4 KiB of its body when that is more, against the per-IP limit (20 at least): over
    it, the whole batch is refused with ``RATE_LIMITED`` and nothing in it is queued; a batch
    heavier than the limit's burst with ``BATCH_TOO_LARGE``."""
    size = len(await request.body())
    charge_batch(ctx, request, batch_weight(len(batch.commands), size), paid=body_weight(size))
    outcomes = await authenticate_all(ctx, batch.commands)
    answers: list[dict[str, Any]] = []
    waiting: list[tuple[int, Future[CommandResult], bool, Command | AgentSigned]] = []
    for index, outcome in enumerate(outcomes):
        answers.append({})
        try:
            if isinstance(outcome, ApiError):
                raise outcome
            charge(ctx, outcome[0])
            future, duplicate = ctx.sequencer.submit(*outcome)
            waiting.append((index, future, duplicate, outcome[0]))
        except ApiError as error:
            answers[index] = {"http_status": error.status, **error.body()}
        except NodeUnavailable as error:
            answers[index] = {"http_status": 503, **ApiError(503, error.code, str(error)).body()}
        except DuplicateClientOrder as error:
            answers[index] = {"http_status": 409, **duplicate_client_order(error).body()}
    for index, pending, duplicate, item in waiting:
        try:
            done = await answered(pending)
            answers[index] = result_json(done, duplicate, ctx.sequencer.scales)
            if not duplicate:
                work = ctx.sequencer.work_seconds(pending)
                charge_done(ctx, _address_of(request), item, work)
        except NodeUnavailable as error:
            answers[index] = {"http_status": 503, **ApiError(503, error.code, str(error)).body()}
    return {"results": answers}


async def answered(future: Future[CommandResult]) -> CommandResult:
    """Wait for the sequencer's answer without ever cancelling its future: a request given up
    (a client gone, a shutdown's deadline) must not reach into the writer's bookkeeping."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[CommandResult] = loop.create_future()

    def relay(done: Future[CommandResult]) -> None:
        loop.call_soon_threadsafe(_settle, waiter, done)

    future.add_done_callback(relay)
    return await waiter


def _settle(waiter: asyncio.Future[CommandResult], done: Future[CommandResult]) -> None:
    if waiter.cancelled():
        return
    error = done.exception()
    if error is not None:
        waiter.set_exception(error)
    else:
        waiter.set_result(done.result())


@dev_router.post("/v1/dev/faucet", response_model=models.CommandAnswer)
async def faucet(ctx: Context, request: FaucetRequest) -> JsonAnswer:
    """Dev mode only: credit test USDC through the dev custody relayer."""
    try:
        future, _ = ctx.sequencer.submit_deposit(
            human.address(request.address), request.subaccount_number, request.amount_usdc
        )
        result = await answered(future)
    except NodeUnavailable as error:
        raise ApiError(503, error.code, str(error)) from None
    return answer(result, False, ctx.sequencer.scales)


def decode(signed: SignedCommand) -> tuple[Command, bytes, bytes]:
    """(command, signature, the command's canonical bytes), or a 400."""
    envelope = signed.command.model_dump()
    beyond = plain_out_of_range(envelope["body"])
    if beyond is not None:  # refused before it is decoded, hashed, queued or spends a nonce
        field, bound, unit = beyond
        raise ApiError(400, R.VALUE_OUT_OF_RANGE.name, f"{field}: at most {bound} {unit}",
                       field=field)  # fmt: skip
    envelope["body"] = human.addresses_in(envelope["body"])
    canonical = canonical_json(envelope)
    try:
        command = decode_command(canonical)
    except MalformedCommand as error:
        raise ApiError(400, "MALFORMED_COMMAND", str(error)) from None
    assert isinstance(command, Command)  # the envelope has no 'agent' field to decode
    return command, bytes.fromhex(signed.signature[2:]), canonical


def authenticate(ctx: NodeContext, signed: SignedCommand) -> Authenticated:
    command, signature, canonical = decode(signed)
    key = Recovered.key(canonical, signature)
    found = ctx.recovered.get(key)
    if found is None:
        try:
            found = signing.authenticate(command, signature, ctx.domain)
        except InvalidArgument as error:
            found = error
        ctx.recovered.put(key, found, command_bytes=len(canonical))
    outcome = _outcome(found, signature)
    if isinstance(outcome, ApiError):
        raise outcome
    return outcome


def _outcome(found: Recovery, signature: bytes) -> Authenticated | ApiError:
    return _refusal(found) if isinstance(found, InvalidArgument) else (found, signature)


async def authenticate_all(
    ctx: NodeContext, batch: list[SignedCommand]
) -> list[Authenticated | ApiError]:
    """Each command of a batch authenticated (those not in ``ctx.recovered`` in parallel, off
    the event loop), or the error it gets, in order."""
    entries: list[tuple[Command, bytes, bytes, int] | ApiError] = []  # ..., key, size
    for signed in batch:
        try:
            command, signature, canonical = decode(signed)
        except ApiError as error:
            entries.append(error)
            continue
        entries.append((command, signature, Recovered.key(canonical, signature), len(canonical)))
    known: dict[bytes, Recovery] = {}
    unknown: dict[bytes, tuple[Command, bytes, int]] = {}  # one recovery per distinct command
    for entry in entries:
        if isinstance(entry, ApiError):
            continue
        command, signature, key, size = entry
        found = ctx.recovered.get(key)
        if found is not None:
            known[key] = found
        else:
            unknown[key] = command, signature, size
    pairs = [(command, signature) for command, signature, _ in unknown.values()]
    recovered = await asyncio.to_thread(
        signing.authenticate_batch, pairs, ctx.domain, ctx.verify_pool, chunk=64
    )
    for (key, (_, _, size)), found in zip(unknown.items(), recovered, strict=True):
        ctx.recovered.put(key, found, command_bytes=size)
        known[key] = found
    return [
        entry if isinstance(entry, ApiError) else _outcome(known[entry[2]], entry[1])
        for entry in entries
    ]


def _refusal(error: InvalidArgument) -> ApiError:
    if isinstance(error, signing.BadSignature):
        return ApiError(401, "BAD_SIGNATURE", str(error))
    return ApiError(400, "MALFORMED_COMMAND", str(error))


def charge(ctx: NodeContext, item: Command | AgentSigned) -> None:
    """The per-account rate limit, charged to the key that signed (the account's own, or an
    agent the account authorized): a forged command costs its forger, never the account it
    names. A key that is no agent of the account is refused here, before it can fill a block
    (the engine would refuse it too, as AGENT_NOT_AUTHORIZED)."""
    key = item.agent if isinstance(item, AgentSigned) else item.signer
    if isinstance(item, AgentSigned) and not _is_agent(ctx, item):
        raise ApiError(403, "AGENT_NOT_AUTHORIZED", "the signing key is not an agent of "
                       "this account", nonce_consumed=False)  # fmt: skip
    if not isinstance(item, AgentSigned) and not has_standing(ctx.engine.state, item.signer):
        raise ApiError(403, "ACCOUNT_NOT_FUNDED", "this account holds nothing on the venue: "
                       "deposit first", nonce_consumed=False)  # fmt: skip
    if isinstance(item, AuthorizeAgent):  # each new agent key's nonce set stays two days
        wait = ctx.agent_limits.allow(item.signer)
        refuse_if_limited(ctx, wait, "too many agent authorizations from this account")
    refuse_if_limited(ctx, ctx.account_limits.allow(key), "too many commands from this account")


def charge_done(
    ctx: NodeContext, address: str, item: Command | AgentSigned, work_seconds: float
) -> None:
    """What a command cost the writer beyond what its arrival paid, now that its block is done
    (``protection.COMMAND_WORK_FREE_SECONDS``: a weight a millisecond), taken from its signing
    key's per-account bucket and its address's per-IP one, whatever they hold: their next
    requests wait for it. A command is never refused for it (it is done)."""
    work = work_seconds - COMMAND_WORK_FREE_SECONDS
    if work <= 0:
        return
    weight = work * 1_000
    key = item.agent if isinstance(item, AgentSigned) else item.signer
    ctx.account_limits.debit(key, weight)
    ctx.ip_limits.debit(address, weight)


def _address_of(request: Request) -> str:
    return request.client.host if request.client else "?"


def has_standing(state: EngineState, signer: Address) -> bool:
    """Whether ``signer`` may put a command in a block: an account that holds a subaccount,
    a key the engine has taken a command from within its nonce window, or a role (operator,
    custody relayer, an oracle's publisher, governance). Any other key holds nothing on the
    venue, and every command it signs would leave its nonce set in state for the window's two
    days (~740 bytes and a state-root leaf a key: free keys at the per-IP limit grew the state
    ~1.5 MB a second). An agent's account authorized it, so it has standing. Read without the
    lock, as ``_is_agent``."""
    if signer in state.nonces:
        return True
    subaccounts = state.ledger.subaccounts
    numbers = range(limits.subaccounts_per_account_max)
    return any(SubaccountId(signer, n) in subaccounts for n in numbers) or signer in _roles(state)


def _roles(state: EngineState) -> set[Address]:
    roles = {state.venue.operator, state.venue.custody_relayer}
    # Copied in one step (the writer may list an oracle meanwhile: a dict read while it grows
    # raises), then read.
    for oracle in list(state.oracles.values()):
        roles.update(p.address for p in oracle.params.publishers)
    if state.governance is not None:
        params = state.governance.params
        roles.update(a for a in (*params.council, params.steward, params.guardian) if a)
    return roles


def batch_weight(commands: int, body_bytes: int) -> float:
    """One per command, or one per ``BATCH_BYTES_PER_WEIGHT`` bytes of the body if more."""
    return max(float(commands), body_weight(body_bytes))


def body_weight(body_bytes: int) -> float:
    """What reading, parsing and validating a body weighs by its size alone: one per
    ``BATCH_BYTES_PER_WEIGHT`` bytes. The API's middleware charges it (beyond the arrival's
    weight) before anything parses the body, whatever the route makes of it afterwards."""
    return body_bytes / BATCH_BYTES_PER_WEIGHT


def body_bytes_max(burst: float) -> int:
    """The largest body whose size alone fits in a per-IP burst."""
    return int(burst * BATCH_BYTES_PER_WEIGHT)


def charge_batch(ctx: NodeContext, request: Request, weight: float, paid: float = 0.0) -> None:
    """The per-IP limit's charge for a batch of this ``weight`` (its commands, or its size:
    ``submit_batch``) beyond what its arrival and its size (``paid``, charged by the API's
    middleware before the body was parsed) paid. A batch heavier than the limit's whole
    burst could never pass: refused as too large, at once."""
    ip_limits = ctx.ip_limits
    if ip_limits.rate > 0 and weight * BATCH_WEIGHT_PER_COMMAND > ip_limits.burst:
        most = int(ip_limits.burst // BATCH_WEIGHT_PER_COMMAND)
        kib = most * BATCH_BYTES_PER_WEIGHT // 1024
        raise ApiError(413, "BATCH_TOO_LARGE", f"at most {most} commands ({kib} KiB) in a "
                       "batch on this node (its per-IP limit): split the batch",
                       max_commands=most)  # fmt: skip
    charge_work(ctx, request, weight * BATCH_WEIGHT_PER_COMMAND,
                max(BATCH_WEIGHT_ON_ARRIVAL, paid))  # fmt: skip


def _is_agent(ctx: NodeContext, item: AgentSigned) -> bool:
    # Read without the lock: a single dict lookup, and the engine decides again in its block.
    valid_until = ctx.engine.state.agents.get(item.command.signer, {}).get(item.agent, 0)
    return bool(valid_until > ctx.engine.state.timestamp_ns)


def duplicate_client_order(error: DuplicateClientOrder) -> ApiError:
    return ApiError(409, "DUPLICATE_CLIENT_ORDER_ID", str(error), existing_order=error.existing)


def result_json(result: CommandResult, duplicate: bool, scales: human.Scales) -> dict[str, Any]:
    """A command's answer, with the human companions (as GET /v1/commands/{hash} gives it)."""
    body: dict[str, Any] = human.annotate(result.to_json(), scales)
    rejected = result.rejection
    body["http_status"] = 200 if rejected is None else status_of(rejected.reason)
    body["duplicate"] = duplicate
    return body


def answer(result: CommandResult, duplicate: bool, scales: human.Scales) -> JsonAnswer:
    body = result_json(result, duplicate, scales)
    rejected = result.rejection
    if rejected is None:
        return JsonAnswer(body)
    error = {"code": rejected.reason.name, "message": f"rejected: {rejected.reason.name}",
             **{k: v for k, v in body.items() if k != "http_status"}}  # fmt: skip
    return JsonAnswer({"error": error}, status_code=body["http_status"])
