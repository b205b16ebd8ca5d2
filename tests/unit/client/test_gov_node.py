"""``clearhouse gov`` against a served dev node, end to end: the dev venue's council of three
well-known keys (two to approve, a one-hour timelock), its steward and its guardian, each signing
with its ``--key-file``. A proposal goes through approval and queue and waits out its timelock;
the steward's second step inside its cooldown, a second approval, a proposal not one's own to
cancel are refused with the node's codes; the guardian tightens and the history shows it.

Skipped, saying why, where the node serves no governance API (GET /v1/gov answers 404) or its dev
venue is not governed by the well-known keys."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from tests.node.conftest import NodeProcess, fresh_index
from tests.unit.client.conftest import Cli, one_line

from clearhouse.client import Client
from clearhouse.client import governance as gov
from clearhouse.node.dev import dev_address, dev_key

ROLES = ("council-0", "council-1", "council-2", "steward", "guardian")
TAKER_FEE = "market.taker_fee_ppm"


@pytest.fixture(scope="module")
def gov_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A dev node of its own: governance changes markets, which the SDK's shared node keeps."""
    process = NodeProcess(tmp_path_factory.mktemp("gov") / "node").start()
    try:
        answer = httpx.get(f"{process.url}/v1/gov", timeout=10)
        if answer.status_code == 404:
            pytest.skip("this node serves no governance API (GET /v1/gov answers 404)")
        council = answer.json().get("council", [])
        if dev_address("council-0") not in council:
            pytest.skip("the dev venue is not governed by the well-known council-N keys")
        fresh_index(process.url)
        yield process.url
    finally:
        process.stop()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each dev role's key in a file only its owner reads, as --key-file wants it."""
    folder = tmp_path_factory.mktemp("keys")
    files = {}
    for role in ROLES:
        path = folder / role
        path.write_text(dev_key(role).hex())
        path.chmod(0o600)
        files[role] = str(path)
    return files


def gov_cli(cli: Cli, url: str, *args: str, key: str | None = None) -> str:
    """A command that must succeed; its output."""
    signed = ("--key-file", key) if key else ()
    done = cli("gov", *args, *signed, "--url", url)
    assert done.code == 0, done.err
    return done.out


def current(url: str, name: str, target: str) -> int:
    with Client(url) as client:
        [entry] = client.governed_params(name=name, target=target)
    [value] = entry["values"]
    return int(value["value"])


def test_a_proposal_through_approval_and_queue_waits_for_its_timelock(
    cli: Cli, gov_node: str, keys: dict[str, str]
) -> None:
    config = json.loads(gov_cli(cli, gov_node, "config", "--json"))
    assert config["threshold"] == 2 and len(config["council"]) == 3
    proposed = gov_cli(cli, gov_node, "propose", "--set", TAKER_FEE, "BTC-PERP", "0.075%",
                       "--reduce-only", "ETH-PERP", "--memo", "end to end", "--json",
                       key=keys["council-0"])  # fmt: skip
    proposal_id = str(json.loads(proposed)["proposal_id"])
    assert "2 approvals" in gov_cli(cli, gov_node, "approve", proposal_id, key=keys["council-1"])
    again = cli("gov", "approve", proposal_id, "--key-file", keys["council-1"], "--url", gov_node)
    one_line(again, "ALREADY_APPROVED", 14)
    assert "executable from" in gov_cli(cli, gov_node, "queue", proposal_id, key=keys["steward"])
    early = cli("gov", "execute", proposal_id, "--key-file", keys["steward"], "--url", gov_node)
    assert "timelock has not run" in one_line(early, "TIMELOCK_NOT_ELAPSED", 14)
    shown = gov_cli(cli, gov_node, "show", proposal_id)
    for words in ("queued", "end to end", "make ETH-PERP reduce-only",
                  "set market.taker_fee_ppm of BTC-PERP to 0.075% (750 ppm)"):  # fmt: skip
        assert words in shown, words
    queued = json.loads(gov_cli(cli, gov_node, "list", "--status", "queued", "--json"))
    assert [p["proposal_id"] for p in queued] == [int(proposal_id)]


