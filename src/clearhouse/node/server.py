"""Assemble and run a node: open the store, recover (snapshot + replay) or write genesis, with
``--replicate`` take the block stream's blocks beyond the journal (a takeover) and publish the
journal's beyond the stream, then serve the API with uvicorn until SIGTERM/SIGINT, and shut down
without losing a command."""

from __future__ import annotations

import asyncio
import errno
import http
import json
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from weakref import WeakKeyDictionary

import uvicorn
from fastapi import FastAPI
from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.frames import CloseCode, Frame
from websockets.protocol import State

from clearhouse.adapters.stores import describe, open_journal
from clearhouse.app.audit import journal_domain, record_domain, record_node_signers
from clearhouse.app.chain import Chain, check_links, venue_from_genesis
from clearhouse.app.ports import BlockStream, Journal, StoredBlock
from clearhouse.app.replication import bootstrap, catch_up, check_same_chain, publish_missing
from clearhouse.app.signing import Domain
from clearhouse.core.block import ExecutedBlock
from clearhouse.core.codec import encode_command
from clearhouse.core.errors import (
    BadDataDir,
    ConfigError,
    NodeFailed,
    ReplicationFenced,
    VerificationError,
)
from clearhouse.core.ids import Address, OracleId
from clearhouse.core.params import GovernanceParams
from clearhouse.core.units import NS_PER_MS
from clearhouse.node.api import ApiSettings, create_app
from clearhouse.node.dev import (
    DEV_GOVERNANCE,
    DEV_ROLES,
    PUBLIC_ADDRESSES,
    DevFeed,
    Faucet,
    VenueRoles,
    dev_address,
)
from clearhouse.node.genesis import (
    DEV_CHAIN_ID,
    Genesis,
    load_genesis,
    public_keys,
    setup_governance,
)
from clearhouse.node.metrics import NodeMetrics
from clearhouse.node.protection import OpenPerKey, RateLimiter
from clearhouse.node.readmodel import ReadModel
from clearhouse.node.sequencer import Sequencer, load_snapshot
from clearhouse.node.sockets import MESSAGE_BYTES_MAX
from clearhouse.sim.venue import USDC, VenueSpec, genesis_commands

log = logging.getLogger("clearhouse.node")

