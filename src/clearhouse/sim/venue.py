"""A default venue: the genesis commands that list its oracles, assets and markets.

BTC-PERP, ETH-PERP and a BTC dated future on two oracles served by four publishers, with USDC
as the quote asset and BTC and ETH accepted as haircut collateral. Publishers may quote BTC and
ETH in USD or in USDT; USDT-USD, the rate the venue converts USDT reports at, is an oracle of
its own, served by the same publishers. Addresses are derived from
names, so a venue built from the same settings is the same venue, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearhouse.core import surface
from clearhouse.core.hashing import keccak
from clearhouse.core.ids import Address, AssetId, MarketId, OracleId
from clearhouse.core.messages import (
    Command,
    ListAsset,
    ListMarket,
    ListOptionSeries,
    ListOracle,
    ReportSurface,
    SetupOptionsVault,
)
from clearhouse.core.params import (
    AssetParams,
    FundingParams,
    LiquidationParams,
    MarginParams,
    MarketKind,
    MarketParams,
    OptionSeriesParams,
    OptionsVaultParams,
    OracleParams,
    Publisher,
    QuoteFeed,
    VaultMarketParams,
    VaultParams,
    VenueParams,
)
from clearhouse.core.payoffs import Payoff, call, call_spread
from clearhouse.core.series import standard_expiries
from clearhouse.core.surface import SviSlice
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MS, NS_PER_SECOND

USDC = 1_000_000  # quantums per USDC
GENESIS_NS = 1_767_225_600 * NS_PER_SECOND  # 2026-01-01T00:00:00Z: a fixed, reproducible start
BTC_SATS = 100_000_000
ETH_GWEI = 1_000_000_000
USDT_USD = OracleId("USDT-USD")  # USD quantums per USDT: 1,000,000 at par (``oracle.RATE_ONE``)
USDT_QUOTE = QuoteFeed(quote="USDT", rate_oracle_id=USDT_USD)


def address_of(name: str) -> Address:
    """A deterministic address for a named actor (demo and tests only; real keys sign in §3)."""
    return Address("0x" + keccak(name.encode())[-20:].hex())


@dataclass(frozen=True, slots=True)
class VenueSpec:
    genesis_ns: int
    future_expiry_ns: int
    publishers: tuple[Address, ...]
    operator: Address
    relayer: Address
    oracle_staleness_ns: int = 10 * NS_PER_SECOND
    options: bool = False  # BTC options (two short-dated ones, the default series) and the AMM
    series_strikes_each_side: int = 3

    @property
    def venue(self) -> VenueParams:
        return VenueParams(operator=self.operator, custody_relayer=self.relayer, vault=vault())

    @property
    def future_market_id(self) -> MarketId:
        hours = (self.future_expiry_ns - self.genesis_ns) // NS_PER_HOUR
        return MarketId(f"BTC-FUT-{hours}H")


def vault() -> VaultParams:
    """The venue's market-making vault: it quotes and backstops both perpetuals, each
    position capped at 500k (BTC) or 250k (ETH) USDC and at half its NAV; shares locked for
    an hour after a deposit. Inert until someone deposits (an empty vault quotes nothing)."""
    return VaultParams(
        markets=(
            VaultMarketParams(
                market_id=MarketId("BTC-PERP"), size_per_level_quote_quantums=20_000 * USDC,
                cap_quote_quantums=500_000 * USDC,
            ),
            VaultMarketParams(
                market_id=MarketId("ETH-PERP"), size_per_level_quote_quantums=10_000 * USDC,
                cap_quote_quantums=250_000 * USDC,
            ),
        ),
        lockup_ns=NS_PER_HOUR,
    )  # fmt: skip


def default_venue(
    genesis_ns: int,
    *,
    future_expiry_hours: int = 20,
    publishers: int = 4,
    oracle_staleness_ns: int = 10 * NS_PER_SECOND,
    options: bool = False,
    series_strikes_each_side: int = 3,
) -> VenueSpec:
    return VenueSpec(
        options=options,
        series_strikes_each_side=series_strikes_each_side,
        oracle_staleness_ns=oracle_staleness_ns,
        genesis_ns=genesis_ns,
        future_expiry_ns=genesis_ns + future_expiry_hours * NS_PER_HOUR,
        publishers=tuple(address_of(f"publisher-{i}") for i in range(publishers)),
        operator=address_of("operator"),
        relayer=address_of("custody-relayer"),
    )


def genesis_commands(spec: VenueSpec) -> list[Command]:
    """Listing commands, signed by the operator, nonces counting up from the genesis time."""
    base_nonce = spec.genesis_ns // NS_PER_MS
    expiry = spec.genesis_ns + NS_PER_HOUR
    publishers = tuple(Publisher(address=a) for a in spec.publishers)
    staleness = spec.oracle_staleness_ns
    quotes = (USDT_QUOTE,)
    bodies: list[OracleParams | AssetParams | MarketParams] = [
        OracleParams(oracle_id=USDT_USD, publishers=publishers, staleness_ns=staleness),
        OracleParams(
            oracle_id=OracleId("BTC-USD"),
            publishers=publishers,
            staleness_ns=staleness,
            quotes=quotes,
        ),
        OracleParams(
            oracle_id=OracleId("ETH-USD"),
            publishers=publishers,
            staleness_ns=staleness,
            quotes=quotes,
        ),
        AssetParams(asset_id=AssetId("USDC"), quantums_per_unit=USDC),
        AssetParams(
            asset_id=AssetId("BTC"),
            quantums_per_unit=BTC_SATS,
            oracle_id=OracleId("BTC-USD"),
            haircut_weight_ppm=900_000,
            venue_cap_quantums=1_000 * BTC_SATS,
        ),
        AssetParams(
            asset_id=AssetId("ETH"),
            quantums_per_unit=ETH_GWEI,
            oracle_id=OracleId("ETH-USD"),
            haircut_weight_ppm=850_000,
            venue_cap_quantums=10_000 * ETH_GWEI,
        ),
        *market_params(spec),
    ]
    commands: list[Command] = []
    for offset, body in enumerate(bodies):
        common = {"signer": spec.operator, "nonce": base_nonce + offset, "expiry_ns": expiry}
        if isinstance(body, OracleParams):
            commands.append(ListOracle(params=body, **common))  # type: ignore[arg-type]
        elif isinstance(body, AssetParams):
            commands.append(ListAsset(params=body, **common))  # type: ignore[arg-type]
        else:
            commands.append(ListMarket(params=body, **common))  # type: ignore[arg-type]
    if spec.options:
        series = btc_option_series(spec.series_strikes_each_side)
        commands.append(ListOptionSeries(
            signer=spec.operator, nonce=base_nonce + len(bodies), expiry_ns=expiry, params=series
        ))  # fmt: skip
        commands.append(SetupOptionsVault(
            signer=spec.operator, nonce=base_nonce + len(bodies) + 1, expiry_ns=expiry,
            params=options_vault(),
        ))  # fmt: skip
    return commands


def options_vault() -> OptionsVaultParams:
    """The options AMM on BTC: 0.1 BTC a side on every active BTC option, 4% of the mark
    either side at rest; a side is requoted once it is 4% of the mark from where it would be
    (a placement is a margin check of its whole book); hedged on BTC-PERP once its delta
    value passes 1% of NAV; caps and the lock-up at their defaults. Inert until someone
    deposits."""
    return OptionsVaultParams(
        oracle_id=OracleId("BTC-USD"), hedge_market_id=MarketId("BTC-PERP"),
        quote_size_base_quantums=BTC_SATS // 10, half_spread_ppm=40_000, requote_move_ppm=40_000,
        delta_band_nav_ppm=10_000,
    )  # fmt: skip


def market_params(spec: VenueSpec) -> list[MarketParams]:
    """The venue's markets, in listing order (the default series lists itself later)."""
    markets = [btc_perp(), eth_perp(), btc_future(spec.future_market_id, spec.future_expiry_ns)]
    if spec.options:
        expiry = spec.genesis_ns + 15 * 60 * NS_PER_SECOND
        markets += [
            short_option(MarketId("BTC-15M-60000-C"), call(60_000 * USDC), expiry),
            short_option(
                MarketId("BTC-15M-58-62-CS"), call_spread(58_000 * USDC, 62_000 * USDC), expiry
            ),
        ]
    return markets