def test_only_its_proposer_or_the_guardian_cancels_a_proposal(
    cli: Cli, gov_node: str, keys: dict[str, str]
) -> None:
    proposed = gov_cli(cli, gov_node, "propose", "--pause", "BTC-FUT-720H", "--json",
                       key=keys["council-0"])  # fmt: skip
    proposal_id = str(json.loads(proposed)["proposal_id"])
    other = cli("gov", "cancel", proposal_id, "--key-file", keys["council-2"], "--url", gov_node)
    one_line(other, "UNAUTHORIZED_SIGNER", 14)
    assert "cancelled" in gov_cli(cli, gov_node, "cancel", proposal_id, key=keys["council-0"])
    unknown = cli("gov", "approve", "9999", "--key-file", keys["council-1"], "--url", gov_node)
    one_line(unknown, "UNKNOWN_PROPOSAL", 14)


def test_the_steward_moves_one_step_per_cooldown_and_the_guardian_only_tightens(
    cli: Cli, gov_node: str, keys: dict[str, str]
) -> None:
    fee = current(gov_node, "market.maker_fee_ppm", "ETH-PERP")
    stepped = gov_cli(cli, gov_node, "steward", "--set", "market.maker_fee_ppm", "ETH-PERP",
                      str(fee + 250), key=keys["steward"])  # fmt: skip
    assert "market.maker_fee_ppm of ETH-PERP" in stepped
    again = cli("gov", "steward", "--set", "market.maker_fee_ppm", "ETH-PERP", str(fee),
                "--key-file", keys["steward"], "--url", gov_node)  # fmt: skip
    one_line(again, "PARAM_COOLDOWN", 14)
    band = current(gov_node, "oracle.band_ppm", "BTC-USD")
    tightened = gov_cli(cli, gov_node, "guardian", "--set", "oracle.band_ppm", "BTC-USD",
                        str(band - 10_000), key=keys["guardian"])  # fmt: skip
    assert "oracle.band_ppm of BTC-USD" in tightened
    loosened = cli("gov", "guardian", "--set", "oracle.band_ppm", "BTC-USD", str(band),
                   "--key-file", keys["guardian"], "--url", gov_node)  # fmt: skip
    one_line(loosened, "ROLE_NOT_ALLOWED", 14)
    page = json.loads(gov_cli(cli, gov_node, "history", "--name", "oracle.band_ppm", "--json"))
    [change] = page["items"]
    assert (change["old_value"], change["new_value"]) == (band, band - 10_000)
    assert "guardian" in gov_cli(cli, gov_node, "history", "--target", "BTC-USD")
    assert "oracle.band_ppm" in gov_cli(cli, gov_node, "params", "--target", "BTC-USD")


def test_a_dispute_without_a_fallback_price_is_refused(
    cli: Cli, gov_node: str, keys: dict[str, str]
) -> None:
    done = cli("gov", "dispute", "BTC-PERP", "--key-file", keys["council-0"], "--url", gov_node)
    one_line(done, "NO_PENDING_SETTLEMENT", 14)


def test_the_sdk_asks_the_node_who_a_change_would_make_liquidatable(gov_node: str) -> None:
    with Client(gov_node) as client:
        impact = client.impact([gov.set_param("market.margin.initial_margin_ppm", "BTC-PERP",
                                              "10%")])  # fmt: skip
    assert impact["liquidatable"] == [] and impact["truncated"] is False  # nobody holds BTC


@pytest.mark.slow  # the stress lab's three scenarios, one path each, before and after
def test_propose_simulate_attaches_what_the_node_then_shows(
    cli: Cli, gov_node: str, keys: dict[str, str]
) -> None:
    proposed = gov_cli(cli, gov_node, "propose", "--set", "market.margin.initial_margin_ppm",
                       "BTC-PERP", "2.5%", "--simulate", "--paths", "1", "--workers", "0",
                       key=keys["council-1"])  # fmt: skip
    assert "liquidatable at once if it passed: 0 accounts" in proposed
    listed = json.loads(gov_cli(cli, gov_node, "list", "--status", "pending", "--json"))
    newest = str(listed[0]["proposal_id"])
    shown = json.loads(gov_cli(cli, gov_node, "show", newest, "--json"))
    assert shown["simulation"]["liquidatable_count"] == 0 and shown["simulation"]["stress"]
