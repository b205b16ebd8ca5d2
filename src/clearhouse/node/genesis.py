"""A venue's genesis file: the TOML that defines a venue before its first block.

Its signing domain (EIP-712 name, version, chain id and custody contract: a signature for one
venue is worth nothing on another), its roles (operator, custody relayer, publishers), and what
it lists: oracles, assets, markets, the vault; optionally the options vault (an
``[options_vault]`` table: the operator's ``SetupOptionsVault`` after the listings); and,
optionally, who governs it afterwards (a ``[governance]`` table: the genesis block then ends
with the operator's ``SetupGovernance``, and from there on only the council's proposals list or
change parameters). Parameters are the
``core.params`` dataclasses' fields, by name, integers with their units in the name; a parameter
left out takes the dataclass's default. Governance's waits may also be written as durations
(``timelock = "48h"``) beside their ``*_ns`` fields. ``clearhouse init`` writes the default
venue's file; ``clearhouse serve --genesis FILE`` starts a venue from one. A bad file is refused
with one line naming the key, before anything is written.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from pathlib import Path
from typing import Any, TypeVar

from clearhouse.adapters.memory_journal import MemoryJournal
from clearhouse.app import signing
from clearhouse.app.chain import Chain
from clearhouse.app.toml_file import read_toml
from clearhouse.core.codec import MalformedCommand, decode_plain
from clearhouse.core.errors import ConfigError, InvalidArgument
from clearhouse.core.ids import Address, is_address
from clearhouse.core.messages import (
    Command,
    CommandRejected,
    ListAsset,
    ListMarket,
    ListOptionSeries,
    ListOracle,
    SetupGovernance,
    SetupOptionsVault,
)
from clearhouse.core.params import (
    AssetParams,
    GovernanceParams,
    MarketKind,
    MarketParams,
    OptionSeriesParams,
    OptionsVaultParams,
    OracleParams,
    VaultParams,
    VenueParams,
)
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_MS, NS_PER_SECOND
from clearhouse.node.dev import DEV_GOVERNANCE, PUBLIC_ADDRESSES, VenueRoles, dev_address
from clearhouse.sim.venue import (
    BTC_SATS,
    btc_option_series,
    btc_perp,
    genesis_commands,
    market_params,
)

DEV_CHAIN_ID = 31337
SECTIONS = (
    "domain", "roles", "governance", "venue", "vault", "oracles", "assets", "markets",
    "option_series", "options_vault",
)  # fmt: skip
_SET_UPS = ("options_vault", "governance")  # labels of the genesis commands that are no listing
PUBLISHERS_MIN = 3
_KINDS = {kind.name.lower(): kind for kind in MarketKind}
_VENUE_FIELDS = ("nonce_window_past_ns", "nonce_window_future_ns")
# Governance's waits: ``<name> = "48h"`` or ``<name>_ns = <integer>`` (GovernanceParams' field).
_WAITS = ("timelock", "execution_window", "proposal_lifetime", "phase_in", "dispute_window")
_GOVERNANCE_KEYS = ("council", "threshold", "steward", "guardian", *_WAITS,
                    *(f"{w}_ns" for w in _WAITS))  # fmt: skip
_DURATION = re.compile(r"^([0-9][0-9_]*)(ms|s|m|h|d)$")
_DAY_NS = 24 * NS_PER_HOUR
_UNIT_NS = {"ms": NS_PER_MS, "s": NS_PER_SECOND, "m": NS_PER_MINUTE, "h": NS_PER_HOUR, "d": _DAY_NS}
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Genesis:
    domain: signing.Domain
    roles: VenueRoles
    venue: VenueParams
    oracles: tuple[OracleParams, ...]
    assets: tuple[AssetParams, ...]
    # Each market with its expiry after the genesis time (``expires_after_hours``), or 0.
    markets: tuple[tuple[MarketParams, int], ...]
    # Calls and puts the venue keeps listed on an underlying (weekly and monthly expiries)
    option_series: tuple[OptionSeriesParams, ...] = ()
    governance: GovernanceParams | None = None  # None: the operator keeps listing, ungoverned
    options_vault: OptionsVaultParams | None = None  # None: the venue has no options vault

    def commands(self, genesis_ns: int) -> list[Command]:
        """The listings of block 1, by the operator, nonces counting up from the genesis time;
        then the options vault's set-up (its hedge market listed before it); then, on a
        governed venue, the hand-over to the council (after it the operator may list or set up
        nothing, so it comes last)."""
        base = {"signer": self.roles.operator, "expiry_ns": genesis_ns + NS_PER_HOUR}
        nonce = genesis_ns // NS_PER_MS
        found: list[Command] = []
        for oracle in self.oracles:
            found.append(ListOracle(**base, nonce=nonce + len(found), params=oracle))  # type: ignore[arg-type]
        for asset in self.assets:
            found.append(ListAsset(**base, nonce=nonce + len(found), params=asset))  # type: ignore[arg-type]
        for market, after_ns in self.markets:
            if after_ns:
                market = dataclasses.replace(market, expiry_ns=genesis_ns + after_ns)
            found.append(ListMarket(**base, nonce=nonce + len(found), params=market))  # type: ignore[arg-type]
        for series in self.option_series:
            found.append(ListOptionSeries(**base, nonce=nonce + len(found), params=series))  # type: ignore[arg-type]
        if self.options_vault is not None:
            found.append(SetupOptionsVault(**base, nonce=nonce + len(found),  # type: ignore[arg-type]
                                           params=self.options_vault))  # fmt: skip
        if self.governance is not None:
            found.append(setup_governance(
                self.roles.operator, self.governance, genesis_ns=genesis_ns,
                nonce=nonce + len(found),
            ))  # fmt: skip
        return found

    def labels(self) -> list[str]:
        """Each genesis command's place in the file, for a refusal's message."""
        return [
            *(f"oracles[{i}] ({o.oracle_id})" for i, o in enumerate(self.oracles)),
            *(f"assets[{i}] ({a.asset_id})" for i, a in enumerate(self.assets)),
            *(f"markets[{i}] ({m.market_id})" for i, (m, _) in enumerate(self.markets)),
            *(f"option_series[{i}] ({o.prefix})" for i, o in enumerate(self.option_series)),
            *(["options_vault"] if self.options_vault is not None else []),
            *(["governance"] if self.governance is not None else []),
        ]

    def check_listings(self, genesis_ns: int) -> None:
        """Run block 1 on a scratch chain: a listing (or a governance set-up) the engine
        refuses refuses the file."""
        chain = Chain(self.venue, MemoryJournal())
        executed = chain.produce(genesis_ns, self.commands(genesis_ns))
        labels = self.labels()
        for event in executed.events:
            if isinstance(event, CommandRejected):
                label = labels[event.index]
                what = "the set-up" if label in _SET_UPS else "the listing"
                raise ConfigError(
                    f"genesis {label}: the engine refuses {what} ({event.reason.name})"
                )


def setup_governance(
    operator: Address, params: GovernanceParams, *, genesis_ns: int, nonce: int
) -> SetupGovernance:
    """The genesis block's last command on a governed venue: the operator hands it over."""
    return SetupGovernance(
        signer=operator, nonce=nonce, expiry_ns=genesis_ns + NS_PER_HOUR, params=params
    )