JOURNAL_FILE = "journal.sqlite"
# A connection sends its whole request (headers and body: a batch is at most 4 MB) within this
# long of opening or of the request's first byte, or it is closed.
REQUEST_SECONDS_MAX = 30.0
# The request line and headers of one request, at most (nginx's default is 32 KiB; h11, uvicorn's
# other parser, stops at 16 KiB). httptools has no bound: it gathers a header, and uvicorn the
# URL, by concatenating each read onto what came before, so one 160 MB header (sent within the
# deadline below) held ~150 MB of the node and kept its event loop copying (in process, a
# 64 MiB header in 64 KiB reads: 17 s of CPU). One read beyond this may have been parsed.
HEAD_BYTES_MAX = 32 * 1024
# A body's parts (chunks of a chunked body, or reads of a plain one) are at least this long on
# average, past the first BODY_PARTS_FREE: the parser calls into Python once per part, and a
# 4 MiB batch sent in 1-byte chunks took 2.4 s of the event loop for the weight of its size.
BODY_PART_BYTES_MIN = 256
BODY_PARTS_FREE = 1_024
# HTTP connections open at once from one address (WebSockets, once upgraded, count in the
# streams' own limit). Without it, one client opened 20,000 idle connections, each closed by the
# deadline only after 30 s: the node ran out of file descriptors and turned every new client
# away (a /health waited 8.8 s; asyncio logged 10,239 failed accepts, 5 MB of log).
CONNECTIONS_PER_IP_MAX = 128
REFUSED_LINGER_SECONDS = 1.0  # a refused connection reads (and drops) this long, then closes
# The largest WebSocket message read (uvicorn's default: 16 MiB, which compression lets a client
# send in a few kilobytes): a message of MESSAGE_BYTES_MAX characters, each up to 4 UTF-8 bytes.
# A larger one closes the connection with 1009 (message too big).
WS_MESSAGE_BYTES_MAX = 4 * MESSAGE_BYTES_MAX
# Frames a WebSocket connection may send (pings, pongs, messages, their fragments, a close): a
# token bucket of this burst, refilled at this rate. A client subscribes a few times, and its
# library pings every 20 s or so; a ping costs the node a parse and a pong (~10 µs), a message
# the app's answer (tens of µs), and four connections sending pings as fast as the node read
# them held a /health probe for 2.4 s. Past the bucket, the connection closes with 1008.
WS_FRAMES_PER_SECOND = 50.0
WS_FRAMES_BURST = 300
# The same for all the streams of one address together (16 at most, each with a fresh burst
# when it reconnects): four connections' worth.
WS_FRAMES_PER_IP_PER_SECOND = 4 * WS_FRAMES_PER_SECOND
WS_FRAMES_PER_IP_BURST = 4 * WS_FRAMES_BURST
# A read (up to 256 KiB: 43,000 empty pings, ~0.3 s of parsing) is parsed this much at a time,
# and its frames charged before they are handled: past the limit, at most this many bytes of
# frames were parsed, never a whole read.
WS_PARSE_BYTES = 1_024
# A refused connection's client (HTTP or WebSocket) may send this much more (dropped unread)
# while the answer or the close frame reaches it; past it, the node stops reading (at the close,
# the client may then get a reset): read and dropped, 16 streams pushing as fast as they could
# took the node ~1 GB/s of reads.
REFUSED_DROP_BYTES = 256 * 1024
WS_FRAMES_REFUSED = f"at most {WS_FRAMES_PER_SECOND:g} frames a second, bursts of {WS_FRAMES_BURST}"
WS_FRAMES_PER_IP_REFUSED = (f"at most {WS_FRAMES_PER_IP_PER_SECOND:g} frames a second from one "
                            f"address, bursts of {WS_FRAMES_PER_IP_BURST}")  # fmt: skip


@dataclass(slots=True)
class NodeConfig:
    host: str = "127.0.0.1"
    port: int = 8400
    data_dir: Path = field(default_factory=lambda: Path("data"))
    store: str | None = None  # a postgresql:// URL, or None for SQLite in data_dir
    dev: bool = False
    snapshot_every: int = 1_000
    chain_id: int | None = None  # a venue named by role flags: its own domain (else --dev's)
    verifying_contract: str | None = None
    ip_rate: float = 2_000.0
    account_rate: float = 1_000.0
    verify_workers: int = 0  # processes recovering batch signatures (0: a thread in the node)
    roles: VenueRoles | None = None  # a new venue's operator, relayer, publishers (not --dev)
    genesis: Path | None = None  # a new venue's genesis file: domain, roles, listings
    public_keys: bool = False  # serve a new venue whose roles are the dev node's public keys
    replicate: str | None = None  # nats://host:port: publish every block to JetStream
    stream: str | None = None  # the JetStream stream's name (default: from the chain id)
    stream_replicas: int = 1  # the stream's replicas when this node creates it (R=3: a cluster)

    @property
    def domain(self) -> Domain:
        if self.chain_id is None or self.verifying_contract is None:
            return Domain(DEV_CHAIN_ID, dev_address("custody-contract"))
        return Domain(self.chain_id, self.verifying_contract)

    @property
    def location(self) -> str:
        return self.store or str(self.data_dir / JOURNAL_FILE)


@dataclass(slots=True)
class Node:
    config: NodeConfig
    journal: Journal
    sequencer: Sequencer
    metrics: NodeMetrics
    app: FastAPI
    stream: BlockStream | None = None


