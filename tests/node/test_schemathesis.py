"""Schemathesis against a real node: every operation of its ``/openapi.json`` is called with
requests generated from the schema, valid ones and invalid ones, and no answer may be a
server error (5xx) nor kill the process; every answer must have a status the operation
documents and a body its response schema (a typed model, or the error envelope) admits.

Schemathesis' own pytest entry points do not fit here: ``schema.parametrize()`` needs the schema
at import time (a node running while tests are collected), and ``from_fixture`` reaches for
``Item._nodeid``, which pytest 9.2 no longer has. So each operation's strategy
(``APIOperation.as_strategy``, for positive and for negative data) drives a Hypothesis test of
its own, and every failure is collected with a curl line that reproduces it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok
from tests.node.conftest import NodeProcess

from clearhouse.client import Client, Wallet

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# For each of the two generation modes; a long run sets more.
EXAMPLES_PER_OPERATION = int(os.environ.get("CLEARHOUSE_FUZZ_EXAMPLES", "15"))
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
MARKET = "BTC-PERP"
Pass = tuple[GenerationMode, dict[str, Any] | None]


@pytest.fixture(scope="module")
def fuzzed_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data = Path(tmp_path_factory.mktemp("schemathesis")) / "node"
    node = NodeProcess(data, extra=("--ip-rate", "0", "--account-rate", "0")).start()
    yield node
    node.kill()


@pytest.fixture(scope="module")
def known(fuzzed_node: NodeProcess) -> dict[str, Any]:
    """Path values that exist on the node (a funded account, its resting order, a block, a
    command), so that generated query strings and bodies reach past the 404s."""
    with Client(fuzzed_node.url, Wallet.create()) as trader:
        trader.faucet(100_000)
        deadline = time.monotonic() + 15
        while (market := trader.market(MARKET))["oracle_status"] != "fresh":
            assert time.monotonic() < deadline, market
            time.sleep(0.05)
        price = market["index_price_quantums"] * 97 // 100 // 100_000 * 100_000
        order = trader.order(MARKET, "buy", size_base_quantums=100_000, price_quantums=price,
                             client_order_id=5)  # fmt: skip
        placed = trader.submit(order)
        return {
            "market_id": MARKET, "address": trader.account, "signer": trader.account,
            "number": 0, "order_id": placed["order_id"], "client_order_id": 5,
            "height": placed["height"], "command_hash": Client.command_hash(order),
        }  # fmt: skip


def _passes(operation: schemathesis.APIOperation, known: dict[str, Any]) -> list[Pass]:
    """Positive and negative data everywhere; then, where every path parameter has a value
    known to exist, positive data for the rest of the request with those values."""
    passes: list[Pass] = [(mode, None) for mode in MODES]
    names = {p.name for p in operation.path_parameters}
    if names and names <= known.keys():
        passes.append((GenerationMode.POSITIVE, {n: known[n] for n in names}))
    return passes


def _fuzz(
    operation: schemathesis.APIOperation, mode: GenerationMode, path: dict[str, Any] | None,
    url: str,
) -> list[str]:  # fmt: skip
    """Run one operation's strategy; return the failures found (minimal examples)."""
    found: list[str] = []
    session = requests.Session()

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=False)  # fmt: skip
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, session=session, timeout=15)
        try:
            case.validate_response(response, checks=CHECKS)
        except BaseExceptionGroup as failure:  # schemathesis' FailureGroup of failed checks
            raise AssertionError(
                f"{operation.label} ({mode.value}, path {path}): {response.status_code} "
                f"{response.text[:500]}\n  {case.as_curl_command(base_url=url)}\n  {failure}"
            ) from None

    try:
        run()
    except AssertionError as failure:
        found.append(str(failure))
    except Unsatisfiable:
        # Nothing to get wrong: an operation without parameters or body has no negative cases.
        if mode is GenerationMode.POSITIVE or operation.body or operation.path_parameters:
            raise
    finally:
        session.close()
    return found


def test_no_generated_request_makes_a_server_error(
    fuzzed_node: NodeProcess, known: dict[str, Any]
) -> None:
    schema = schemathesis.openapi.from_url(fuzzed_node.url + "/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    labels = {o.label for o in operations}
    # The schema is the whole API (a route missing from it would not be fuzzed at all).
    assert {"POST /v1/commands", "POST /v1/commands/batch", "POST /v1/dev/faucet",
            "GET /v1/orders/{order_id}", "GET /v1/blocks/{height}"} <= labels  # fmt: skip
    assert len(operations) == sum(1 for r in schema.get_all_operations())  # all well-formed
    failures = [
        failure
        for operation in operations
        for mode, path in _passes(operation, known)
        for failure in _fuzz(operation, mode, path, fuzzed_node.url)
    ]
    assert fuzzed_node.process is not None and fuzzed_node.process.poll() is None, "node died"
    assert not failures, "\n\n".join(failures) + "\n\nnode log:\n" + fuzzed_node.log()
    assert requests.get(fuzzed_node.url + "/health", timeout=5).json()["status"] == "ok"
