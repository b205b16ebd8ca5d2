"""Adversarial scenarios from real incidents (SPEC §16), each a scripted price path and attacker,
with pass criteria: the attacker gains nothing (or no more than a guard's cap), no bad debt
beyond the fund unless recorded as deficit, ADL takes exactly the shortfall, and every
liquidatable subaccount is liquidated within the documented number of blocks.

Every scenario also runs with its guard switched off (a mutation, in ``test_*_without_*``), and
there the attack must succeed: proof that the pass criterion is what the guard buys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from clearhouse.core import oracle as oracle_module
from clearhouse.core.engine import Engine, Rejected, machine, prices
from clearhouse.core.engine.context import Context
from clearhouse.core.engine.liquidation.insolvency import resolve_bankruptcy
from clearhouse.core.engine.risk import risk_of
from clearhouse.core.engine.subaccounts import check_can_release
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import QUOTE_ASSET, MarketId, OracleId, Side, SubaccountId
from clearhouse.core.ledger import DEFICIT, INSURANCE, VAULT
from clearhouse.core.messages import (
    CommandRejected,
    Deleveraged,
    Event,
    InsuranceDrawn,
    Liquidated,
    LiquidationStage,
    LossSocialized,
    PlaceOrder,
)
from clearhouse.core.oracle import PriceStatus
from clearhouse.core.params import LiquidationParams
from clearhouse.core.state import MarketState
from clearhouse.core.units import NS_PER_SECOND
from clearhouse.sim.keeper import Keeper
from clearhouse.sim.venue import USDC
from data.loaders import BINANCE_BTC_SPOT_1H, load_closes, missing_reason
from helpers import (
    BTC_PERP,
    BTC_USD,
    ONE_BTC,
    PRICE,
    USDT_USD,
    Venue,
    accepted,
    compiled,
    of_type,
    replace_engine_function,
    skip_if_compiled,
)

BUY, SELL = Side.BUY, Side.SELL
PERP = MarketId(BTC_PERP)
TRADERS = ("alice", "mallory", "mallet", "carol", "dave", "keeper")

AUCTION_BLOCKS = LiquidationParams().auction_duration_ns // NS_PER_SECOND  # blocks 1 s apart


# ── Scenario tools ──────────────────────────────────────────────────────────────────────────


@dataclass
class Ledgerbook:
    """What an attacker put in and took out, to measure its net gain."""

    deposited: int = 0
    withdrawn: int = 0


def venue_with(*, check: bool = True, **liquidation: int) -> Venue:
    venue = Venue(traders=TRADERS, check=check)
    market = venue.state.markets[PERP]
    market.params = dataclasses.replace(
        market.params, liquidation=dataclasses.replace(market.params.liquidation, **liquidation)
    )
    return venue


def fund_insurance(venue: Venue, amount: int) -> None:
    """Seed the fund from dave, by the command anyone may send."""
    accepted(venue, venue.deposit_insurance("dave", amount))


def fund(venue: Venue) -> int:
    return venue.state.ledger.balance(INSURANCE, QUOTE_ASSET)


def deficit(venue: Venue) -> int:
    return -venue.state.ledger.balance(DEFICIT, QUOTE_ASSET)


def run(venue: Venue, commands: list[PlaceOrder] | list = (), **options: object) -> list[Event]:  # type: ignore[assignment, type-arg]
    """One block; every event, prologue included."""
    result = venue.block(commands, **options)  # type: ignore[arg-type]
    return [*result.prologue, *(e for r in result.results for e in r)]


def quotes(venue: Venue, trader: str, center: int, *, levels: int = 3,
           size: int = ONE_BTC, gap: int = 30 * USDC) -> list[PlaceOrder]:  # fmt: skip
    orders = [venue.cancel_all(trader)]
    for level in range(1, levels + 1):
        orders.append(venue.order(trader, BTC_PERP, BUY, size, center - level * gap))
        orders.append(venue.order(trader, BTC_PERP, SELL, size, center + level * gap))
    return orders  # type: ignore[return-value]


def keeper_commands(venue: Venue, keeper: Keeper) -> list:  # type: ignore[type-arg]
    return keeper.commands(venue.engine, venue.now)  # type: ignore[return-value]


def self_trade(venue: Venue, short: str, long: str, size: int, price: int, number: int = 1) -> None:
    """The attacker's two subaccounts trade with each other (a wash trade, Mango style)."""
    run(venue, [venue.order(short, BTC_PERP, SELL, size, price, number=number)])
    events = run(venue, [venue.order(long, BTC_PERP, BUY, size, price, number=number)])
    assert not of_type(events, CommandRejected), events
    assert venue.position(long, BTC_PERP, number)[0] == size