def open_node(config: NodeConfig) -> Node:
    """Open the store, holding its lock (one node per journal), and bring the chain to its
    durable head (or write genesis)."""
    genesis = _genesis(config)  # a bad file is refused before anything is written
    roles = genesis.roles if genesis is not None else _roles(config)
    domain = genesis.domain if genesis is not None else config.domain
    if config.store is None:
        try:
            config.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            why = "not a folder" if config.data_dir.exists() else error.strerror
            raise BadDataDir(f"cannot use --data {config.data_dir}: {why}") from None
    journal = open_journal(config.location, exclusive=True)
    stream: BlockStream | None = None
    try:
        if config.replicate is not None:
            stream = _open_stream(config, journal, domain.chain_id)
        chain, read_model, spec, domain = _recover_or_start(
            journal, roles, genesis=genesis, domain=domain, dev=config.dev
        )
        block_bytes_max = None
        if stream is not None:
            block_bytes_max = _level_with(stream, chain, read_model)
    except BaseException:
        if stream is not None:
            stream.close()
        journal.close()
        raise
    dev_feed = faucet = None
    if config.dev:
        dev_feed = DevFeed(spec, seed=chain.height)
        for oracle_id in dev_feed.prices:
            oracle = chain.engine.state.oracles.get(OracleId(oracle_id))
            if oracle is not None and oracle.index_price_quantums > 0:
                dev_feed.prices[oracle_id] = oracle.index_price_quantums / USDC
        faucet = Faucet(spec.relayer)
    sequencer = Sequencer(
        chain, read_model, snapshot_every=config.snapshot_every, dev_feed=dev_feed,
        faucet=faucet, stream=stream, block_bytes_max=block_bytes_max,
    )  # fmt: skip
    metrics = NodeMetrics(sequencer)
    settings = ApiSettings(
        chain_id=domain.chain_id, verifying_contract=domain.verifying_contract,
        domain_name=domain.name, domain_version=domain.version, dev=config.dev,
        ip_rate=config.ip_rate, ip_burst=2 * config.ip_rate,
        account_rate=config.account_rate, account_burst=2 * config.account_rate,
    )  # fmt: skip
    pool = None
    if config.verify_workers:  # spawned, not forked: the node already runs threads
        pool = ProcessPoolExecutor(config.verify_workers, mp_context=get_context("spawn"))
    app = create_app(sequencer, settings, metrics, pool)
    return Node(config, journal, sequencer, metrics, app, stream)


def _open_stream(config: NodeConfig, journal: Journal, chain_id: int) -> BlockStream:
    """The venue's block stream. A journal that has no block yet (a replica's that never got
    block 1, or a new one) takes the stream's blocks first, as a replica would, instead of
    writing a genesis of its own: a venue whose stream exists is never started anew."""
    from clearhouse.adapters.nats_stream import NatsBlockStream, stream_names

    assert config.replicate is not None
    name, subject = stream_names(chain_id, config.stream)
    stream = NatsBlockStream(
        config.replicate, stream=name, subject=subject, replicas=config.stream_replicas
    )
    try:
        if journal.block(1) is None and stream.last_height() > 0:
            taken = catch_up(bootstrap(journal, stream), stream)
            log.info("journal taken from the block stream", extra={"blocks": taken})
    except BaseException:
        stream.close()
        raise
    return stream


def _level_with(stream: BlockStream, chain: Chain, read_model: ReadModel) -> int:
    """The block stream brought level with the journal before the node takes a command: the
    stream's blocks beyond the journal first (a sequencer taking over from a replica's journal:
    each re-executed and checked, so nothing the old sequencer acknowledged is lost), then the
    journal's beyond the stream (published, fenced). A journal that forked from the stream (a
    fenced sequencer's) is refused. Returns the commands' byte budget a block's record leaves
    within the server's largest message."""
    from clearhouse.adapters.nats_stream import RECORD_HEADROOM_BYTES, NatsBlockStream

    check_same_chain(chain, stream)
    taken = catch_up(chain, stream, on_block=_feeder(read_model))
    published = publish_missing(chain, stream)
    log.info("block stream level with the journal", extra={
        "height": chain.height, "taken_from_stream": taken, "published": published,
    })  # fmt: skip
    largest = stream.max_payload if isinstance(stream, NatsBlockStream) else 1 << 20
    return max(1, largest - RECORD_HEADROOM_BYTES)


