"""The parameter registry of SPEC §10 and its rules, as pure functions (the behaviour is
``core/engine/governance.py``).

Every governed parameter has hard bounds, a maximum change per step and a cooldown, as Aave's
risk stewards have; and a direction: which way of moving it reduces risk. The rules:

* every change, by anyone, stays inside the hard bounds (a new build is the only way past them);
* a change that does not reduce risk (a *loosening*) moves at most one step, and only once the
  parameter's cooldown has run since its last change, whoever proposes it: no vote loosens a
  bound faster than its cooldown (Venus raised a collateral factor past safety in one vote);
* the risk steward moves a parameter by at most one step per cooldown, either way;
* the guardian only tightens;
* a margin increase reaches existing positions in steps over the phase-in, so that no account
  healthy when the change was decided becomes liquidatable at once (new risk pays it at once).

Bounds are code, not state: the registry below is the one place they live.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

from clearhouse.core import limits
from clearhouse.core.errors import RejectReason
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND, PPM_ONE, div_floor

DAY_NS = 24 * NS_PER_HOUR
T = TypeVar("T")
UNLIMITED = 2**256  # how a cap of 0 (no cap) compares with others


class Scope(IntEnum):
    MARKET = 1  # target: a market id; the field of its MarketParams
    ORACLE = 2  # target: an oracle id; OracleParams
    ASSET = 3  # target: an asset id; AssetParams
    VAULT = 4  # target: ""; VaultParams
    GOVERNANCE = 5  # target: ""; GovernanceParams (council proposals only)


class Role(IntEnum):
    COUNCIL = 1  # an executed proposal
    STEWARD = 2
    GUARDIAN = 3


class ProposalStatus(IntEnum):
    PENDING = 1  # collecting approvals
    QUEUED = 2  # approved: waiting out its timelock
    EXECUTED = 3
    CANCELLED = 4
    EXPIRED = 5  # not queued within its lifetime, or not executed within its window


@dataclass(frozen=True, slots=True)
class Governed:
    """One governed parameter: ``name`` is its scope and its field path (``market.margin.
    initial_margin_ppm``). One step moves it by at most max(step, |value| × step_ppm / 10⁶)."""

    name: str
    lower: int
    upper: int
    step: int
    step_ppm: int = 0
    cooldown_ns: int = DAY_NS
    safer: int = 0  # +1: raising it reduces risk; -1: lowering it does; 0: neither way
    zero_unlimited: bool = False  # 0 means "no cap": looser than any other value

    @property
    def scope(self) -> Scope:
        return Scope[self.name.split(".", 1)[0].upper()]

    @property
    def path(self) -> str:
        return self.name.split(".", 1)[1]

    def max_step(self, current: int) -> int:
        return max(self.step, abs(current) * self.step_ppm // PPM_ONE)

    def tightens(self, current: int, new: int) -> bool:
        """Whether moving from ``current`` to ``new`` reduces risk."""
        before, after = self._ordered(current), self._ordered(new)
        return (self.safer > 0 and after > before) or (self.safer < 0 and after < before)

    def _ordered(self, value: int) -> int:
        return UNLIMITED if self.zero_unlimited and value == 0 else value


_PPM = PPM_ONE
_QUANTUMS_MAX = limits.amount_quantums_max
_SIZE_MAX = limits.size_base_quantums_max

REGISTRY: dict[str, Governed] = {
    g.name: g
    for g in (
        # Margins and their tiers (SPEC §6): higher is safer.
        Governed("market.margin.initial_margin_ppm", 5_000, 500_000, 25_000, safer=+1),
        Governed("market.margin.maintenance_share_ppm", 500_000, 900_000, 50_000, safer=+1),
        Governed("market.margin.oi_lower_quote_quantums", 10**9, 2 * 10**18, 0, 500_000, safer=-1),
        Governed("market.margin.oi_upper_quote_quantums", 10**9, 4 * 10**18, 0, 500_000, safer=-1),
        Governed("market.margin.size_premium_ppm_per_sqrt_quote_unit", 0, 10_000, 500, safer=+1),
        Governed("market.margin.vol_reference_annual_ppm", 200_000, 3 * _PPM, 100_000, safer=-1),
        Governed("market.margin.vol_multiplier_max_ppm", _PPM, 50 * _PPM, 5 * _PPM, safer=+1),
        Governed("market.margin.cooling_off_multiplier_ppm", _PPM, 10 * _PPM, 500_000, safer=+1),
        # Trading: fees move either way; narrower bands refuse more manipulation.
        Governed("market.taker_fee_ppm", 0, 10_000, 250),
        Governed("market.maker_fee_ppm", 0, 10_000, 250),
        Governed("market.price_band_ppm", 10_000, 500_000, 25_000, safer=-1),
        Governed("market.mark_band_ppm", 0, 100_000, 5_000, safer=-1),
        # Funding (SPEC §8).
        Governed("market.funding.interest_ppb_per_8h", 0, 1_000_000, 50_000),
        Governed("market.funding.premium_clamp_ppb", 0, 5_000_000, 250_000),
        Governed("market.funding.cap_share_of_margin_gap_ppm", 100_000, _PPM, 100_000),
        # Liquidation and auctions (SPEC §7), open-interest and position caps.
        Governed("market.liquidation.fee_ppm", 0, 50_000, 5_000),
        Governed("market.liquidation.keeper_share_ppm", 0, _PPM, 100_000),
        Governed("market.liquidation.close_fraction_ppm", 50_000, _PPM, 100_000),
        Governed("market.liquidation.auction_end_discount_ppm", 50_000, 500_000, 50_000),
        Governed(
            "market.liquidation.auction_duration_ns",
            NS_PER_SECOND,
            10 * NS_PER_MINUTE,
            30 * NS_PER_SECOND,
        ),
        Governed(
            "market.liquidation.open_interest_cap_base_quantums",
            0,
            _SIZE_MAX,
            0,
            500_000,
            safer=-1,
            zero_unlimited=True,
        ),
        Governed(
            "market.liquidation.position_cap_floor_base_quantums",
            0,
            _SIZE_MAX,
            0,
            500_000,
            safer=-1,
            zero_unlimited=True,
        ),
        Governed(
            "market.liquidation.insurance_draw_max_quote_quantums_per_window",
            0,
            _QUANTUMS_MAX,
            0,
            500_000,
        ),
        # Oracles (SPEC §5): a narrower band, a larger quorum, a shorter staleness are safer.
        Governed("oracle.band_ppm", 5_000, 200_000, 10_000, safer=-1),
        Governed("oracle.quorum_ppm", 500_000, _PPM, 100_000, safer=+1),
        Governed("oracle.staleness_ns", NS_PER_SECOND, NS_PER_MINUTE, 5 * NS_PER_SECOND, safer=-1),
        Governed("oracle.breaker_move_ppm", 20_000, 500_000, 20_000, safer=-1),
        Governed("oracle.cooling_off_ns", 0, 2 * NS_PER_HOUR, 15 * NS_PER_MINUTE, safer=+1),
        # Collateral (SPEC §2).
        Governed("asset.haircut_weight_ppm", 0, _PPM, 50_000, safer=-1),
        Governed("asset.venue_cap_quantums", 1, _QUANTUMS_MAX, 0, 500_000, safer=-1),
        # The vault (SPEC §11).
        Governed("vault.half_spread_ppm", 100, 50_000, 500, safer=+1),
        Governed("vault.nav_share_cap_ppm", 10_000, _PPM, 100_000, safer=-1),
        Governed("vault.lockup_ns", 0, limits.vault_lockup_ns_max, DAY_NS, safer=+1),
        # Governance itself: longer waits are safer.
        Governed("governance.timelock_ns", NS_PER_HOUR, 30 * DAY_NS, DAY_NS, safer=+1),
        Governed("governance.phase_in_ns", 0, 30 * DAY_NS, DAY_NS, safer=+1),
        Governed("governance.dispute_window_ns", NS_PER_HOUR, 30 * DAY_NS, DAY_NS, safer=+1),
    )
}

# Parameters whose increase phases in (margins of existing positions).
PHASED = frozenset({"market.margin.initial_margin_ppm", "market.margin.maintenance_share_ppm"})
PHASE_IN_STEPS = 24  # a phase-in moves margins in this many equal steps of block time


def read_field(params: object, path: str) -> int:
    value = params
    for part in path.split("."):
        value = getattr(value, part)
    assert type(value) is int, (path, value)
    return value


def replace_field(params: T, path: str, value: int) -> T:
    """A copy of a frozen dataclass tree with the field at ``path`` set to ``value``."""
    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(params, **{head: value})  # type: ignore[type-var]
    inner = replace_field(getattr(params, head), rest, value)
    return dataclasses.replace(params, **{head: inner})  # type: ignore[type-var]


def change_refusal(
    entry: Governed, current: int, new: int, *, role: Role, last_change_ns: int | None,
    now_ns: int,
) -> RejectReason | None:  # fmt: skip
    """Why ``role`` may not move the parameter from ``current`` to ``new`` now (None: it may)."""
    if not entry.lower <= new <= entry.upper:
        return RejectReason.PARAM_OUT_OF_BOUNDS
    if new == current:
        return RejectReason.INVALID_PARAMETERS
    tightens = entry.tightens(current, new)
    if role is Role.GUARDIAN and not tightens:
        return RejectReason.ROLE_NOT_ALLOWED
    if role is Role.STEWARD or not tightens:
        ordered_gap = abs(entry._ordered(new) - entry._ordered(current))
        if ordered_gap > entry.max_step(current):
            return RejectReason.PARAM_STEP_TOO_LARGE
        cooling = last_change_ns is not None and now_ns < last_change_ns + entry.cooldown_ns
        if cooling:
            return RejectReason.PARAM_COOLDOWN
    return None


def phased_value(start: int, target: int, *, start_ns: int, end_ns: int, now_ns: int) -> int:
    """Where a phased parameter stands at ``now_ns``: ``start`` until the first step, then
    moving toward ``target`` in ``PHASE_IN_STEPS`` equal steps of block time, ``target`` from
    ``end_ns`` on. Rounded down: an increase lags, never leads."""
    return start + div_floor(
        (target - start) * phase_step(start_ns, end_ns, now_ns), PHASE_IN_STEPS
    )


def phase_step(start_ns: int, end_ns: int, now_ns: int) -> int:
    """How many of the phase-in's steps have been taken at ``now_ns`` (0..PHASE_IN_STEPS)."""
    if now_ns >= end_ns:
        return PHASE_IN_STEPS
    return max(0, (now_ns - start_ns) * PHASE_IN_STEPS // (end_ns - start_ns))


assert all(g.lower <= g.upper and g.step >= 0 for g in REGISTRY.values())
assert REGISTRY.keys() >= PHASED
