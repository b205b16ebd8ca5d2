"""codec: every user command round-trips through canonical bytes, and decoding is strict, naming
the path of whatever is wrong."""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.core import codec as codec_module
from clearhouse.core import limits, messages
from clearhouse.core.codec import (
    MalformedCommand,
    canonical_json,
    decode_command,
    encode_command,
    field_types,
    plain_out_of_range,
)
from clearhouse.core.errors import InvalidArgument
from clearhouse.core.ids import SYMBOL_LENGTH_MAX, Address, AssetId, MarketId, OracleId, Side
from clearhouse.core.messages import (
    USER_COMMANDS,
    AgentSigned,
    CancelAll,
    Command,
    ListAsset,
    ListMarket,
    ListOracle,
    OrderType,
    PlaceOrder,
    PriceReport,
    ReportPrices,
    TimeInForce,
    Withdraw,
)
from clearhouse.core.params import (
    AssetParams,
    FundingParams,
    MarginParams,
    MarketKind,
    MarketParams,
    OracleParams,
    Publisher,
)
from clearhouse.core.payoffs import call

# ── Strategies ───────────────────────────────────────────────────────────────────────────

addresses = st.binary(min_size=20, max_size=20).map(lambda raw: Address("0x" + raw.hex()))
symbols = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", min_size=1, max_size=SYMBOL_LENGTH_MAX
)
# Valid quantities: non-negative, up to the largest amount (JSON carries big integers exactly).
integers = st.one_of(
    st.integers(min_value=0, max_value=2**63 - 1),
    st.integers(min_value=0, max_value=limits.amount_quantums_max),
)

_BY_NEWTYPE: dict[object, st.SearchStrategy[Any]] = {
    Address: addresses,
    MarketId: symbols.map(MarketId),
    AssetId: symbols.map(AssetId),
    OracleId: symbols.map(OracleId),
}


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """A strategy of valid values for a field's type hint (recursing into params and tuples)."""
    if hint in _BY_NEWTYPE:
        return _BY_NEWTYPE[hint]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return st.one_of(st.none(), strategy_for(inner))
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(strategy_for(args[0]), max_size=3).map(tuple)
        return st.tuples(*(strategy_for(a) for a in args))
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:
        return strategy_for(supertype)
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        return st.sampled_from(list(hint))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return dataclass_strategy(hint)
    if hint is bool:
        return st.booleans()
    if hint is int:
        return integers
    if hint is str:
        return symbols
    raise AssertionError(f"no strategy for {hint!r}")


def dataclass_strategy(cls: type) -> st.SearchStrategy[Any]:
    """Every required field drawn; every defaulted field drawn or left at its default."""
    hints = field_types(cls)
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for f in dataclasses.fields(cls):
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        (optional if has_default else required)[f.name] = strategy_for(hints[f.name])
    return st.fixed_dictionaries(required, optional=optional).map(lambda kwargs: cls(**kwargs))


COMMANDS = st.one_of(*(dataclass_strategy(c) for c in USER_COMMANDS))
EXAMPLES = settings(max_examples=40, deadline=None)


def _decodable_dataclasses() -> list[type]:
    """Every dataclass a command may carry, the commands included."""
    found: list[type] = []

    def visit(hint: Any) -> None:
        for arg in typing.get_args(hint):
            visit(arg)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint) and hint not in found:
            found.append(hint)
            for inner in field_types(hint).values():
                visit(inner)

    for command_type in USER_COMMANDS:
        visit(command_type)
    return found


@pytest.mark.skipif(
    not codec_module.__file__.endswith(".py"), reason="the compiled build erases type arguments"
)
def test_field_types_say_what_the_annotations_say() -> None:
    """The codec's table of parameterized field types (what a compiled build cannot read back
    from the annotations) matches the annotations, and lists every field that has arguments."""
    for cls in _decodable_dataclasses():
        hints = typing.get_type_hints(cls)
        assert field_types(cls) == {f.name: hints[f.name] for f in dataclasses.fields(cls)}
        for f in dataclasses.fields(cls):
            has_arguments = typing.get_origin(hints[f.name]) is not None
            assert has_arguments == ((cls, f.name) in codec_module._PARAMETERIZED), f.name


