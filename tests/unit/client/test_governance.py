"""Governance actions from human input: each governed parameter's value in its unit, converted
exactly (a percent into ppm, a duration into nanoseconds, an amount on the venue's scales) or
refused before anything is signed; and the SDK's governance commands as the node reads them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from clearhouse.client import AsyncClient, Client, MarketUnits, Units, Wallet
from clearhouse.client import governance as gov
from clearhouse.core import limits
from clearhouse.core.codec import decode_command
from clearhouse.core.errors import InvalidArgument
from clearhouse.core.governance import REGISTRY
from clearhouse.core.ids import Address
from clearhouse.core.messages import (
    ActionKind,
    ApproveProposal,
    CancelProposal,
    Command,
    DisputeSettlement,
    ExecuteProposal,
    GovAction,
    GuardianAct,
    Propose,
    QueueProposal,
    StewardUpdate,
)

IM = "market.margin.initial_margin_ppm"
TAKER_FEE = "market.taker_fee_ppm"
AUCTION = "market.liquidation.auction_duration_ns"
BTC_PERP = MarketUnits("BTC-PERP", base_quantums_per_unit=10**8, quote_quantums_per_unit=10**6,
                       tick_quantums=100_000, step_base_quantums=10_000)  # fmt: skip
UNITS = Units({"BTC-PERP": BTC_PERP}, {"USDC": 10**6, "WETH": 10**18})


def setting(name: str, target: str, value: object, units: Units | None = UNITS) -> GovAction:
    [action] = gov.finish([gov.set_param(name, target, value)], units)  # type: ignore[arg-type]
    return action


# ── Units and names ──────────────────────────────────────────────────────────────────────


def test_every_governed_parameter_has_a_unit_this_client_reads() -> None:
    units = {name: gov.unit_of(name) for name in REGISTRY}  # a new unit fails here first
    assert units[IM] is gov.Unit.PPM
    assert units["market.funding.interest_ppb_per_8h"] is gov.Unit.PPB
    assert units["oracle.staleness_ns"] is gov.Unit.DURATION
    assert units["market.margin.oi_lower_quote_quantums"] is gov.Unit.QUOTE_AMOUNT
    assert units["market.liquidation.open_interest_cap_base_quantums"] is gov.Unit.BASE_SIZE
    assert units["asset.venue_cap_quantums"] is gov.Unit.ASSET_AMOUNT


def test_an_unknown_parameter_is_refused_naming_the_nearest() -> None:
    with pytest.raises(InvalidArgument, match=r"did you mean market\.taker_fee_ppm"):
        gov.set_param("market.taker_fee_pm", "BTC-PERP", "0.05%")
    with pytest.raises(InvalidArgument, match="no governed parameter 'leverage'"):
        gov.set_param("leverage", "BTC-PERP", "10")


def test_a_market_parameter_needs_a_market_and_a_venue_wide_one_refuses_one() -> None:
    with pytest.raises(InvalidArgument, match="needs its market's id"):
        gov.set_param(TAKER_FEE, "", "0.05%")
    with pytest.raises(InvalidArgument, match="needs its oracle's id"):
        gov.set_param("oracle.band_ppm", " BTC-USD", "2%")
    with pytest.raises(InvalidArgument, match="venue-wide: no target"):
        gov.set_param("governance.timelock_ns", "BTC-PERP", "2d")
    assert setting("vault.half_spread_ppm", "", "0.1%").target == ""


# ── Ratios: ppm and ppb ──────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("value", "ppm"),
    [("4.5%", 45_000), ("4.5 %", 45_000), ("0.5%", 5_000), ("450bp", 45_000), (45_000, 45_000),
     ("45000", 45_000), (Decimal("45000"), 45_000), ("12.3456%", 123_456)],
)  # fmt: skip
def test_a_ppm_parameter_takes_whole_ppm_a_percent_or_basis_points(value: object, ppm: int) -> None:
    action = setting(IM, "BTC-PERP", value)
    assert (action.kind, action.name, action.target, action.value) == (
        ActionKind.SET_PARAM, IM, "BTC-PERP", ppm)  # fmt: skip


def test_a_ppb_parameter_counts_a_percent_in_billionths() -> None:
    assert setting("market.funding.interest_ppb_per_8h", "BTC-PERP", "0.01%").value == 100_000
    assert setting("market.funding.premium_clamp_ppb", "BTC-PERP", "0.0000001%").value == 1


@pytest.mark.parametrize(
    ("value", "why"),
    [("4.55555%", "not a whole number of ppm"), ("0.5", r"write a percent as '4\.5%'"),
     (Decimal("0.045"), "not a whole number of ppm"), ("-1%", "finite number >= 0"),
     ("abc%", "is not a number"), ("1e999999%", "out of range"), ("NaN", "finite number")],
)  # fmt: skip
def test_a_ratio_finer_than_its_unit_or_no_number_is_refused_never_rounded(
    value: object, why: str
) -> None:
    with pytest.raises(InvalidArgument, match=why):
        gov.set_param(IM, "BTC-PERP", value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0.045, 4.5, True])
def test_a_float_or_a_bool_is_refused(value: object) -> None:
    with pytest.raises(InvalidArgument, match="must be a Decimal, a str or an int"):
        gov.set_param(IM, "BTC-PERP", value)  # type: ignore[arg-type]


def test_a_value_outside_the_hard_bounds_is_refused_with_the_bounds() -> None:
    with pytest.raises(InvalidArgument, match=r"bounded to 0\.5% \(5000 ppm\) \.\. 50% "
                       r"\(500000 ppm\): 60% \(600000 ppm\) is outside"):  # fmt: skip
        gov.set_param(IM, "BTC-PERP", "60%")
    with pytest.raises(InvalidArgument, match=r"bounded to 1h \.\. 30d: 3600ns is outside"):
        gov.set_param("governance.timelock_ns", "", 3600)


# ── Durations ────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("value", "ns"),
    [("90s", 90 * 10**9), ("1.5m", 90 * 10**9), ("2min", 120 * 10**9), ("1500ms", 15 * 10**8),
     ("30000000us", 30 * 10**9), (45 * 10**9, 45 * 10**9), ("45000000000", 45 * 10**9)],
)  # fmt: skip
def test_a_duration_takes_nanoseconds_or_a_number_with_its_unit(value: object, ns: int) -> None:
    assert setting(AUCTION, "BTC-PERP", value).value == ns


def test_a_duration_finer_than_a_nanosecond_or_in_no_known_unit_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="not a whole number of nanoseconds"):
        gov.set_param(AUCTION, "BTC-PERP", "1.0000000001s")
    with pytest.raises(InvalidArgument, match="no unit 'w'"):
        gov.set_param("governance.timelock_ns", "", "2w")
    assert setting("governance.timelock_ns", "", "1.5d").value == 36 * 3600 * 10**9


# ── Amounts, caps and prices: the venue's scales ─────────────────────────────────────────


def test_an_amount_waits_for_the_venues_units_then_converts_exactly() -> None:
    draft = gov.set_param("market.margin.oi_lower_quote_quantums", "BTC-PERP", "2500000.5")
    assert isinstance(draft, gov.NeedsUnits) and gov.needs_units([draft])
    with pytest.raises(InvalidArgument, match=r"needs the venue's units \(client.units\(\)\)"):
        gov.finish([draft], None)
    [action] = gov.finish([draft], UNITS)
    assert action.value == 2_500_000_500_000


def test_an_amount_finer_than_a_quantum_or_written_as_a_percent_is_refused() -> None:
    draft = gov.set_param("market.margin.oi_lower_quote_quantums", "BTC-PERP", "2500000.0000005")
    with pytest.raises(InvalidArgument, match="finer than one quantum"):
        gov.finish([draft], UNITS)
    with pytest.raises(InvalidArgument, match="an amount in human units, not a ratio"):
        gov.set_param("market.margin.oi_lower_quote_quantums", "BTC-PERP", "5%")
    with pytest.raises(InvalidArgument, match="is not a number"):
        gov.set_param("market.margin.oi_lower_quote_quantums", "BTC-PERP", "lots")


def test_a_size_cap_is_in_the_markets_base_units_and_an_asset_cap_in_the_assets() -> None:
    cap = "market.liquidation.open_interest_cap_base_quantums"
    assert setting(cap, "BTC-PERP", "12.345").value == 1_234_500_000  # no step: a cap
    assert setting(cap, "BTC-PERP", "unlimited").value == 0
    assert setting("asset.venue_cap_quantums", "WETH", "1000.5").value == 1_0005 * 10**17
    with pytest.raises(InvalidArgument, match="no market 'DOGE-PERP'"):
        setting(cap, "DOGE-PERP", "1")
    with pytest.raises(InvalidArgument, match="has no 'unlimited' value"):
        gov.set_param(TAKER_FEE, "BTC-PERP", "unlimited")


def test_a_settlement_price_is_on_the_markets_tick_or_refused() -> None:
    [action] = gov.finish([gov.settlement_price("BTC-PERP", Decimal("61234.5"))], UNITS)
    assert (action.kind, action.target, action.value) == (
        ActionKind.SET_SETTLEMENT_PRICE, "BTC-PERP", 61_234_500_000)  # fmt: skip
    with pytest.raises(InvalidArgument, match=r"off its grid of 0\.100000"):
        gov.finish([gov.settlement_price("BTC-PERP", "61234.55")], UNITS)
    with pytest.raises(InvalidArgument, match="must be above 0"):
        gov.finish([gov.settlement_price("BTC-PERP", "0")], UNITS)
    with pytest.raises(InvalidArgument, match="is not a number"):
        gov.settlement_price("BTC-PERP", "sixty thousand")


# ── Flags, roles, batches ────────────────────────────────────────────────────────────────


def test_market_flags_and_roles_are_actions_of_their_kind() -> None:
    assert gov.pause("BTC-PERP") == GovAction(kind=ActionKind.PAUSE_MARKET, target="BTC-PERP")
    assert gov.resume("BTC-PERP").kind is ActionKind.RESUME_MARKET
    assert gov.reduce_only("BTC-PERP", on=True).kind is ActionKind.REDUCE_ONLY_ON
    assert gov.reduce_only("BTC-PERP", on=False).kind is ActionKind.REDUCE_ONLY_OFF
    member = "0x" + "ab" * 20
    assert gov.add_council_member(member.upper().replace("0X", "0x")).target == member
    assert gov.set_steward(None) == GovAction(kind=ActionKind.SET_STEWARD, target="")
    assert gov.set_threshold(2).value == 2
    with pytest.raises(InvalidArgument, match="a market id"):
        gov.pause("")
    with pytest.raises(InvalidArgument, match=r"threshold is 1\.\.16"):
        gov.set_threshold(0)
    with pytest.raises(InvalidArgument, match="fails its EIP-55 checksum"):
        gov.set_guardian("0x" + "aB" * 20)


def test_a_batch_holds_one_to_thirty_two_actions() -> None:
    with pytest.raises(InvalidArgument, match="1 to 32 actions, not 0"):
        gov.finish([], None)
    many = [gov.pause("BTC-PERP")] * (limits.actions_per_proposal_max + 1)
    with pytest.raises(InvalidArgument, match="not 33"):
        gov.finish(many, None)


# ── Reading actions back ─────────────────────────────────────────────────────────────────


def test_actions_read_back_in_words_from_the_sdk_or_the_nodes_json() -> None:
    fee = setting(TAKER_FEE, "BTC-PERP", "0.075%")
    assert gov.describe(fee) == "set market.taker_fee_ppm of BTC-PERP to 0.075% (750 ppm)"
    as_json = {"kind": 1, "target": "", "name": "governance.timelock_ns", "value": 7_200 * 10**9}
    assert gov.describe(as_json) == "set governance.timelock_ns to 2h"
    price = {"kind": "set_settlement_price", "target": "BTC-PERP", "value": 61_234_500_000}
    assert gov.describe(price, UNITS) == "settle BTC-PERP at 61234.5 USDC"
    assert gov.describe(price) == "settle BTC-PERP at 61234500000 quote quantums"
    assert gov.describe({"kind": 4, "target": "ETH-PERP"}) == "make ETH-PERP reduce-only"
    cap = {"kind": 1, "target": "BTC-PERP", "value": 0,
           "name": "market.liquidation.open_interest_cap_base_quantums"}  # fmt: skip
    assert gov.describe(cap).endswith("to unlimited")
    assert gov.format_value("market.margin.oi_lower_quote_quantums", 2_500_000_000_000, UNITS) == (
        "2500000 USDC"
    )
    with pytest.raises(InvalidArgument, match="not an action kind"):
        gov.describe({"kind": 99})


def test_governance_refusals_read_in_words() -> None:
    assert "cooldown" in (gov.refusal_reason("PARAM_COOLDOWN") or "")
    assert gov.refusal_reason("ORACLE_STALE") is None


# ── The simulation a proposal carries ────────────────────────────────────────────────────


def test_the_simulation_holds_the_diff_and_the_holders_within_the_venues_limit() -> None:
    holders = [f"0x{i:040x}/0" for i in range(2_000)]
    text = gov.simulation_json(json.dumps({"rows": ["x" * 100] * 20}), {
        "liquidatable": holders, "truncated": False, "height": 9})  # fmt: skip
    document = json.loads(text)
    assert len(text) <= limits.proposal_simulation_length_max
    assert document["stress"] == {"rows": ["x" * 100] * 20}
    assert document["liquidatable_count"] == 2_000 and document["truncated"] is False
    assert document["liquidatable"] == holders[: len(document["liquidatable"])]
    grown = dict(document, liquidatable=holders[: len(document["liquidatable"]) + 1])
    longer = json.dumps(grown, separators=(",", ":"), sort_keys=True)
    assert len(longer) > limits.proposal_simulation_length_max  # the longest list that fits


def test_a_short_list_is_kept_whole_and_a_diff_too_long_is_refused() -> None:
    document = json.loads(gov.simulation_json("{}", {"liquidatable": ["a/0"], "truncated": True}))
    assert document == {"stress": {}, "liquidatable": ["a/0"], "liquidatable_count": 1,
                        "truncated": True}  # fmt: skip
    with pytest.raises(InvalidArgument, match="a proposal carries at most 16,000"):
        gov.simulation_json(json.dumps("x" * 16_000), {"liquidatable": []})


# ── The SDK: what it signs and sends ─────────────────────────────────────────────────────

WALLET = Wallet.from_hex("11" * 32)
INFO = {"chain_id": 31337, "verifying_contract": "0x" + "ab" * 20,
        "assets": [{"asset_id": "USDC", "quantums_per_unit": 10**6}]}  # fmt: skip
MARKETS = [{"market_id": "BTC-PERP", "params": {"base_quantums_per_unit": 10**8,
            "tick_quantums": 100_000, "step_base_quantums": 10_000}}]  # fmt: skip


class FakeNode:
    """Answers what the client asks and keeps what it posts (a fake, not a mock)."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, Any]] = []
        self.asked: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            self.posted.append((request.url.path, json.loads(request.content)))
            if request.url.path == "/v1/gov/impact":
                return httpx.Response(200, json={"liquidatable": [], "truncated": False,
                                                 "height": 3})  # fmt: skip
            return httpx.Response(200, json={"status": "accepted", "events": []})
        answers: dict[str, Any] = {"/v1/info": INFO, "/v1/markets": MARKETS,
                                   "/v1/gov": {"governed": False}, "/v1/gov/params": [],
                                   "/v1/gov/proposals": []}  # fmt: skip
        return httpx.Response(200, json=answers.get(request.url.path, {"items": []}))

    def commands(self) -> list[Command]:
        decoded = [
            decode_command(json.dumps(body["command"]).encode())
            for path, body in self.posted if path == "/v1/commands"
        ]  # fmt: skip
        return [c for c in decoded if isinstance(c, Command)]