def load_genesis(path: Path, now_ns: int) -> Genesis:
    """Read and check a genesis file; ConfigError names the first bad key."""
    document = read_toml(path, "genesis")
    genesis = parse_genesis(document)
    genesis.check_listings(now_ns)
    return genesis


def public_keys(genesis: Genesis) -> list[str]:
    """What in the genesis the dev node's public keys sign for (``dev.PUBLIC_ADDRESSES``: anyone
    can derive them), each as ``where address``; the dev node's own domain as ``domain``."""
    named = [("roles.operator", genesis.roles.operator),
             ("roles.custody_relayer", genesis.roles.relayer)]  # fmt: skip
    named += [(f"roles.publishers[{i}]", a) for i, a in enumerate(genesis.roles.publishers)]
    gov = genesis.governance
    if gov is not None:
        named += [(f"governance.council[{i}]", a) for i, a in enumerate(gov.council)]
        named += [(f"governance.{k}", a) for k, a in (("steward", gov.steward),
                                                      ("guardian", gov.guardian)) if a]  # fmt: skip
    found = [f"{where} {address}" for where, address in named if address in PUBLIC_ADDRESSES]
    domain = genesis.domain
    if (domain.chain_id, domain.verifying_contract) == (
        DEV_CHAIN_ID,
        dev_address("custody-contract"),
    ):
        found.append("domain (the dev node's chain id and contract)")
    return found


