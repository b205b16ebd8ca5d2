"""``clearhouse gov`` as an operator meets it: argument mistakes answered by the parser (exit
2), operating mistakes in one line with their code and exit code, never a traceback; and, against
a fake node on a loopback port, what each command signs, sends and prints."""

from __future__ import annotations

import json
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from tests.unit.client.conftest import Cli, one_line
from typer.testing import CliRunner

from clearhouse.cli import app
from clearhouse.client import Wallet
from clearhouse.core.codec import decode_command
from clearhouse.core.messages import ActionKind, ApproveProposal, GuardianAct, Propose

KEY = "22" * 32
SIGNER = Wallet.from_hex(KEY).address
INFO = {"chain_id": 31337, "verifying_contract": "0x" + "ab" * 20,
        "assets": [{"asset_id": "USDC", "quantums_per_unit": 10**6}]}  # fmt: skip
MARKETS = [{"market_id": "BTC-PERP", "params": {"base_quantums_per_unit": 10**8,
            "tick_quantums": 100_000, "step_base_quantums": 10_000}}]  # fmt: skip
CREATED = {"status": "accepted", "height": 12, "events": [
    {"type": "ProposalChanged", "proposal_id": 3, "status": 1, "by": SIGNER, "approvals": 1,
     "eta_ns": 0}]}  # fmt: skip
PROPOSAL = {
    "proposal_id": 3, "proposer": SIGNER, "status": "queued",
    "approvals": [SIGNER, "0x" + "cd" * 20], "approvals_count": 2, "threshold": 2,
    "created_ns": 1_700_000_000 * 10**9,
    "eta_ns": 1_700_003_600 * 10**9, "timelock_left_ns": 1_800 * 10**9, "executable": False,
    "expires_ns": 1_701_213_200 * 10**9, "closed_ns": 0, "memo": "raise BTC margins",
    "actions": [{"kind": 1, "kind_name": "set_param", "target": "BTC-PERP",
                 "name": "market.margin.initial_margin_ppm", "value": 45_000},
                {"kind": 2, "kind_name": "pause_market", "target": "ETH-PERP", "name": "",
                 "value": 0}],
    "simulation": {"stress": {"changes": ["im"]}, "liquidatable": ["0xab/0", "0xcd/1"],
                   "liquidatable_count": 5, "truncated": True},
    "events": [{"type": "ProposalChanged", "proposal_id": 3, "status": 2, "approvals": 2,
                "eta_ns": 1_700_003_600 * 10**9, "timestamp_ns": 1_700_000_000 * 10**9}],
}  # fmt: skip
PARAMS = [{
    "name": "market.taker_fee_ppm", "scope": "market", "lower": 0, "upper": 10_000, "step": 250,
    "step_ppm": 0, "cooldown_ns": 86_400 * 10**9, "direction": "neither",
    "values": [{"target": "BTC-PERP", "value": 500}, {"target": "ETH-PERP", "value": 750}],
}]  # fmt: skip
HISTORY = {"items": [{
    "timestamp_ns": 1_700_000_000 * 10**9, "name": "market.taker_fee_ppm", "target": "ETH-PERP",
    "old_value": 500, "new_value": 750, "role": 2, "role_name": "steward", "by": SIGNER,
    "proposal_id": 0, "phase_end_ns": 0,
}], "next_cursor": "41"}  # fmt: skip
CONFIG = {"governed": True, "council": [SIGNER], "threshold": 1, "steward": None,
          "guardian": SIGNER, "timelock_ns": 3_600 * 10**9, "paused": ["ETH-PERP"],
          "reduce_only": [], "phases": [], "fallbacks": [], "open_proposals": 1}  # fmt: skip


# ── A fake node ──────────────────────────────────────────────────────────────────────────


@dataclass
class FakeNode:
    """Canned JSON answers by method and path on a loopback port (404 for the rest, as a node
    without the route answers); every request's query and body are kept."""

    answers: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    posted: list[tuple[str, Any]] = field(default_factory=list)
    queries: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, method: str, path: str, body: Any, status: int = 200) -> None:
        self.answers[method, path] = (status, body)

    def commands(self) -> list[object]:
        return [decode_command(json.dumps(body["command"]).encode())
                for path, body in self.posted if path == "/v1/commands"]  # fmt: skip

    def handler(self) -> type[BaseHTTPRequestHandler]:
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                node.posted.append((urlsplit(self.path).path, json.loads(self.rfile.read(length))))
                self._answer("POST")

            def _answer(self, method: str) -> None:
                url = urlsplit(self.path)
                node.queries.append((url.path, parse_qs(url.query)))
                missing = {"error": {"code": "NOT_FOUND", "message": "Not Found"}}
                status, body = node.answers.get((method, url.path), (404, missing))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:  # quiet: the test reads what matters
                pass

        return Handler


