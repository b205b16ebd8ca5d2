"""Attackers from the incident catalogue (SPEC §13, §16), as agents that drive the real engine
through signed commands, block by block, beside the stress lab's honest population.

Each ``[[attack]]`` table of a scenario names a ``kind`` and its parameters; every attacker
owns its accounts (funded in the funding block), sends its commands after everyone else's in
each block (it gets no priority from the sequencer), and is judged by its PnL: the final
equity of all its accounts, plus what it withdrew, minus what it deposited, minus what it
spent off the venue (quote quantums). An attack is stopped when that is at most zero on
Clearhouse's defaults; each attack's guard, and the scenario override that removes it, is
listed in docs/RELIABILITY.md ("Attacks in the stress lab").

Times are minutes of block time after the window opens (when the agents are funded).

Not in ``clearhouse.core``: it chooses agents' behaviour.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from clearhouse.core.errors import ConfigError
from clearhouse.core.ids import QUOTE_ASSET, Address, Side, SubaccountId
from clearhouse.core.liquidation import to_tick
from clearhouse.core.messages import (
    CancelAll,
    Command,
    Event,
    OrderType,
    PlaceOrder,
    TimeInForce,
    Transferred,
    Withdraw,
)
from clearhouse.core.units import NS_PER_MINUTE, NS_PER_SECOND
from clearhouse.sim.signer import Signer
from clearhouse.sim.solvency import COMMAND_TTL_NS, PPM, PricePath, VenueReplay
from clearhouse.sim.venue import USDC, address_of

MARKET_SLIPPAGE_PPM = 20_000  # the attackers' market orders, as the honest agents' (2%)
BLOCKS_PER_SECOND_MAX = 1_000  # a block-stuffer's blocks a second of block time, at most


class Attack(Protocol):
    """What the stress replay asks of an attacker."""

    name: str

    def funding(self) -> list[tuple[Address, int]]:
        """Deposits (owner, whole USDC) in the funding block."""
        ...

    def feeds(self, feeds: Sequence[PricePath]) -> list[PricePath]:
        """The publishers' prices as the attack leaves them (most leave them alone)."""
        ...

    def commands(self, replay: VenueReplay, timestamp_ns: int) -> list[Command]:
        """This block's commands, sent after everyone else's."""
        ...

    def stuffing(self, replay: VenueReplay, timestamp_ns: int) -> int:
        """How many blocks of its own commands the attacker makes after this block, before the
        next one of the cadence (0: none). A venue that makes a block as soon as commands wait
        (the node's sequencer does) lets a sender make as many blocks as it sends batches."""
        ...

    def observe(self, events: Sequence[Event]) -> None:
        """The block's events (what was withdrawn)."""
        ...

    def pnl(self, replay: VenueReplay) -> int:
        """Final equity + withdrawn − deposited − spent off the venue, quote quantums."""
        ...


# ── What every attacker shares ───────────────────────────────────────────────────────────────


class Attacker:
    """Accounts by role (one subaccount each), their deposits, and the attacker's ledger."""

    def __init__(self, name: str, deposits_usdc: Mapping[str, int]) -> None:
        self.name = name
        self.signers = {role: Signer(address_of(f"attack-{name}-{role}")) for role in deposits_usdc}
        self.deposits_usdc = dict(deposits_usdc)
        self.withdrawn_quote_quantums = 0
        self.spent_off_venue_quote_quantums = 0
        self.start_ns: int | None = None  # the window's start, once the first block is seen

    def funding(self) -> list[tuple[Address, int]]:
        return [(self.signers[r].address, usdc) for r, usdc in self.deposits_usdc.items()]

    def feeds(self, feeds: Sequence[PricePath]) -> list[PricePath]:
        return list(feeds)

    def stuffing(self, replay: VenueReplay, timestamp_ns: int) -> int:
        return 0

    def observe(self, events: Sequence[Event]) -> None:
        mine = {str(SubaccountId(s.address, 0)) for s in self.signers.values()}
        for event in events:
            if (
                isinstance(event, Transferred) and event.cause == "withdrawal"
                and event.source in mine and event.asset_id == QUOTE_ASSET
            ):  # fmt: skip
                self.withdrawn_quote_quantums += event.amount_quantums

    def pnl(self, replay: VenueReplay) -> int:
        ledger = replay.engine.state.ledger
        equity = 0
        for signer in self.signers.values():
            sub = ledger.subaccounts.get(SubaccountId(signer.address, 0))
            equity += 0 if sub is None else replay.engine.risk_of(sub).equity
        deposited = sum(self.deposits_usdc.values()) * USDC
        return (equity + self.withdrawn_quote_quantums - deposited
                - self.spent_off_venue_quote_quantums)  # fmt: skip

    def minute(self, replay: VenueReplay, timestamp_ns: int) -> float:
        """Minutes since the window opened (when the agents were funded)."""
        self.start_ns = replay.start_ns
        return (timestamp_ns - replay.start_ns) / NS_PER_MINUTE