def drain(venue: Venue, trader: str, book: Ledgerbook, number: int = 1) -> int:
    """Withdraw the most the venue allows, in one block: halving amounts, each tried in turn."""
    amounts = [2**k * USDC for k in range(21, -1, -1)]
    result = venue.block([venue.withdraw(trader, a, number=number) for a in amounts])
    taken = sum(a for i, a in enumerate(amounts) if result.rejection(i) is None)
    book.withdrawn += taken
    return taken


def move_index(
    venue: Venue, target: int, steps: int, *, between: list | None = None
) -> list[Event]:  # type: ignore[type-arg]
    """Walk BTC-USD to ``target`` in ``steps`` equal moves, one block each (then one more so the
    last report is the index)."""
    events: list[Event] = []
    start = venue.prices[BTC_USD]
    for step in range(1, steps + 1):
        venue.prices[BTC_USD] = start + (target - start) * step // steps
        events += run(venue, list(between or []))
    events += run(venue)
    return events


def equity(venue: Venue, trader: str, number: int = 1) -> int:
    found = venue.state.ledger.subaccounts.get(venue.sub(trader, number))
    return 0 if found is None else venue.engine.risk_of(found).equity


def net_gain(venue: Venue, attackers: list[tuple[str, int]], book: Ledgerbook) -> int:
    return book.withdrawn + sum(equity(venue, t, n) for t, n in attackers) - book.deposited


# ── Mango Markets, October 2022: wash trade, oracle pump, withdraw the paper profit ─────────


