"""Development venue: well-known keys, the default markets, and a synthetic price feed.

The keys here are derived from fixed strings and printed in the docs: anyone can sign with them.
They exist so that `clearhouse serve --dev` is a whole venue on one machine (its own oracle
publishers and a custody relayer behind the faucet) and a governed one: a council of three dev
keys (two to approve), a risk steward and a guardian, with the shortest timelock the engine
allows (1 h), so that a proposal can be tried from start to end. A production node lists its own
addresses.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from eth_account import Account

from clearhouse.core.hashing import keccak
from clearhouse.core.ids import Address, AssetId, OracleId
from clearhouse.core.messages import Command, Deposit, PriceReport, ReportPrices
from clearhouse.core.params import GovernanceParams
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MS, NS_PER_SECOND
from clearhouse.sim.venue import USDC, USDT_USD, VenueSpec

DEV_PUBLISHERS = 4
COMMAND_TTL_NS = 60 * NS_PER_SECOND
START_PRICES_USD = {OracleId("BTC-USD"): 60_000.0, OracleId("ETH-USD"): 3_000.0}
ANNUAL_VOLATILITY = 0.6
YEAR_NS = 365 * 24 * NS_PER_HOUR


def dev_key(name: str) -> bytes:
    """A private key anyone can re-derive: ``keccak("clearhouse-dev/" + name)``."""
    return keccak(b"clearhouse-dev/" + name.encode())


def dev_address(name: str) -> Address:
    return Address(Account.from_key(dev_key(name)).address.lower())


@dataclass(frozen=True, slots=True)
class VenueRoles:
    """Who lists markets (operator), credits deposits (the custody relayer) and reports prices
    (publishers): fixed at genesis."""

    operator: Address
    relayer: Address
    publishers: tuple[Address, ...]

    def spec(self, genesis_ns: int) -> VenueSpec:
        """The default markets (BTC and ETH perpetuals, a 30-day BTC future) for these roles."""
        return VenueSpec(
            genesis_ns=genesis_ns, future_expiry_ns=genesis_ns + 30 * 24 * NS_PER_HOUR,
            publishers=self.publishers, operator=self.operator, relayer=self.relayer,
        )  # fmt: skip


DEV_ROLES = VenueRoles(
    operator=dev_address("operator"),
    relayer=dev_address("custody-relayer"),
    publishers=tuple(dev_address(f"publisher-{i}") for i in range(DEV_PUBLISHERS)),
)


# ``dev_key(name)`` signs for each: ``council-0``, ``council-1``, ``council-2``, ``steward``,
# ``guardian`` (``clearhouse-dev/council-0`` and so on, hashed).
DEV_COUNCIL = tuple(f"council-{i}" for i in range(3))
DEV_GOVERNANCE = GovernanceParams(
    council=tuple(sorted(dev_address(name) for name in DEV_COUNCIL)),
    threshold=2,
    steward=dev_address("steward"),
    guardian=dev_address("guardian"),
    timelock_ns=NS_PER_HOUR,  # the engine's minimum: long enough to cancel, short enough to try
)


# Every address whose key the dev node derives for a role or its domain: a venue that names one
# can be signed for by anyone (``genesis.public_keys``).
PUBLIC_ADDRESSES = frozenset({
    DEV_ROLES.operator, DEV_ROLES.relayer, *DEV_ROLES.publishers, *DEV_GOVERNANCE.council,
    dev_address("steward"), dev_address("guardian"), dev_address("custody-contract"),
})  # fmt: skip


def dev_venue(genesis_ns: int) -> VenueSpec:
    return DEV_ROLES.spec(genesis_ns)


@dataclass(slots=True)
class NonceClock:
    """Millisecond nonces, strictly increasing even within one millisecond."""

    last: int = 0

    def next(self, now_ns: int) -> int:
        self.last = max(self.last + 1, now_ns // NS_PER_MS)
        return self.last


@dataclass(slots=True)
class DevFeed:
    """The dev venue's own publishers: a seeded random walk per index, reported by each
    publisher with a little noise, as real publishers disagree slightly."""

    spec: VenueSpec
    seed: int = 1
    prices: dict[OracleId, float] = field(default_factory=lambda: dict(START_PRICES_USD))
    last_ns: int = 0
    _rng: random.Random = field(init=False)
    _nonces: dict[Address, NonceClock] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def reports(self, now_ns: int) -> list[Command]:
        elapsed = max(0, now_ns - self.last_ns) if self.last_ns else NS_PER_SECOND
        self.last_ns = now_ns
        scale = ANNUAL_VOLATILITY * math.sqrt(min(elapsed, NS_PER_HOUR) / YEAR_NS)
        for oracle_id, price in self.prices.items():
            self.prices[oracle_id] = price * math.exp(self._rng.gauss(0.0, scale))
        commands: list[Command] = []
        for publisher in self.spec.publishers:
            nonce = self._nonces.setdefault(publisher, NonceClock()).next(now_ns)
            rate = PriceReport(  # USDT-USD, the venue's USDT rate feed: at par in the dev venue
                oracle_id=USDT_USD, price_quantums=USDC, confidence_quantums=0,
                timestamp_ns=now_ns,
            )  # fmt: skip
            reports = (rate, *(
                PriceReport(
                    oracle_id=oracle_id,
                    price_quantums=round(price * (1 + self._rng.gauss(0.0, 0.0002)) * USDC),
                    confidence_quantums=round(price * 0.0005 * USDC),
                    timestamp_ns=now_ns,
                )
                for oracle_id, price in sorted(self.prices.items())
            ))  # fmt: skip
            commands.append(
                ReportPrices(
                    signer=publisher,
                    nonce=nonce,
                    expiry_ns=now_ns + COMMAND_TTL_NS,
                    reports=reports,
                )
            )
        return commands


@dataclass(slots=True)
class Faucet:
    """Deposits made up by the dev relayer: ``--dev`` only."""

    relayer: Address
    nonces: NonceClock = field(default_factory=NonceClock)

    def deposit(
        self, now_ns: int, deposit_id: int, owner: Address, subaccount_number: int, usdc: int
    ) -> Deposit:
        return Deposit(
            signer=self.relayer, nonce=self.nonces.next(now_ns),
            expiry_ns=now_ns + COMMAND_TTL_NS, deposit_id=deposit_id, owner=owner,
            subaccount_number=subaccount_number, asset_id=AssetId("USDC"),
            amount_quantums=usdc * USDC,
        )  # fmt: skip