# ── Commands ─────────────────────────────────────────────────────────────────────────────────


def position(replay: VenueReplay, signer: Signer) -> int:
    sub = replay.engine.state.ledger.subaccounts.get(SubaccountId(signer.address, 0))
    return 0 if sub is None else sub.position_size(replay.market.market_id)


def index_price(replay: VenueReplay) -> int:
    return replay.engine.state.oracles[replay.market.oracle_id].index_price_quantums


def size_for(replay: VenueReplay, quote_quantums: int) -> int:
    """Base quantums worth this much quote at the index, on the market's step."""
    params = replay.market
    size = quote_quantums * params.base_quantums_per_unit // max(index_price(replay), 1)
    return max(size - size % params.step_base_quantums, params.min_order_base_quantums)


def market_order(
    replay: VenueReplay, signer: Signer, side: Side, size: int, timestamp_ns: int,
    *, reduce_only: bool = False,
) -> Command:  # fmt: skip
    return PlaceOrder(
        signer=signer.address, nonce=signer.nonce(timestamp_ns),
        expiry_ns=timestamp_ns + COMMAND_TTL_NS, subaccount_number=0,
        market_id=replay.market.market_id, side=side, size_base_quantums=size,
        order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC,
        slippage_ppm=MARKET_SLIPPAGE_PPM, reduce_only=reduce_only,
    )  # fmt: skip


def limit_order(
    replay: VenueReplay, signer: Signer, side: Side, size: int, price: int, timestamp_ns: int,
    *, time_in_force: TimeInForce = TimeInForce.GTC,
) -> Command:  # fmt: skip
    return PlaceOrder(
        signer=signer.address, nonce=signer.nonce(timestamp_ns),
        expiry_ns=timestamp_ns + COMMAND_TTL_NS, subaccount_number=0,
        market_id=replay.market.market_id, side=side, size_base_quantums=size,
        price_quantums=to_tick(price, replay.market.tick_quantums, side),
        time_in_force=time_in_force,
    )  # fmt: skip


def cancel_all(replay: VenueReplay, signer: Signer, timestamp_ns: int) -> Command:
    return CancelAll(
        signer=signer.address, nonce=signer.nonce(timestamp_ns),
        expiry_ns=timestamp_ns + COMMAND_TTL_NS, subaccount_number=0,
        market_id=replay.market.market_id,
    )  # fmt: skip


def withdraw_all(replay: VenueReplay, signer: Signer, timestamp_ns: int) -> list[Command]:
    """A withdrawal of everything the engine lets leave now (nothing if that is nothing)."""
    sub = replay.engine.state.ledger.subaccounts.get(SubaccountId(signer.address, 0))
    if sub is None:
        return []
    free = replay.engine.risk_of(sub).withdrawable_quote
    if free <= 0:
        return []
    return [Withdraw(
        signer=signer.address, nonce=signer.nonce(timestamp_ns),
        expiry_ns=timestamp_ns + COMMAND_TTL_NS, subaccount_number=0,
        asset_id=QUOTE_ASSET, amount_quantums=free,
    )]  # fmt: skip


def close(replay: VenueReplay, signer: Signer, timestamp_ns: int) -> list[Command]:
    """A reduce-only market order that flattens the account (nothing when it is flat)."""
    held = position(replay, signer)
    if held == 0:
        return []
    side = Side.SELL if held > 0 else Side.BUY
    return [market_order(replay, signer, side, abs(held), timestamp_ns, reduce_only=True)]


# ── Thin-venue oracle push (Mango Markets, October 2022) ────────────────────────────────────


