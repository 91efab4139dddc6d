"""Push across nodes: every node's hub hears the events of the others.

A relay sends each event published on this node to a shared channel
(PostgreSQL LISTEN/NOTIFY or Redis pub/sub) and hands the events of other
nodes to the local hub's receive(). Sending never blocks the publisher: events
wait in a bounded outbox, and one task drains it; a full outbox drops the
event (counted), and the subscribers that would have had it catch up when
they next reconnect. Nothing here touches the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from burnbox.hub import Event, Hub
from burnbox.metrics import Metrics
from burnbox.model import SUMMARY_FIELDS, from_plain, to_plain

log = logging.getLogger(__name__)
CHANNEL = "burnbox_events"
OUTBOX = 10_000  # events waiting to be sent to other nodes
PACKET = 7_900  # bytes of events sent in one message (PostgreSQL NOTIFY takes under 8,000)
HEAD = 32  # bytes of a packet's first line: node id and send time
RECONNECT_DELAY = 1.0  # seconds between attempts to reach the channel again
# A summary's fields on the wire: all but the address, which leads the event's line.
_SENT_FIELDS = tuple(name for name in SUMMARY_FIELDS if name != "address")


class Channel(Protocol):
    async def connect(self, on_message: Callable[[str], None], on_lost: Callable[[], None]) -> None:
        """Listen; `on_lost` is called if the connection goes (not when closed)."""

    async def send(self, payload: str) -> None: ...
    async def close(self) -> None: ...


def encode(event: Event) -> str:
    """One event as one line: its address, a tab, then the rest as JSON (which escapes
    every newline). Addresses never hold control characters (addressing refuses them)."""
    body: list[Any] = [event.kind, event.message_id]
    if event.summary is not None:
        body += to_plain(event.summary, _SENT_FIELDS)
    # Not ASCII-escaped: an astral character is 4 bytes, not 12, and the longest summary the
    # parser makes (mime.SUMMARY_FIELD_CHARS) then fits one notification.
    return f"{event.address}\t{json.dumps(body, ensure_ascii=False, separators=(',', ':'))}"


def decode(line: str) -> Event:
    address, _, rest = line.partition("\t")
    body = json.loads(rest)
    summary = from_plain(body[2:], _SENT_FIELDS, address=address) if len(body) > 2 else None
    return Event(body[0], address, body[1], summary)


def pack(node: str, lines: list[str]) -> str:
    """A packet: "node sent-at" on the first line, then one event per line."""
    return "\n".join([f"{node} {time.time():.6f}", *lines])


def unpack(payload: str) -> tuple[str, float, list[str]]:
    """(sending node, when it was sent (epoch seconds), its event lines)."""
    head, *lines = payload.split("\n")
    node, sent = head.split(" ")
    return node, float(sent), lines


class Relay:
    def __init__(self, hub: Hub, channel: Channel, metrics: Metrics) -> None:
        self._hub = hub
        self._channel = channel
        self._metrics = metrics
        self.node = uuid.uuid4().hex[:12]
        # Each event's line and its size in UTF-8 (measured once, when queued).
        self._outbox: asyncio.Queue[tuple[str, int]] = asyncio.Queue(OUTBOX)
        self._carry: tuple[str, int] | None = None  # the event that did not fit the last packet
        self._reconnecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and start taking this node's events; run() then sends them."""
        await self._channel.connect(self._heard, self._lost)
        self._hub.outbox = self._queue

    async def run(self) -> None:
        """Send this node's events to the others, until cancelled (a supervised part)."""
        await self._send_forever()

    async def stop(self) -> None:
        self._hub.outbox = None
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            await asyncio.gather(self._reconnecting, return_exceptions=True)
        await self._channel.close()

    def _lost(self) -> None:
        """The channel went: start reconnecting (once)."""
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        """Connect again, however long it takes. Whatever other nodes published meanwhile
        never reached this node, so every local stream is ended, before and after: each
        client reconnects and catches up from the store (SSE Last-Event-ID, WebSocket
        ?after=, long-poll after=), which is exact."""
        log.error("lost the cross-node channel; reconnecting")
        self._hub.drop_all()
        while True:
            with contextlib.suppress(Exception):
                await self._channel.close()
            try:
                await self._channel.connect(self._heard, self._lost)
                break
            except Exception as error:
                log.error("cannot reach the cross-node channel (%s)", type(error).__name__)
                await asyncio.sleep(RECONNECT_DELAY)  # a backoff, not a wait for an event
        self._metrics.relay_reconnects.inc()
        self._hub.drop_all()

    def _queue(self, event: Event) -> None:
        line = encode(event)
        size = len(line.encode())
        if size > PACKET - HEAD:
            self._metrics.relay_dropped.inc()  # cannot happen with the parser's bounds
            log.error("a cross-node event was too large to send")
            return
        try:
            self._outbox.put_nowait((line, size))
        except asyncio.QueueFull:
            self._metrics.relay_dropped.inc()

    def _heard(self, payload: str) -> None:
        try:
            node, sent, lines = unpack(payload)
            if node == self.node:
                return  # our own packet, back from the channel
            self._metrics.relay_lag.observe(max(time.time() - sent, 0.0))
            self._metrics.relay_received.inc(len(lines))
            for line in lines:
                # Most events are for inboxes nobody here watches: skip their JSON.
                if self._hub.watched(line.partition("\t")[0]):
                    self._hub.receive(decode(line))
        except (ValueError, KeyError, IndexError, TypeError):
            log.warning("ignored a malformed cross-node event")

    async def _next_packet(self) -> str:
        """Every event waiting, up to PACKET bytes: at thousands of messages a second, one
        notification per event would cost a transaction each (PostgreSQL) and serialise on
        the channel's queue lock. An event that does not fit starts the next packet."""
        first, size = self._carry or await self._outbox.get()
        self._carry = None
        lines, size = [first], HEAD + size
        while not self._outbox.empty():
            line, line_size = self._outbox.get_nowait()
            size += 1 + line_size
            if size > PACKET:
                self._carry = line, line_size
                break
            lines.append(line)
        return pack(self.node, lines)

    async def _send_forever(self) -> None:
        while True:
            payload = await self._next_packet()
            while True:
                if self._reconnecting is not None and not self._reconnecting.done():
                    await asyncio.shield(self._reconnecting)  # not on a channel being replaced
                try:
                    await self._channel.send(payload)
                    self._metrics.relay_packets.inc()
                    break
                except Exception as error:
                    log.error("cross-node send failed (%s); retrying", type(error).__name__)
                    self._lost()
                    assert self._reconnecting is not None
                    await asyncio.shield(self._reconnecting)