def test_every_field_type_is_whole() -> None:
    """No field type reads back as a bare container or ``type`` (an erased annotation)."""
    for cls in _decodable_dataclasses():
        for name, hint in field_types(cls).items():
            assert hint not in (tuple, list, dict, type, object), (cls.__name__, name, hint)


def test_the_strategies_know_every_nested_type() -> None:
    # Building the strategies resolves every hint: a new field type fails here, not silently.
    for command_type in USER_COMMANDS:
        strategy_for(command_type).validate()
    assert {ListMarket, ListOracle, ListAsset, ReportPrices} <= set(USER_COMMANDS)


# ── Round trip ───────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("command_type", USER_COMMANDS, ids=lambda c: c.__name__)
@EXAMPLES
@given(data=st.data())
def test_every_command_round_trips_canonically(
    command_type: type[Command], data: st.DataObject
) -> None:
    command = data.draw(dataclass_strategy(command_type))
    encoded = encode_command(command)
    decoded = decode_command(encoded)
    assert decoded == command
    assert type(decoded) is command_type
    assert repr(decoded) == repr(command)  # enums come back as enums, tuples as tuples
    assert encode_command(decoded) == encoded
    # The bytes are compact JSON with sorted keys: re-serializing changes nothing.
    assert canonical_json(json.loads(encoded)) == encoded
    assert encoded.isascii()


@settings(max_examples=60, deadline=None)
@given(COMMANDS, st.data())
def test_non_canonical_json_decodes_to_the_same_command(
    command: Command, data: st.DataObject
) -> None:
    document = json.loads(encode_command(command))
    body = data.draw(st.permutations(list(document["body"].items())))
    loose = json.dumps({"body": dict(body), "type": document["type"]}, indent=1).encode()
    decoded = decode_command(loose)
    assert decoded == command
    assert encode_command(decoded) == encode_command(command)


def test_nested_params_round_trip_example() -> None:
    market = ListMarket(
        signer=Address("0x" + "ab" * 20),
        nonce=0,
        expiry_ns=2**62,
        params=MarketParams(
            market_id=MarketId("BTC-0328"),
            kind=MarketKind.FUTURE,
            oracle_id=OracleId("BTC-USD"),
            base_quantums_per_unit=10**8,
            tick_quantums=10**6,
            step_base_quantums=100,
            min_order_base_quantums=1_000,
            margin=MarginParams(initial_margin_ppm=20_000, size_premium_ppm_per_sqrt_quote_unit=7),
            funding=FundingParams(interest_ppb_per_8h=0),
            expiry_ns=10**19,
        ),
    )
    encoded = encode_command(market)
    assert encoded.startswith(b'{"body":{"expiry_ns":4611686018427387904,"nonce":0,"params":{')
    assert b'"margin":{"cooling_off_multiplier_ppm":1500000,' in encoded
    assert b'"kind":2' in encoded
    assert decode_command(encoded) == market


# ── Strict decoding ──────────────────────────────────────────────────────────────────────