@dataclass(frozen=True, slots=True)
class OraclePushParams:
    """Long the perpetual, then buy the thin venue that one publisher reports up by ``push``,
    hold it there, sell the long into the book at the pushed index, let the venue fall back.

    The thin venue is a linear book of ``thin_depth_usdc`` per 100% of price: walking it up
    by m costs nothing at the top but buys m × depth of spot at an average m/2 above its
    honest price, and selling that back walks it down at an average m/2 below the top, so
    the round trip loses depth × m² (quote), whatever happens on Clearhouse."""

    venue: int = 0  # which of [prices] files is the thin venue (0: the first)
    usdc: int = 200_000
    leverage: float = 3.0
    push: float = 0.10
    thin_depth_usdc: int = 1_000_000
    open_minute: float = 10.0
    push_minute: float = 20.0
    ramp_minutes: float = 20.0
    close_minute: float = 60.0
    release_minute: float = 80.0

    def problems(self) -> tuple[str, ...]:
        found = []
        if not 0 < self.push < 1 or self.leverage <= 0 or self.usdc <= 0:
            found.append("push in (0, 1), leverage > 0 and usdc > 0")
        times = (self.open_minute, self.push_minute, self.push_minute + self.ramp_minutes,
                 self.close_minute, self.release_minute)  # fmt: skip
        if list(times) != sorted(times) or self.ramp_minutes <= 0 or self.venue < 0:
            found.append("open <= push <= push + ramp <= close <= release, ramp > 0, venue >= 0")
        return tuple(found)


@dataclass(frozen=True, slots=True)
class PushedFeed:
    """A publisher's honest prices, moved by ``push_ppm(t)`` (the attacker's spot buying)."""

    honest: PricePath
    push_ppm: Callable[[int], int]

    def price_at(self, timestamp_ns: int) -> int | None:
        price = self.honest.price_at(timestamp_ns)
        return None if price is None else price * (PPM + self.push_ppm(timestamp_ns)) // PPM


class OraclePush(Attacker):
    def __init__(self, name: str, p: OraclePushParams) -> None:
        super().__init__(name, {"long": p.usdc})
        self.p = p
        self.opened = False

    def feeds(self, feeds: Sequence[PricePath]) -> list[PricePath]:
        if self.p.venue >= len(feeds):
            raise ConfigError(f"scenario attack {self.name}: venue {self.p.venue} is not a file")
        moved = list(feeds)
        moved[self.p.venue] = PushedFeed(feeds[self.p.venue], self._push_ppm)
        return moved

    def _push_ppm(self, timestamp_ns: int) -> int:
        if self.start_ns is None:  # the warm-up: the venue is honest
            return 0
        p, minute = self.p, (timestamp_ns - self.start_ns) / NS_PER_MINUTE
        if not p.push_minute <= minute < p.release_minute:
            return 0
        ramp = min((minute - p.push_minute) / p.ramp_minutes, 1.0)
        return round(p.push * ramp * PPM)

    def commands(self, replay: VenueReplay, timestamp_ns: int) -> list[Command]:
        p, minute, long = self.p, self.minute(replay, timestamp_ns), self.signers["long"]
        if minute >= p.push_minute:  # the spot round trip, paid once the push has begun
            depth = p.thin_depth_usdc * USDC
            self.spent_off_venue_quote_quantums = round(depth * p.push * p.push)
        if not self.opened and minute >= p.open_minute:
            self.opened = True
            size = size_for(replay, round(p.usdc * p.leverage) * USDC)
            return [market_order(replay, long, Side.BUY, size, timestamp_ns)]
        if minute >= p.close_minute:
            return close(replay, long, timestamp_ns)
        return []


