"""Prometheus metrics of one node (its own registry, so that tests can run several)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from clearhouse.core.ids import QUOTE_ASSET
from clearhouse.core.ledger import INSURANCE
from clearhouse.node.readmodel import BlockUpdate
from clearhouse.node.sequencer import BlockStats, Sequencer

disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series only double the exposition's size
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class NodeMetrics:
    def __init__(self, sequencer: Sequencer) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.commands = Counter("clearhouse_commands", "Commands put in blocks", registry=r)
        self.blocks = Counter("clearhouse_blocks", "Blocks made durable", registry=r)
        self.execute = Histogram("clearhouse_block_execute_seconds", "Block execution time",
                                 buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.commit = Histogram("clearhouse_block_commit_seconds", "Journal commit (fsync) time",
                                buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.ack = Histogram("clearhouse_ack_latency_seconds",
                             "From a command's arrival to its durable acknowledgement",
                             buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.liquidations = Counter("clearhouse_liquidations", "Liquidation steps", registry=r)
        self.trades = Counter("clearhouse_trades", "Fills", registry=r)
        self.requests = Counter("clearhouse_http_requests", "HTTP requests", ["status"],
                                registry=r)  # fmt: skip
        self.rate_limited = Counter("clearhouse_rate_limited", "Requests refused by rate limits",
                                    registry=r)  # fmt: skip
        queue = Gauge("clearhouse_queue_depth", "Commands waiting for a block", registry=r)
        queue.set_function(lambda: sequencer.queue_depth)
        height = Gauge("clearhouse_block_height", "Height of the last durable block", registry=r)
        height.set_function(lambda: sequencer.chain.height)
        fund = Gauge("clearhouse_insurance_fund_quote_quantums", "Insurance fund balance",
                     registry=r)  # fmt: skip
        ledger = sequencer.chain.engine.state.ledger
        fund.set_function(lambda: ledger.balance(INSURANCE, QUOTE_ASSET))
        self._sequencer = sequencer
        sequencer.stats_listeners.append(self.on_stats)
        sequencer.listeners.append(self.on_block)

    def on_stats(self, stats: BlockStats) -> None:
        self.blocks.inc()
        self.commands.inc(stats.commands)
        self.execute.observe(stats.execute_seconds)
        self.commit.observe(stats.commit_seconds)
        for latency in stats.ack_latencies:
            self.ack.observe(latency)

    def on_block(self, update: BlockUpdate, books: object) -> None:
        self.trades.inc(sum(len(t) for t in update.trades.values()))
        self.liquidations.inc(
            sum(1 for items in update.accounts.values() for item in items
                if item.get("type") == "Liquidated")
        )  # fmt: skip

    def render(self) -> bytes:
        return generate_latest(self.registry)