SIGNER = Address("0x" + "11" * 20)
WITHDRAW = Withdraw(
    signer=SIGNER, nonce=1, expiry_ns=2, subaccount_number=0, asset_id=AssetId("USDC"),
    amount_quantums=5,
)  # fmt: skip
PLACE = PlaceOrder(
    signer=SIGNER, nonce=1, expiry_ns=2, subaccount_number=0, market_id=MarketId("BTC-PERP"),
    side=Side.BUY, size_base_quantums=100, price_quantums=60_000,
    order_type=OrderType.LIMIT, time_in_force=TimeInForce.GTC,
)  # fmt: skip
REPORTS = ReportPrices(
    signer=SIGNER, nonce=1, expiry_ns=2,
    reports=(
        PriceReport(oracle_id=OracleId("BTC-USD"), price_quantums=1, confidence_quantums=0,
                    timestamp_ns=3),
        PriceReport(oracle_id=OracleId("ETH-USD"), price_quantums=2, confidence_quantums=0,
                    timestamp_ns=3),
    ),
)  # fmt: skip
ORACLE = ListOracle(
    signer=SIGNER, nonce=0, expiry_ns=2,
    params=OracleParams(oracle_id=OracleId("BTC-USD"),
                        publishers=(Publisher(address=SIGNER, weight=2),)),
)  # fmt: skip
ASSET = ListAsset(
    signer=SIGNER, nonce=0, expiry_ns=2,
    params=AssetParams(asset_id=AssetId("BTC"), quantums_per_unit=10**8,
                       oracle_id=OracleId("BTC-USD")),
)  # fmt: skip
MARKET = ListMarket(
    signer=SIGNER, nonce=0, expiry_ns=2,
    params=MarketParams(market_id=MarketId("BTC-PERP"), kind=MarketKind.PERPETUAL,
                        oracle_id=OracleId("BTC-USD"), base_quantums_per_unit=10**8,
                        tick_quantums=10**6, step_base_quantums=100,
                        min_order_base_quantums=100),
)  # fmt: skip


def _document(command: Command) -> dict[str, Any]:
    document = json.loads(encode_command(command))
    assert isinstance(document, dict)
    return document


def _decode(document: object) -> Command:
    return decode_command(json.dumps(document).encode())


def _rejects(document: object, message: str) -> None:
    with pytest.raises(MalformedCommand, match=re.escape(message)):
        _decode(document)