def sdk_calls(client: Client) -> list[Callable[[], object]]:
    fee = gov.set_param(TAKER_FEE, "BTC-PERP", "0.075%")
    amount = gov.set_param("market.margin.oi_lower_quote_quantums", "BTC-PERP", "2500000")
    return [
        lambda: client.propose([fee, amount], memo="fees", simulation="{}"),
        lambda: client.approve_proposal(7), lambda: client.queue_proposal(7),
        lambda: client.execute_proposal(7), lambda: client.cancel_proposal(7),
        lambda: client.steward_update([fee]), lambda: client.guardian_act([gov.pause("BTC-PERP")]),
        lambda: client.dispute_settlement("BTC-PERP", subaccount_number=2),
    ]  # fmt: skip


def test_the_sdk_signs_each_governance_command_as_the_node_reads_it() -> None:
    node = FakeNode()
    with Client("http://node", WALLET, transport=httpx.MockTransport(node)) as client:
        for call in sdk_calls(client):
            call()
    propose, approve, queue, execute, cancel, steward, guardian, dispute = node.commands()
    assert isinstance(propose, Propose) and propose.memo == "fees" and propose.simulation == "{}"
    assert [a.value for a in propose.actions] == [750, 2_500_000_000_000]
    assert propose.signer == Address(WALLET.address)
    for command, kind in ((approve, ApproveProposal), (queue, QueueProposal),
                          (execute, ExecuteProposal), (cancel, CancelProposal)):  # fmt: skip
        assert isinstance(command, kind) and command.proposal_id == 7
    assert isinstance(steward, StewardUpdate) and steward.actions[0].value == 750
    assert isinstance(guardian, GuardianAct)
    assert guardian.actions == (gov.pause("BTC-PERP"),)
    assert isinstance(dispute, DisputeSettlement) and dispute.subaccount_number == 2


