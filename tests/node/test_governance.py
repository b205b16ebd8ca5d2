"""Governance through a real node (SPEC §10, §12): the dev node's council of three (two to
approve) takes a proposal through approval and queue to its timelock over HTTP, signed by the
SDK; the steward and the guardian change parameters at once; the read routes serve the council,
the registry, the proposals and the whole history with cursors; the what-if names the account a
margin increase would make liquidatable. A genesis file's ``[governance]`` table makes a governed
venue (and its journal passes the signature audit); a bad key in it is refused in one line."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.node.conftest import NodeProcess, free_port, fresh_index
from websockets.sync.client import connect

from clearhouse.adapters.memory_journal import MemoryJournal
from clearhouse.client import ApiRejection, Client, Wallet
from clearhouse.core.errors import ConfigError, RejectReason
from clearhouse.core.governance import REGISTRY
from clearhouse.core.messages import (
    ActionKind,
    ApproveProposal,
    CancelProposal,
    ExecuteProposal,
    GovAction,
    GuardianAct,
    ListMarket,
    Propose,
    QueueProposal,
    StewardUpdate,
)
from clearhouse.core.units import NS_PER_MS, NS_PER_SECOND
from clearhouse.node.dev import DEV_GOVERNANCE, DEV_ROLES, dev_address, dev_key
from clearhouse.node.errors import GOVERNANCE_RULES, status_of
from clearhouse.node.genesis import default_genesis_text, parse_genesis
from clearhouse.node.sequencer import Sequencer, load_snapshot
from clearhouse.node.server import start_chain
from clearhouse.sim.venue import market_params

PERP = "BTC-PERP"
FUTURE = "BTC-FUT-720H"
IM = "market.margin.initial_margin_ppm"
TAKER_FEE = "market.taker_fee_ppm"
HOUR_MS = 3_600_000
BTC = 100_000_000
CHAIN_ID = 515_151
CONTRACT = "0x" + "cd" * 20


@pytest.fixture(scope="module")
def dev_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data = tmp_path_factory.mktemp("governance") / "node"
    process = NodeProcess(data, extra=("--ip-rate", "0", "--account-rate", "0")).start()
    yield process
    process.kill()


@pytest.fixture(scope="module")
def keys(dev_node: NodeProcess) -> Iterator[dict[str, Client]]:
    """The dev node's governance keys (and its operator's), each a signing client."""
    names = ("council-0", "council-1", "council-2", "steward", "guardian", "operator")
    clients = {name: Client(dev_node.url, Wallet(dev_key(name))) for name in names}
    yield clients
    for client in clients.values():
        client.close()


def _get(node: NodeProcess, path: str, **params: Any) -> Any:
    answer = httpx.get(node.url + path, params=params, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _refused(client: Client, command: Any) -> ApiRejection:
    with pytest.raises(ApiRejection) as refused:
        client.submit(command)
    return refused.value


def _set(name: str, value: int, target: str = PERP) -> GovAction:
    return GovAction(kind=ActionKind.SET_PARAM, name=name, target=target, value=value)


def _propose(client: Client, *actions: GovAction, **fields: Any) -> int:
    answer = client.submit(Propose(**client.common(), actions=actions, **fields))
    assert answer["status"] == "accepted", answer
    (changed,) = answer["events"]
    assert changed["type"] == "ProposalChanged"
    proposal_id: int = changed["proposal_id"]
    return proposal_id


def _value(node: NodeProcess, name: str, target: str) -> dict[str, Any]:
    (entry,) = _get(node, "/v1/gov/params", name=name, target=target)
    (value,) = entry["values"]
    return dict(value)


# ── The council's proposal, over HTTP ──────────────────────────────────────────────────────


def test_a_proposal_is_approved_queued_and_held_by_its_timelock(
    dev_node: NodeProcess, keys: dict[str, Client]
) -> None:
    first, second = keys["council-0"], keys["council-1"]
    simulation = {"var_99_quote": "1234.5", "liquidatable": []}
    proposal_id = _propose(
        first, _set(TAKER_FEE, 750), memo="taker fee to 7.5 bp", simulation=json.dumps(simulation)
    )
    early = _refused(second, QueueProposal(**second.common(), proposal_id=proposal_id))
    assert (early.status, early.code) == (422, "QUORUM_NOT_MET")
    approval = ApproveProposal(**second.common(), proposal_id=proposal_id)
    assert second.submit(approval)["status"] == "accepted"
    again = _refused(second, ApproveProposal(**second.common(), proposal_id=proposal_id))
    assert (again.status, again.code) == (409, "ALREADY_APPROVED")
    anyone = Client(dev_node.url, Wallet.create())  # queue and execute are anyone's ...
    anyone.faucet(1)  # ... who holds something on the venue (ACCOUNT_NOT_FUNDED otherwise)
    queued = anyone.submit(QueueProposal(**anyone.common(), proposal_id=proposal_id))
    assert queued["status"] == "accepted"
    refused = _refused(anyone, ExecuteProposal(**anyone.common(), proposal_id=proposal_id))
    assert (refused.status, refused.code) == (422, "TIMELOCK_NOT_ELAPSED")
    anyone.close()

    found = _get(dev_node, f"/v1/gov/proposals/{proposal_id}")
    assert (found["status"], found["approvals_count"], found["threshold"]) == ("queued", 2, 2)
    assert sorted(found["approvals"]) == sorted([first.account, second.account])
    assert found["proposer"] == first.account and found["memo"] == "taker fee to 7.5 bp"
    assert 0 < found["timelock_left_ms"] <= HOUR_MS and not found["executable"]
    assert found["eta_ms"] - found["created_ms"] >= HOUR_MS
    assert found["has_simulation"] and found["simulation"] == simulation
    (action,) = found["actions"]
    assert (action["kind_name"], action["name"], action["value"]) == ("set_param", TAKER_FEE, 750)
    assert action["value_percent"] == "0.075%"
    steps = [(e["status_name"], e["approvals"]) for e in found["events"]]
    assert steps == [("queued", 2), ("pending", 2), ("pending", 1)]  # newest first
    assert _value(dev_node, TAKER_FEE, PERP)["value"] == 500  # nothing applied yet


def test_proposals_list_newest_first_by_status_and_a_member_cancels_its_own(
    dev_node: NodeProcess, keys: dict[str, Client]
) -> None:
    older = _propose(keys["council-1"], _set("market.maker_fee_ppm", 200))
    newer = _propose(keys["council-2"], _set("market.maker_fee_ppm", 200, target="ETH-PERP"))
    other = _refused(keys["council-1"], CancelProposal(**keys["council-1"].common(),
                                                       proposal_id=newer))  # fmt: skip
    assert (other.status, other.code) == (403, "UNAUTHORIZED_SIGNER")  # not its proposal
    mine = CancelProposal(**keys["council-2"].common(), proposal_id=newer)
    assert keys["council-2"].submit(mine)["status"] == "accepted"

    listed = _get(dev_node, "/v1/gov/proposals")
    ids = [p["proposal_id"] for p in listed]
    assert ids == sorted(ids, reverse=True) and {older, newer} <= set(ids)
    pending = [p["proposal_id"] for p in _get(dev_node, "/v1/gov/proposals", status="pending")]
    assert older in pending and newer not in pending
    cancelled = _get(dev_node, "/v1/gov/proposals", status="cancelled")
    assert [p["proposal_id"] for p in cancelled] == [newer]
    assert cancelled[0]["timelock_left_ms"] is None and cancelled[0]["closed_ms"] > 0
    page = _get(dev_node, "/v1/gov/proposals", before=newer, limit=1)
    assert [p["proposal_id"] for p in page] == [older]
    opened = {p["proposal_id"] for p in _get(dev_node, "/v1/gov/proposals", status="open")}
    assert older in opened and newer not in opened
    assert httpx.get(dev_node.url + "/v1/gov/proposals/999999").status_code == 404


def test_the_operator_of_a_governed_venue_lists_nothing(
    dev_node: NodeProcess, keys: dict[str, Client]
) -> None:
    """The dev venue's markets were listed in its genesis block, before the hand-over; after
    it a listing signed by the operator is refused: only a proposal lists."""
    operator = keys["operator"]
    assert operator.account == DEV_ROLES.operator
    params = market_params(DEV_ROLES.spec(time.time_ns()))[0]
    listing = ListMarket(**operator.common(), params=params)
    refused = _refused(operator, listing)
    assert (refused.status, refused.code) == (403, "GOVERNANCE_REQUIRED")


# ── The steward, the guardian and the history ──────────────────────────────────────────────


def test_every_change_is_in_the_history_served_page_by_page(
    dev_node: NodeProcess, keys: dict[str, Client]
) -> None:
    steward, guardian = keys["steward"], keys["guardian"]
    band = _value(dev_node, "market.price_band_ppm", FUTURE)["value"]
    fee = _value(dev_node, "market.liquidation.fee_ppm", PERP)["value"]
    moves = [
        (steward, StewardUpdate, _set(TAKER_FEE, 750, target="ETH-PERP")),
        (steward, StewardUpdate, _set("market.liquidation.fee_ppm", fee + 5_000)),
        (guardian, GuardianAct, _set("market.price_band_ppm", band - 25_000, target=FUTURE)),
    ]
    for client, kind, action in moves:
        assert client.submit(kind(**client.common(), actions=(action,)))["status"] == "accepted"
    flag = GovAction(kind=ActionKind.REDUCE_ONLY_ON, target=FUTURE)
    assert guardian.submit(GuardianAct(**guardian.common(), actions=(flag,)))
    loosen = _set("market.price_band_ppm", band, target=FUTURE)
    refused = _refused(guardian, GuardianAct(**guardian.common(), actions=(loosen,)))
    assert (refused.status, refused.code) == (403, "ROLE_NOT_ALLOWED")

    items, cursor, pages = [], None, 0
    while True:  # one change a page, following the cursors to the first
        page = _get(dev_node, "/v1/gov/history", limit=1, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == len(items) >= 3
    cursors = [int(i["cursor"]) for i in items]
    assert cursors == sorted(cursors, reverse=True)
    newest = [(i["name"], i["target"], i["new_value"], i["role_name"]) for i in items[:3]]
    assert newest == [("market.price_band_ppm", FUTURE, band - 25_000, "guardian"),
                      ("market.liquidation.fee_ppm", PERP, fee + 5_000, "steward"),
                      (TAKER_FEE, "ETH-PERP", 750, "steward")]  # fmt: skip
    assert items[2]["old_value_percent"] == "0.05%" and items[2]["new_value_percent"] == "0.075%"

    named = _get(dev_node, "/v1/gov/history", name=TAKER_FEE, target="ETH-PERP")["items"]
    assert [(i["old_value"], i["new_value"]) for i in named] == [(500, 750)]
    assert _get(dev_node, "/v1/gov/history", target="nowhere")["items"] == []
    unknown = httpx.get(dev_node.url + "/v1/gov/history", params={"name": "market.colour"})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "PARAM_UNKNOWN")
    changed = _value(dev_node, TAKER_FEE, "ETH-PERP")
    assert changed["value"] == 750 and changed["last_change_ms"] == items[2]["timestamp_ms"]
    assert _get(dev_node, "/v1/gov")["reduce_only"] == [FUTURE]
    kinds = [e["type"] for e in _get(dev_node, "/v1/gov/events", limit=2)["items"]]
    assert kinds == ["MarketFlagsChanged", "ParamChanged"]


# ── The read routes' shapes ────────────────────────────────────────────────────────────────


def test_the_council_and_the_registry_as_served(dev_node: NodeProcess) -> None:
    gov = _get(dev_node, "/v1/gov")
    assert gov["governed"] is True
    assert gov["council"] == list(DEV_GOVERNANCE.council)
    assert (gov["threshold"], gov["steward"], gov["guardian"]) == (
        2, DEV_GOVERNANCE.steward, DEV_GOVERNANCE.guardian)  # fmt: skip
    assert (gov["timelock_ms"], gov["waits"]["timelock"]) == (HOUR_MS, "1h")
    assert gov["waits"]["execution_window"] == "14d" and gov["phase_in_ms"] == 24 * HOUR_MS
    assert gov["timestamp_ms"] > 0 and gov["next_proposal_id"] >= 1

    registry = _get(dev_node, "/v1/gov/params")
    assert [p["name"] for p in registry] == list(REGISTRY)
    im = next(p for p in registry if p["name"] == IM)
    assert (im["scope"], im["field"], im["direction"], im["phased"]) == (
        "market", "margin.initial_margin_ppm", "higher_is_safer", True)  # fmt: skip
    assert (im["lower"], im["upper"], im["step"], im["cooldown_ms"]) == (
        5_000, 500_000, 25_000, 24 * HOUR_MS)  # fmt: skip
    assert im["upper_percent"] == "50%"
    markets = {m["market_id"] for m in _get(dev_node, "/v1/markets")}
    assert {v["target"] for v in im["values"]} == markets
    perp = next(v for v in im["values"] if v["target"] == PERP)
    assert (perp["value"], perp["value_percent"]) == (20_000, "2%")
    timelock = _get(dev_node, "/v1/gov/params", name="governance.timelock_ns")[0]["values"]
    assert timelock == [{"target": "", "value": 3_600 * 10**9, "value_ms": HOUR_MS,
                         "last_change_ns": None, "last_change_ms": None}]  # fmt: skip
    oracles = _get(dev_node, "/v1/gov/params", scope="oracle")
    assert oracles and all(p["name"].startswith("oracle.") for p in oracles)
    first_event = _get(dev_node, "/v1/gov/events", cursor="2")["items"]
    assert [(e["type"], e["height"]) for e in first_event] == [("GovernanceConfigured", 1)]


# ── The what-if ────────────────────────────────────────────────────────────────────────────


def _impact(node: NodeProcess, *actions: dict[str, Any]) -> httpx.Response:
    return httpx.post(node.url + "/v1/gov/impact", json={"actions": list(actions)}, timeout=30)


def _leveraged(node: NodeProcess) -> tuple[Client, Client, dict[str, Any]]:
    """A maker and a taker long 0.5 BTC on 1,000 USDC (about 3% of its notional): healthy."""
    maker, taker = Client(node.url, Wallet.create()), Client(node.url, Wallet.create())
    maker.faucet(1_000_000)
    taker.faucet(1_000)
    tick = _get(node, f"/v1/markets/{PERP}")["params"]["tick_quantums"]
    price = fresh_index(node.url) // tick * tick
    maker.place_order(PERP, "sell", size_base_quantums=BTC // 2, price_quantums=price)
    taker.place_order(PERP, "buy", size_base_quantums=BTC // 2, price_quantums=price)
    (sub,) = taker.account_state()["subaccounts"]
    return maker, taker, sub["margin"]


def test_the_what_if_names_the_account_a_margin_increase_would_liquidate(
    dev_node: NodeProcess,
) -> None:
    maker, taker, margin = _leveraged(dev_node)
    try:
        equity, maintenance = margin["equity_quote_quantums"], margin["maintenance_quote_quantums"]
        assert 0 < maintenance < equity and not margin["liquidatable"]
        # Maintenance scales with the initial margin: 30% past the equity puts it under.
        initial = _value(dev_node, IM, PERP)["value"]
        above = math.ceil(initial * equity / maintenance * 1.3)
        raised = {"kind": 1, "target": PERP, "name": IM, "value": above}
        answer = _impact(dev_node, raised)
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert f"{taker.account}/0" in found["liquidatable"]
        assert f"{maker.account}/0" not in found["liquidatable"]
        assert found["truncated"] is False and found["holders_max"] == 20_000
        assert found["height"] > 0
        slight = _impact(dev_node, {**raised, "value": initial + 1_000}).json()
        assert f"{taker.account}/0" not in slight["liquidatable"]
        assert not taker.account_state()["subaccounts"][0]["margin"]["liquidatable"]
    finally:
        maker.close()
        taker.close()


BAD_IMPACTS = [
    ("no actions", {"actions": []}, "INVALID_REQUEST"),
    ("not a list", {"actions": {"kind": 1}}, "INVALID_REQUEST"),
    ("extra key", {"actions": [{"kind": 1}], "dry": True}, "INVALID_REQUEST"),
    ("unknown kind", {"actions": [{"kind": 99}]}, "INVALID_REQUEST"),
    ("field type", {"actions": [{"kind": 1, "name": IM, "value": "2%"}]}, "INVALID_REQUEST"),
    ("unknown name", {"actions": [{"kind": 1, "name": "market.colour", "value": 1}]},
     "PARAM_UNKNOWN"),
    ("out of bounds", {"actions": [{"kind": 1, "target": PERP, "name": IM, "value": 600_000}]},
     "PARAM_OUT_OF_BOUNDS"),
    ("unknown market", {"actions": [{"kind": 1, "target": "XYZ-PERP", "name": IM,
                                     "value": 30_000}]}, "UNKNOWN_MARKET"),
    ("inconsistent", {"actions": [{"kind": 1, "target": PERP, "name": "market.maker_fee_ppm",
                                   "value": 5_000}]}, "INVALID_PARAMETERS"),
]  # fmt: skip


@pytest.mark.parametrize(("why", "body", "code"), BAD_IMPACTS, ids=[b[0] for b in BAD_IMPACTS])
def test_a_bad_what_if_is_refused_with_a_stable_code(
    dev_node: NodeProcess, why: str, body: dict[str, Any], code: str
) -> None:
    answer = httpx.post(dev_node.url + "/v1/gov/impact", json=body, timeout=10)
    assert answer.status_code == 400, (why, answer.text)
    assert answer.json()["error"]["code"] == code, why


def test_every_governance_refusal_has_a_status_that_says_what_kind_it_is() -> None:
    first, last = RejectReason.GOVERNANCE_REQUIRED, RejectReason.TOO_MANY_PROPOSALS
    governance = [r for r in RejectReason if first <= r <= last]
    assert {status_of(r) for r in governance} <= {400, 403, 409, 422, 503}
    expected = {
        "GOVERNANCE_REQUIRED": 403, "ROLE_NOT_ALLOWED": 403, "ALREADY_APPROVED": 409,
        "ALREADY_DISPUTED": 409, "UNKNOWN_PROPOSAL": 400, "PARAM_UNKNOWN": 400,
        "PARAM_OUT_OF_BOUNDS": 400, "MARKET_PAUSED": 503,
        **{r.name: 422 for r in GOVERNANCE_RULES},
    }  # fmt: skip
    assert {r.name: status_of(r) for r in governance} == expected  # each one classified


# ── A venue from a genesis file ────────────────────────────────────────────────────────────


def _genesis_text(governance: str | None) -> str:
    """The default venue's file in its own domain, its ``[governance]`` example taken in (with
    ``governance`` lines added) or left commented out (None)."""
    text = default_genesis_text(time.time_ns())
    text = text.replace("chain_id = 31337", f"chain_id = {CHAIN_ID}")
    text = text.replace(text.split('verifying_contract = "')[1][:42], CONTRACT)
    if governance is None:
        return text
    head, _, rest = text.partition("# [governance]\n")
    example, _, tail = rest.partition("\n\n")
    table = example.replace("# ", "")
    return f"{head}[governance]\n{table}\n{governance}\n\n{tail}"


def _clearhouse(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clearhouse", *args],
                          capture_output=True, text=True, check=False)  # fmt: skip


def test_a_genesis_file_with_governance_starts_a_governed_venue(tmp_path: Path) -> None:
    text = _genesis_text("").replace('timelock = "48h"', 'timelock = "2h"')
    path = tmp_path / "venue.toml"
    path.write_text(text)
    node = NodeProcess(
        tmp_path / "node", dev=False, extra=("--genesis", str(path), "--public-keys")
    ).start()
    try:
        gov = _get(node, "/v1/gov")
        assert gov["governed"] and gov["council"] == list(DEV_GOVERNANCE.council)
        assert (gov["timelock_ms"], gov["waits"]["timelock"]) == (2 * HOUR_MS, "2h")
        (configured,) = _get(node, "/v1/gov/events")["items"]
        assert (configured["type"], configured["height"]) == ("GovernanceConfigured", 1)
        assert len(_get(node, "/v1/markets")) == 3  # listed before the hand-over
    finally:
        assert node.stop() == 0
    audit = _clearhouse("verify", str(tmp_path / "node" / "journal.sqlite"), "--signatures")
    assert audit.returncode == 0, audit.stderr  # the unsigned hand-over is the operator's


def test_a_genesis_file_without_governance_starts_an_ungoverned_venue(tmp_path: Path) -> None:
    path = tmp_path / "venue.toml"
    path.write_text(_genesis_text(None))
    node = NodeProcess(
        tmp_path / "node", dev=False, extra=("--genesis", str(path), "--public-keys")
    ).start()
    try:
        assert _get(node, "/v1/gov") == {"governed": False}
        assert _get(node, "/v1/gov/proposals") == []
        assert _get(node, "/v1/gov/history") == {"items": [], "next_cursor": None}
        own = _get(node, "/v1/gov/params", scope="governance")  # governance's own: none yet
        assert len(own) == 3 and all(p["values"] == [] for p in own)
        (fee,) = _get(node, "/v1/gov/params", name=TAKER_FEE, target=PERP)[0]["values"]
        assert (fee["value"], fee["last_change_ms"]) == (500, None)
    finally:
        node.kill()


BAD_GOVERNANCE = [
    ("unknown key", "colour = 1", "genesis governance.colour: unknown key"),
    ("threshold", "threshold = 4", "genesis governance: threshold in 1..len(council)"),
    ("duration", 'timelock = "2 days"', 'genesis governance.timelock: a duration such as "48h"'),
    ("too short", 'timelock = "30m"', "genesis governance: timelock_ns between 1 h and 30 days"),
    ("both", "timelock_ns = 7_200_000_000_000", "timelock: give timelock or timelock_ns"),
    ("address", 'steward = "0x12"', "genesis governance.steward: expected an address"),
]  # fmt: skip


@pytest.mark.parametrize(("why", "line", "message"), BAD_GOVERNANCE,
                         ids=[b[0] for b in BAD_GOVERNANCE])  # fmt: skip
def test_a_bad_governance_table_is_refused_naming_its_key(
    why: str, line: str, message: str
) -> None:
    text = _genesis_text(line)
    key = line.split(" =")[0]
    if key in ("threshold", "timelock", "steward"):  # replaces the example's own line
        text = "\n".join(
            row for row in text.splitlines() if not row.startswith(f"{key} = ") or row == line
        )
    with pytest.raises(ConfigError) as refused:
        parse_genesis(tomllib.loads(text))
    assert message in str(refused.value), why


def test_an_empty_governance_table_is_refused() -> None:
    text = _genesis_text(None).replace("[roles]\n", "[governance]\n\n[roles]\n")
    with pytest.raises(ConfigError, match=r"genesis governance\.council: a list of addresses"):
        parse_genesis(tomllib.loads(text))


def test_serve_refuses_a_bad_governance_key_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(_genesis_text("colour = 1"))
    data = tmp_path / "data"
    port = str(free_port())
    done = _clearhouse("serve", "--genesis", str(path), "--data", str(data), "--port", port)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "genesis governance.colour: unknown key" in done.stderr
    assert not data.exists()


def test_a_snapshot_keeps_the_council_and_the_history() -> None:
    """In process: the dev genesis ends with the hand-over, a steward's change goes through a
    block, and the snapshot a graceful stop writes restores both the state and the history."""
    journal = MemoryJournal()
    chain, read_model, _ = start_chain(journal, governance=DEV_GOVERNANCE)
    sequencer = Sequencer(chain, read_model)
    now = time.time_ns()
    change = StewardUpdate(
        signer=dev_address("steward"), nonce=now // NS_PER_MS,
        expiry_ns=now + 60 * NS_PER_SECOND, actions=(_set(TAKER_FEE, 750),),
    )  # fmt: skip
    sequencer.start()
    try:
        future, _ = sequencer.submit(change)
        assert future.result(timeout=10).rejection is None
    finally:
        sequencer.stop()
    snapshot = journal.latest_snapshot()
    assert snapshot is not None
    restored = load_snapshot(snapshot)
    assert restored is not None
    engine, model = restored
    assert engine.state.governance is not None
    assert engine.state.governance.params == DEV_GOVERNANCE
    assert [e["type"] for e in model.governance] == ["GovernanceConfigured", "ParamChanged"]
    (changed,) = model.param_changes
    assert (changed["name"], changed["old_value"], changed["new_value"]) == (TAKER_FEE, 500, 750)
    assert model.governance_items == read_model.governance_items == 2


def test_the_governance_channel_streams_each_change_after_its_snapshot(
    dev_node: NodeProcess, keys: dict[str, Client]
) -> None:
    steward = keys["steward"]
    ws_url = dev_node.url.replace("http://", "ws://") + "/v1/ws"
    with connect(ws_url) as socket:
        socket.send(json.dumps({"op": "subscribe", "channel": "governance"}))
        snapshot = json.loads(socket.recv(timeout=10))
        assert (snapshot["channel"], snapshot["type"]) == ("governance", "snapshot")
        assert isinstance(snapshot["events"], list)
        fee = _value(dev_node, "market.maker_fee_ppm", "ETH-PERP")["value"]
        change = _set("market.maker_fee_ppm", fee + 50, target="ETH-PERP")
        done = steward.submit(StewardUpdate(**steward.common(), actions=(change,)))
        assert done["status"] == "accepted"
        while True:  # heartbeats may come first
            message = json.loads(socket.recv(timeout=10))
            if message.get("channel") == "governance":
                break
        assert message["type"] == "events" and message["seq"] == snapshot["seq"] + 1
        [event] = [e for e in message["events"] if e["type"] == "ParamChanged"]
        assert (event["name"], event["new_value"]) == ("market.maker_fee_ppm", fee + 50)