def _with(command: Command, path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    """The command's document with the field at ``path`` (under body) set to ``value``."""
    document = _document(command)
    node = document["body"]
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return document


def _without(command: Command, path: tuple[str | int, ...]) -> dict[str, Any]:
    document = _document(command)
    node = document["body"]
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return document


def test_malformed_command_is_an_invalid_argument() -> None:
    assert issubclass(MalformedCommand, InvalidArgument)
    assert issubclass(MalformedCommand, ValueError)
    assert MalformedCommand.code == "MALFORMED_COMMAND"


@pytest.mark.parametrize(
    ("command", "path", "message"),
    [
        (WITHDRAW, ("extra",), "body: unknown field(s) extra"),
        (PLACE, ("zzz",), "body: unknown field(s) zzz"),
        (MARKET, ("params", "margin", "bogus"), "body.params.margin: unknown field(s) bogus"),
        (ORACLE, ("params", "publishers", 0, "x"), "body.params.publishers[0]: unknown field(s) x"),
        (REPORTS, ("reports", 1, "extra"), "body.reports[1]: unknown field(s) extra"),
    ],
)
def test_unknown_fields_are_rejected(
    command: Command, path: tuple[str | int, ...], message: str
) -> None:
    _rejects(_with(command, path, 1), message)


@pytest.mark.parametrize(
    ("command", "path", "message"),
    [
        (WITHDRAW, ("amount_quantums",), "body: missing field amount_quantums"),
        (WITHDRAW, ("signer",), "body: missing field signer"),
        (PLACE, ("side",), "body: missing field side"),
        (REPORTS, ("reports", 0, "timestamp_ns"), "body.reports[0]: missing field timestamp_ns"),
        (ORACLE, ("params", "publishers", 0, "address"), "body.params.publishers[0]: missing"),
        (MARKET, ("params", "tick_quantums"), "body.params: missing field tick_quantums"),
        (ASSET, ("params",), "body: missing field params"),
    ],
)
def test_missing_required_fields_are_rejected(
    command: Command, path: tuple[str | int, ...], message: str
) -> None:
    _rejects(_without(command, path), message)


@pytest.mark.parametrize(
    ("command", "path", "expected"),
    [
        (PLACE, ("price_quantums",), dataclasses.replace(PLACE, price_quantums=0)),
        (PLACE, ("reduce_only",), PLACE),
        (PLACE, ("order_type",), PLACE),
        (MARKET, ("params", "margin"), MARKET),
        (MARKET, ("params", "funding", "interval_ns"), MARKET),
        (
            ORACLE,
            ("params", "publishers", 0, "weight"),
            dataclasses.replace(
                ORACLE,
                params=dataclasses.replace(ORACLE.params, publishers=(Publisher(address=SIGNER),)),
            ),
        ),
        (
            ASSET,
            ("params", "oracle_id"),
            dataclasses.replace(ASSET, params=dataclasses.replace(ASSET.params, oracle_id=None)),
        ),
    ],
)
def test_missing_defaulted_fields_take_their_defaults(
    command: Command, path: tuple[str | int, ...], expected: Command
) -> None:
    assert _decode(_without(command, path)) == expected


@pytest.mark.parametrize(
    ("command", "path", "value", "message"),
    [
        (WITHDRAW, ("amount_quantums",), "5", "body.amount_quantums: expected an integer"),
        (WITHDRAW, ("amount_quantums",), 5.0, "body.amount_quantums: expected an integer"),
        (WITHDRAW, ("amount_quantums",), True, "body.amount_quantums: expected an integer"),
        (WITHDRAW, ("amount_quantums",), None, "body.amount_quantums: expected an integer"),
        (WITHDRAW, ("amount_quantums",), [5], "body.amount_quantums: expected an integer"),
        (WITHDRAW, ("nonce",), False, "body.nonce: expected an integer"),
        (WITHDRAW, ("signer",), 7, "body.signer: expected a string"),
        (WITHDRAW, ("asset_id",), None, "body.asset_id: expected a string"),
        (PLACE, ("reduce_only",), 1, "body.reduce_only: expected true or false"),
        (PLACE, ("reduce_only",), 0, "body.reduce_only: expected true or false"),
        (PLACE, ("reduce_only",), "true", "body.reduce_only: expected true or false"),
        (PLACE, ("reduce_only",), None, "body.reduce_only: expected true or false"),
        (PLACE, ("side",), 0, "body.side: 0 is not a valid Side"),
        (PLACE, ("side",), 2, "body.side: 2 is not a valid Side"),
        (PLACE, ("side",), True, "body.side: expected an integer code"),
        (PLACE, ("side",), 1.0, "body.side: expected an integer code"),
        (PLACE, ("side",), "BUY", "body.side: expected an integer code"),
        (PLACE, ("side",), None, "body.side: expected an integer code"),
        (PLACE, ("order_type",), 99, "body.order_type: 99 is not a valid OrderType"),
        (PLACE, ("time_in_force",), 0, "body.time_in_force: 0 is not a valid TimeInForce"),
        (MARKET, ("params", "kind"), 9, "body.params.kind: 9 is not a valid MarketKind"),
        (MARKET, ("params",), 5, "body.params: expected an object"),
        (MARKET, ("params",), None, "body.params: expected an object"),
        (MARKET, ("params", "margin"), [], "body.params.margin: expected an object"),
        (
            MARKET,
            ("params", "funding", "premium_clamp_ppb"),
            "0",
            "body.params.funding.premium_clamp_ppb: expected an integer",
        ),
        (REPORTS, ("reports",), {}, "body.reports: expected a list"),
        (REPORTS, ("reports",), "abc", "body.reports: expected a list"),
        (REPORTS, ("reports",), None, "body.reports: expected a list"),
        (REPORTS, ("reports", 1), 5, "body.reports[1]: expected an object"),
        (
            REPORTS,
            ("reports", 1, "price_quantums"),
            1.5,
            "body.reports[1].price_quantums: expected an integer",
        ),
        (ORACLE, ("params", "publishers"), {"0": {}}, "body.params.publishers: expected a list"),
        (
            ORACLE,
            ("params", "publishers", 0, "weight"),
            "2",
            "body.params.publishers[0].weight: expected an integer",
        ),
        (ASSET, ("params", "oracle_id"), 5, "body.params.oracle_id: expected a string"),
    ],
)
def test_wrong_types_are_rejected_with_their_path(
    command: Command, path: tuple[str | int, ...], value: object, message: str
) -> None:
    _rejects(_with(command, path, value), message)


def test_null_is_accepted_only_where_optional() -> None:
    cancel_all = CancelAll(signer=SIGNER, nonce=1, expiry_ns=2, subaccount_number=3)
    document = _document(cancel_all)
    assert document["body"]["market_id"] is None
    assert _decode(document) == cancel_all
    with_market = _with(cancel_all, ("market_id",), "BTC-PERP")
    assert _decode(with_market) == CancelAll(
        signer=SIGNER, nonce=1, expiry_ns=2, subaccount_number=3, market_id=MarketId("BTC-PERP")
    )
    no_oracle = _with(ASSET, ("params", "oracle_id"), None)
    decoded = _decode(no_oracle)
    assert isinstance(decoded, ListAsset)
    assert decoded.params.oracle_id is None
    _rejects(_with(cancel_all, ("subaccount_number",), None), "body.subaccount_number")


def test_an_empty_tuple_round_trips() -> None:
    empty = ReportPrices(signer=SIGNER, nonce=1, expiry_ns=2, reports=())
    assert decode_command(encode_command(empty)) == empty
    assert _decode(_with(REPORTS, ("reports",), [])) == empty


@pytest.mark.parametrize(
    ("kinks", "message"),
    [
        ([[60_000_000_000]], "body.params.payoff.kinks[0]: expected a list of 2"),
        ([[1, 2, 3]], "body.params.payoff.kinks[0]: expected a list of 2"),
        ([[60_000_000_000, 1], []], "body.params.payoff.kinks[1]: expected a list of 2"),
        ([60_000_000_000, 1], "body.params.payoff.kinks[0]: expected a list of 2"),
    ],
)
def test_a_fixed_length_tuple_of_the_wrong_length_is_rejected_with_its_path(
    kinks: object, message: str
) -> None:
    """``Payoff.kinks`` items are ``tuple[int, int]``: exactly two integers, nothing else."""
    option = ListMarket(
        signer=SIGNER, nonce=0, expiry_ns=2,
        params=dataclasses.replace(
            MARKET.params, market_id=MarketId("BTC-20261127-60000-C"), kind=MarketKind.OPTION,
            expiry_ns=10**18, payoff=call(60_000_000_000),
        ),
    )  # fmt: skip
    assert _decode(_document(option)) == option  # the well-formed kinks decode
    assert _document(option)["body"]["params"]["payoff"]["kinks"] == [[60_000_000_000, 1]]
    _rejects(_with(option, ("params", "payoff", "kinks"), kinks), message)


@pytest.mark.parametrize(
    ("command_type", "message"),
    [
        ("Nope", "unknown command type 'Nope'"),
        ("withdraw", "unknown command type 'withdraw'"),
        ("Command", "unknown command type 'Command'"),
        ("CommandRejected", "unknown command type 'CommandRejected'"),  # an event, not a command
        (5, "unknown command type 5"),
        (None, "unknown command type None"),
        (["Withdraw"], "unknown command type ['Withdraw']"),
    ],
)
def test_unknown_command_types_are_rejected(command_type: object, message: str) -> None:
    document = _document(WITHDRAW)
    document["type"] = command_type
    _rejects(document, message)


def test_a_body_of_another_type_is_rejected() -> None:
    document = _document(WITHDRAW)
    document["type"] = "Deposit"
    _rejects(document, "body: missing field")


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"{", b'{"type": "Withdraw", "body": }', b"\xff\xfe\xfa", b"\x80abc"],
)
def test_non_json_bytes_are_rejected(data: bytes) -> None:
    with pytest.raises(MalformedCommand, match="not JSON"):
        decode_command(data)