def parse_genesis(document: dict[str, Any]) -> Genesis:
    _known(document, SECTIONS, "")
    domain = _domain(_table(document, "domain", required=True))
    roles = _roles(_table(document, "roles", required=True))
    venue_table = _table(document, "venue")
    _known(venue_table, _VENUE_FIELDS, "venue.")
    vault = _decode(VaultParams, _table(document, "vault"), "vault")
    venue = _decode(VenueParams, {
        **venue_table, "operator": roles.operator, "custody_relayer": roles.relayer,
    }, "venue")  # fmt: skip
    venue = dataclasses.replace(venue, vault=vault)
    _problems(venue, "venue")
    oracles = tuple(
        _checked(
            _decode(OracleParams, _oracle(raw, roles, f"oracles[{i}]"), f"oracles[{i}]"),
            f"oracles[{i}]",
        )
        for i, raw in enumerate(_tables(document, "oracles"))
    )
    assets = tuple(
        _checked(_decode(AssetParams, raw, f"assets[{i}]"), f"assets[{i}]")
        for i, raw in enumerate(_tables(document, "assets"))
    )
    markets = tuple(
        _market(raw, f"markets[{i}]") for i, raw in enumerate(_tables(document, "markets"))
    )
    option_series = tuple(
        _checked(_decode(OptionSeriesParams, raw, f"option_series[{i}]"), f"option_series[{i}]")
        for i, raw in enumerate(_tables(document, "option_series"))
    )
    governance = None
    if "governance" in document:  # present but empty is refused: a council is not optional
        governance = _governance(_table(document, "governance"))
    options_vault = None
    if "options_vault" in document:  # its underlying, hedge and quote size have no default
        where = "options_vault"
        raw = _table(document, where)
        options_vault = _checked(_decode(OptionsVaultParams, raw, where), where)
    return Genesis(domain, roles, venue, oracles, assets, markets, option_series, governance,
                   options_vault)  # fmt: skip


def _domain(table: dict[str, Any]) -> signing.Domain:
    _known(table, ("name", "version", "chain_id", "verifying_contract"), "domain.")
    for key in ("chain_id", "verifying_contract"):
        if key not in table:
            raise ConfigError(f"genesis domain.{key}: missing")
    chain_id, contract = table["chain_id"], table["verifying_contract"]
    if type(chain_id) is not int:
        raise ConfigError("genesis domain.chain_id: expected an integer")
    if type(contract) is not str or not is_address(contract.lower()):
        raise ConfigError("genesis domain.verifying_contract: expected an address (0x and 40 hex)")
    name = table.get("name", signing.DOMAIN_NAME)
    version = table.get("version", signing.DOMAIN_VERSION)
    try:
        return signing.Domain(chain_id, contract.lower(), name, version)
    except InvalidArgument as error:
        raise ConfigError(f"genesis domain: {error}") from None


def _roles(table: dict[str, Any]) -> VenueRoles:
    _known(table, ("operator", "custody_relayer", "publishers"), "roles.")
    operator = _address(table.get("operator"), "roles.operator")
    relayer = _address(table.get("custody_relayer"), "roles.custody_relayer")
    publishers = table.get("publishers")
    if type(publishers) is not list or len(publishers) < PUBLISHERS_MIN:
        raise ConfigError(
            f"genesis roles.publishers: a list of at least {PUBLISHERS_MIN} addresses"
        )
    found = tuple(_address(p, f"roles.publishers[{i}]") for i, p in enumerate(publishers))
    if len(set(found)) != len(found):
        raise ConfigError("genesis roles.publishers: an address appears twice")
    return VenueRoles(operator, relayer, found)