def short_option(market_id: MarketId, payoff: Payoff, expiry_ns: int) -> MarketParams:
    """An option that expires within a simulation run, settled on a 5-minute TWAP."""
    return MarketParams(
        market_id=market_id, kind=MarketKind.OPTION, oracle_id=OracleId("BTC-USD"),
        base_quantums_per_unit=BTC_SATS, tick_quantums=USDC, step_base_quantums=BTC_SATS // 100,
        min_order_base_quantums=BTC_SATS // 100, expiry_ns=expiry_ns, payoff=payoff,
        settlement_window_ns=5 * 60 * NS_PER_SECOND, settlement_min_samples=10,
    )  # fmt: skip


def btc_perp() -> MarketParams:
    return MarketParams(
        market_id=MarketId("BTC-PERP"), kind=MarketKind.PERPETUAL, oracle_id=OracleId("BTC-USD"),
        base_quantums_per_unit=BTC_SATS, tick_quantums=USDC // 10, step_base_quantums=10_000,
        min_order_base_quantums=100_000,
        margin=MarginParams(
            initial_margin_ppm=20_000, oi_lower_quote_quantums=50_000_000 * USDC,
            oi_upper_quote_quantums=100_000_000 * USDC, size_premium_ppm_per_sqrt_quote_unit=20,
        ),
        funding=FundingParams(impact_notional_quote_quantums=20_000 * USDC),
        liquidation=LiquidationParams(fee_ppm=5_000),  # below the 1.2% MM of a 2% IM market
    )  # fmt: skip