@pytest.fixture
def node() -> Iterator[FakeNode]:
    fake = FakeNode()
    fake.answer("GET", "/v1/info", INFO)
    fake.answer("GET", "/v1/markets", MARKETS)
    fake.server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=fake.server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "council.key"
    path.write_text(KEY)
    path.chmod(0o600)
    return str(path)


# ── The parser's refusals ────────────────────────────────────────────────────────────────

runner = CliRunner()


def test_the_gov_group_lists_its_commands() -> None:
    done = runner.invoke(app, ["gov", "--help"])
    assert done.exit_code == 0
    for command in ("propose", "approve", "queue", "execute", "cancel", "steward", "guardian",
                    "dispute", "show", "list", "history", "params", "config"):  # fmt: skip
        assert command in done.output


@pytest.mark.parametrize(
    ("args", "words"),
    [(["propose", "--set", "market.taker_fee_ppm", "BTC-PERP"], "requires 3 arguments"),
     (["propose", "--settle", "BTC-PERP"], "requires 2 arguments"),
     (["approve"], "Missing argument"), (["approve", "0"], "greater than or equal to 1"),
     (["queue", "three"], "valid integer"), (["list", "--limit", "0"], "greater than or equal"),
     (["dispute", "BTC-PERP", "--subaccount", "-1"], "greater than or equal to 0"),
     (["propose", "--paths", "0", "--simulate"], "greater than or equal to 1")],
)  # fmt: skip
def test_argument_mistakes_are_usage_errors(args: list[str], words: str) -> None:
    done = runner.invoke(app, ["gov", *args])
    assert done.exit_code == 2, done.output
    assert words in " ".join(done.output.split())


# ── Operating mistakes: one line, its code, its exit code ────────────────────────────────


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [(["propose", "--set", "market.taker_fee_pm", "BTC-PERP", "1"], "INVALID_ARGUMENT",
      "did you mean market.taker_fee_ppm"),
     (["propose", "--set", "market.taker_fee_ppm", "BTC-PERP", "0.00001%"], "INVALID_ARGUMENT",
      "not a whole number of ppm"),
     (["propose", "--set", "market.taker_fee_ppm", "BTC-PERP", "2%"], "INVALID_ARGUMENT",
      "bounded to 0% (0 ppm) .. 1% (10000 ppm)"),
     (["propose", "--set", "vault.lockup_ns", "BTC-PERP", "1h"], "INVALID_ARGUMENT",
      "venue-wide"),
     (["propose", "--memo", "nothing"], "INVALID_ARGUMENT", "no action"),
     (["steward", "--set", "oracle.staleness_ns", "BTC-USD", "5 fortnights"],
      "INVALID_ARGUMENT", "no unit 'fortnights'"),
     (["list", "--status", "approved"], "INVALID_ARGUMENT", "no proposal status 'approved'"),
     (["history", "--name", "market.fee"], "INVALID_ARGUMENT", "no governed parameter"),
     (["approve", "3"], "CONFIG_ERROR", "name its key with --key-file or CLEARHOUSE_KEY")],
)  # fmt: skip
def test_mistakes_are_refused_before_any_request(
    cli: Cli, args: list[str], code: str, words: str
) -> None:
    line = one_line(cli("gov", *args, "--url", "http://127.0.0.1:1"), code, 2)
    assert words in line


