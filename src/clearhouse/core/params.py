"""Governed parameters as frozen dataclasses, each with ``problems()`` that names what is wrong.

Every number here is a default a venue may change (governance arrives with §10); every one has
its unit in its name. ``problems()`` returns human-readable reasons; an empty tuple means valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from clearhouse.core import limits
from clearhouse.core.ids import Address, AssetId, MarketId, OracleId
from clearhouse.core.payoffs import Payoff
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND, PPB_ONE, PPM_ONE


class MarketKind(IntEnum):
    PERPETUAL = 1
    FUTURE = 2  # dated, cash-settled at the index TWAP
    OPTION = 3  # a piecewise-linear payoff of the index at expiry: calls, puts, spreads, ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Publisher:
    address: Address
    weight: int = 1


USD = "USD"  # the currency of every index: a report quoted in USD is taken as it is


def is_quote_currency(text: str) -> bool:
    """A quote currency's name: 1-8 upper-case ASCII letters or digits (USD, USDT, USDC, ...)."""
    return (
        type(text) is str
        and 0 < len(text) <= limits.quote_length_max
        and text.isascii()
        and text.isalnum()
        and text.upper() == text
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class QuoteFeed:
    """A currency an oracle's publishers may quote in besides USD, and the oracle whose index is
    its rate: USD quantums per whole unit of the currency (6 decimals, like every index, so par
    is ``oracle.RATE_ONE`` = 1,000,000). The rate feed is an ordinary listed oracle, with its
    own publishers, quorum and staleness, and takes USD reports only."""

    quote: str  # e.g. "USDT"
    rate_oracle_id: OracleId  # e.g. "USDT-USD"


@dataclass(frozen=True, slots=True, kw_only=True)
class OracleParams:
    """How one index price is made from publishers' reports (SPEC §5)."""

    oracle_id: OracleId
    publishers: tuple[Publisher, ...]
    staleness_ns: int = 10 * NS_PER_SECOND  # a report older than this is not fresh
    band_ppm: int = 50_000  # reports further than 5% from the median are outliers
    quorum_ppm: int = 666_666  # fresh, in-band weight needed: 2 of 3 equal publishers pass
    breaker_move_ppm: int = 100_000  # a one-block move beyond 10% needs a supermajority
    breaker_supermajority_ppm: int = 750_000  # 3 of 4: one silent or lagging publisher can't veto
    breaker_hold_ns: int = 60 * NS_PER_SECOND  # a quorum holding a new price this long is accepted
    cooling_off_ns: int = 15 * NS_PER_MINUTE  # reduce-only, wider margins after a trip
    outage_ns: int = 60 * NS_PER_SECOND  # an outage longer than this arms the restart guard
    recovery_fresh_ns: int = 10 * NS_PER_SECOND  # fresh prices needed this long after one
    twap_sample_interval_ns: int = 5 * NS_PER_SECOND
    vol_sample_interval_ns: int = NS_PER_MINUTE  # EWMA on per-minute returns
    vol_lambda_ppm: int = 940_000  # RiskMetrics lambda
    vol_initial_annual_ppm: int = 600_000  # 60% until enough returns are seen
    surface_staleness_ns: int = 15 * NS_PER_MINUTE  # an older volatility surface is stale
    # Quote currencies besides USD that reports may name, each converted to USD at its rate
    # feed's index before the median (empty: USD reports only, as every rate feed must be).
    quotes: tuple[QuoteFeed, ...] = ()

    def problems(self) -> tuple[str, ...]:
        found: list[str] = list(self._quote_problems())
        if not 1 <= len(self.publishers) <= limits.publishers_per_oracle_max:
            found.append("publishers: between 1 and publishers_per_oracle_max")
        if len({p.address for p in self.publishers}) != len(self.publishers):
            found.append("publishers: duplicate address")
        if any(p.weight <= 0 or p.weight > 1_000 for p in self.publishers):
            found.append("publishers: weight in 1..1000")
        if not 0 < self.quorum_ppm <= PPM_ONE or not 0 < self.breaker_supermajority_ppm <= PPM_ONE:
            found.append("quorum_ppm and breaker_supermajority_ppm in (0, 1e6]")
        if not 0 < self.band_ppm < PPM_ONE or not 0 < self.breaker_move_ppm < PPM_ONE:
            found.append("band_ppm and breaker_move_ppm in (0, 1e6)")
        if not 0 < self.vol_lambda_ppm < PPM_ONE:
            found.append("vol_lambda_ppm in (0, 1e6)")
        if min(self.staleness_ns, self.twap_sample_interval_ns, self.vol_sample_interval_ns) <= 0:
            found.append("intervals must be positive")
        if self.breaker_hold_ns <= 0:
            found.append("breaker_hold_ns > 0")
        if self.surface_staleness_ns <= 0:
            found.append("surface_staleness_ns > 0")
        if self.recovery_fresh_ns < 0 or self.cooling_off_ns < 0 or self.outage_ns <= 0:
            found.append("recovery_fresh_ns, cooling_off_ns >= 0 and outage_ns > 0")
        return tuple(found)

    def _quote_problems(self) -> list[str]:
        found: list[str] = []
        if len(self.quotes) > limits.quotes_per_oracle_max:
            found.append("quotes: at most quotes_per_oracle_max")
        names = [q.quote for q in self.quotes]
        if not all(is_quote_currency(n) and n != USD for n in names):
            found.append("quotes: 1-8 upper-case letters or digits, and not USD (always taken)")
        if len(set(names)) != len(names):
            found.append("quotes: duplicate quote currency")
        if any(q.rate_oracle_id == self.oracle_id for q in self.quotes):
            found.append("quotes: an oracle cannot be its own rate feed")
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetParams:
    """A collateral asset. The quote asset has no oracle and weight 100%."""

    asset_id: AssetId
    quantums_per_unit: int  # 10**decimals
    oracle_id: OracleId | None = None  # None only for the quote asset
    haircut_weight_ppm: int = PPM_ONE  # collateral value = amount × price × weight
    venue_cap_quantums: int = limits.amount_quantums_max  # total deposits the venue accepts

    def problems(self) -> tuple[str, ...]:
        found: list[str] = []
        if self.quantums_per_unit <= 0 or self.quantums_per_unit > 10**18:
            found.append("quantums_per_unit in 1..1e18")
        if not 0 <= self.haircut_weight_ppm <= PPM_ONE:
            found.append("haircut_weight_ppm in [0, 1e6]")
        if not 0 < self.venue_cap_quantums <= limits.amount_quantums_max:
            found.append("venue_cap_quantums in (0, amount_quantums_max]")
        return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginParams:
    """Standard-mode margin of one market (SPEC §6)."""

    initial_margin_ppm: int = 50_000  # liquidity tier: large-cap 2%, mid 5%, small 10%
    maintenance_share_ppm: int = 750_000  # MM = 75% of IM (1.5% on a 2% market)
    oi_lower_quote_quantums: int = 10**18  # IM fraction scales linearly to 100% between caps
    oi_upper_quote_quantums: int = 2 * 10**18
    size_premium_ppm_per_sqrt_quote_unit: int = 0  # IM fraction >= k·sqrt(notional in whole USDC)
    vol_reference_annual_ppm: int = 800_000  # margins scale when EWMA vol exceeds this
    vol_multiplier_max_ppm: int = 20_000_000  # a crash may take a 2% market to 40% IM
    # The multiplier follows clamp(σ/σ_ref, 1, max) within minutes on the way up (+50% of the
    # base margin per minute: 1× to 20× in 38 minutes) and slowly on the way down (−5% of the
    # base per hour: 2× back to 1× in 20 hours, 20× in 16 days), so that margins raised by a
    # crash's first leg are still there for the next one (the anti-procyclical buffer: the
    # larger the stress, the longer it is remembered); docs/RELIABILITY.md, "Margin backtest".
    vol_multiplier_rise_ppm_per_hour: int = 30_000_000
    vol_multiplier_fall_ppm_per_hour: int = 50_000
    cooling_off_multiplier_ppm: int = 1_500_000  # wider margins after a circuit breaker

    def problems(self) -> tuple[str, ...]:
        found: list[str] = []
        if not 0 < self.initial_margin_ppm <= PPM_ONE:
            found.append("initial_margin_ppm in (0, 1e6]")
        if not 0 < self.maintenance_share_ppm < PPM_ONE:
            found.append("maintenance_share_ppm in (0, 1e6)")
        if not 0 <= self.oi_lower_quote_quantums < self.oi_upper_quote_quantums:
            found.append("0 <= oi_lower_quote_quantums < oi_upper_quote_quantums")
        if self.size_premium_ppm_per_sqrt_quote_unit < 0 or self.vol_reference_annual_ppm <= 0:
            found.append("size premium >= 0 and vol reference > 0")
        if not PPM_ONE <= self.vol_multiplier_max_ppm <= 50 * PPM_ONE:
            found.append("vol_multiplier_max_ppm in [1e6, 5e7]")
        if self.vol_multiplier_rise_ppm_per_hour <= 0:
            found.append("vol_multiplier_rise_ppm_per_hour > 0")
        if self.vol_multiplier_fall_ppm_per_hour <= 0:
            found.append("vol_multiplier_fall_ppm_per_hour > 0")
        if not PPM_ONE <= self.cooling_off_multiplier_ppm <= 10 * PPM_ONE:
            found.append("cooling_off_multiplier_ppm in [1e6, 1e7]")
        return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingParams:
    """Hourly funding of a perpetual (SPEC §8). Rates are in parts per billion."""

    interval_ns: int = NS_PER_HOUR
    interest_ppb_per_8h: int = 100_000  # 0.01% per 8 hours
    premium_clamp_ppb: int = 500_000  # clamp(interest - premium, ±0.05%)
    cap_share_of_margin_gap_ppm: int = 750_000  # |hourly rate| <= 0.75·(IMF − MMF)
    impact_notional_quote_quantums: int = 10_000 * 1_000_000

    def problems(self) -> tuple[str, ...]:
        found: list[str] = []
        if self.interval_ns <= 0 or self.impact_notional_quote_quantums <= 0:
            found.append("interval_ns and impact_notional_quote_quantums > 0")
        if not 0 <= self.interest_ppb_per_8h < PPB_ONE or self.premium_clamp_ppb < 0:
            found.append("interest_ppb_per_8h in [0, 1e9) and premium_clamp_ppb >= 0")
        if not 0 < self.cap_share_of_margin_gap_ppm <= PPM_ONE:
            found.append("cap_share_of_margin_gap_ppm in (0, 1e6]")
        return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationParams:
    """The liquidation ladder of one market (SPEC §7) and the exposure caps that keep it solvent."""

    fee_ppm: int = 15_000  # 1.5% of closed notional, capped by the remaining equity
    keeper_share_ppm: int = 500_000  # of the fee, to the keeper that sent the liquidate command
    keeper_grace_ns: int = 2 * NS_PER_SECOND  # keepers act first; after this the protocol does
    bankrupt_grace_ns: int = 0  # a bankrupt account is the protocol's at once
    close_window_ns: int = NS_PER_SECOND  # per window of block time, the book closes at most
    close_fraction_ppm: int = 200_000  # 20% of a position...
    close_notional_max_quote_quantums: int = 1_000_000 * 1_000_000  # ...and this notional
    full_close_equity_ppm: int = 666_667  # unless equity < 2/3 of MM: then all of it
    fillable_min_deviation_ppm: int = 2_000  # room to fill an account back from MM up to IM
    auction_start_discount_ppm: int = 50_000  # the Dutch auction starts at most 5% through...
    auction_start_mm_share_ppm: int = 500_000  # ...and at half the position's MM fraction...
    auction_end_discount_ppm: int = 300_000  # ...and reaches 30% after auction_duration_ns
    auction_duration_ns: int = 30 * NS_PER_SECOND
    fund_takeover_leverage_max_ppm: int = 3_000_000  # the fund's book: notional ≤ 3× its capital
    fund_unwind_deviation_ppm: int = 5_000  # it unwinds on the book no worse than 0.5% off mark
    insurance_draw_window_ns: int = NS_PER_SECOND  # per window of block time, the fund pays
    insurance_draw_max_quote_quantums_per_window: int = 1_000_000 * 1_000_000  # at most this
    open_interest_cap_base_quantums: int = 0  # 0: no cap on open interest
    position_cap_floor_base_quantums: int = 0  # 0: no cap; else max(floor, depth × multiple)
    position_cap_depth_multiple_ppm: int = 5_000_000  # 5× the thinner side's depth...
    position_cap_depth_band_ppm: int = 20_000  # ...within 2% of the mark

    def problems(self) -> tuple[str, ...]:
        found: list[str] = []
        if not 0 <= self.fee_ppm <= 100_000 or not 0 <= self.keeper_share_ppm <= PPM_ONE:
            found.append("fee_ppm in [0, 10%] and keeper_share_ppm in [0, 1e6]")
        if (
            not 0 < self.close_fraction_ppm <= PPM_ONE
            or self.close_notional_max_quote_quantums <= 0
        ):
            found.append("close_fraction_ppm in (0, 1e6] and close_notional_max > 0")
        if not 0 < self.full_close_equity_ppm <= PPM_ONE:
            found.append("full_close_equity_ppm in (0, 1e6]")
        if not 0 <= self.fillable_min_deviation_ppm < PPM_ONE:
            found.append("fillable_min_deviation_ppm in [0, 1e6)")
        if not 0 <= self.auction_start_discount_ppm <= self.auction_end_discount_ppm < PPM_ONE:
            found.append("0 <= auction_start_discount_ppm <= auction_end_discount_ppm < 1e6")
        if not 0 <= self.auction_start_mm_share_ppm <= 10 * PPM_ONE:
            found.append("auction_start_mm_share_ppm in [0, 1e7]")
        if not 0 <= self.fund_takeover_leverage_max_ppm <= 100 * PPM_ONE:
            found.append("fund_takeover_leverage_max_ppm in [0, 1e8]")
        if not 0 < self.fund_unwind_deviation_ppm < PPM_ONE:
            found.append("fund_unwind_deviation_ppm in (0, 1e6)")
        found.extend(self._time_problems())
        if min(self.open_interest_cap_base_quantums, self.position_cap_floor_base_quantums) < 0:
            found.append("caps >= 0")
        if (
            self.position_cap_depth_multiple_ppm < 0
            or not 0 < self.position_cap_depth_band_ppm < PPM_ONE
        ):
            found.append("position_cap_depth_multiple_ppm >= 0, band in (0, 1e6)")
        return tuple(found)

    def _time_problems(self) -> list[str]:
        found: list[str] = []
        if not NS_PER_SECOND <= self.auction_duration_ns <= 24 * NS_PER_HOUR:
            found.append("auction_duration_ns between 1 s and 24 h")
        if not 0 <= self.bankrupt_grace_ns <= self.keeper_grace_ns <= NS_PER_HOUR:
            found.append("0 <= bankrupt_grace_ns <= keeper_grace_ns <= 1 h")
        if not 0 < self.close_window_ns <= NS_PER_HOUR:
            found.append("close_window_ns in (0, 1 h]")
        if not 0 < self.insurance_draw_window_ns <= 24 * NS_PER_HOUR:
            found.append("insurance_draw_window_ns in (0, 24 h]")
        if self.insurance_draw_max_quote_quantums_per_window < 0:
            found.append("insurance_draw_max_quote_quantums_per_window >= 0")
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketParams:
    """A market: an instrument on an oracle, with its trading grid and risk parameters."""

    market_id: MarketId
    kind: MarketKind
    oracle_id: OracleId
    base_quantums_per_unit: int  # size grid: 1 BTC = 10**8 base quantums
    tick_quantums: int  # price grid, in quote quantums per whole base unit
    step_base_quantums: int
    min_order_base_quantums: int
    price_band_ppm: int = 100_000  # limit prices more than 10% through the index are rejected
    option_band_floor_ppm: int = 10_000  # options: the band is 10% of the mark + 1% of the index
    taker_fee_ppm: int = 500
    maker_fee_ppm: int = 100
    mark_basis_ema_ns: int = 150 * NS_PER_SECOND  # time constant of the basis EMA (block time)
    # The book moves the mark at most this far from the index: room for a real basis (a
    # perpetual trades within a few tenths of a percent of spot outside a crash), none for a
    # venue's own thin or dislocated book to liquidate anyone or to snap back in one block.
    mark_band_ppm: int = 10_000
    margin: MarginParams = field(default_factory=MarginParams)
    funding: FundingParams = field(default_factory=FundingParams)
    liquidation: LiquidationParams = field(default_factory=LiquidationParams)
    expiry_ns: int = 0  # dated futures and options only
    payoff: Payoff | None = None  # options only: the payoff per whole unit at expiry
    settlement_window_ns: int = 30 * NS_PER_MINUTE  # TWAP window before expiry
    settlement_min_samples: int = 60
    settlement_min_coverage_ppm: int = 900_000  # fresh samples must cover 90% of the window
    settlement_timeout_ns: int = 6 * NS_PER_HOUR  # then governance may set the price (§10)

    def settling(self, now_ns: int) -> bool:
        """A dated market inside its settlement window (or past expiry): most of what it will
        pay may already be fixed by the TWAP, so no vault quotes it any more."""
        return self.expiry_ns > 0 and now_ns >= self.expiry_ns - self.settlement_window_ns

    def problems(self) -> tuple[str, ...]:
        found: list[str] = [
            *self.margin.problems(),
            *self.funding.problems(),
            *self.liquidation.problems(),
        ]
        grid_ok = min(self.base_quantums_per_unit, self.tick_quantums, self.step_base_quantums) > 0
        if not grid_ok:
            found.append("base_quantums_per_unit, tick_quantums, step_base_quantums > 0")
        elif (self.step_base_quantums * self.tick_quantums) % self.base_quantums_per_unit != 0:
            # One step at one tick must be a whole number of quote quantums, so that every
            # fill's notional is exact and nothing is ever rounded between buyer and seller.
            found.append("step_base_quantums × tick_quantums must divide by base_quantums_per_unit")
        if grid_ok and self.min_order_base_quantums % self.step_base_quantums != 0:
            found.append("min_order_base_quantums must be a multiple of step_base_quantums")
        if self.min_order_base_quantums <= 0:
            found.append("min_order_base_quantums > 0")
        if not 0 < self.price_band_ppm < PPM_ONE or not 0 <= self.option_band_floor_ppm < PPM_ONE:
            found.append("price_band_ppm in (0, 1e6) and option_band_floor_ppm in [0, 1e6)")
        if not 0 <= self.maker_fee_ppm <= self.taker_fee_ppm <= 100_000:
            found.append("0 <= maker_fee_ppm <= taker_fee_ppm <= 10%")
        if not NS_PER_SECOND <= self.mark_basis_ema_ns <= 24 * NS_PER_HOUR:
            found.append("mark_basis_ema_ns between 1 s and 24 h")
        if not 0 <= self.mark_band_ppm <= self.price_band_ppm:
            found.append("mark_band_ppm in [0, price_band_ppm]")
        found.extend(self._dated_problems())
        return tuple(found)

    def _dated_problems(self) -> list[str]:
        found: list[str] = []
        if (self.payoff is None) != (self.kind is not MarketKind.OPTION):
            found.append("an option market has a payoff; no other market has one")
        elif self.payoff is not None:
            found.extend(self._payoff_problems(self.payoff))
        if self.kind is MarketKind.PERPETUAL:
            return [*found, "a perpetual has no expiry_ns"] if self.expiry_ns != 0 else found
        if self.expiry_ns <= 0:
            found.append("a future or option needs expiry_ns > 0")
        if self.settlement_window_ns <= 0 or self.settlement_min_samples <= 0:
            found.append("settlement_window_ns and settlement_min_samples > 0")
        if not 0 < self.settlement_min_coverage_ppm <= PPM_ONE:
            found.append("settlement_min_coverage_ppm in (0, 1e6]")
        if self.settlement_timeout_ns <= 0:
            found.append("settlement_timeout_ns > 0")
        return found

    def _payoff_problems(self, payoff: Payoff) -> list[str]:
        found = list(payoff.problems())
        if found:
            return found
        if not payoff.kinks:
            found.append("an option payoff needs at least one strike (else it is a future)")
        if not payoff.bounded_below():
            found.append("the payoff must be >= 0 at every price: a long never owes")
        if any(k % self.tick_quantums or k > limits.price_quantums_max for k, _ in payoff.kinks):
            found.append("strikes on the tick grid and at most price_quantums_max")
        if abs(payoff.cash_quote_quantums) > limits.price_quantums_max:
            found.append("|cash| at most price_quantums_max")
        if any(abs(u) > 16 for u in (payoff.slope_units, *(c for _, c in payoff.kinks))):
            found.append("slopes in -16..16 units")
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class VaultMarketParams:
    """One market the vault quotes and backstops (SPEC §11), with its exposure caps: the
    vault's position there never exceeds ``cap_quote_quantums`` nor ``VaultParams.
    nav_share_cap_ppm`` of its NAV at the mark (the JELLY lesson: a backstop has limits)."""

    market_id: MarketId
    size_per_level_quote_quantums: int  # what each of its quotes offers, at the mark
    cap_quote_quantums: int  # the most it may hold in this market, at the mark

    def problems(self) -> tuple[str, ...]:
        found: list[str] = []
        if not 0 < self.size_per_level_quote_quantums <= limits.amount_quantums_max:
            found.append(f"{self.market_id}: size_per_level_quote_quantums in (0, amount max]")
        if not 0 < self.cap_quote_quantums <= limits.amount_quantums_max:
            found.append(f"{self.market_id}: cap_quote_quantums in (0, amount max]")
        return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class VaultParams:
    """The protocol's market-making vault (SPEC §11, as Hyperliquid's HLP or dYdX's MegaVault):
    what it quotes, how wide, how much, how long deposits stay locked. No markets: it neither
    quotes nor backstops (deposits and withdrawals still work)."""

    markets: tuple[VaultMarketParams, ...] = ()
    half_spread_ppm: int = 1_000  # 0.1% each side of the mark at rest...
    vol_spread_ppm: int = 5_000  # ...plus 0.5% of the annualized EWMA volatility (60% → 0.3%)...
    inventory_spread_ppm: int = 2_000  # ...plus 0.2% at a full position (linear in between)
    inventory_skew_ppm: int = 3_000  # a full long moves both quotes 0.3% down, so it unwinds
    nav_share_cap_ppm: int = 500_000  # per market, a position of at most 50% of NAV
    requote_move_ppm: int = 1_000  # requote when the mark moved 0.1% since the last quote...
    requote_interval_ns: int = 30 * NS_PER_SECOND  # ...or this much block time passed
    lockup_ns: int = 24 * NS_PER_HOUR  # shares may be redeemed this long after a deposit
    auction_bid_mm_multiple_ppm: int = 1_000_000  # it bids once an auction's discount reaches
    # this multiple of the position's MM fraction (the risk it takes on, paid for)
    # Orders resting through its own quote (a bid above its ask): it trades with them, at their
    # prices, instead of leaving that side unquoted (``vault.place_quote``).
    takes_through_quotes: bool = True

    def problems(self) -> tuple[str, ...]:
        found: list[str] = [p for m in self.markets for p in m.problems()]
        ids = [m.market_id for m in self.markets]
        if len(ids) > limits.vault_markets_max or len(set(ids)) != len(ids):
            found.append("markets: unique, at most vault_markets_max")
        if not 0 < self.half_spread_ppm < 100_000:
            found.append("half_spread_ppm in (0, 10%)")
        if not 0 <= self.vol_spread_ppm <= PPM_ONE or not 0 <= self.inventory_spread_ppm < 100_000:
            found.append("vol_spread_ppm in [0, 1e6], inventory_spread_ppm in [0, 10%)")
        if not 0 <= self.inventory_skew_ppm < 100_000:
            found.append("inventory_skew_ppm in [0, 10%)")
        if not 0 < self.nav_share_cap_ppm <= 10 * PPM_ONE:
            found.append("nav_share_cap_ppm in (0, 1e7]")
        if not 0 < self.auction_bid_mm_multiple_ppm <= 100 * PPM_ONE:
            found.append("auction_bid_mm_multiple_ppm in (0, 1e8]")
        if not 0 < self.requote_move_ppm < 100_000:
            found.append("requote_move_ppm in (0, 10%)")
        if not NS_PER_SECOND <= self.requote_interval_ns <= NS_PER_HOUR:
            found.append("requote_interval_ns between 1 s and 1 h")
        if not 0 <= self.lockup_ns <= limits.vault_lockup_ns_max:
            found.append("lockup_ns in [0, vault_lockup_ns_max]")
        return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionsVaultParams:
    """The options AMM (SPEC §11): an LP vault that quotes every active option on one
    underlying around its Black-76 mark, wider as its vega and gamma exposure grow, and
    delta-hedges on a perpetual. Exposures are measured against NAV:

    - vega: quote value per volatility point (0.01) of the whole book;
    - gamma: the change of the book's delta value for a 1% move, ``Γ·S²/100``;
    - delta: the book's delta value, ``Δ·S`` (options and hedge together).

    Set once by the operator (``SetupOptionsVault``); a venue without it carries no leaf."""

    oracle_id: OracleId  # the underlying whose options it quotes
    hedge_market_id: MarketId  # a perpetual on that underlying
    quote_size_base_quantums: int  # each bid and ask, rounded down to the market's step
    half_spread_ppm: int = 20_000  # 2% of the option's mark each side at rest...
    vega_spread_ppm: int = 30_000  # ...plus up to 3% on the side that adds vega, at its cap...
    gamma_spread_ppm: int = 30_000  # ...and up to 3% on the side that adds gamma, at its cap
    vega_cap_nav_ppm: int = 20_000  # |vega per vol point| at most 2% of NAV
    gamma_cap_nav_ppm: int = 20_000  # |delta value change per 1% move| at most 2% of NAV
    delta_cap_nav_ppm: int = 200_000  # |delta value| at most 20% of NAV, hedge included
    delta_band_nav_ppm: int = 50_000  # hedge once |delta value| passes 5% of NAV
    hedge_slippage_ppm: int = 10_000  # the hedge's limit: 1% through the perpetual's mark
    requote_move_ppm: int = 20_000  # requote a side 2% of the mark (≥ a tick) off its target...
    requote_interval_ns: int = 10 * 60 * NS_PER_SECOND  # ...or this much block time passed
    lockup_ns: int = 24 * NS_PER_HOUR  # shares may be redeemed this long after a deposit

    def problems(self) -> tuple[str, ...]:
        found: list[str] = []
        if not 0 < self.quote_size_base_quantums <= limits.size_base_quantums_max:
            found.append("quote_size_base_quantums in (0, size max]")
        if not 0 < self.half_spread_ppm < 500_000:
            found.append("half_spread_ppm in (0, 50%)")
        if not 0 <= self.vega_spread_ppm < 500_000 or not 0 <= self.gamma_spread_ppm < 500_000:
            found.append("vega_spread_ppm and gamma_spread_ppm in [0, 50%)")
        caps = (self.vega_cap_nav_ppm, self.gamma_cap_nav_ppm, self.delta_cap_nav_ppm)
        if not all(0 < cap <= PPM_ONE for cap in caps):
            found.append("vega, gamma and delta caps in (0, 100%] of NAV")
        if not 0 < self.delta_band_nav_ppm < self.delta_cap_nav_ppm:
            found.append("delta_band_nav_ppm in (0, delta_cap_nav_ppm)")
        if not 0 < self.hedge_slippage_ppm < 100_000:
            found.append("hedge_slippage_ppm in (0, 10%)")
        if not 0 < self.requote_move_ppm < 500_000:
            found.append("requote_move_ppm in (0, 50%)")
        if not NS_PER_SECOND <= self.requote_interval_ns <= NS_PER_HOUR:
            found.append("requote_interval_ns between 1 s and 1 h")
        if not 0 <= self.lockup_ns <= limits.vault_lockup_ns_max:
            found.append("lockup_ns in [0, vault_lockup_ns_max]")
        return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueParams:
    """Who may do what before governance (§10) exists: the operator lists, the relayer deposits;
    and the venue's market-making vault."""

    operator: Address
    custody_relayer: Address
    # Fixed at genesis, never governed: nonce sets are dropped once it passes their newest
    # nonce (``accounts.forget_aged_nonces``), which a window that could widen would undo.
    nonce_window_past_ns: int = 2 * 24 * NS_PER_HOUR
    nonce_window_future_ns: int = 24 * NS_PER_HOUR
    vault: VaultParams = field(default_factory=VaultParams)

    def problems(self) -> tuple[str, ...]:
        return self.vault.problems()


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionSeriesParams:
    """Calls and puts listed without a vote (SPEC §2): at every block the venue keeps the next
    weekly and monthly expiries listed, with strikes around the index when an expiry is first
    listed. Market ids read ``<prefix>-<yyyymmdd>-<strike>-<C|P>``."""

    oracle_id: OracleId
    prefix: str  # e.g. "BTC"
    base_quantums_per_unit: int
    tick_quantums: int
    step_base_quantums: int
    min_order_base_quantums: int
    strike_step_quantums: int  # strikes are multiples of this
    strikes_each_side: int = 5  # strikes below and above the one nearest the index
    weekly_expiries: int = 2  # the next Fridays
    monthly_expiries: int = 2  # the last Fridays of the next months
    expiry_hour_utc: int = 8
    taker_fee_ppm: int = 300
    maker_fee_ppm: int = 100
    liquidation: LiquidationParams = field(default_factory=LiquidationParams)

    def problems(self) -> tuple[str, ...]:
        found: list[str] = list(self.liquidation.problems())
        if not (0 < len(self.prefix) <= 8 and self.prefix.isalnum() and self.prefix.isupper()):
            found.append("prefix: 1-8 upper-case letters or digits")
        if min(self.base_quantums_per_unit, self.tick_quantums, self.step_base_quantums) <= 0:
            found.append("base_quantums_per_unit, tick_quantums, step_base_quantums > 0")
        elif self.strike_step_quantums <= 0 or self.strike_step_quantums % self.tick_quantums:
            found.append("strike_step_quantums > 0, a multiple of tick_quantums")
        if not 1 <= 2 * self.strikes_each_side + 1 <= limits.option_series_strikes_max:
            found.append("2 × strikes_each_side + 1 in 1..option_series_strikes_max")
        expiries = self.weekly_expiries + self.monthly_expiries
        if min(self.weekly_expiries, self.monthly_expiries) < 0 or not 0 < expiries <= (
            limits.option_series_expiries_max
        ):
            found.append("weekly + monthly expiries in 1..option_series_expiries_max")
        if not 0 <= self.expiry_hour_utc < 24:
            found.append("expiry_hour_utc in 0..23")
        if not 0 <= self.maker_fee_ppm <= self.taker_fee_ppm <= 100_000:
            found.append("0 <= maker_fee_ppm <= taker_fee_ppm <= 10%")
        if self.min_order_base_quantums <= 0 or (
            self.step_base_quantums > 0 and self.min_order_base_quantums % self.step_base_quantums
        ):
            found.append("min_order_base_quantums > 0, a multiple of step_base_quantums")
        if self.strike_step_quantums > limits.price_quantums_max // 100:
            found.append("strike_step_quantums at most price_quantums_max / 100")
        return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class GovernanceParams:
    """Who governs a venue (SPEC §10): a council of ``council`` keys approving proposals
    ``threshold`` of N, each approved proposal waiting ``timelock_ns`` before anyone may
    execute it (and void ``execution_window_ns`` after); a risk steward moving one parameter by
    at most its step per cooldown without the timelock; a guardian that may only reduce risk.
    Once a venue has governance, its operator lists nothing more: only proposals do."""

    council: tuple[Address, ...]
    threshold: int
    steward: Address | None = None
    guardian: Address | None = None
    timelock_ns: int = 48 * NS_PER_HOUR
    execution_window_ns: int = 14 * 24 * NS_PER_HOUR  # a queued proposal not executed by then
    proposal_lifetime_ns: int = 14 * 24 * NS_PER_HOUR  # a pending one not queued by then
    phase_in_ns: int = 24 * NS_PER_HOUR  # margin increases reach existing positions over this
    dispute_window_ns: int = 24 * NS_PER_HOUR  # a fallback settlement price may be disputed

    def problems(self) -> tuple[str, ...]:
        found: list[str] = []
        if not 1 <= len(self.council) <= limits.council_members_max:
            found.append("council: between 1 and council_members_max keys")
        if len(set(self.council)) != len(self.council):
            found.append("council: duplicate key")
        if not 1 <= self.threshold <= len(self.council):
            found.append("threshold in 1..len(council)")
        if not NS_PER_HOUR <= self.timelock_ns <= 30 * 24 * NS_PER_HOUR:
            found.append("timelock_ns between 1 h and 30 days")
        if not NS_PER_HOUR <= self.execution_window_ns <= 90 * 24 * NS_PER_HOUR:
            found.append("execution_window_ns between 1 h and 90 days")
        if not NS_PER_HOUR <= self.proposal_lifetime_ns <= 90 * 24 * NS_PER_HOUR:
            found.append("proposal_lifetime_ns between 1 h and 90 days")
        if not 0 <= self.phase_in_ns <= 30 * 24 * NS_PER_HOUR:
            found.append("phase_in_ns between 0 and 30 days")
        if not NS_PER_HOUR <= self.dispute_window_ns <= 30 * 24 * NS_PER_HOUR:
            found.append("dispute_window_ns between 1 h and 30 days")
        return tuple(found)