def test_the_sdk_asks_for_units_only_for_an_amount_and_refuses_before_signing() -> None:
    node = FakeNode()
    with Client("http://node", WALLET, transport=httpx.MockTransport(node)) as client:
        client.propose([gov.pause("BTC-PERP")])
        assert "GET /v1/markets" not in node.asked  # nothing to convert, nothing asked
        with pytest.raises(InvalidArgument, match="memo holds at most 1,000 characters"):
            client.propose([gov.pause("BTC-PERP")], memo="x" * 1_001)
        with pytest.raises(InvalidArgument, match="off its grid"):
            client.propose([gov.settlement_price("BTC-PERP", "1.05")])
    assert len(node.commands()) == 1


def test_the_sdk_reads_governance_and_asks_for_a_changes_impact() -> None:
    node = FakeNode()
    with Client("http://node", WALLET, transport=httpx.MockTransport(node)) as client:
        assert client.governance() == {"governed": False}
        client.proposals("queued"), client.proposal(3), client.governed_params()
        client.param_history(name=TAKER_FEE, limit=5)
        impact = client.impact([gov.set_param(IM, "BTC-PERP", "10%")])
    assert impact["liquidatable"] == [] and impact["height"] == 3
    assert node.asked[1:6] == ["GET /v1/gov/proposals", "GET /v1/gov/proposals/3",
                               "GET /v1/gov/params", "GET /v1/gov/history",
                               "POST /v1/gov/impact"]  # fmt: skip
    [(_, body)] = node.posted
    assert body == {"actions": [{"kind": 1, "target": "BTC-PERP", "name": IM, "value": 100_000,
                                 "oracle": None, "asset": None, "market": None,
                                 "option_series": None}]}  # fmt: skip


def test_the_async_client_has_the_same_governance_methods() -> None:
    node = FakeNode()

    async def run() -> None:
        async with AsyncClient("http://node", WALLET,
                               transport=httpx.MockTransport(node)) as client:  # fmt: skip
            amount = gov.set_param("market.margin.oi_lower_quote_quantums", "BTC-PERP", "1000000")
            await client.propose([amount, gov.pause("BTC-PERP")], memo="async")
            await client.approve_proposal(4)
            await client.impact([gov.resume("BTC-PERP")])

    asyncio.run(run())
    propose, approve = node.commands()
    assert isinstance(propose, Propose) and propose.actions[0].value == 10**12
    assert isinstance(approve, ApproveProposal) and approve.proposal_id == 4
