"""Mutation proofs for the solvency guards: switch each guard off in a scratch copy of the source,
run the test that relies on it, and show that the test fails; the copy is thrown away.

    .venv/bin/python tests/scenarios/mutate_guards.py

Each mutation is a literal edit of a module of ``src/clearhouse/core/engine/``; a test that
still passed with its guard removed would be a test that proves nothing. Where a mutation names
an attack that its guard stops (``pays``), that test runs too, in the mutated copy, with
``CLEARHOUSE_GUARD_REMOVED`` set to the guard's tag, and must pass: the attacker is paid once the
guard is gone. The results are recorded in ``docs/RELIABILITY.md``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE = "src/clearhouse/core/engine/"
SUBACCOUNTS = ENGINE + "subaccounts.py"
LADDER = ENGINE + "liquidation/ladder.py"
INSOLVENCY = ENGINE + "liquidation/insolvency.py"
STATUS = ENGINE + "liquidation/status.py"
TRADES = ENGINE + "trading/trades.py"
PRICES = ENGINE + "prices.py"
MARKS = ENGINE + "marks.py"
FORWARDS = ENGINE + "forwards.py"
INCIDENTS = "tests/scenarios/test_incidents.py::"
LIQUIDATION = "tests/unit/core/test_liquidation.py::"
ATTACKS = "tests/sim/stress/test_attacks.py::"
ROUND11 = "tests/scenarios/test_economic_attacks_round11.py::"
ROUND12 = "tests/scenarios/test_economic_attacks_round12.py::"
ORDERS = ENGINE + "trading/orders.py"
OPTIONS_VAULT = ENGINE + "options_vault.py"

RELEASE_CHECKS = """    if subaccount is None or subaccount.balance(asset_id) < amount:
        raise Rejected(RejectReason.INSUFFICIENT_FUNDS)
    risk = risk_of(ctx, subaccount)
    if not risk.usable:
        raise Rejected(RejectReason.ORACLE_STALE)
    check_withdrawals_open(ctx, subaccount)
    if asset_id == QUOTE_ASSET:
        if amount > risk.withdrawable_quote:"""


def _release_down_to(floor: str, *, pause: bool) -> str:
    """Mango's (2022) and Hyperliquid's (March 2025) rule: collateral may leave down to a margin
    floor, unrealized profit included, the quote balance going negative against it."""
    return f"""    if subaccount is None:
        raise Rejected(RejectReason.INSUFFICIENT_FUNDS)
    risk = risk_of(ctx, subaccount)
    if not risk.usable:
        raise Rejected(RejectReason.ORACLE_STALE)
{"    check_withdrawals_open(ctx, subaccount)" if pause else ""}
    if asset_id == QUOTE_ASSET:
        if amount > risk.equity - risk.{floor}:"""


@dataclass(frozen=True)
class Mutation:
    name: str
    edits: tuple[tuple[str, str, str], ...]  # (engine file, original text, replacement)
    test: str
    pays: tuple[str, str] | None = None  # (guard's tag, test that passes only without it)


MEAN_INDEX = """    result = release_held_price(ctx, oracle, result)
    import dataclasses
    fresh = [
        r.price_quantums for r in oracle.reports.values()
        if now - r.timestamp_ns <= params.staleness_ns
    ]
    if fresh and result.status is PriceStatus.FRESH:
        result = dataclasses.replace(result, price_quantums=sum(fresh) // len(fresh))"""

MUTATIONS = (
    Mutation(
        "Mango: withdraw up to IM with unrealized profit, no underwater pause, and a bankrupt "
        "account waits for keepers",
        (
            (SUBACCOUNTS, RELEASE_CHECKS, _release_down_to("initial", pause=False)),
            (
                LADDER,
                "        grace = ctx.state.markets[market_id].params.liquidation.bankrupt_grace_ns",
                "        pass",
            ),
        ),
        INCIDENTS + "test_mango_attacker_cannot_withdraw_paper_profit",
    ),
    Mutation(
        "JELLY: no cap per window on insurance draws",
        (
            (
                INSOLVENCY,
                "    left = params.insurance_draw_max_quote_quantums_per_window"
                " - market.insurance_drawn_in(window)",
                "    left = 10**30",
            ),
        ),
        INCIDENTS + "test_jelly_backstop_loss_is_capped_and_the_attacker_pays_through_adl",
    ),
    Mutation(
        "March 2025 whale: withdraw down to MM with unrealized profit",
        ((SUBACCOUNTS, RELEASE_CHECKS, _release_down_to("maintenance", pause=True)),),
        INCIDENTS + "test_whale_cannot_withdraw_below_initial_margin_so_the_fund_pays_nothing",
    ),
    Mutation(
        "YFI: no open-interest cap and no depth-relative position cap",
        (
            (
                TRADES,
                "    if params.position_cap_floor_base_quantums == 0:\n        return None",
                "    return None",
            ),
            (
                TRADES,
                "    if params.open_interest_cap_base_quantums:\n        growth",
                "    if False:\n        growth",
            ),
        ),
        INCIDENTS + "test_yfi_open_interest_and_position_caps_stop_the_corner",
    ),
    Mutation(
        "sKRW / Compound DAI: the index is the mean of fresh reports",
        ((PRICES, "    result = release_held_price(ctx, oracle, result)", MEAN_INDEX),),
        INCIDENTS + "test_one_publisher_outlier_moves_nothing",
    ),
    Mutation(
        "restart guard: liquidate on the first prices after an outage",
        (
            (
                STATUS,
                "    return not any(ctx.state.oracles[o].restart_guard for o in oracle_ids)",
                "    return True",
            ),
        ),
        LIQUIDATION + "test_no_liquidation_on_the_first_prices_after_an_outage",
    ),
    Mutation(
        "stale prices: liquidate on a stale index",
        (
            (
                STATUS,
                "    if not risk.usable or not (risk.liquidatable",
                "    if not (risk.liquidatable",
            ),
            (
                LADDER,
                "    if not risk.usable:\n        raise Rejected(RejectReason.ORACLE_STALE)",
                "",
            ),
        ),
        LIQUIDATION + "test_no_liquidation_on_a_stale_price",
    ),
    Mutation(
        "USDC March 2023: every report taken as USD, whatever its quote currency",
        (
            (
                PRICES,
                "        usd_reports(oracle, ctx.state.oracles), params, now_ns=now,",
                "        list(oracle.reports.values()), params, now_ns=now,",
            ),
        ),
        INCIDENTS + "test_stablecoin_depeg_moves_neither_the_index_nor_anyone",
    ),
    Mutation(
        "underwater pause: withdrawals never wait for the ladder",
        ((SUBACCOUNTS, "        if market.underwater_count:", "        if False:"),),
        LIQUIDATION + "test_withdrawals_pause_while_a_holder_of_the_market_is_underwater",
    ),
    Mutation(
        "block-stuffing: the basis EMA weighs each block as one second, whatever time it spans",
        (
            (
                MARKS,
                "    elapsed = min(since, oracle.params.staleness_ns)",
                "    elapsed = min(1_000_000_000 if since else 0, oracle.params.staleness_ns)",
            ),
        ),
        ATTACKS + "test_block_stuffing_moves_the_mark_by_block_time_not_by_block_count",
        (
            "basis EMA per block",
            ATTACKS + "test_block_stuffing_pays_once_blocks_move_the_mark_and_the_band_is_gone",
        ),
    ),
    Mutation(
        "self-trading: the mark made from the last trade instead of the impact mid",
        (
            (
                MARKS,
                "    impact_mid = impact_mid_price(ctx, market)\n",
                "    impact_mid = (\n"
                "        market.last_trade_price_quantums or impact_mid_price(ctx, market)\n"
                "    )\n",
            ),
        ),
        ATTACKS + "test_self_trading_above_the_book_gains_nothing_while_either_guard_stands",
        (
            "mark from the last trade",
            ATTACKS + "test_self_trading_pays_once_prints_make_the_mark_and_the_band_is_gone",
        ),
    ),
    Mutation(
        "a thin dated future's book: options marked on the venue's curve, the publishers' "
        "forward ignored",
        (
            (
                FORWARDS,
                "    reported = reported_basis_ppm(ctx, state.oracles[oracle_id], expiry_ns)\n",
                "    reported = None\n",
            ),
        ),
        ROUND11 + "test_a_reported_forward_bounds_the_push_and_the_pushers_make_nothing",
        (
            "publishers' forward",
            ROUND11 + "test_the_push_pays_once_the_publishers_forward_is_ignored",
        ),
    ),
    Mutation(
        "triggers fired in plain order id order: an attacker's walking stops armed earlier spend "
        "the block's walk before an honest stop-loss",
        (
            (
                ORDERS,
                "    order = firing_order(ctx, market, index.reached(mark))\n",
                "    order = index.reached(mark)\n",
            ),
        ),
        ROUND12 + "test_closing_triggers_fire_first_and_the_walking_stops_pay_nothing",
        (
            "closing triggers first",
            ROUND12 + "test_walking_stops_armed_earlier_delay_a_stop_loss_past_liquidation_and_pay",
        ),
    ),
    Mutation(
        "the options AMM's quotes spanning the index, not the publishers' forward: a curve "
        "pulled within the tolerance under a real basis cheapens them",
        (
            (
                OPTIONS_VAULT,
                "            ctx, m, oracle, reference_forward(ctx, oracle, m.params.expiry_ns)\n",
                "            ctx, m, oracle, oracle.index_price_quantums\n",
            ),
        ),
        ROUND12 + "test_the_amm_spans_the_publishers_forward_and_a_pulled_curve_cheapens_nothing",
        (
            "the AMM's quotes on the publishers' forward",
            ROUND12 + "test_a_curve_pulled_under_a_real_basis_cheapened_the_amms_quotes_and_paid",
        ),
    ),
)


def pytest_in(scratch: Path, test: str, guard_removed: str = "") -> tuple[bool, str]:
    """Run one test in the scratch copy: (it passed, its ``E`` line or its printed result)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(scratch / "src"),
        "CLEARHOUSE_GUARD_REMOVED": guard_removed,
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-s", "-p", "no:cacheprovider", test],
        cwd=scratch, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = result.stdout.splitlines() or [""]
    why = next((line for line in lines if line.startswith(("E ", "attacker PnL"))), "")
    passed = result.returncode == 0 and "skipped" not in lines[-1]  # a skip proves nothing
    return passed, why.removeprefix("E").strip()[:120]


def run(mutation: Mutation, scratch: Path) -> tuple[bool, str]:
    """Apply one mutation to its own scratch copy (thrown away after), run its test (and the
    attack it lets pay). (the test failed and the attack paid, detail)."""
    mutated = {path: (scratch / path).read_text() for path, _, _ in mutation.edits}
    for path, old, new in mutation.edits:
        found = mutated[path].count(old)
        assert found == 1, f"{mutation.name}: the guard's code moved: {path}: {old!r}"
        mutated[path] = mutated[path].replace(old, new)
    for path, text in mutated.items():
        (scratch / path).write_text(text)
    passed, why = pytest_in(scratch, mutation.test)
    if mutation.pays is not None and not passed:
        tag, test = mutation.pays
        paid, result = pytest_in(scratch, test, tag)
        why += f"\n  {test.split('::')[1]}: {'paid' if paid else 'NOT PAID'}: {result}"
        passed = not paid  # the guard is not shown needed unless the attack then pays
    return not passed, why


def scratch_copy(root: Path) -> Path:
    """A copy of the sources and tests that a mutation may edit, under ``root``."""
    scratch = root / "clearhouse"
    shutil.copytree(ROOT / "src", scratch / "src")
    shutil.copytree(ROOT / "tests", scratch / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", scratch / "pyproject.toml")
    return scratch


def run_in_own_copy(mutation: Mutation) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory() as temporary:
        return run(mutation, scratch_copy(Path(temporary)))


def main() -> int:
    # One copy per mutation, two at a time: each runs its tests in a process of its own, and
    # the suite that starts this script leaves the second core idle.
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        outcomes = list(pool.map(run_in_own_copy, MUTATIONS))
    survived = 0
    for mutation, (failed, why) in zip(MUTATIONS, outcomes, strict=True):
        survived += not failed
        verdict = "caught: the test fails" if failed else "SURVIVED: the test still passes"
        print(f"{mutation.name}\n  {mutation.test.split('::')[1]}: {verdict}\n  {why}")
    print(f"{len(MUTATIONS) - survived} of {len(MUTATIONS)} guard mutations caught")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