def test_non_finite_numbers_are_not_integers() -> None:
    text = encode_command(WITHDRAW).replace(b'"amount_quantums":5', b'"amount_quantums":NaN')
    with pytest.raises(MalformedCommand, match=re.escape("body.amount_quantums: expected an")):
        decode_command(text)


@pytest.mark.parametrize(
    "document",
    [
        [],
        "Withdraw",
        5,
        None,
        {"type": "Withdraw"},
        {"body": {}},
        {"type": "Withdraw", "body": {}, "extra": 1},
    ],
)
def test_the_envelope_needs_exactly_type_and_body(document: object) -> None:
    _rejects(document, "expected an object with 'type', 'body' and at most 'agent'")


def test_an_agent_signed_command_round_trips_with_its_agent() -> None:
    agent = Address("0x" + "cd" * 20)
    signed = AgentSigned(PLACE, agent)
    data = encode_command(signed)
    assert json.loads(data)["agent"] == agent
    assert decode_command(data) == signed
    assert decode_command(encode_command(PLACE)) == PLACE  # no agent: the command alone


@pytest.mark.parametrize("agent", [5, None, ["0x"], {"a": 1}])
def test_an_agent_that_is_not_text_is_rejected(agent: object) -> None:
    document = json.loads(encode_command(PLACE))
    _rejects({**document, "agent": agent}, "agent: expected an address")