def mango(venue: Venue) -> tuple[int, list[Event]]:
    book = Ledgerbook()
    for trader in ("mallory", "mallet"):
        run(venue, [venue.transfer(trader, 50_000 * USDC, source=0, target=1)])
        book.deposited += 50_000 * USDC
    run(venue, quotes(venue, "alice", PRICE))
    self_trade(venue, "mallory", "mallet", 10 * ONE_BTC, PRICE)
    # The attacker pumps every venue the oracle reads, +30% at once: all publishers agree, so
    # the breaker lets it through (with cooling-off). The short is bankrupt at once.
    seen = move_index(venue, PRICE * 13 // 10, 1)
    drain(venue, "mallet", book)  # the paper profit, before any ladder step
    drain(venue, "mallory", book)
    seen += move_index(venue, PRICE, 1)  # the pump fades
    for _ in range(AUCTION_BLOCKS + 5):
        seen += run(venue)
    return net_gain(venue, [("mallory", 1), ("mallet", 1)], book), seen


def test_mango_attacker_cannot_withdraw_paper_profit() -> None:
    venue = venue_with()
    gain, seen = mango(venue)
    assert gain <= 0, f"attacker gained {gain / USDC} USDC"
    # The backstops (the vault, the fund's book, ADL) absorb the whole cascade: nothing is
    # socialized (with the real 2020-03-12 closes, compressed into an hour, and without them).
    assert deficit(venue) == 0 and not of_type(seen, LossSocialized)


def allow_unrealized_withdrawals(monkeypatch: pytest.MonkeyPatch, *, down_to: str) -> None:
    """Mutation: collateral may leave down to IM (or MM) *including unrealized profit*, the
    quote balance going negative against it: Mango's rule in 2022, Hyperliquid's in March 2025."""

    def release(ctx: Context, source: SubaccountId, asset_id: object, amount: int) -> None:
        subaccount = ctx.state.ledger.subaccounts.get(source)
        if subaccount is None:
            raise Rejected(RejectReason.INSUFFICIENT_FUNDS)
        risk = risk_of(ctx, subaccount)
        floor = risk.initial if down_to == "IM" else risk.maintenance
        if amount > risk.equity - floor:
            raise Rejected(RejectReason.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)

    replace_engine_function(monkeypatch, check_can_release, release)


def test_mango_without_the_settled_collateral_rule_pays_the_attacker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    allow_unrealized_withdrawals(monkeypatch, down_to="IM")
    # ... and a bankrupt account waits for keepers like any other, leaving a window.
    venue = venue_with(
        check=False, bankrupt_grace_ns=2 * NS_PER_SECOND
    )  # checks would stop at the breach
    gain, _ = mango(venue)
    assert gain > 50_000 * USDC


# ── JELLY on Hyperliquid, March 2025: self-liquidation into the backstop, then a pump ───────


def jelly(venue: Venue) -> tuple[int, list[Event], int]:
    book = Ledgerbook()
    fund_insurance(venue, 200_000 * USDC)
    for trader in ("mallory", "mallet"):
        run(venue, [venue.transfer(trader, 30_000 * USDC, source=0, target=1)])
        book.deposited += 30_000 * USDC
    run(venue, quotes(venue, "alice", PRICE))
    self_trade(venue, "mallory", "mallet", 8 * ONE_BTC, PRICE)
    drain(venue, "mallory", book)  # leave the short at its margin limit
    run(venue, [venue.cancel_all("alice")])  # a thin market: nobody quotes into the pump
    fund_before = fund(venue)
    seen = move_index(venue, PRICE * 115 // 100, 6)
    for _ in range(AUCTION_BLOCKS + 5):  # the ladder runs its course
        seen += run(venue)
    drain(venue, "mallet", book)
    seen += move_index(venue, PRICE, 4)
    return net_gain(venue, [("mallory", 1), ("mallet", 1)], book), seen, fund_before - fund(venue)


def test_jelly_backstop_loss_is_capped_and_the_attacker_pays_through_adl() -> None:
    cap = 2_000 * USDC
    venue = venue_with(insurance_draw_max_quote_quantums_per_window=cap)
    gain, seen, fund_loss = jelly(venue)
    draws: dict[int, int] = {}
    for event in of_type(seen, InsuranceDrawn):
        draws[id(event)] = event.amount_quote_quantums
    assert all(d <= cap for d in draws.values())
    assert of_type(seen, Deleveraged), "the bankrupt short was closed against the longs"
    assert all(e.counterparty == str(venue.sub("mallet", 1)) for e in of_type(seen, Deleveraged))
    assert gain <= cap, f"attacker gained {gain / USDC} USDC"
    assert fund_loss <= cap


def test_jelly_without_the_draw_cap_the_fund_pays_the_attacker() -> None:
    venue = venue_with(insurance_draw_max_quote_quantums_per_window=10**18)  # mutation: no cap
    gain, _, fund_loss = jelly(venue)
    assert fund_loss > 2_000 * USDC and gain > 2_000 * USDC


# ── The March 2025 ETH whale: withdraw margin so the backstop absorbs the close ─────────────


def whale(venue: Venue) -> list[Event]:
    book = Ledgerbook()
    high = PRICE * 103 // 100
    run(venue, [venue.transfer("mallory", 40_000 * USDC, source=0, target=1)])
    run(venue, quotes(venue, "alice", PRICE, levels=5, size=4 * ONE_BTC))
    run(venue, [venue.order("mallory", BTC_PERP, BUY, 15 * ONE_BTC, PRICE + 100 * USDC, number=1)])
    seen = move_index(venue, high, 3)  # +3%: 27k of paper profit on 15 BTC
    drain(venue, "mallory", book)  # as much margin as the venue lets go
    low = high * 98 // 100  # then a 2% dip: more than one maintenance margin
    seen += move_index(
        venue,
        low,
        1,
        between=quotes(venue, "alice", low, levels=5, size=4 * ONE_BTC, gap=20 * USDC),
    )
    for _ in range(AUCTION_BLOCKS + 5):  # the ladder runs on a deep book
        seen += run(venue, quotes(venue, "alice", low, levels=5, size=4 * ONE_BTC, gap=20 * USDC))
    return seen


def test_whale_cannot_withdraw_below_initial_margin_so_the_fund_pays_nothing() -> None:
    venue = venue_with()
    seen = whale(venue)
    assert not of_type(seen, InsuranceDrawn)
    assert not of_type(seen, Deleveraged)
    assert deficit(venue) == 0


def test_whale_withdrawing_to_maintenance_makes_the_backstop_pay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    allow_unrealized_withdrawals(monkeypatch, down_to="MM")
    venue = venue_with(check=False)
    seen = whale(venue)
    assert of_type(seen, InsuranceDrawn) or of_type(seen, Deleveraged) or deficit(venue) > 0


# ── dYdX YFI, November 2023: cornering a thin market's open interest ────────────────────────


def yfi(venue: Venue) -> int:
    run(venue, quotes(venue, "alice", PRICE, levels=2, size=ONE_BTC))
    run(venue, [venue.order("carol", BTC_PERP, SELL, 40 * ONE_BTC, PRICE + 500 * USDC)])
    size = 0
    for _ in range(8):  # the attacker keeps buying, a chunk at a time
        events = run(venue, [venue.order("mallory", BTC_PERP, BUY, 5 * ONE_BTC,
                                         PRICE + 600 * USDC)])  # fmt: skip
        size = venue.position("mallory", BTC_PERP)[0]
        if of_type(events, CommandRejected):
            reason = of_type(events, CommandRejected)[0].reason
            assert reason in (
                RejectReason.OPEN_INTEREST_CAP_EXCEEDED, RejectReason.POSITION_CAP_EXCEEDED
            )  # fmt: skip
    return size


def test_yfi_open_interest_and_position_caps_stop_the_corner() -> None:
    venue = venue_with(
        open_interest_cap_base_quantums=12 * ONE_BTC, position_cap_floor_base_quantums=5 * ONE_BTC,
        position_cap_depth_multiple_ppm=3_000_000,
    )  # fmt: skip
    size = yfi(venue)
    assert size <= 12 * ONE_BTC
    assert venue.state.markets[PERP].open_interest_base_quantums <= 12 * ONE_BTC


def test_yfi_without_caps_the_attacker_corners_the_market() -> None:
    size = yfi(venue_with())  # mutation: no caps
    assert size > 12 * ONE_BTC


# ── Synthetix sKRW 2019 (1000× outlier) and Compound DAI 2020 (one venue spikes 30%) ────────


@contextmanager
def mean_oracle() -> Iterator[None]:
    """Mutation: the oracle averages reports instead of taking a weighted median in a band."""
    skip_if_compiled(prices, "aggregate")
    original = oracle_module.aggregate

    def average(reports, params, *, now_ns, previous_price):  # type: ignore[no-untyped-def]
        result = original(reports, params, now_ns=now_ns, previous_price=previous_price)
        fresh = [
            r.price_quantums for r in reports if now_ns - r.timestamp_ns <= params.staleness_ns
        ]
        if not fresh or result.status is not oracle_module.PriceStatus.FRESH:
            return result
        return dataclasses.replace(result, price_quantums=sum(fresh) // len(fresh))

    prices.aggregate = average  # type: ignore[assignment]
    try:
        yield
    finally:
        prices.aggregate = original  # type: ignore[assignment]


def one_bad_publisher(venue: Venue, outlier: int, blocks: int) -> list[Event]:
    run(venue, [venue.transfer("mallory", 20_000 * USDC, source=0, target=1)])
    run(venue, quotes(venue, "alice", PRICE, levels=5, size=4 * ONE_BTC))
    run(venue, [venue.order("mallory", BTC_PERP, SELL, 10 * ONE_BTC, PRICE - 100 * USDC,
                            number=1)])  # fmt: skip
    assert venue.position("mallory", BTC_PERP, 1)[0] == -10 * ONE_BTC
    seen: list[Event] = []
    for _ in range(blocks):
        seen += run(venue, outlier={OracleId(BTC_USD): outlier})
    return seen


@pytest.mark.parametrize(("name", "factor_ppm"), [("sKRW", 1_000_000_000), ("DAI", 1_300_000)])
def test_one_publisher_outlier_moves_nothing(name: str, factor_ppm: int) -> None:
    venue = venue_with()
    seen = one_bad_publisher(venue, PRICE * factor_ppm // 1_000_000, 20)
    assert not of_type(seen, Liquidated), name
    assert abs(venue.index() - PRICE) * 100 <= PRICE  # within 1% of the truth
    assert venue.position("mallory", BTC_PERP, 1)[0] == -10 * ONE_BTC


@pytest.mark.parametrize(("name", "factor_ppm"), [("sKRW", 1_000_000_000), ("DAI", 1_300_000)])
def test_one_publisher_outlier_liquidates_with_an_averaging_oracle(
    name: str, factor_ppm: int
) -> None:
    with mean_oracle():
        venue = venue_with()
        seen = one_bad_publisher(venue, PRICE * factor_ppm // 1_000_000, 20)
    assert of_type(seen, Liquidated) or venue.index() > PRICE * 101 // 100, name


# ── USDC, March 2023: a stablecoin loses 13% over hours; BTC quoted in it reads ~15% higher ─


DEPEG_RATE = 870_000  # USD quantums per unit of the stablecoin at the bottom: −13%
DEPEG_BLOCKS = 720  # two hours of 10-second blocks: each step far below the breaker's 10%


def stablecoin_depeg(venue: Venue) -> tuple[list[Event], int]:
    """Three of four publishers quote BTC in USDT (the stablecoin the default venue converts,
    in USDC's role of March 2023) and USDT slides from par to 0.87 USD over two hours while
    BTC/USD stays at PRICE: their BTC/USDT reports rise to PRICE / 0.87, +14.9%. The USDT-USD
    rate feed's own publishers report the true rate. mallory/1 holds a healthy 7.5× short; alice
    makes the market around the index, as makers do. Returns every event and the index's
    largest distance from PRICE during the slide."""
    run(venue, [venue.transfer("mallory", 80_000 * USDC, source=0, target=1)])
    run(venue, quotes(venue, "alice", PRICE, levels=5, size=4 * ONE_BTC))
    run(venue, [venue.order("mallory", BTC_PERP, SELL, 10 * ONE_BTC, PRICE - 200 * USDC,
                            number=1)])  # fmt: skip
    assert venue.position("mallory", BTC_PERP, 1)[0] == -10 * ONE_BTC
    venue.quotes = {0: "USDT", 1: "USDT", 2: "USDT"}
    seen: list[Event] = []
    worst = 0
    for step in range(1, DEPEG_BLOCKS + 1):
        venue.prices[USDT_USD] = USDC - (USDC - DEPEG_RATE) * step // DEPEG_BLOCKS
        center = venue.index() // (USDC // 10) * (USDC // 10)
        requote = (
            quotes(venue, "alice", center, levels=5, size=4 * ONE_BTC) if step % 6 == 0 else []
        )
        seen += run(venue, requote, dt_ns=10 * NS_PER_SECOND)
        assert venue.state.oracles[BTC_USD].status is PriceStatus.FRESH
        worst = max(worst, abs(venue.index() - PRICE))
    return seen, worst


def test_stablecoin_depeg_moves_neither_the_index_nor_anyone() -> None:
    venue = venue_with(check=False)
    seen, worst = stablecoin_depeg(venue)
    band_ppm = venue.state.oracles[BTC_USD].params.band_ppm
    assert worst * 1_000_000 < band_ppm * PRICE  # the pass criterion: inside the outlier band
    assert worst <= 1  # in fact exact, but for the rounding of the conversion
    assert not of_type(seen, Liquidated)
    assert venue.position("mallory", BTC_PERP, 1)[0] == -10 * ONE_BTC


def test_stablecoin_depeg_without_conversion_liquidates_healthy_shorts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mutation: every report is taken as USD, whatever it is quoted in (the oracle before
    quote currencies): the index follows the majority up ~15% and the short is liquidated."""
    replace_engine_function(
        monkeypatch,
        oracle_module.usd_reports,
        lambda oracle, oracles: list(oracle.reports.values()),
    )
    venue = venue_with(check=False)
    seen, worst = stablecoin_depeg(venue)
    assert worst * 100 > 14 * PRICE
    assert of_type(seen, Liquidated)
    assert venue.position("mallory", BTC_PERP, 1)[0] > -10 * ONE_BTC


# ── 2020-03-12: a 40% crash in an hour and its liquidation cascade ──────────────────────────


def crash_path(points: int) -> list[int]:
    """BTC from ../shared/data (Binance 1h closes, 2020-03-12 00:00 to 03-13 03:00 UTC: about
    −40%) when present, compressed into one hour; a synthetic −40% path otherwise."""
    if missing_reason(BINANCE_BTC_SPOT_1H) is None:
        candles = load_closes(
            BINANCE_BTC_SPOT_1H, start="2020-03-12T00:00:00Z", end="2020-03-13T04:00:00Z"
        )
        closes = [price for _, price in candles]
    else:
        closes = [PRICE * (100 - 40 * i // 27) // 100 for i in range(28)]
    scale = PRICE / closes[0]
    out = []
    for i in range(points):  # piecewise-linear through the closes
        x = i * (len(closes) - 1) / (points - 1)
        j = min(int(x), len(closes) - 2)
        price = closes[j] + (closes[j + 1] - closes[j]) * (x - j)
        out.append(int(price * scale) // (USDC // 10) * (USDC // 10))
    return out


def test_crash_cascade_liquidates_everyone_in_time_with_no_hidden_bad_debt() -> None:
    traders = (*tuple(f"long-{i}" for i in range(16)), "alice", "keeper", "dave")
    venue = Venue(traders=traders, quote_per_trader=3_000_000 * USDC)
    fund_insurance(venue, 50_000 * USDC)
    run(venue, quotes(venue, "alice", PRICE, levels=10, size=5 * ONE_BTC, gap=10 * USDC))
    for i in range(16):  # longs from 5× to 35×, each with 20k
        name = f"long-{i}"
        run(venue, [venue.transfer(name, 20_000 * USDC, source=0, target=1)])
        notional = 20_000 * (5 + 2 * i)
        size = notional * ONE_BTC // 60_000 // 10_000 * 10_000
        run(venue, [venue.order(name, BTC_PERP, BUY, size, PRICE + 200 * USDC, number=1)])
    keeper = Keeper(venue.signers["keeper"])
    grace = LiquidationParams().keeper_grace_ns // NS_PER_SECOND
    liquidatable_since: dict[SubaccountId, int] = {}
    seen: list[Event] = []
    path = crash_path(360)  # one block every 10 s for an hour
    for height, price in enumerate(path):
        venue.prices[BTC_USD] = price
        commands = quotes(venue, "alice", venue.mark(), levels=6, size=3 * ONE_BTC,
                          gap=price // 2_000)  # fmt: skip
        commands += keeper_commands(venue, keeper)
        seen += run(venue, commands, dt_ns=10 * 10**9)
        stepped = {e.subaccount for e in of_type(seen[-400:], Liquidated)}
        now_liquidatable = venue.engine.liquidatable()
        for recovered in set(liquidatable_since) - set(now_liquidatable):
            del liquidatable_since[recovered]  # the bound counts from each time it goes under
        for target in now_liquidatable:
            liquidatable_since.setdefault(target, height)
            waited = height - liquidatable_since[target]
            in_auction = (status := venue.state.liquidations.get(target)) and status.auction
            bound = grace + 1 + (AUCTION_BLOCKS + 1 if in_auction else 0)
            assert waited <= bound or str(target) in stepped, f"{target} waited {waited} blocks"
    steps = of_type(seen, Liquidated)
    assert len({e.subaccount for e in steps}) >= 8, "a cascade liquidates most of the longs"
    # The backstops (the vault, the fund's book, ADL) absorb the whole cascade: nothing is
    # socialized (with the real 2020-03-12 closes, compressed into an hour, and without them).
    assert deficit(venue) == 0 and not of_type(seen, LossSocialized)
    assert fund(venue) >= 0
    for name in (f"long-{i}" for i in range(16)):
        sub = venue.state.ledger.subaccounts[venue.sub(name, 1)]
        assert sub.positions or venue.engine.risk_of(sub).equity >= 0  # no hidden debt


# ── October 2025: auto-deleveraging when the fund is exhausted ──────────────────────────────


def test_adl_with_an_empty_fund_takes_exactly_the_shortfall_from_the_top_of_the_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    venue = venue_with(keeper_grace_ns=1 * NS_PER_SECOND)
    assert fund(venue) == 0
    run(venue, [venue.transfer("mallory", 6_000 * USDC, source=0, target=1)])
    run(venue, [venue.transfer("carol", 30_000 * USDC, source=0, target=1)])
    run(venue, quotes(venue, "alice", PRICE, levels=3, size=2 * ONE_BTC))
    run(venue, [venue.order("mallory", BTC_PERP, BUY, 3 * ONE_BTC, PRICE + 100 * USDC, number=1)])
    run(venue, [venue.order("carol", BTC_PERP, SELL, ONE_BTC, PRICE - 100 * USDC, number=1)])
    run(venue, [venue.order("dave", BTC_PERP, SELL, ONE_BTC, PRICE - 100 * USDC)])
    run(venue, [venue.cancel_all("alice")])  # no book to close on
    venue.prices[BTC_USD] = PRICE * 95 // 100  # −5%: mallory's 3 BTC lose 9k on 6k
    seen_bankrupt: list[tuple[SubaccountId, int, list[SubaccountId]]] = []
    engine = venue.engine

    def spy(ctx: Context, subaccount_id: SubaccountId, market: MarketState) -> None:
        equity = engine.risk_of(engine.state.ledger.subaccounts[subaccount_id]).equity
        queue = [c.subaccount_id for c in engine.adl_queue(PERP, SELL)]
        seen_bankrupt.append((subaccount_id, equity, queue))
        resolve_bankruptcy(ctx, subaccount_id, market)

    replace_engine_function(monkeypatch, resolve_bankruptcy, spy)
    seen = run(venue) + run(venue)  # the index moves: bankrupt, resolved in that prologue
    [(bankrupt, equity_before, queue)] = seen_bankrupt
    assert bankrupt == venue.sub("mallory", 1) and equity_before < 0
    shortfall = -equity_before
    adl = of_type(seen, Deleveraged)
    assert sum(e.shortfall_share_quote_quantums for e in adl) == shortfall
    assert [e.counterparty for e in adl] == [str(s) for s in queue[: len(adl)]]
    assert venue.risk("mallory", 1).equity == 0 and deficit(venue) == 0
    assert not of_type(seen, InsuranceDrawn)


def test_engine_exposes_the_documented_liquidation_bound() -> None:
    """The bound the cascade test checks, as documented in RELIABILITY.md."""
    params = LiquidationParams()
    assert (params.keeper_grace_ns, params.auction_duration_ns) == (
        2 * NS_PER_SECOND,
        30 * NS_PER_SECOND,
    )
    assert Engine.liquidatable.__doc__ or compiled(machine)  # mypyc keeps no method docstrings


# ── The same incidents with the market-making vault funded: it quotes and backstops ─────────

VAULT_CAP = 500_000 * USDC  # the default venue's BTC-PERP cap (and half of a 1M NAV)


def with_funded_vault(venue: Venue) -> list[int]:
    """carol puts 1M USDC in the vault; every later block records the vault's BTC-PERP
    position, so that a test can show its cap held throughout."""
    accepted(venue, venue.deposit_vault("carol", 1_000_000 * USDC))
    sizes: list[int] = []
    block = venue.block

    def recording(*args: object, **options: object) -> object:
        result = block(*args, **options)  # type: ignore[arg-type]
        vault = venue.state.ledger.subaccounts[VAULT]
        sizes.append(vault.position_size(PERP))
        return result

    venue.block = recording  # type: ignore[method-assign]
    return sizes


def test_jelly_with_the_vault_the_cap_holds_and_the_attacker_still_gains_nothing() -> None:
    cap = 2_000 * USDC
    venue = venue_with(insurance_draw_max_quote_quantums_per_window=cap)
    sizes = with_funded_vault(venue)
    gain, _, fund_loss = jelly(venue)
    assert gain <= cap, f"attacker gained {gain / USDC} USDC"
    assert fund_loss <= cap
    assert deficit(venue) == 0
    # Every mark in the run is at or above PRICE: the cap at PRICE bounds every position.
    assert max(abs(s) for s in sizes) * PRICE <= VAULT_CAP * ONE_BTC
    nav = venue.engine.risk_of(venue.state.ledger.subaccounts[VAULT]).equity
    assert nav >= 1_000_000 * USDC * 95 // 100, f"the vault lost {(1_000_000 * USDC - nav) / USDC}"


def test_whale_with_the_vault_nobody_pays_and_the_cap_holds() -> None:
    venue = venue_with()
    sizes = with_funded_vault(venue)
    seen = whale(venue)
    assert not of_type(seen, InsuranceDrawn)
    assert not of_type(seen, Deleveraged)
    assert deficit(venue) == 0
    assert max(abs(s) for s in sizes) * PRICE * 97 // 100 <= VAULT_CAP * ONE_BTC


def test_jelly_without_the_draw_cap_the_vault_takes_the_short_within_its_cap() -> None:
    """The mutation that lets the fund pay the attacker (no draw cap) changes outcome with the
    vault funded: the vault takes the bankrupt short at the mark before the fund's book, no more
    than its cap at the mark of the moment, holds it through the pump and back, and the
    attacker's trade does not pay."""
    venue = venue_with(insurance_draw_max_quote_quantums_per_window=10**18)
    sizes = with_funded_vault(venue)
    gain, seen, _ = jelly(venue)
    taken = [e for e in of_type(seen, Liquidated) if e.stage is LiquidationStage.VAULT]
    assert taken and all(e.keeper == str(VAULT) for e in taken)
    assert min(sizes) < 0  # it holds the short it took
    assert max(abs(s) for s in sizes) * PRICE <= VAULT_CAP * ONE_BTC
    assert gain <= 0, f"attacker gained {gain / USDC} USDC"
    assert deficit(venue) == 0