def eth_perp() -> MarketParams:
    return MarketParams(
        market_id=MarketId("ETH-PERP"), kind=MarketKind.PERPETUAL, oracle_id=OracleId("ETH-USD"),
        base_quantums_per_unit=ETH_GWEI, tick_quantums=USDC // 100, step_base_quantums=1_000_000,
        min_order_base_quantums=10_000_000,
        margin=MarginParams(
            initial_margin_ppm=50_000, oi_lower_quote_quantums=20_000_000 * USDC,
            oi_upper_quote_quantums=40_000_000 * USDC, size_premium_ppm_per_sqrt_quote_unit=30,
        ),
        funding=FundingParams(impact_notional_quote_quantums=10_000 * USDC),
    )  # fmt: skip


def btc_future(market_id: MarketId, expiry_ns: int) -> MarketParams:
    return MarketParams(
        market_id=market_id, kind=MarketKind.FUTURE, oracle_id=OracleId("BTC-USD"),
        base_quantums_per_unit=BTC_SATS, tick_quantums=USDC // 10, step_base_quantums=10_000,
        min_order_base_quantums=100_000, expiry_ns=expiry_ns,
        margin=MarginParams(
            initial_margin_ppm=50_000, oi_lower_quote_quantums=20_000_000 * USDC,
            oi_upper_quote_quantums=40_000_000 * USDC,
        ),
        funding=FundingParams(impact_notional_quote_quantums=10_000 * USDC),
    )  # fmt: skip


def btc_option_series(strikes_each_side: int = 3) -> OptionSeriesParams:
    """BTC calls and puts: two weeklies and two monthlies, strikes 2,000 USDC apart."""
    return OptionSeriesParams(
        oracle_id=OracleId("BTC-USD"), prefix="BTC", base_quantums_per_unit=BTC_SATS,
        tick_quantums=USDC, step_base_quantums=BTC_SATS // 100,
        min_order_base_quantums=BTC_SATS // 100, strike_step_quantums=2_000 * USDC,
        strikes_each_side=strikes_each_side,
    )  # fmt: skip


def list_option_series(operator: Address, nonce: int, expiry_ns: int) -> ListOptionSeries:
    return ListOptionSeries(
        signer=operator, nonce=nonce, expiry_ns=expiry_ns, params=btc_option_series()
    )


def synthetic_surface(
    timestamp_ns: int, *, atm_vol: float = 0.6, skew: float = -0.25, wings: float = 0.2,
    smoothness: float = 0.2, forward_basis_ppm: int | None = None,
) -> tuple[SviSlice, ...]:  # fmt: skip
    """A smile at the default series' expiries (and 90 days out): raw SVI with total variance
    proportional to time, w(k, T) = T·(a + b·(ρk + √(k² + s²))), so that no two slices can
    cross (no calendar arbitrage); ``a`` puts the at-the-money volatility at ``atm_vol``.
    Each slice reports ``forward_basis_ppm`` as its expiry's forward (None: none reported)."""
    expiries = standard_expiries(timestamp_ns, btc_option_series())
    expiries.append(max(expiries[-1] + NS_PER_HOUR, timestamp_ns + 90 * 24 * NS_PER_HOUR))
    level = atm_vol * atm_vol - wings * smoothness
    slices = []
    for expiry_ns in expiries:
        years = surface.years(expiry_ns - timestamp_ns)
        slices.append(SviSlice(
            expiry_ns=expiry_ns, a_e9=round(years * level * surface.E9),
            b_e9=round(years * wings * surface.E9), rho_e9=round(skew * surface.E9), m_e9=0,
            s_e9=round(smoothness * surface.E9), forward_basis_ppm=forward_basis_ppm,
        ))  # fmt: skip
    return tuple(slices)


def report_surface(
    publisher: Address, nonce: int, timestamp_ns: int, slices: tuple[SviSlice, ...]
) -> ReportSurface:
    return ReportSurface(
        signer=publisher, nonce=nonce, expiry_ns=timestamp_ns + NS_PER_HOUR,
        oracle_id=OracleId("BTC-USD"), timestamp_ns=timestamp_ns, slices=slices,
    )  # fmt: skip