@pytest.mark.parametrize("body", [[], "x", 5, None])
def test_a_body_that_is_not_an_object_is_rejected(body: object) -> None:
    _rejects({"type": "Withdraw", "body": body}, "body: expected an object")


@settings(max_examples=60, deadline=None)
@given(COMMANDS, st.data())
def test_any_single_field_replaced_by_a_wrong_type_is_rejected(
    command: Command, data: st.DataObject
) -> None:
    """Replace one top-level field with a value of a type it can never take: rejected, naming it."""
    document = _document(command)
    hints = field_types(type(command))
    name = data.draw(st.sampled_from(sorted(document["body"])))
    hint = hints[name]
    wrong: list[object] = [1.5, {"x": 1}]
    if hint is not bool:
        wrong.append(True)
    if typing.get_origin(hint) is not tuple:
        wrong.append([])
    document["body"][name] = data.draw(st.sampled_from(wrong))
    with pytest.raises(MalformedCommand) as raised:
        _decode(document)
    assert str(raised.value).startswith(f"body.{name}")


def test_messages_module_lists_every_command_once() -> None:
    names = [c.__name__ for c in USER_COMMANDS]
    assert len(names) == len(set(names))
    commands = {
        name
        for name, value in vars(messages).items()
        if isinstance(value, type) and issubclass(value, Command) and value is not Command
    }
    assert commands == set(names)


# ── Bounds the node reads before it decodes ───────────────────────────────────────────────


def _order_body(**fields: object) -> dict[str, Any]:
    body = {"signer": "0x" + "a" * 40, "nonce": 1, "expiry_ns": 2, "market_id": "BTC-PERP",
            "side": 1, "size_base_quantums": 10**20, **fields}  # fmt: skip
    return body


def test_integers_texts_and_lists_beyond_their_bounds_are_named_with_the_bound() -> None:
    assert plain_out_of_range(_order_body()) is None
    assert plain_out_of_range(_order_body(size_base_quantums=10**20 + 1)) == (
        "body.size_base_quantums", limits.size_base_quantums_max, "in magnitude",
    )  # fmt: skip
    assert plain_out_of_range(_order_body(market_id="X" * limits.text_length_max)) is None
    assert plain_out_of_range(_order_body(market_id="X" * 4_000_000)) == (
        "body.market_id", limits.text_length_max, "characters",
    )  # fmt: skip
    memo = "m" * limits.proposal_memo_length_max
    assert plain_out_of_range({"memo": memo, "simulation": "s" * 16_000}) is None
    assert plain_out_of_range({"memo": memo + "m"}) == (
        "body.memo", limits.proposal_memo_length_max, "characters",
    )  # fmt: skip
    nested = {"actions": [{"kind": 1, "target": "t" * 129}]}
    assert plain_out_of_range(nested) == ("body.actions[0].target", 128, "characters")


def test_a_list_too_long_is_refused_before_its_items_are_read() -> None:
    """30,000 reports where one command may carry 64: found by the list's length alone (an
    item would be an integer out of range, were it read)."""
    reports = [2**200] * 30_000
    assert plain_out_of_range({"reports": reports}) == (
        "body.reports", limits.reports_per_command_max, "items",
    )  # fmt: skip
    assert plain_out_of_range({"reports": [{"price_quantums": 1}] * 64}) is None
    assert plain_out_of_range({"other": [0] * (limits.list_length_max + 1)}) == (
        "body.other", limits.list_length_max, "items",
    )  # fmt: skip