def test_two_keys_named_are_refused(
    cli: Cli, key_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEARHOUSE_KEY", KEY)
    line = one_line(cli("gov", "approve", "3", "--key-file", key_file), "CONFIG_ERROR", 2)
    assert "not both" in line


def test_a_node_out_of_reach_is_one_line(cli: Cli) -> None:
    line = one_line(cli("gov", "show", "1", "--url", "http://127.0.0.1:1"), "CONFIG_ERROR", 2)
    assert "cannot reach a node at http://127.0.0.1:1" in line and "is --url right?" in line


def test_a_refusal_names_the_nodes_code_and_reason(cli: Cli, node: FakeNode, key_file: str) -> None:
    node.answer("POST", "/v1/commands", {"error": {"code": "PARAM_COOLDOWN",
                "message": "rejected: PARAM_COOLDOWN"}}, status=422)  # fmt: skip
    done = cli("gov", "steward", "--set", "market.taker_fee_ppm", "BTC-PERP", "0.075%",
               "--key-file", key_file, "--url", node.url)  # fmt: skip
    line = one_line(done, "PARAM_COOLDOWN", 14)
    assert "POST /v1/commands refused (422)" in line and "cooldown ago" in line


def test_a_node_without_governance_routes_is_one_line(cli: Cli, node: FakeNode) -> None:
    line = one_line(cli("gov", "list", "--url", node.url), "NOT_FOUND", 14)
    assert "GET /v1/gov/proposals refused (404)" in line


# ── What the commands sign and send ──────────────────────────────────────────────────────


def test_propose_signs_the_actions_in_their_units_and_says_what_happened(
    cli: Cli, node: FakeNode, key_file: str
) -> None:
    node.answer("POST", "/v1/commands", CREATED)
    done = cli(
        "gov", "propose", "--set", "market.margin.initial_margin_ppm", "BTC-PERP", "4.5%",
        "--set", "market.margin.oi_lower_quote_quantums", "BTC-PERP", "2500000.5",
        "--set", "governance.timelock_ns", "-", "2d", "--pause", "ETH-PERP",
        "--settle", "BTC-PERP", "61234.5", "--memo", "safer BTC", "--key-file", key_file,
        "--url", node.url,
    )  # fmt: skip
    assert done.code == 0, done.err
    assert "accepted at height 12" in done.out and "proposal 3: pending, 1 approval" in done.out
    [propose] = node.commands()
    assert isinstance(propose, Propose) and propose.memo == "safer BTC"
    assert propose.signer == SIGNER and propose.simulation == ""
    assert [(a.kind, a.target, a.value) for a in propose.actions] == [
        (ActionKind.SET_PARAM, "BTC-PERP", 45_000),
        (ActionKind.SET_PARAM, "BTC-PERP", 2_500_000_500_000),
        (ActionKind.SET_PARAM, "", 2 * 86_400 * 10**9),
        (ActionKind.PAUSE_MARKET, "ETH-PERP", 0),
        (ActionKind.SET_SETTLEMENT_PRICE, "BTC-PERP", 61_234_500_000),
    ]  # fmt: skip


def test_the_guardians_and_the_councils_commands_print_the_nodes_json(
    cli: Cli, node: FakeNode, key_file: str
) -> None:
    node.answer(
        "POST",
        "/v1/commands",
        {
            "status": "accepted",
            "height": 5,
            "events": [
                {
                    "type": "MarketFlagsChanged",
                    "market_id": "BTC-PERP",
                    "paused": True,
                    "reduce_only": False,
                    "by": SIGNER,
                },
                {"type": "OrderCancelled", "order_id": 1},
                {"type": "OrderCancelled", "order_id": 2},
            ],
        },
    )
    done = cli("gov", "guardian", "--pause", "BTC-PERP", "--key-file", key_file, "--url", node.url)
    assert "BTC-PERP: paused" in done.out and "2 resting orders cancelled" in done.out
    approved = cli("gov", "approve", "3", "--key-file", key_file, "--url", node.url, "--json")
    assert json.loads(approved.out)["height"] == 5
    guardian, approve = node.commands()
    assert isinstance(guardian, GuardianAct) and guardian.actions[0].kind is ActionKind.PAUSE_MARKET
    assert isinstance(approve, ApproveProposal) and approve.proposal_id == 3


# ── --simulate ───────────────────────────────────────────────────────────────────────────


@pytest.fixture
def stress_lab(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The stress lab's proposal module, faked: it records what it was asked to run."""
    asked: list[dict[str, Any]] = []
    fake = types.ModuleType("clearhouse.sim.stress.proposal")

    def simulate_proposal(
        actions: Any, *, paths: int = 4, workers: int = 1, progress: Any = None
    ) -> dict[str, Any]:
        asked.append({"actions": actions, "paths": paths, "workers": workers})
        progress(2 * paths, 2 * paths)
        return {"changes": [a.name for a in actions], "scenarios": {"jumps": {"var": -1.5}}}

    fake.simulate_proposal = simulate_proposal  # type: ignore[attr-defined]
    fake.compact_json = lambda result: json.dumps(result, separators=(",", ":"))  # type: ignore[attr-defined]
    fake.render_text = lambda result: [f"jumps: VaR {result['scenarios']['jumps']['var']}"]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "clearhouse.sim.stress.proposal", fake)
    return asked


def test_simulate_attaches_the_stress_diff_and_the_holders_it_would_make_liquidatable(
    cli: Cli, node: FakeNode, key_file: str, stress_lab: list[dict[str, Any]]
) -> None:
    node.answer("POST", "/v1/commands", CREATED)
    node.answer("POST", "/v1/gov/impact", {"liquidatable": ["0xab/0", "0xcd/1"],
                                           "truncated": False, "height": 11})  # fmt: skip
    done = cli("gov", "propose", "--set", "market.margin.initial_margin_ppm", "BTC-PERP", "10%",
               "--simulate", "--paths", "2", "--key-file", key_file, "--url", node.url)  # fmt: skip
    assert done.code == 0, done.err
    assert "jumps: VaR -1.5" in done.out
    assert "liquidatable at once if it passed: 2 accounts" in done.out
    assert stress_lab[0]["paths"] == 2 and stress_lab[0]["actions"][0].value == 100_000
    [(_, impact)] = [(p, b) for p, b in node.posted if p == "/v1/gov/impact"]
    assert impact["actions"][0]["value"] == 100_000
    [propose] = node.commands()
    assert isinstance(propose, Propose)
    assert json.loads(propose.simulation) == {
        "stress": {"changes": ["market.margin.initial_margin_ppm"],
                   "scenarios": {"jumps": {"var": -1.5}}},
        "liquidatable": ["0xab/0", "0xcd/1"], "liquidatable_count": 2, "truncated": False,
    }  # fmt: skip


def test_simulate_with_json_prints_one_document(
    cli: Cli, node: FakeNode, key_file: str, stress_lab: list[dict[str, Any]]
) -> None:
    node.answer("POST", "/v1/commands", CREATED)
    node.answer("POST", "/v1/gov/impact", {"liquidatable": [], "truncated": True, "height": 1})
    done = cli("gov", "propose", "--pause", "BTC-PERP", "--simulate", "--json",
               "--key-file", key_file, "--url", node.url)  # fmt: skip
    printed = json.loads(done.out)
    assert printed["proposal_id"] == 3 and printed["answer"]["height"] == 12
    assert printed["simulation"]["truncated"] is True


# ── What the read commands print ─────────────────────────────────────────────────────────


def test_show_renders_the_proposal_its_actions_and_its_simulation(
    cli: Cli, node: FakeNode, stress_lab: list[dict[str, Any]]
) -> None:
    node.answer("GET", "/v1/gov/proposals/3", PROPOSAL)
    done = cli("gov", "show", "3", "--url", node.url)
    assert done.code == 0, done.err
    for words in ("queued", "2 of 2", "in 30m", "raise BTC margins", "pause ETH-PERP",
                  "set market.margin.initial_margin_ppm of BTC-PERP to 4.5% (45000 ppm)",
                  "liquidatable at once if it passed: 5 accounts (the first 2 attached); "
                  "the node's scan was cut", "0xcd/1"):  # fmt: skip
        assert words in done.out, words
    assert "changes" in done.out  # the fake renderer cannot read it: shown as it is
    assert json.loads(cli("gov", "show", "3", "--url", node.url, "--json").out) == PROPOSAL


def test_list_history_params_and_config_print_tables_or_json(cli: Cli, node: FakeNode) -> None:
    node.answer("GET", "/v1/gov/proposals", [PROPOSAL])
    node.answer("GET", "/v1/gov/history", HISTORY)
    node.answer("GET", "/v1/gov/params", PARAMS)
    node.answer("GET", "/v1/gov", CONFIG)
    listed = cli("gov", "list", "--status", "OPEN", "--url", node.url)
    assert "queued" in listed.out and "raise BTC margins" in listed.out
    assert ("/v1/gov/proposals", {"status": ["open"], "limit": ["100"]}) in node.queries
    history = cli("gov", "history", "--name", "market.taker_fee_ppm", "--url", node.url)
    assert "0.05%" in history.out and "0.075%" in history.out and "--cursor 41" in history.out
    params = cli("gov", "params", "--url", node.url)
    assert "0% .. 1%, step 0.025%, cooldown 1d" in params.out and "ETH-PERP: 0.075%" in params.out
    config = cli("gov", "config", "--url", node.url)
    assert "1h" in config.out and "ETH-PERP" in config.out
    for command in ("list", "history", "params", "config"):
        assert json.loads(cli("gov", command, "--url", node.url, "--json").out)
