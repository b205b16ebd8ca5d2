"""Option pricing: Black-76 prices, Greeks and implied volatility, vectorized with numpy.

This package works in floats and lives outside ``clearhouse.core``: it serves quotes, risk
reports and the volatility surface; the deterministic engine never stores a float.
"""