def _genesis(config: NodeConfig) -> Genesis | None:
    if config.genesis is None:
        return None
    if config.dev:
        raise ConfigError("--dev runs the default venue on the dev keys: leave out --genesis")
    if config.roles is not None or config.chain_id is not None:
        raise ConfigError("the genesis file names the venue's roles and signing domain: leave "
                          "out --operator, --relayer, --publisher, --chain-id and "
                          "--verifying-contract")  # fmt: skip
    genesis = load_genesis(config.genesis, time.time_ns())
    if not config.public_keys:
        _refuse_public_keys(public_keys(genesis), f"genesis {config.genesis}: ")
    return genesis


def _refuse_public_keys(found: list[str], where: str) -> None:
    """A venue whose roles (or domain) are the dev node's can be signed for by anyone: its
    custody relayer's key credits any deposit. Served only when the operator says it is a
    throwaway (``--public-keys``)."""
    if found:
        raise ConfigError(
            f"{where}{found[0]} is the dev node's, whose key anyone can derive, so anyone could "
            f"sign as it{f' (and {len(found) - 1} more)' if len(found) > 1 else ''}: give the "
            "venue keys of its own (clearhouse init writes fresh ones), or serve it with "
            "--public-keys for a throwaway venue"
        )


def _roles(config: NodeConfig) -> VenueRoles:
    if config.dev:
        if config.roles is not None or config.chain_id is not None:
            raise ConfigError("--dev runs its own publishers and relayer on the dev keys and "
                              "domain: leave out --operator, --relayer, --publisher and "
                              "--chain-id")  # fmt: skip
        return DEV_ROLES
    if config.roles is None:
        raise ConfigError(
            "a venue starts from its --genesis file (clearhouse init writes one), or names its "
            "--operator, --relayer and --publisher addresses; --dev uses the public dev keys"
        )
    if config.chain_id is None or config.verifying_contract is None:
        # The dev domain is public: a signature made for any venue on it is valid on all.
        raise ConfigError("a venue named by --operator, --relayer and --publisher signs in "
                          "its own domain: give --chain-id and --verifying-contract "
                          "too")  # fmt: skip
    if not config.public_keys:
        roles = config.roles
        named = [("--operator", roles.operator), ("--relayer", roles.relayer)]
        named += [("--publisher", p) for p in roles.publishers]
        _refuse_public_keys([f"{flag} {a}" for flag, a in named if a in PUBLIC_ADDRESSES], "")
    return config.roles


def _recover_or_start(
    journal: Journal, roles: VenueRoles, *, genesis: Genesis | None, domain: Domain, dev: bool
) -> tuple[Chain, ReadModel, VenueSpec, Domain]:
    """The chain, its read model, the roles' venue spec and the domain the venue signs for."""
    document = journal.genesis()
    first = journal.block(1)
    if document is None or first is None:
        node_signers = (*roles.publishers, roles.relayer) if dev else ()
        chain, read_model, spec = start_chain(
            journal, roles, genesis=genesis, domain=domain, node_signers=node_signers,
            governance=DEV_GOVERNANCE if dev else None,
        )  # fmt: skip
        return chain, read_model, spec, domain
    recorded = journal_domain(journal)  # a journal written before it was recorded: the flags'
    if recorded is not None and recorded != domain:
        given = "the genesis file's" if genesis is not None else "the one given"
        raise ConfigError(f"the journal's venue signs for {recorded}, not {given}: "
                          f"{domain}")  # fmt: skip
    chain = Chain(venue_from_genesis(document), journal, resume=True)
    read_model = _recover(chain, journal)  # the journal's genesis decides the roles now
    return chain, read_model, roles.spec(first.header.timestamp_ns), recorded or domain