def _governance(table: dict[str, Any]) -> GovernanceParams:
    _known(table, _GOVERNANCE_KEYS, "governance.")
    council = table.get("council")
    if type(council) is not list or not council:
        raise ConfigError("genesis governance.council: a list of addresses (the council's keys)")
    members = tuple(_address(a, f"governance.council[{i}]") for i, a in enumerate(council))
    threshold = table.get("threshold")
    if type(threshold) is not int:
        raise ConfigError("genesis governance.threshold: expected an integer (approvals needed)")
    roles = {
        role: _address(table[role], f"governance.{role}")
        for role in ("steward", "guardian") if role in table
    }  # fmt: skip
    waits = {f"{w}_ns": _wait(table, w) for w in _WAITS if w in table or f"{w}_ns" in table}
    params = GovernanceParams(council=members, threshold=threshold, **roles, **waits)  # type: ignore[arg-type]
    _problems(params, "governance")
    return params


def _wait(table: dict[str, Any], name: str) -> int:
    """A wait in nanoseconds, from ``name = "48h"`` or ``name_ns = 172_800_000_000_000``."""
    if name in table and f"{name}_ns" in table:
        raise ConfigError(f"genesis governance.{name}: give {name} or {name}_ns, not both")
    if f"{name}_ns" in table:
        value = table[f"{name}_ns"]
        if type(value) is not int:
            raise ConfigError(f"genesis governance.{name}_ns: expected an integer")
        return value
    found = _DURATION.match(table[name]) if type(table[name]) is str else None
    if found is None:
        raise ConfigError(f'genesis governance.{name}: a duration such as "48h" (a whole '
                          "number and ms, s, m, h or d)")  # fmt: skip
    return int(found[1]) * _UNIT_NS[found[2]]


def duration_text(ns: int) -> str:
    """A wait as the genesis file writes it: ``"14d"``, ``"48h"``, ``"90m"`` (whole units)."""
    if ns % _DAY_NS == 0 and ns >= 7 * _DAY_NS:
        return f"{ns // _DAY_NS}d"
    for unit in ("h", "m", "s", "ms"):
        if ns % _UNIT_NS[unit] == 0:
            return f"{ns // _UNIT_NS[unit]}{unit}"
    return f"{ns}ns"


def _oracle(raw: dict[str, Any], roles: VenueRoles, where: str) -> dict[str, Any]:
    """Publishers default to the venue's; each may be an address or {address, weight}."""
    listed = raw.get("publishers", list(roles.publishers))
    if type(listed) is not list:
        raise ConfigError(f"genesis {where}.publishers: expected a list")
    publishers = []
    for i, item in enumerate(listed):
        entry = {"address": item} if type(item) is str else item
        if type(entry) is dict and "address" in entry:
            entry = {**entry, "address": _address(entry["address"], f"{where}.publishers[{i}]")}
        publishers.append(entry)
    return {**raw, "publishers": publishers}


def _market(raw: dict[str, Any], where: str) -> tuple[MarketParams, int]:
    table = dict(raw)
    kind = table.get("kind")
    if kind not in _KINDS:
        raise ConfigError(f"genesis {where}.kind: one of {', '.join(_KINDS)}")
    table["kind"] = int(_KINDS[kind])
    after_ns = 0
    if "expires_after_hours" in table:
        hours = table.pop("expires_after_hours")
        if type(hours) is not int or hours <= 0:
            raise ConfigError(f"genesis {where}.expires_after_hours: a positive integer")
        after_ns = hours * NS_PER_HOUR
    if "expiry" in table:
        when = table.pop("expiry")
        if not isinstance(when, datetime) or when.tzinfo is None:
            raise ConfigError(f"genesis {where}.expiry: a date and time with its offset, "
                              "e.g. 2026-03-27T08:00:00Z")  # fmt: skip
        table["expiry_ns"] = int(when.timestamp()) * NS_PER_SECOND
    if after_ns and "expiry_ns" in table:
        raise ConfigError(f"genesis {where}: give expires_after_hours or expiry, not both")
    market = _decode(MarketParams, table, where)
    # A relative expiry is checked at a stand-in genesis time (one hour per hour after 0).
    _problems(dataclasses.replace(market, expiry_ns=after_ns) if after_ns else market, where)
    return market, after_ns