# ── Pushing the mark with the attacker's own orders ─────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class MarkPushParams:
    """Push the perpetual's mark ``push`` above the index with the attacker's own orders for
    ``push_minutes``, rest asks just above the push for the shorts that the higher mark
    liquidates (their closing buys reach the book first), then unwind at the honest price.

    The kind says how the orders are sent: ``spoof_wall`` (one large bid at the push and an
    ask a tick above, replaced every block), ``block_stuff`` (``orders`` tiny bids a block,
    spread from the index up to the push, only in the first ``burst_seconds`` of every
    minute, each block of a burst followed by blocks of its own, ``blocks_per_second`` of
    them a second of block time: many blocks, little time; the push stepped up burst by
    burst over ``ramp_minutes``, so that each burst takes the shorts it liquidates while
    they are still solvent, on the book, into its ask; at the end what its bids bought and
    what its ask sold are crossed between its two accounts, and only the rest is sold),
    ``wash_trade`` (each block its bid account buys what others offer below the push, then
    ``wash_usdc`` from its ask account's offer at the push: the last trade is its own, as
    high as it likes, and on a venue that marks at the last trade the mark follows; the rest
    of that offer waits for the liquidated; the push ramped as the stuffer's, and the two
    accounts crossed out at the end)."""

    usdc: int = 2_000_000  # each of its two accounts
    push: float = 0.05
    # The bid at the push (wall), or all the tiny bids (stuff): more than the maker's whole
    # ladder of offers (2M at the stress lab's defaults), or the maker's offers fill it.
    wall_usdc: int = 3_000_000
    ask_usdc: int = 10_000_000  # what it offers to the liquidated, a tick above the push
    wash_usdc: int = 100_000
    orders: int = 50
    burst_seconds: float = 5.0
    blocks_per_second: int = 1  # block_stuff: the blocks a second it makes in a burst
    # The push grows linearly from nothing to ``push`` over this long (0: all of it at once),
    # so that each step liquidates shorts still solvent, on the book, into its ask.
    ramp_minutes: float = 0.0
    start_minute: float = 10.0
    push_minutes: float = 40.0

    def problems(self) -> tuple[str, ...]:
        found = []
        if not 0 < self.push < 1 or min(self.usdc, self.wall_usdc, self.ask_usdc) <= 0:
            found.append("push in (0, 1) and USDC amounts > 0")
        if not 1 <= self.orders <= 200 or self.push_minutes <= 0 or self.wash_usdc <= 0:
            found.append("orders in [1, 200], push_minutes > 0, wash_usdc > 0")
        if self.ramp_minutes < 0:
            found.append("ramp_minutes >= 0")
        if not 1 <= self.blocks_per_second <= BLOCKS_PER_SECOND_MAX:
            found.append(f"blocks_per_second in [1, {BLOCKS_PER_SECOND_MAX}]")
        return tuple(found)