def start_chain(
    journal: Journal,
    roles: VenueRoles = DEV_ROLES,
    *,
    genesis: Genesis | None = None,
    domain: Domain | None = None,
    node_signers: tuple[Address, ...] = (),
    governance: GovernanceParams | None = None,
) -> tuple[Chain, ReadModel, VenueSpec]:
    """A new venue in an empty journal: its genesis block, made durable, and the journal's
    record of the domain its users sign for and of the addresses the node signs for itself
    (``app/audit.py``: which commands may be unsigned). ``governance`` (a venue without a
    genesis file: the dev node's council) ends the block with the hand-over to it; a genesis
    file says its own."""
    genesis_ns = time.time_ns()
    spec = roles.spec(genesis_ns)
    if genesis is None:
        venue, commands = spec.venue, genesis_commands(spec)
        if governance is not None:  # after the listings: once governed, the operator lists none
            commands.append(setup_governance(
                roles.operator, governance, genesis_ns=genesis_ns,
                nonce=genesis_ns // NS_PER_MS + len(commands),
            ))  # fmt: skip
    else:
        genesis.check_listings(genesis_ns)
        venue, commands = genesis.venue, genesis.commands(genesis_ns)
    chain = Chain(venue, journal)
    record_domain(journal, domain or Domain(DEV_CHAIN_ID, dev_address("custody-contract")))
    record_node_signers(journal, node_signers)
    encoded = [encode_command(c) for c in commands]
    executed = chain.produce_encoded(genesis_ns, encoded)
    chain.flush()
    read_model = ReadModel()
    read_model.apply(executed, encoded, chain.parent_hash)
    state = chain.engine.state
    governed = state.governance is not None
    log.info("genesis written", extra={"markets": len(state.markets), "governed": governed})
    return chain, read_model, spec


def _recover(chain: Chain, journal: Journal) -> ReadModel:
    started = time.perf_counter()
    snapshot = journal.latest_snapshot()
    restored = None if snapshot is None else load_snapshot(snapshot)
    if restored is not None:
        engine, read_model = restored
        check_links(journal)  # the records behind the snapshot are not replayed: hash them
        try:
            chain.recover(snapshot=engine, on_replayed=_feeder(read_model))
            _recovered(chain, started, snapshot_height=engine.state.height)
            return read_model
        except VerificationError as error:
            log.warning("snapshot not usable, replaying from genesis", extra={"why": str(error)})
    read_model = ReadModel()
    chain.recover(on_replayed=_feeder(read_model))
    _recovered(chain, started, snapshot_height=0)
    return read_model


def _feeder(read_model: ReadModel) -> Callable[[StoredBlock, ExecutedBlock], None]:
    def feed(stored: StoredBlock, executed: ExecutedBlock) -> None:
        read_model.apply(executed, stored.commands, stored.block_hash)

    return feed


def _recovered(chain: Chain, started: float, *, snapshot_height: int) -> None:
    log.info(
        "recovered",
        extra={"height": chain.height, "from_snapshot": snapshot_height,
               "seconds": round(time.perf_counter() - started, 3)},
    )  # fmt: skip


def serve(config: NodeConfig) -> int:
    """Run the node until SIGTERM/SIGINT (0), or until its sequencer stops on an error
    (NodeFailed). A node that cannot start raises its StorageError, VerificationError or
    ConfigError: the command line reports it in one line with its exit code."""
    configure_logging()
    listener = listening_socket(config)  # a port in use is refused before anything is written
    try:
        return _serve(config, listener)
    finally:
        listener.close()


