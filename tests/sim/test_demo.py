"""The demo's options AMM: funded at the start, it quotes every active BTC option in every block
once its first quotes are out, trades with the options flow, and stays within its caps."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.app.chain import verify
from clearhouse.core.ledger import OPTIONS_VAULT
from clearhouse.sim.demo import run_demo

HOURS = 1.0


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return run_demo(seed=5, hours=HOURS, out_dir=tmp_path_factory.mktemp("demo")).summary


def test_the_options_vault_quotes_every_active_option(
    summary: dict[str, object],
) -> None:
    amm = summary["options_vault"]
    assert isinstance(amm, dict)
    assert amm["owners"] == 1 and amm["nav_usdc"] > 900_000
    blocks = summary["blocks"]
    assert isinstance(blocks, int)
    assert amm["blocks_quoting"] > blocks * 0.9  # from its deposit in the first blocks on
    # At most options_vault_requotes_per_block_max markets a block: the first quotes of all
    # 56 take a few blocks; from then on every active option is quoted in every block.
    assert amm["blocks_all_options_quoted"] >= amm["blocks_quoting"] - 10
    assert (
        amm["sides_resting_share"] >= 0.9
    )  # a side waits only between a fill or pull and its turn
    assert amm["quoted_markets"] >= 50  # the series' options, minus those expired


def test_the_options_vault_trades_and_stays_within_its_caps(summary: dict[str, object]) -> None:
    amm = summary["options_vault"]
    assert isinstance(amm, dict)
    assert amm["fills"] > 0 and amm["premium_usdc"] > 0
    assert amm["positions"] > 0
    for name in ("vega", "gamma", "delta"):
        assert 0.0 <= amm["cap_use_max"][name] <= 1.0, name


def test_the_options_vault_s_summary_is_what_the_journal_replays_to(tmp_path: Path) -> None:
    result = run_demo(seed=5, hours=0.25, out_dir=tmp_path)
    journal = SqliteJournal(result.journal_path)
    try:
        state = verify(journal).engine.state
    finally:
        journal.close()
    held = state.ledger.subaccounts[OPTIONS_VAULT]
    amm = result.summary["options_vault"]
    assert isinstance(amm, dict)
    assert amm["positions"] == len(held.positions)
    assert amm["quoted_markets"] == len(state.options_vault.quotes) > 0
    assert amm["total_shares"] == state.options_vault.total_shares > 0
