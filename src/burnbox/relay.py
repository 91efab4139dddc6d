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
import json
import logging
import time
import uuid
from typing import Any, Protocol

from burnbox.hub import Event, Hub
from burnbox.metrics import Metrics
from burnbox.model import MessageSummary
from burnbox.storage.rows import from_ms, to_ms

log = logging.getLogger(__name__)
CHANNEL = "burnbox_events"
OUTBOX = 10_000  # events waiting to be sent to other nodes
PACKET = 7_000  # bytes of events sent in one message (PostgreSQL NOTIFY takes under 8,000)
RECONNECT_DELAY = 1.0  # seconds between attempts to reach the channel again


class Channel(Protocol):
    async def connect(self, on_message: Any) -> None: ...
    async def send(self, payload: str) -> None: ...
    async def close(self) -> None: ...


def encode(node: str, event: Event) -> str:
    summary = event.summary
    body: dict[str, Any] = {"n": node, "k": event.kind, "a": event.address,
                            "i": event.message_id, "t": time.time()}
    if summary is not None:
        body["s"] = [summary.id, summary.address, to_ms(summary.received_at),
                     to_ms(summary.expires_at), summary.size, summary.sender, summary.subject,
                     summary.snippet, summary.attachments, summary.date, summary.message_id,
                     summary.to, summary.seen]
    return json.dumps(body, separators=(",", ":"))


def decode(payload: str) -> tuple[str, float, Event]:
    """(sending node, when it was sent (epoch seconds), the event)."""
    body = json.loads(payload)
    summary = None
    if "s" in body:
        s = body["s"]
        summary = MessageSummary(id=s[0], address=s[1], received_at=from_ms(s[2]),
                                 expires_at=from_ms(s[3]), size=s[4], sender=s[5], subject=s[6],
                                 snippet=s[7], attachments=s[8], date=s[9], message_id=s[10],
                                 to=s[11], seen=s[12])
    return body["n"], float(body["t"]), Event(body["k"], body["a"], body["i"], summary)


class Relay:
    def __init__(self, hub: Hub, channel: Channel, metrics: Metrics) -> None:
        self._hub = hub
        self._channel = channel
        self._metrics = metrics
        self.node = uuid.uuid4().hex[:12]
        self._outbox: asyncio.Queue[str] = asyncio.Queue(OUTBOX)
        self._sender: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._channel.connect(self._heard)
        self._hub.outbox = self._queue
        self._sender = asyncio.ensure_future(self._send_forever())

    async def stop(self) -> None:
        self._hub.outbox = None
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        await self._channel.close()

    def _queue(self, event: Event) -> None:
        try:
            self._outbox.put_nowait(encode(self.node, event))
        except asyncio.QueueFull:
            self._metrics.relay_dropped.inc()

    def _heard(self, payload: str) -> None:
        try:
            node, sent, event = decode(payload)
        except (ValueError, KeyError, IndexError, TypeError):
            log.warning("ignored a malformed cross-node event")
            return
        if node != self.node:
            self._metrics.relay_received.inc()
            self._metrics.relay_lag.observe(max(time.time() - sent, 0.0))
            self._hub.receive(event)

    async def _send_forever(self) -> None:
        while True:
            payload = await self._outbox.get()
            while True:
                try:
                    await self._channel.send(payload)
                    break
                except Exception as error:
                    log.error("cross-node send failed (%s); retrying", type(error).__name__)
                    await asyncio.sleep(RECONNECT_DELAY)


class PostgresChannel:
    """LISTEN/NOTIFY on the store's database: no extra infrastructure."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._listener: Any = None
        self._sender: Any = None

    async def connect(self, on_message: Any) -> None:
        import asyncpg

        self._listener = await asyncpg.connect(self._url)
        self._sender = await asyncpg.connect(self._url)
        await self._listener.add_listener(
            CHANNEL, lambda _connection, _pid, _channel, payload: on_message(payload))

    async def send(self, payload: str) -> None:
        await self._sender.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)

    async def close(self) -> None:
        for connection in (self._listener, self._sender):
            if connection is not None:
                await connection.close()


class RedisChannel:
    """Redis pub/sub."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: Any = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, on_message: Any) -> None:
        import redis.asyncio

        self._client = redis.asyncio.Redis.from_url(self._url)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(CHANNEL)

        async def read() -> None:
            async for message in self._pubsub.listen():
                data = message.get("data")
                if isinstance(data, bytes):
                    on_message(data.decode())

        self._reader = asyncio.ensure_future(read())

    async def send(self, payload: str) -> None:
        await self._client.publish(CHANNEL, payload)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._client is not None:
            await self._client.aclose()