def _serve(config: NodeConfig, listener: socket.socket) -> int:
    node = open_node(config)
    log.info("node ready", extra={
        "url": f"http://{config.host}:{config.port}", "store": describe(config.location),
        "height": node.sequencer.chain.height, "dev": config.dev,
    })  # fmt: skip
    server = uvicorn.Server(uvicorn_config(node.app, config))
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again under the
    # handlers it found: let those be no-ops, so that a clean stop closes the journal and
    # exits 0 instead of dying by the signal.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: None)

    def stop_serving(error: BaseException) -> None:
        # A node whose chain no longer moves must not go on answering as if it did: stop
        # accepting and answering, exit non-zero, and let the operator (or its supervisor)
        # restart it on the journal, which recovery replays.
        log.error("sequencer failed: stopping the node", extra={"why": str(error)})
        server.should_exit = True

    node.sequencer.on_failure = stop_serving
    server.run(sockets=[listener])
    node.journal.close()
    if node.stream is not None:
        node.stream.close()
    log.info("node stopped", extra={"height": node.sequencer.chain.height})
    if isinstance(node.sequencer.failure, ReplicationFenced):
        raise node.sequencer.failure  # its own code and exit status: another sequencer leads
    if node.sequencer.failure is not None:
        raise NodeFailed(
            f"the node stopped serving: its sequencer failed: {node.sequencer.failure}"
        )
    return 0


LISTEN_BACKLOG = 2048  # uvicorn's own default