class PostgresChannel:
    """LISTEN/NOTIFY on the store's database: no extra infrastructure."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._listener: Any = None
        self._sender: Any = None
        self._on_lost: Any = None

    async def connect(self, on_message: Callable[[str], None], on_lost: Callable[[], None]) -> None:
        import asyncpg

        self._listener = await asyncpg.connect(self._url)
        self._sender = await asyncpg.connect(self._url)
        await self._listener.add_listener(
            CHANNEL, lambda _connection, _pid, _channel, payload: on_message(payload)
        )
        self._on_lost = lambda _connection: on_lost()
        self._listener.add_termination_listener(self._on_lost)

    async def send(self, payload: str) -> None:
        await self._sender.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)

    async def close(self) -> None:
        if self._listener is not None and self._on_lost is not None:
            self._listener.remove_termination_listener(self._on_lost)  # closing is not losing
        for connection in (self._listener, self._sender):
            if connection is not None:
                await connection.close()
        self._listener = self._sender = self._on_lost = None


class RedisChannel:
    """Redis pub/sub."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: Any = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, on_message: Callable[[str], None], on_lost: Callable[[], None]) -> None:
        import redis.asyncio

        self._client = redis.asyncio.Redis.from_url(self._url)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(CHANNEL)

        async def read() -> None:
            # Ending at all, by an error or not, means the connection went; a close cancels.
            with contextlib.suppress(Exception):
                async for message in self._pubsub.listen():
                    data = message.get("data")
                    if isinstance(data, bytes):
                        on_message(data.decode())
            on_lost()

        self._reader = asyncio.ensure_future(read())

    async def send(self, payload: str) -> None:
        client = self._client
        try:
            await client.publish(CHANNEL, payload)
        finally:
            if client is not self._client:
                # Closed and replaced while this publish was connecting: the connection it
                # made went back to a pool that was already closed, so close that again.
                await client.aclose()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._client is not None:
            await self._client.aclose()
        self._reader = self._pubsub = self._client = None