class MarkPush(Attacker):
    def __init__(self, name: str, p: MarkPushParams, style: str) -> None:
        super().__init__(name, {"bid": p.usdc, "ask": p.usdc})
        self.p = p
        self.style = style  # spoof_wall, block_stuff or wash_trade
        self.ended_blocks = 0  # blocks since the push ended

    def commands(self, replay: VenueReplay, timestamp_ns: int) -> list[Command]:
        p, minute = self.p, self.minute(replay, timestamp_ns)
        if minute < p.start_minute:
            return []
        bid, ask = self.signers["bid"], self.signers["ask"]
        cancels = [cancel_all(replay, s, timestamp_ns) for s in (bid, ask)]
        if minute >= p.start_minute + p.push_minutes:  # over: cancel, then flat
            self.ended_blocks += 1
            crossing = self.style != "spoof_wall"
            if self.ended_blocks == 1 and crossing:
                return [*cancels, *self._cross_out(replay, timestamp_ns)]
            closes = [*close(replay, bid, timestamp_ns), *close(replay, ask, timestamp_ns)]
            cancelled = self.ended_blocks <= (2 if crossing else 1)
            return [*cancels, *closes] if cancelled else closes
        if self.style == "wash_trade":
            return [*cancels, *self._wash(replay, minute, timestamp_ns)]
        if self.style == "block_stuff" and not self._bursting(minute):
            return cancels
        top = index_price(replay) * (PPM + self._push_ppm(minute)) // PPM
        tick = replay.market.tick_quantums
        offer = limit_order(replay, ask, Side.SELL, size_for(replay, p.ask_usdc * USDC),
                            top + tick, timestamp_ns)  # fmt: skip
        return [*cancels, *self._bids(replay, top, timestamp_ns), offer]

    def _push_ppm(self, minute: float) -> int:
        p = self.p
        ramp = 1.0 if p.ramp_minutes == 0 else min((minute - p.start_minute) / p.ramp_minutes, 1.0)
        return round(p.push * ramp * PPM)

    def stuffing(self, replay: VenueReplay, timestamp_ns: int) -> int:
        """In a burst, the blocks between this one and the next of the cadence that make
        ``blocks_per_second`` a second: each carries the tiny bids again."""
        if self.style != "block_stuff" or not self._bursting(self.minute(replay, timestamp_ns)):
            return 0
        return max(self.p.blocks_per_second * replay.block_ns // NS_PER_SECOND - 1, 0)

    def _bursting(self, minute: float) -> bool:
        p = self.p
        pushing = p.start_minute <= minute < p.start_minute + p.push_minutes
        return pushing and (minute * 60) % 60 < p.burst_seconds

    def _cross_out(self, replay: VenueReplay, timestamp_ns: int) -> list[Command]:
        """What the bids bought against what the ask sold, crossed between the attacker's two
        accounts at the index (two owners: self-trade prevention does not stop it), so that
        only the rest pays the book's spread."""
        bid, ask = self.signers["bid"], self.signers["ask"]
        long, short = position(replay, bid), position(replay, ask)
        size = min(long, -short)
        if size <= 0:
            return []
        price = index_price(replay)
        return [
            limit_order(replay, bid, Side.SELL, size, price, timestamp_ns),
            limit_order(replay, ask, Side.BUY, size, price, timestamp_ns,
                        time_in_force=TimeInForce.IOC),
        ]  # fmt: skip

    def _wash(self, replay: VenueReplay, minute: float, timestamp_ns: int) -> list[Command]:
        """The ask account offers at the push (to its own bids, and to the shorts a higher mark
        liquidates); the bid account buys what others offer below it (at most ``wall_usdc``),
        then ``wash_usdc`` of its own offer: the block's last trade is at the push, between two
        owners, so self-trade prevention has nothing to stop."""
        p, bid, ask = self.p, self.signers["bid"], self.signers["ask"]
        tick = replay.market.tick_quantums
        top = to_tick(index_price(replay) * (PPM + self._push_ppm(minute)) // PPM, tick, Side.SELL)
        return [
            limit_order(replay, ask, Side.SELL, size_for(replay, p.ask_usdc * USDC), top,
                        timestamp_ns),
            limit_order(replay, bid, Side.BUY, size_for(replay, p.wall_usdc * USDC), top - tick,
                        timestamp_ns, time_in_force=TimeInForce.IOC),
            limit_order(replay, bid, Side.BUY, size_for(replay, p.wash_usdc * USDC), top,
                        timestamp_ns, time_in_force=TimeInForce.IOC),
        ]  # fmt: skip

    def _bids(self, replay: VenueReplay, top: int, timestamp_ns: int) -> list[Command]:
        p, bid = self.p, self.signers["bid"]
        if self.style == "spoof_wall":
            size = size_for(replay, p.wall_usdc * USDC)
            return [limit_order(replay, bid, Side.BUY, size, top, timestamp_ns)]
        index = index_price(replay)
        size = size_for(replay, p.wall_usdc * USDC // p.orders)
        return [
            limit_order(replay, bid, Side.BUY, size, index + (top - index) * (i + 1) // p.orders,
                        timestamp_ns)
            for i in range(p.orders)
        ]  # fmt: skip


# ── Withdrawing to self-liquidate into the backstop (JELLY and the ETH whale, March 2025) ───


@dataclass(frozen=True, slots=True)
class SelfLiquidateParams:
    """Open a large long and the matching short between two of the attacker's accounts (no
    slippage, no one else's liquidity), withdraw everything the venue lets leave both, every
    block; then lift the mark with a wall for ``push_minutes`` (offering the long a tick
    above it) so that the short, left with as little margin as it may, falls to the
    backstop while the long is sold at the lifted price; unwind at the honest price."""

    usdc: int = 1_000_000  # each of the long and the short
    size_usdc: int = 10_000_000
    push: float = 0.05
    wall_usdc: int = 3_000_000
    open_minute: float = 10.0
    push_minute: float = 20.0
    push_minutes: float = 30.0

    def problems(self) -> tuple[str, ...]:
        found = []
        if not 0 < self.push < 1 or min(self.usdc, self.size_usdc, self.wall_usdc) <= 0:
            found.append("push in (0, 1) and USDC amounts > 0")
        if not 0 <= self.open_minute < self.push_minute or self.push_minutes <= 0:
            found.append("0 <= open_minute < push_minute, push_minutes > 0")
        return tuple(found)


class SelfLiquidate(Attacker):
    def __init__(self, name: str, p: SelfLiquidateParams) -> None:
        super().__init__(name, {"long": p.usdc, "short": p.usdc, "wall": p.wall_usdc})
        self.p = p
        self.opened = False
        self.ended = False

    def commands(self, replay: VenueReplay, timestamp_ns: int) -> list[Command]:
        p, minute = self.p, self.minute(replay, timestamp_ns)
        if minute < p.open_minute:
            return []
        if not self.opened:
            self.opened = True
            return self._cross(replay, timestamp_ns)
        long, short, wall = (self.signers[r] for r in ("long", "short", "wall"))
        drained = [*withdraw_all(replay, short, timestamp_ns),
                   *withdraw_all(replay, long, timestamp_ns)]  # fmt: skip
        if minute < p.push_minute:
            return drained
        if minute < p.push_minute + p.push_minutes:
            return [*self._lift(replay, timestamp_ns), *drained]
        ended, self.ended = self.ended, True  # over: cancel once, then flat at the honest price
        cancels = (
            [] if ended else [cancel_all(replay, s, timestamp_ns) for s in (long, short, wall)]
        )
        return [*cancels, *(c for s in (long, short, wall) for c in close(replay, s, timestamp_ns))]

    def _lift(self, replay: VenueReplay, timestamp_ns: int) -> list[Command]:
        """The wall's bid at the push, and the long offered a tick above it, replaced."""
        long, wall = self.signers["long"], self.signers["wall"]
        top = index_price(replay) * (PPM + round(self.p.push * PPM)) // PPM
        commands = [
            cancel_all(replay, long, timestamp_ns), cancel_all(replay, wall, timestamp_ns),
            limit_order(replay, wall, Side.BUY, size_for(replay, self.p.wall_usdc * USDC), top,
                        timestamp_ns),
        ]  # fmt: skip
        held = position(replay, long)
        if held > 0:
            tick = replay.market.tick_quantums
            commands.append(limit_order(replay, long, Side.SELL, held, top + tick, timestamp_ns))
        return commands

    def _cross(self, replay: VenueReplay, timestamp_ns: int) -> list[Command]:
        """The short rests an offer inside the spread and the long takes it at once."""
        book = replay.engine.state.markets[replay.market.market_id].book
        best_bid, best_ask = book.best_bid(), book.best_ask()
        if best_bid is None or best_ask is None:
            return []
        price, size = (best_bid + best_ask) // 2, size_for(replay, self.p.size_usdc * USDC)
        return [
            limit_order(replay, self.signers["short"], Side.SELL, size, price, timestamp_ns),
            limit_order(replay, self.signers["long"], Side.BUY, size, price, timestamp_ns,
                        time_in_force=TimeInForce.IOC),
        ]  # fmt: skip


# ── Reading [[attack]] tables ────────────────────────────────────────────────────────────────


def _mark_push(kind: str) -> Callable[[str, MarkPushParams], Attack]:
    def make(name: str, params: MarkPushParams) -> Attack:
        return MarkPush(name, params, kind)

    return make


_Kind = tuple[type[Any], Callable[[str, Any], Attack]]
KINDS: dict[str, _Kind] = {
    "oracle_push": (OraclePushParams, OraclePush),
    "self_liquidate": (SelfLiquidateParams, SelfLiquidate),
    # Open-interest cornering (dYdX YFI, November 2023): the same moves at a size the book
    # cannot absorb, what the size premium and the open-interest scaling of margins stop.
    "oi_corner": (SelfLiquidateParams, SelfLiquidate),
    "spoof_wall": (MarkPushParams, _mark_push("spoof_wall")),
    "block_stuff": (MarkPushParams, _mark_push("block_stuff")),
    "wash_trade": (MarkPushParams, _mark_push("wash_trade")),
}


def parse_attacks(tables: Sequence[Mapping[str, object]]) -> list[Attack]:
    """The scenario's ``[[attack]]`` tables as attackers; a mistake is refused with one line
    naming ``attack[i].key`` (``ConfigError``)."""
    return [parse_attack(table, i) for i, table in enumerate(tables)]


def parse_attack(table: Mapping[str, object], i: int) -> Attack:
    where = f"scenario attack[{i}]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table [[attack]]")
    kind = table.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind: one of {', '.join(sorted(KINDS))}")
    params_type, make = KINDS[str(kind)]
    hints = typing.get_type_hints(params_type)
    values = {}
    for key, value in table.items():
        if key == "kind":
            continue
        if key not in hints:
            raise ConfigError(f"{where}.{key}: unknown key")
        values[key] = _value(hints[key], value, f"{where}.{key}")
    params = params_type(**values)
    if params.problems():
        raise ConfigError(f"{where}: {params.problems()[0]}")
    return make(f"{kind}-{i}", params)


def _value(hint: object, value: object, where: str) -> object:
    if hint is float and type(value) in (int, float):
        return float(value)  # type: ignore[arg-type]
    if hint is int and type(value) is int:
        return value
    if hint is str and type(value) is str:
        return value
    if hint is bool and type(value) is bool:
        return value
    name = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"{where}: expected {'a number' if hint is float else name}")
