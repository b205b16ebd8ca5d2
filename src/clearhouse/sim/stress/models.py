"""A scenario's synthetic prices: the ``[prices]`` table as a model of ``paths``, sampled once
per path from the path's seed, with an optional deterministic crash on top, and seen by each
publisher through its own basis and noise (``paths.venue_feeds``).

``[prices]`` keys by model (besides ``start_price``, ``venues``, ``basis_ppm_std``,
``noise_ppm_std``): gbm ``annual_vol``, ``annual_drift``; merton those and ``jumps_per_year``,
``jump_mean``, ``jump_std``; garch ``omega``, ``alpha``, ``beta``, ``mu``, ``step_seconds`` — or
``files`` (candle files) to fit them to; regimes ``regimes`` ([[vol, drift], ...]) and
``switches_per_year``. Any model: ``crash_drop`` (0.3 = −30%), ``crash_at_hours`` (after the
start of the measured window), ``crash_over_minutes`` (0: a gap).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from clearhouse.core.errors import ConfigError
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND
from clearhouse.sim.solvency import PricePath, read_bars
from clearhouse.sim.stress import paths
from clearhouse.sim.stress.scenario import Prices, Scenario
from clearhouse.sim.venue import USDC

CRASH_KEYS = ("crash_drop", "crash_at_hours", "crash_over_minutes")
_KEYS = {
    "gbm": ("annual_vol", "annual_drift"),
    "merton": ("annual_vol", "annual_drift", "jumps_per_year", "jump_mean", "jump_std"),
    "garch": ("omega", "alpha", "beta", "mu", "step_seconds"),
    "regimes": ("regimes", "switches_per_year"),
}
_OPTIONAL = {"annual_drift": 0.0}
FIT_DAYS_MAX = 400  # candles read to fit GARCH: about a year before the window


def check(prices: Prices) -> None:
    """Refuse bad parameters when the scenario is read, naming the key."""
    model_of(prices)
    crash_of(prices, 0)


def model_of(prices: Prices) -> paths.PriceModel:
    parameters = {k: v for k, v in prices.parameters.items() if k not in CRASH_KEYS}
    if prices.model == "garch" and prices.files:
        return _fitted_garch(prices, parameters)
    names = _KEYS[prices.model]
    unknown = sorted(set(parameters) - set(names))
    if unknown:
        raise ConfigError(f"scenario prices.{unknown[0]}: unknown key for model {prices.model}")
    values = {name: _number_or_list(parameters, name) for name in names}
    model = _build(prices.model, values)
    problems = model.problems()
    if problems:
        raise ConfigError(f"scenario prices: {problems[0]}")
    return model


def _build(kind: str, values: dict[str, Any]) -> paths.PriceModel:
    if kind == "gbm":
        return paths.Gbm(values["annual_vol"], values["annual_drift"])
    if kind == "merton":
        return paths.MertonJumps(**values)
    if kind == "garch":
        step_ns = round(values.pop("step_seconds") * NS_PER_SECOND)
        return paths.Garch11(step_ns=step_ns, **values)
    regimes = values["regimes"]
    if not isinstance(regimes, list) or not all(
        isinstance(r, list) and len(r) == 2 for r in regimes
    ):
        raise ConfigError("scenario prices.regimes: a list of [annual_vol, annual_drift]")
    return paths.RegimeSwitch(
        tuple((float(v), float(d)) for v, d in regimes),
        tuple(float(x) for x in values["switches_per_year"]),
    )


def _number_or_list(parameters: Mapping[str, object], name: str) -> Any:
    if name not in parameters:
        if name in _OPTIONAL:
            return _OPTIONAL[name]
        raise ConfigError(f"scenario prices.{name}: missing")
    value = parameters[name]
    if isinstance(value, list):
        return value
    if type(value) not in (int, float) or not math.isfinite(float(value)):  # type: ignore[arg-type]
        raise ConfigError(f"scenario prices.{name}: expected a number")
    return float(value)  # type: ignore[arg-type]


def _fitted_garch(prices: Prices, parameters: Mapping[str, object]) -> paths.Garch11:
    """GARCH(1,1) fitted to the closes of the first candle file (all of it, up to a year)."""
    if parameters:
        raise ConfigError(f"scenario prices.{sorted(parameters)[0]}: give files or parameters")
    try:
        bars = read_bars(prices.files[0], start_ns=0, end_ns=2**62)
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"scenario prices.files: {error}") from None
    times = sorted(bars.bars)[-FIT_DAYS_MAX * 24 * 60 :]
    closes = [bars.bars[t][3] for t in times]
    returns = paths.log_returns_on_grid(times, closes, bars.cadence_ns)
    try:
        return paths.fit_garch(returns, step_ns=bars.cadence_ns)
    except ValueError as error:
        raise ConfigError(f"scenario prices.files: {error}") from None


def crash_of(prices: Prices, start_ns: int) -> paths.Crash | None:
    raw = prices.parameters
    if "crash_drop" not in raw:
        if any(k in raw for k in CRASH_KEYS):
            raise ConfigError("scenario prices.crash_drop: missing (the crash's size)")
        return None
    drop = _number_or_list(raw, "crash_drop")
    at_hours = _number_or_list(raw, "crash_at_hours") if "crash_at_hours" in raw else 1.0
    over_minutes = _number_or_list(raw, "crash_over_minutes") if "crash_over_minutes" in raw else 0
    crash = paths.Crash(
        drop, round(over_minutes * NS_PER_MINUTE), start_ns + round(at_hours * NS_PER_HOUR)
    )
    if crash.problems():
        raise ConfigError(f"scenario prices: {crash.problems()[0]}")
    return crash


def synthetic_feeds(scenario: Scenario, seed: int, start_ns: int) -> list[PricePath]:
    """The publishers' prices of one path: the model sampled from the path's seed once per
    block from an hour before the warm-up to the end of the window, the crash on it, and one
    view per venue."""
    prices, settings = scenario.prices, scenario.settings
    rng = np.random.default_rng(seed)
    first_ns = start_ns - settings.warmup_ns - NS_PER_HOUR
    end_ns = start_ns + round((settings.hours + 1) * NS_PER_HOUR)
    step_ns = settings.block_ns
    path: PricePath = model_of(prices).sample(
        rng, start_ns=first_ns, end_ns=end_ns, step_ns=step_ns,
        start_price_quantums=round(prices.start_price * USDC),
    )  # fmt: skip
    crash = crash_of(prices, start_ns)
    if crash is not None:
        path = crash.over(path)
    return list(paths.venue_feeds(
        path, venues=prices.venues, basis_ppm_std=prices.basis_ppm_std,
        noise_ppm_std=prices.noise_ppm_std, rng=rng, start_ns=first_ns, end_ns=end_ns,
        step_ns=step_ns,
    ))  # fmt: skip
