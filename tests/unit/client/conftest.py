"""One real dev node for the SDK's tests (each test trades from its own new wallet, so they
share it safely), started on first use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.node.conftest import NodeProcess, fresh_index


@pytest.fixture(scope="session")
def node_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process = NodeProcess(tmp_path_factory.mktemp("sdk") / "node").start()
    fresh_index(process.url)  # the dev feed's first prices: orders need a fresh index
    yield process.url
    process.stop()
