"""Signature verification: EIP-712 PlaceOrder commands, recovered to their signers.

Usage: python benchmarks/bench_signing.py [--orders 4000] [--repeat 5] [--workers 2]

Signs --orders distinct PlaceOrder commands with eth-account as a wallet would
(``Account.sign_message(encode_typed_data(full_message=...))``), then times, median of
--repeat runs, on one core:

* clearhouse: ``signing.authenticate`` (the command's hashStruct with its type hash computed
  once, the domain separator cached, recovery by eth-keys on coincurve, EIP-2 low-s check);
* eth-account: ``Account.recover_message(encode_typed_data(full_message=typed_data(...)))``,
  eth-account's own encode + recover, on the same signed commands;

and ``signing.authenticate_batch`` on a process pool of --workers. Every recovered address is
checked against the signer.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from eth_account import Account
from eth_account.messages import encode_typed_data

from clearhouse.app import signing
from clearhouse.app.signing import Domain
from clearhouse.core.ids import Address, MarketId, Side
from clearhouse.core.messages import PlaceOrder, TimeInForce

DOMAIN = Domain(chain_id=42_161, verifying_contract="0x5fbdb2315678afecb367f032d93f642f64180aa3")
KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def orders(count: int) -> list[tuple[PlaceOrder, bytes]]:
    account = Account.from_key(KEY)
    signed = []
    for n in range(count):
        command = PlaceOrder(
            signer=Address(account.address.lower()), nonce=1_767_225_600_000 + n,
            expiry_ns=1_767_225_660_000_000_000, subaccount_number=n % 4,
            market_id=MarketId("BTC-PERP"), side=Side.BUY if n % 2 else Side.SELL,
            size_base_quantums=100_000 * (1 + n % 50), price_quantums=60_000_000_000 + n * 100_000,
            time_in_force=TimeInForce.GTC, client_order_id=n,
        )  # fmt: skip
        document = signing.typed_data(command, DOMAIN)
        signature = Account.sign_message(encode_typed_data(full_message=document), KEY).signature
        signed.append((command, bytes(signature)))
    return signed


def median_rate(run: Callable[[], None], count: int, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return count / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=4_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    items = orders(args.orders)
    signer = items[0][0].signer

    def ours() -> None:
        for command, signature in items:
            assert signing.authenticate(command, signature, DOMAIN) is command

    def theirs() -> None:
        for command, signature in items:
            document = encode_typed_data(full_message=signing.typed_data(command, DOMAIN))
            assert Account.recover_message(document, signature=signature).lower() == signer

    ours_rate = median_rate(ours, len(items), args.repeat)
    theirs_rate = median_rate(theirs, len(items), args.repeat)
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        signing.authenticate_batch(items[:64], DOMAIN, pool)  # start the workers

        def pooled() -> None:
            found = signing.authenticate_batch(items, DOMAIN, pool, chunk=256)
            assert all(f is c for f, (c, _) in zip(found, items, strict=True)) or all(
                getattr(f, "signer", None) == signer for f in found
            )

        pooled_rate = median_rate(pooled, len(items), args.repeat)
    print(
        f"signature verification, {len(items):,} EIP-712 PlaceOrders: clearhouse "
        f"{ours_rate:,.0f}/s per core, eth-account encode + recover {theirs_rate:,.0f}/s, "
        f"ratio {ours_rate / theirs_rate:.1f}x; process pool of {args.workers}: "
        f"{pooled_rate:,.0f}/s"
    )


if __name__ == "__main__":
    main()
