"""EIP-712 typed data for every Clearhouse command (SPEC §3), outside the core.

Each command class is an EIP-712 struct named after it, its fields in declaration order, typed
from the dataclass: addresses `address`, integers `int256`, ids and other text `string`,
booleans `bool`, enums `int8`, nested parameter dataclasses structs of their own, tuples
dynamic arrays, and an optional value an array of zero or one element (EIP-712 has no
optional). The domain is `EIP712Domain(string name,string version,uint256 chainId,address
verifyingContract)`, with name "Clearhouse" and the custody contract of §14 as the verifying
contract: a signature for another chain or another venue recovers to another address.

`struct_hash` and `digest` implement EIP-712's hashStruct and signing hash directly (a command's
type hash is computed once): this is the verification path, checked against the EIP's own
vectors and against eth-account's `encode_typed_data`. `typed_data` gives the JSON a wallet
signs (`eth_account.Account.sign_typed_data(key, full_message=...)` or `eth_signTypedData_v4`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from typing import Any

from eth_keys.datatypes import Signature

from clearhouse.core import messages
from clearhouse.core.codec import field_types
from clearhouse.core.errors import InvalidArgument
from clearhouse.core.hashing import keccak
from clearhouse.core.ids import Address, is_address

DOMAIN_NAME = "Clearhouse"
DOMAIN_VERSION = "1"
DOMAIN_FIELDS = (
    ("name", "string"), ("version", "string"), ("chainId", "uint256"),
    ("verifyingContract", "address"),
)  # fmt: skip
StructTypes = Mapping[str, Sequence[Mapping[str, str]]]
SECP256K1_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


class BadSignature(InvalidArgument):
    code = "BAD_SIGNATURE"


@dataclass(frozen=True, slots=True)
class Domain:
    chain_id: int
    verifying_contract: str  # the custody contract (§14), 0x + 40 lower-case hex digits
    name: str = DOMAIN_NAME
    version: str = DOMAIN_VERSION

    def __post_init__(self) -> None:
        for what, text in (("name", self.name), ("version", self.version)):
            if type(text) is not str or not text or len(text) > 64 or not text.isprintable():
                raise InvalidArgument(f"domain {what} {text!r}: 1 to 64 printable characters")
        if type(self.chain_id) is not int or not 0 < self.chain_id < 2**256:
            raise InvalidArgument(f"chain id {self.chain_id!r}: a positive uint256")
        if not is_address(self.verifying_contract):
            raise InvalidArgument(f"verifying contract {self.verifying_contract!r}: an address")

    def as_message(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }  # fmt: skip

    @property
    def separator(self) -> bytes:
        return _domain_separator(
            self.chain_id, self.verifying_contract.lower(), self.name, self.version
        )


# ── EIP-712, generic: hashStruct over a types table ──────────────────────────────────────────


def encode_type(struct_types: StructTypes, primary: str) -> str:
    """`Name(type name,...)` followed by every struct it references, sorted by name."""
    referenced = sorted(_dependencies(struct_types, primary) - {primary})
    return "".join(_one_type(struct_types, name) for name in [primary, *referenced])


def type_hash(struct_types: StructTypes, primary: str) -> bytes:
    return keccak(encode_type(struct_types, primary).encode())


def hash_struct(struct_types: StructTypes, primary: str, data: Mapping[str, Any]) -> bytes:
    return keccak(encode_data(struct_types, primary, data))


def encode_data(struct_types: StructTypes, primary: str, data: Mapping[str, Any]) -> bytes:
    """typeHash ‖ one 32-byte word per member (EIP-712 `encodeData`, with the type hash)."""
    cache_key = (id(struct_types), primary)
    known = _TYPE_HASHES.get(cache_key) if id(struct_types) in _FROZEN_TABLES else None
    if known is None:
        known = type_hash(struct_types, primary)
        if id(struct_types) in _FROZEN_TABLES:
            _TYPE_HASHES[cache_key] = known
    words = [known]
    for member in struct_types[primary]:
        words.append(_encode_value(struct_types, member["type"], data.get(member["name"])))
    return b"".join(words)


def _one_type(struct_types: StructTypes, name: str) -> str:
    members = ",".join(f"{m['type']} {m['name']}" for m in struct_types[name])
    return f"{name}({members})"


def _dependencies(struct_types: StructTypes, name: str, found: set[str] | None = None) -> set[str]:
    found = set() if found is None else found
    if name in found or name not in struct_types:
        return found
    found.add(name)
    for member in struct_types[name]:
        _dependencies(struct_types, _base_type(member["type"]), found)
    return found


def _base_type(kind: str) -> str:
    return kind.split("[", 1)[0]


def _encode_value(struct_types: StructTypes, kind: str, value: Any) -> bytes:
    if kind.endswith("]"):
        inner = kind[: kind.rindex("[")]
        items = [] if value is None else list(value)
        return keccak(b"".join(_encode_value(struct_types, inner, v) for v in items))
    if kind in struct_types:
        if value is None:
            return bytes(32)
        return hash_struct(struct_types, kind, value)
    if kind == "string":
        return keccak(str(value).encode())
    if kind == "bytes":
        return keccak(_as_bytes(value))
    if kind == "address":
        return bytes(12) + _as_bytes(value).rjust(20, b"\0")[-20:]
    if kind == "bool":
        return _word(int(bool(value)), signed=False)
    if kind.startswith("bytes"):
        return _as_bytes(value).ljust(32, b"\0")
    if kind.startswith(("uint", "int")):
        return _word(_as_int(value), signed=kind.startswith("int"))
    raise InvalidArgument(f"unsupported EIP-712 type {kind!r}")


def _word(value: int, *, signed: bool) -> bytes:
    if not signed and value < 0:
        raise InvalidArgument(f"negative value {value} for an unsigned type")
    try:
        return value.to_bytes(32, "big", signed=signed)
    except OverflowError:
        raise InvalidArgument(f"{value} does not fit in 256 bits") from None


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        return int(value, 16) if value.startswith(("0x", "0X")) else int(value)
    return int(value)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x").removeprefix("0X"))
    if isinstance(value, int):
        return value.to_bytes(32, "big")
    raise InvalidArgument(f"not bytes: {value!r}")


@cache
def _domain_separator(chain_id: int, verifying_contract: str, name: str, version: str) -> bytes:
    domain_types = {"EIP712Domain": [{"name": n, "type": t} for n, t in DOMAIN_FIELDS]}
    message = Domain(chain_id, verifying_contract, name, version).as_message()
    return hash_struct(domain_types, "EIP712Domain", message)


# ── Commands as EIP-712 structs ──────────────────────────────────────────────────────────────


def command_types(command_type: type[messages.Command]) -> dict[str, list[dict[str, str]]]:
    """The EIP-712 types table of a command class and the structs it contains."""
    found = _TYPES.get(command_type)
    if found is None:
        found = {}
        _add_struct(command_type, found)
        _TYPES[command_type] = found
        _FROZEN_TABLES.add(id(found))
    return found


_TYPES: dict[type[messages.Command], dict[str, list[dict[str, str]]]] = {}
# The command tables above are built once and never changed: their type hashes are cached.
_FROZEN_TABLES: set[int] = set()
_TYPE_HASHES: dict[tuple[int, str], bytes] = {}


def _add_struct(cls: type, table: dict[str, list[dict[str, str]]]) -> None:
    if cls.__name__ in table:
        return
    table[cls.__name__] = []  # placeholder against recursion
    hints = field_types(cls)
    members = []
    for field in dataclasses.fields(cls):
        members.append({"name": field.name, "type": _eip712_type(hints[field.name], table)})
    table[cls.__name__] = members


def _eip712_type(hint: Any, table: dict[str, list[dict[str, str]]]) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return f"{_eip712_type(inner, table)}[]"  # optional: zero or one element
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"{_eip712_type(args[0], table)}[]"
        return f"{_eip712_type(args[0], table)}[{len(args)}]"
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:  # a NewType
        return "address" if hint.__name__ == "Address" else _eip712_type(supertype, table)
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        return "int8"
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        _add_struct(hint, table)
        return hint.__name__
    return {bool: "bool", int: "int256", str: "string"}[hint]


def command_message(command: messages.Command) -> dict[str, Any]:
    """The command as an EIP-712 message: plain values, optionals as lists of 0 or 1."""
    message: dict[str, Any] = _plain(command)
    return message


def _plain(value: Any) -> Any:
    if isinstance(value, IntEnum):
        return int(value)
    if isinstance(value, str | int):
        return value
    fields = _fields(type(value))
    if fields is not None:
        plain = {}
        for name, optional, address in fields:
            inner = _plain(getattr(value, name))
            if address and not is_address(inner):
                # One spelling per address: bytes.fromhex would take any case or padding,
                # and a rewritten copy of a signed command would still verify.
                raise InvalidArgument(f"{name}: {inner!r} is not 0x + 40 lower-case hex digits")
            plain[name] = ([] if inner is None else [inner]) if optional else inner
        return plain
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


_FIELDS: dict[type, tuple[tuple[str, bool, bool], ...] | None] = {}


def _fields(cls: type) -> tuple[tuple[str, bool, bool], ...] | None:
    """(name, optional, an address) per field of a dataclass, once per class (None: not one)."""
    if cls not in _FIELDS:
        if not dataclasses.is_dataclass(cls):
            _FIELDS[cls] = None
        else:
            hints = field_types(cls)
            _FIELDS[cls] = tuple(
                (
                    f.name,
                    typing.get_origin(hints[f.name]) in (typing.Union, types.UnionType),
                    hints[f.name] is Address,
                )
                for f in dataclasses.fields(cls)
            )
    return _FIELDS[cls]


def typed_data(command: messages.Command, domain: Domain) -> dict[str, Any]:
    """The full EIP-712 document a wallet signs (eth_signTypedData_v4's JSON)."""
    name = type(command).__name__
    table = {"EIP712Domain": [{"name": n, "type": t} for n, t in DOMAIN_FIELDS]}
    for struct, members in command_types(type(command)).items():  # copies: the cache stays
        table[struct] = [dict(member) for member in members]
    return {
        "types": table, "primaryType": name, "domain": domain.as_message(),
        "message": command_message(command),
    }  # fmt: skip


def digest(command: messages.Command, domain: Domain) -> bytes:
    """keccak(0x19 0x01 ‖ domainSeparator ‖ hashStruct(command)): what is signed."""
    table = command_types(type(command))
    struct = hash_struct(table, type(command).__name__, command_message(command))
    return keccak(b"\x19\x01" + domain.separator + struct)


def recover(command: messages.Command, signature: bytes, domain: Domain) -> str:
    """The address whose key made ``signature`` (65 bytes r ‖ s ‖ v, v in {27, 28} or {0, 1})
    over this command in this domain. Raises ``BadSignature`` if it is not one."""
    if not isinstance(signature, bytes | bytearray | memoryview):
        raise BadSignature("a signature is 65 bytes: r, s, v")
    signature = bytes(signature)
    if len(signature) != 65:
        raise BadSignature("a signature is 65 bytes: r, s, v")
    v = signature[64]
    v = v - 27 if v >= 27 else v
    if v not in (0, 1):
        raise BadSignature("v must be 27 or 28 (or 0 or 1)")
    if int.from_bytes(signature[32:64], "big") > SECP256K1_HALF_ORDER:
        raise BadSignature("s is in the upper half of the curve order (EIP-2: malleable)")
    message_hash = digest(command, domain)  # a malformed command raises InvalidArgument
    try:
        public = Signature(signature[:64] + bytes([v])).recover_public_key_from_msg_hash(
            message_hash
        )
    except Exception as error:  # eth-keys raises several types for malformed r, s
        raise BadSignature(f"no key recovers from this signature: {error}") from None
    return "0x" + public.to_canonical_address().hex()


def authenticate(
    command: messages.Command, signature: bytes, domain: Domain
) -> messages.Command | messages.AgentSigned:
    """What the core sees: the command itself if its account's key signed it, else the command
    with the agent key that did (the core checks that agent's authorization when it applies)."""
    key = recover(command, signature, domain)
    if key == command.signer:
        return command
    return messages.AgentSigned(command, Address(key))


def authenticate_batch(
    items: Sequence[tuple[messages.Command, bytes]], domain: Domain,
    executor: Executor | None = None, chunk: int = 256,
) -> list[messages.Command | messages.AgentSigned | InvalidArgument]:  # fmt: skip
    """Authenticate many commands, in parallel on ``executor`` (a process pool: recovery is CPU
    bound) when given; a bad signature or malformed command is returned in its slot."""
    if executor is None:
        return [_authenticate_one(item, domain) for item in items]
    return list(executor.map(_authenticate_one, items, [domain] * len(items), chunksize=chunk))


def _authenticate_one(
    item: tuple[messages.Command, bytes], domain: Domain
) -> messages.Command | messages.AgentSigned | InvalidArgument:
    try:
        return authenticate(item[0], item[1], domain)
    except InvalidArgument as error:  # a bad signature, or a malformed command
        return error