def listening_socket(config: NodeConfig) -> socket.socket:
    """The node's socket, bound to --host and --port and listening (uvicorn accepts on it once
    the node is ready; until then connections wait). ConfigError if it cannot be bound."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((config.host, config.port))
        # Listening at once (connections wait in the backlog until the node serves): two
        # nodes started together could both bind a port neither listened on yet.
        listener.listen(LISTEN_BACKLOG)
    except OSError as error:
        listener.close()
        taken = error.errno == errno.EADDRINUSE
        raise ConfigError(
            f"cannot listen on {config.host}:{config.port}: {error.strerror or error}"
            f"{' (another node?): choose another --port' if taken else ''}"
        ) from None
    return listener


def uvicorn_config(app: FastAPI, config: NodeConfig) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=config.host, port=config.port, log_config=None, access_log=False,
        timeout_graceful_shutdown=10, lifespan="on", http=RequestDeadline, ws=FrameLimit,
        ws_max_size=WS_MESSAGE_BYTES_MAX,
    )  # fmt: skip


def _drop_unread(transport: asyncio.Transport, dropped: int) -> int:
    """A refused connection's bytes since its refusal, dropped: past ``REFUSED_DROP_BYTES`` the
    node no longer reads a client that goes on sending at all."""
    if dropped > REFUSED_DROP_BYTES:
        transport.pause_reading()
    return dropped


class RequestDeadline(HttpToolsProtocol):
    """uvicorn's HTTP protocol, with a deadline on receiving each request. uvicorn has none:
    a connection that sent nothing, part of its headers or part of its body was held open for
    ever, and enough of them (one client could open them all) used up the node's file
    descriptors. Waiting for the app's answer, or idle between requests (uvicorn's keep-alive
    timeout), is not covered; neither is a WebSocket once upgraded. With bounds on what one
    request's head and body cost before the app sees them (``HEAD_BYTES_MAX``,
    ``BODY_PART_BYTES_MIN``) and on the connections one address holds
    (``CONNECTIONS_PER_IP_MAX``): each refusal is a JSON error, then the connection closes."""

    _deadline: asyncio.TimerHandle | None = None
    _counted: str | None = None  # the address this connection counts against, while it does
    _reading_head = True  # from the connection or the end of a request to the head's end
    _head_bytes = 0
    _parsed_head = 0  # the request line's URL and the headers parsed so far
    _body_parts = 0
    _body_bytes = 0
    _refused = False  # an answer was sent and the connection is closing: nothing more
    _dropped = 0  # what its client sent since (``REFUSED_DROP_BYTES``)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ip = self.client[0] if self.client else "?"
        if not _open_connections(self.server_state).admit(ip):
            most = f"at most {CONNECTIONS_PER_IP_MAX} HTTP connections per address"
            self._refuse(429, "TOO_MANY_CONNECTIONS", most)
            return
        self._counted = ip
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._dropped = _drop_unread(self.transport, self._dropped + len(data))
            return
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._reading_head and self._head_bytes > HEAD_BYTES_MAX and not self._refused:
            most = f"a request line and headers of at most {HEAD_BYTES_MAX} bytes"
            self._refuse(431, "REQUEST_HEAD_TOO_LARGE", most)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._body_parts = self._body_bytes = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._parsed_head += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsed_head += len(name) + len(value) + 4  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        # A head that came whole in one read (up to 256 KiB) ends before ``data_received``
        # can weigh it: measured as parsed, it is held to the same bound, before the app runs.
        if self._parsed_head > HEAD_BYTES_MAX:
            most = f"a request line and headers of at most {HEAD_BYTES_MAX} bytes"
            self._refuse(431, "REQUEST_HEAD_TOO_LARGE", most)
            raise _Refused  # stops the parser: no request reaches the app
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_parts += 1
        self._body_bytes += len(body)
        parts = self._body_parts
        if parts > BODY_PARTS_FREE and self._body_bytes < parts * BODY_PART_BYTES_MIN:
            self._refuse(400, "BODY_TOO_FRAGMENTED",
                         f"a body's chunks are at least {BODY_PART_BYTES_MIN} bytes on "
                         "average")  # fmt: skip
            raise _Refused  # stops the parser in the middle of this read
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        self._reading_head = True
        self._head_bytes = self._parsed_head = 0
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # a refusal above stopped the parser: its answer is sent
            super().send_400_response(msg)

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        self._release()  # a stream counts in the streams' own limit from here
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._release()
        super().connection_lost(exc)

    def _refuse(self, status: int, code: str, message: str) -> None:
        """A JSON error (unless an answer has started on this connection: then only the
        close), and the connection closed; the request's app, if it runs, answers nowhere."""
        self._refused = True
        self._disarm()
        cycle: RequestResponseCycle | None = self.cycle  # None before a first request
        if cycle is None or cycle.response_complete or not cycle.response_started:
            body = json.dumps({"error": {"code": code, "message": message}}).encode()
            phrase = http.HTTPStatus(status).phrase
            head = (f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")  # fmt: skip
            self.transport.write(head.encode() + body)
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        # Closed with unread bytes from its client, the socket would be reset, and the reset
        # can discard the answer before the client reads it: end the writing side, then
        # read (and drop) what still comes for a moment before closing.
        self.transport.write_eof()
        self.flow.resume_reading()
        self.loop.call_later(REFUSED_LINGER_SECONDS, self.transport.close)

    def _release(self) -> None:
        if self._counted is not None:
            _open_connections(self.server_state).release(self._counted)
            self._counted = None

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(REQUEST_SECONDS_MAX, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class _Refused(Exception):
    """Raised in a parser callback after its refusal was sent: httptools stops there."""


# The HTTP connections each address holds open, per server (a test may run several in one
# process), counted on the event loop's thread.
_OPEN: WeakKeyDictionary[ServerState, OpenPerKey] = WeakKeyDictionary()


def _open_connections(state: ServerState) -> OpenPerKey:
    found = _OPEN.get(state)
    if found is None:
        found = _OPEN[state] = OpenPerKey(CONNECTIONS_PER_IP_MAX)
    return found


class FrameLimit(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol (the one its ``ws="auto"`` chose, websockets' Sans-I/O),
    with a bound on the frames a connection sends (``WS_FRAMES_PER_SECOND``,
    ``WS_FRAMES_BURST``) and all the connections of its address together
    (``WS_FRAMES_PER_IP_*``). uvicorn answers a ping itself and hands each message to the app
    with no limit: frames as fast as the node read them were its event loop's work, and
    16 connections an address the only bound. Frames are counted as they are parsed, before
    any is handled: past a bucket, the connection closes with 1008 and the limit as its
    reason, the frames beyond it unanswered."""

    _refused = False  # closing: what the client still sends is dropped
    _dropped = 0

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, object],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._address_limits = _frame_limits(server_state)
        self._tokens = float(WS_FRAMES_BURST)
        self._updated = self.loop.time()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._dropped = _drop_unread(self.transport, self._dropped + len(data))
            return
        for start in range(0, len(data), WS_PARSE_BYTES):
            self.conn.receive_data(data[start : start + WS_PARSE_BYTES])
            if self.conn.parser_exc is not None:  # a protocol error: as uvicorn closes it
                self.handle_parser_exception()
                return
            # The parsed events wait in the connection's list until handled: counted there.
            frames = sum(isinstance(event, Frame) for event in self.conn.events)
            refused = self._charge(frames) if frames else None
            if refused is not None:
                self._refuse(refused)
                return
            self.handle_events()

    async def send(self, message: ASGISendEvent) -> None:
        # What the app sends before it reads the disconnect goes nowhere (uvicorn would raise
        # on a send after the close, and the node's stream would log a task's exception).
        if not self._refused:
            await super().send(message)

    def _charge(self, frames: int) -> str | None:
        """None if ``frames`` fit in this connection's bucket and its address's (charged),
        else the limit they break."""
        now = self.loop.time()
        refill = (now - self._updated) * WS_FRAMES_PER_SECOND
        self._tokens = min(float(WS_FRAMES_BURST), self._tokens + refill) - frames
        self._updated = now
        if self._tokens < 0:
            return WS_FRAMES_REFUSED
        if self._address_limits.allow(self.client[0] if self.client else "?", frames):
            return WS_FRAMES_PER_IP_REFUSED
        return None

    def _refuse(self, reason: str) -> None:
        """Close with 1008 and ``reason``; the app hears the client gone. The client's frames
        are dropped unread from here, for a moment, before the socket closes: closed with
        unread bytes, it would be reset, and the reset can discard the close frame before the
        client reads it (``REFUSED_DROP_BYTES`` bounds what is read meanwhile)."""
        self._refused = True
        log.info("websocket closed: too many frames", extra={"client": self.client,
                                                             "limit": reason})  # fmt: skip
        if self.conn.state is not State.OPEN and self.conn.state is not State.CLOSING:
            self.transport.close()  # frames sent before the handshake's answer: no close frame
            return
        if not self.close_sent:
            self.queue.put_nowait({"type": "websocket.disconnect", "code": 1008, "reason": reason})
        self.conn.data_to_send()  # the pongs websockets queued for the refused pings: dropped
        self.conn.fail(CloseCode.POLICY_VIOLATION, reason)  # the close frame, then the end
        for data in self.conn.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()
        self.close_sent = True
        if self.read_paused:  # paused while the app read a message: drain what still comes
            self.read_paused = False
            self.transport.resume_reading()
        if self.close_timer is not None:
            self.close_timer.cancel()
        # Set, it also keeps uvicorn from closing the socket at once when the app returns.
        self.close_timer = self.loop.call_later(REFUSED_LINGER_SECONDS, self.transport.close)


# Frames per address, per server (a test may run several in one process).
_FRAMES: WeakKeyDictionary[ServerState, RateLimiter] = WeakKeyDictionary()


def _frame_limits(state: ServerState) -> RateLimiter:
    found = _FRAMES.get(state)
    if found is None:
        found = _FRAMES[state] = RateLimiter(WS_FRAMES_PER_IP_PER_SECOND, WS_FRAMES_PER_IP_BURST)
    return found


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields."""

    _STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **{k: v for k, v in record.__dict__.items() if k not in self._STANDARD},
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