def _decode(kind: type[_T], raw: dict[str, Any], where: str) -> _T:
    try:
        found = decode_plain(kind, raw)
    except MalformedCommand as error:  # "MarketParams.margin.x: expected an integer"
        raise ConfigError(f"genesis {where}{str(error).removeprefix(kind.__name__)}") from None
    assert isinstance(found, kind)
    return found


def _checked(params: _T, where: str) -> _T:
    _problems(params, where)
    return params


def _problems(params: object, where: str) -> None:
    problems = params.problems()  # type: ignore[attr-defined]
    if problems:
        raise ConfigError(f"genesis {where}: {problems[0]}")


def _address(value: object, where: str) -> Address:
    if type(value) is not str or not is_address(value.lower()):
        raise ConfigError(f"genesis {where}: expected an address (0x and 40 hex digits)")
    return Address(value.lower())


def _table(document: dict[str, Any], key: str, *, required: bool = False) -> dict[str, Any]:
    if key not in document:
        if required:
            raise ConfigError(f"genesis [{key}]: missing")
        return {}
    value = document[key]
    if type(value) is not dict:
        raise ConfigError(f"genesis {key}: expected a table [{key}]")
    return value


def _tables(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = document.get(key, [])
    if type(value) is not list or not all(type(v) is dict for v in value):
        raise ConfigError(f"genesis {key}: expected tables [[{key}]]")
    return value


def _indexed(document: dict[str, Any], key: str) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{key}[{i}]", raw) for i, raw in enumerate(_tables(document, key))]


def _known(table: dict[str, Any], names: Sequence[str], prefix: str) -> None:
    unknown = sorted(set(table) - set(names))
    if unknown:
        raise ConfigError(f"genesis {prefix}{unknown[0]}: unknown key")


# ── Writing the default venue's file (``clearhouse init``) ──────────────────────────────────

FRESH_KEYS_NOTE = """\
# Its roles' keys are fresh, made by `clearhouse init` in KEYS_FILE (readable by its owner
# only): keep them secret, or put addresses of keys you hold in their place. The domain's
# verifying_contract is a placeholder unique to this venue until its custody contract is
# deployed: set chain_id and verifying_contract to that contract's then.
"""
DEV_KEYS_NOTE = """\
# Its domain and roles are the dev node's, whose keys anyone can derive: a node serves this
# file only with `--public-keys` (a throwaway venue). `clearhouse init` writes one with fresh keys.
"""

HEADER = """\
# A Clearhouse venue's genesis file: read once, when `clearhouse serve --genesis FILE` starts
# a new venue (a journal that already has a venue keeps it).
#
# Parameters are those of clearhouse.core.params, by field name: integers, with their units in
# the name (_ns nanoseconds, _ppm parts per million, _quantums the asset's smallest unit).
# A parameter left out takes its default; an unknown key is refused. This file describes the
# default venue: BTC and ETH perpetuals, a BTC future, USDC as the quote asset.
#
"""


def fresh_roles(publishers: int = 4) -> tuple[VenueRoles, str, str]:
    """New keys for a venue's roles, from the operating system's randomness: the roles, a
    placeholder custody contract address unique to the venue (its domain), and the keys as a
    TOML document to keep secret."""
    from eth_account import Account

    operator, relayer, *feeds = (Account.create() for _ in range(2 + publishers))
    roles = VenueRoles(
        Address(operator.address.lower()), Address(relayer.address.lower()),
        tuple(Address(feed.address.lower()) for feed in feeds),
    )  # fmt: skip
    contract = Account.create().address.lower()
    lines = [
        "# The private keys of a Clearhouse venue's roles, made by `clearhouse init`: whoever",
        "# holds one signs as that role (the custody relayer's credits deposits). Keep it secret.",
        "[keys]",
        f"operator = {_toml('0x' + operator.key.hex().removeprefix('0x'))}",
        f"custody_relayer = {_toml('0x' + relayer.key.hex().removeprefix('0x'))}",
        "publishers = [",
        *(f"    {_toml('0x' + feed.key.hex().removeprefix('0x'))}," for feed in feeds),
        "]",
    ]
    return roles, contract, "\n".join(lines) + "\n"


def default_genesis_text(
    genesis_ns: int, roles: VenueRoles | None = None, verifying_contract: str | None = None,
    keys_file: str = "its keys file",
) -> str:  # fmt: skip
    """The default venue (the dev node's markets) as a commented file, for ``roles`` in a domain
    on ``verifying_contract``: by default the dev node's, whose keys are public (a node serves
    such a file only with ``--public-keys``; ``clearhouse init`` writes fresh ones)."""
    from clearhouse.node.dev import DEV_ROLES

    roles = roles or DEV_ROLES
    contract = verifying_contract or dev_address("custody-contract")
    spec = roles.spec(genesis_ns)
    note = DEV_KEYS_NOTE if roles is DEV_ROLES else FRESH_KEYS_NOTE.replace("KEYS_FILE", keys_file)
    lines = [HEADER + note]
    lines += [
        "# EIP-712 signing domain: a command signed for another domain is refused.",
        "[domain]",
        f"name = {_toml(signing.DOMAIN_NAME)}",
        f"version = {_toml(signing.DOMAIN_VERSION)}",
        f"chain_id = {DEV_CHAIN_ID}",
        "# the custody contract (SPEC §14)",
        f"verifying_contract = {_toml(contract)}",
        "",
        "# The operator lists markets; the custody relayer credits deposits; publishers report",
        "# prices (at least three; each oracle takes them all unless it lists its own).",
        "[roles]",
        f"operator = {_toml(roles.operator)}",
        f"custody_relayer = {_toml(roles.relayer)}",
        "publishers = [",
        *(f"    {_toml(p)}," for p in roles.publishers),
        "]",
        "",
        *_governance_example(),
        "",
        "# Nonce window (SPEC §3), defaults shown:",
        "# [venue]",
        *(
            f"# {f.name} = {_toml(f.default)}"
            for f in dataclasses.fields(VenueParams)
            if f.name in _VENUE_FIELDS
        ),
        "",
        "# The market-making vault (SPEC §11): inert until someone deposits.",
        "[vault]",
        *_fields(spec.venue.vault, skip=("markets",)),
    ]
    for vault_market in spec.venue.vault.markets:
        lines += ["", "[[vault.markets]]", *_fields(vault_market)]
    commands = genesis_commands(spec)
    lines += ["", "# Oracles, in listing order: rate feeds before the oracles quoting in them."]
    for command in commands:
        if isinstance(command, ListOracle):
            lines += ["[[oracles]]", *_fields(command.params, skip=("publishers",)), ""]
    lines += ["# Collateral assets: the quote asset (no oracle) first."]
    for command in commands:
        if isinstance(command, ListAsset):
            lines += ["[[assets]]", *_fields(command.params), ""]
    lines += [
        "# Markets. kind: perpetual, future or option; a dated market expires",
        "# `expires_after_hours` after the genesis, or at `expiry` (2026-03-27T08:00:00Z).",
    ]
    for market in market_params(spec):
        lines += ["[[markets]]", *_fields(market, genesis_ns=genesis_ns)]
        for nested in ("margin", "funding", "liquidation"):
            body = _fields(getattr(market, nested))
            if body:
                lines += [f"[markets.{nested}]", *body]
        lines.append("")
    lines += [
        "# Option series: calls and puts kept listed on an underlying without a vote, the next",
        "# weekly and monthly expiries, strikes around the index when an expiry is first listed.",
    ]
    listed = [c.params for c in commands if isinstance(c, ListOptionSeries)]
    for series in listed or [btc_option_series()]:  # the default venue lists none: an example
        table = ["[[option_series]]", *_fields(series)]
        liquidation = _fields(series.liquidation)
        if liquidation:
            table += ["[option_series.liquidation]", *liquidation]
        lines += [line if listed else f"# {line}" for line in table]
        lines.append("")
    lines += _options_vault_example()
    return "\n".join(lines).rstrip() + "\n"


def _options_vault_example() -> list[str]:
    """The ``[options_vault]`` table, commented out: quoting BTC options, hedged on BTC-PERP,
    0.1 BTC a side, the other parameters at their defaults."""
    hedge = btc_perp()
    example = OptionsVaultParams(oracle_id=hedge.oracle_id, hedge_market_id=hedge.market_id,
                                 quote_size_base_quantums=BTC_SATS // 10)  # fmt: skip
    table = [
        "[options_vault]",
        *(f"{f.name} = {_toml(getattr(example, f.name))}" for f in dataclasses.fields(example)),
    ]
    return [
        "# The options vault (SPEC §11, the options AMM), optional: an LP vault quoting every",
        "# option on one underlying around its mark, delta-hedged on a perpetual of it, each",
        "# exposure capped at a share of its NAV; depositors buy shares at NAV and redeem them",
        "# `lockup_ns` after their last deposit. Without this table the venue has none (a",
        "# deposit is refused with OPTIONS_VAULT_NOT_SET_UP). The defaults are shown.",
        *(f"# {line}" for line in table),
    ]


def _governance_example() -> list[str]:
    """The ``[governance]`` table, commented out: the dev council's keys, the default waits."""
    gov = DEV_GOVERNANCE
    defaults = GovernanceParams(council=gov.council, threshold=gov.threshold)
    table = [
        "[governance]",
        "council = [",
        *(f"    {_toml(a)}," for a in gov.council),
        "]",
        f"threshold = {gov.threshold}",
        f"steward = {_toml(gov.steward)}",
        f"guardian = {_toml(gov.guardian)}",
        *(f"{w} = {_toml(duration_text(getattr(defaults, f'{w}_ns')))}" for w in _WAITS),
    ]
    return [
        "# Governance (SPEC §10), optional: the council approves a proposal `threshold` of N, and",
        "# it waits out the timelock before anyone may execute it; the risk steward moves a",
        "# parameter one step per cooldown without it; the guardian only reduces risk (steward and",
        "# guardian are optional). The genesis block ends by handing the venue over: from then on",
        "# the operator lists nothing, only proposals do. Waits are durations (a whole number and",
        "# ms, s, m, h or d) or <name>_ns in nanoseconds; the defaults are shown.",
        *(f"# {line}" for line in table),
    ]


def _fields(params: object, *, skip: Sequence[str] = (), genesis_ns: int = 0) -> list[str]:
    """``key = value`` for each field not at its default (nested parameter tables aside)."""
    lines = []
    for field in dataclasses.fields(params):  # type: ignore[arg-type]
        value = getattr(params, field.name)
        if field.name in skip or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
            continue
        default = (
            field.default if field.default is not dataclasses.MISSING
            else field.default_factory() if field.default_factory is not dataclasses.MISSING
            else dataclasses.MISSING
        )  # fmt: skip
        if value == default:
            continue
        if field.name == "expiry_ns" and genesis_ns and (value - genesis_ns) % NS_PER_HOUR == 0:
            lines.append(f"expires_after_hours = {(value - genesis_ns) // NS_PER_HOUR}")
        elif isinstance(value, MarketKind):
            lines.append(f"kind = {_toml(value.name.lower())}")
        else:
            lines.append(f"{field.name} = {_toml(value)}")
    return lines


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, IntEnum):
        return str(int(value))
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = (f"{f.name} = {_toml(getattr(value, f.name))}" for f in dataclasses.fields(value))
        return "{ " + ", ".join(items) + " }"
    raise AssertionError(f"no TOML for {value!r}")
