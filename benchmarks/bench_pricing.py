"""Black-76 price + 4 Greeks of 1M options, and implied volatility of 100k options: Clearhouse
against py_vollib_vectorized (numba) in the same process, on the same seeded inputs.

    .venv/bin/python benchmarks/bench_pricing.py

Medians of 5 runs after a warm-up (numba compiles on first call). Prices use the Black model on
the forward on both sides; py_vollib_vectorized's Greeks for the Black model fail to run (0.1.1),
so its Greeks are Black-Scholes-Merton with S = F and q = r, the same model (its vega is per 1%
and its theta per day: a scale, not more work). The IV accuracy of each side is measured against
the volatility that priced the options, where the OTM premium is above 1e-12 of the forward.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
import py_vollib_vectorized as pvv

from clearhouse.pricing import black76
from clearhouse.pricing.implied import implied_volatility

RUNS = 5
RATE = 0.0  # py_vollib_vectorized's Black price is undiscounted: compare at r = 0


def population(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    forward = np.full(n, 100.0)
    strike = 100.0 * np.exp(rng.uniform(-1.0, 1.0, n))
    expiry = rng.choice([1 / 365, 7 / 365, 30 / 365, 0.25, 1.0, 2.0], n)
    vol = rng.uniform(0.1, 1.5, n)
    is_call = rng.random(n) < 0.5
    return forward, strike, expiry, vol, is_call


def median_seconds(work: Callable[[], object]) -> float:
    work()  # warm-up
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def greeks_benchmark() -> None:
    n = 1_000_000
    f, k, t, s, c = population(n, 1)
    discount = np.exp(-RATE * t)
    flags = np.where(c, "c", "p")

    def ours() -> object:
        return black76.greeks(c, f, k, t, s, discount)

    def peer() -> object:
        return [
            pvv.vectorized_black(flags, f, k, t, RATE, s, return_as="numpy"),
            *(
                greek(
                    flags, f, k, t, RATE, s, q=RATE, model="black_scholes_merton", return_as="numpy"
                )
                for greek in (
                    pvv.vectorized_delta,
                    pvv.vectorized_gamma,
                    pvv.vectorized_vega,
                    pvv.vectorized_theta,
                )
            ),
        ]

    mine, theirs = median_seconds(ours), median_seconds(peer)
    same = np.max(np.abs(black76.price(c, f, k, t, s, discount) - peer()[0]))
    print(f"price + 4 Greeks, {n:,} options: clearhouse {n / mine / 1e6:.2f}M/s, "
          f"py_vollib_vectorized {n / theirs / 1e6:.2f}M/s, ratio {theirs / mine:.1f}x "
          f"(max price difference {same:.1e})")  # fmt: skip


def implied_benchmark() -> None:
    n = 100_000
    f, k, t, s, c = population(n, 2)
    discount = np.exp(-RATE * t)
    prices = black76.price(c, f, k, t, s, discount)
    flags = np.where(c, "c", "p")
    otm = black76.price(k >= f, f, k, t, s, discount)
    informative = (otm > 1e-12 * f) & ((c == (k >= f)) | (otm > 1e-6 * prices))

    def ours() -> object:
        return implied_volatility(prices, c, f, k, t, discount)

    def peer() -> np.ndarray:
        result = pvv.vectorized_implied_volatility_black(
            prices, f, k, RATE, t, flags, return_as="numpy"
        )
        return np.asarray(result, dtype=float)

    mine, theirs = median_seconds(ours), median_seconds(peer)
    our_error = np.nanmax(
        np.abs(implied_volatility(prices, c, f, k, t, discount)[0] - s)[informative]
    )
    peer_error = np.nanmax(np.abs(peer() - s)[informative])
    print(f"implied volatility, {n:,} options: clearhouse {n / mine / 1e6:.2f}M/s "
          f"(max error {our_error:.1e}), py_vollib_vectorized {n / theirs / 1e6:.2f}M/s "
          f"(max error {peer_error:.1e}), ratio {theirs / mine:.2f}x")  # fmt: skip


if __name__ == "__main__":
    warnings.filterwarnings("ignore", module="py_vollib_vectorized")  # it lists each ITM row
    greeks_benchmark()
    implied_benchmark()
