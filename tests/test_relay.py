"""The cross-node relay over the real channels: PostgreSQL LISTEN/NOTIFY and Redis pub/sub.

Two relays with hubs of their own are two nodes; events published on one arrive on the other,
in order, packed into few notifications, and each fits the channel's bound.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta

import pytest

from burnbox.hub import Event, Hub, SubscriberDropped
from burnbox.metrics import Metrics
from burnbox.mime import SNIPPET_CHARS, SUMMARY_FIELD_CHARS
from burnbox.model import MessageSummary
from burnbox.relay import Channel, PostgresChannel, RedisChannel, Relay, decode, encode
from tests.helpers import Cluster, real_now
from tests.postgres import postgres_url
from tests.process import free_port

__all__ = ["postgres_url"]

NOW = real_now()  # a fixed moment, taken from the real clock
BOX = "box@localhost"
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["postgres", "redis"])
def make_channel(request: pytest.FixtureRequest) -> Callable[[], Channel]:
    if request.param == "redis":
        return lambda: RedisChannel(REDIS)
    url = str(request.getfixturevalue("postgres_url"))
    return lambda: PostgresChannel(url)


class Node:
    def __init__(self, relay_channel: Channel) -> None:
        self.hub = Hub(queue_size=10_000)
        self.metrics = Metrics()
        self.relay = Relay(self.hub, relay_channel, self.metrics)
        self._sender: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.relay.start()
        self._sender = asyncio.ensure_future(self.relay.run())  # as the app's supervisor does

    async def stop(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        await self.relay.stop()

    def sent_packets(self) -> float:
        return self.metrics.relay_packets._value.get()  # type: ignore[no-any-return]


@pytest.fixture
async def nodes(make_channel: Callable[[], Channel]) -> AsyncIterator[tuple[Node, Node]]:
    pair = (Node(make_channel()), Node(make_channel()))
    for node in pair:
        await node.start()
    yield pair
    for node in pair:
        await node.stop()


def summary(number: int, text: str = "s") -> MessageSummary:
    return MessageSummary(
        id=f"{number:024d}",
        address=BOX,
        received_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        size=number,
        sender=text,
        subject=text,
        snippet=text[:SNIPPET_CHARS],
        attachments=1,
        date=text[:100],
        message_id=text,
        to=text,
        seen=number % 2 == 0,
    )


async def test_a_burst_crosses_in_order_in_few_notifications(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    events = [Event("message", BOX, f"{n:024d}", summary(n, f"mail {n} é")) for n in range(500)]
    events += [
        Event("seen", BOX, events[0].message_id, summary(0)),
        Event("deleted", BOX, events[1].message_id),
        Event("expired", BOX, ""),
    ]
    async with b.hub.subscribe(BOX) as subscription:
        for event in events:  # one burst: nothing awaited in between
            a.hub.publish(event)
        async with asyncio.timeout(20):
            heard = [await subscription.next() for _ in events]
    assert heard == events
    assert 0 < a.sent_packets() <= len(events) / 20  # about 90 events fit one notification
    assert b.sent_packets() == 0


async def test_the_largest_summary_the_parser_makes_still_crosses(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    widest = "\N{PILE OF POO}" * SUMMARY_FIELD_CHARS  # 4 bytes each in UTF-8
    biggest = [Event("message", BOX, f"{n:024d}", summary(n, widest)) for n in range(3)]
    async with b.hub.subscribe(BOX) as subscription:
        for event in biggest:
            a.hub.publish(event)
        async with asyncio.timeout(20):
            assert [await subscription.next() for _ in biggest] == biggest
    assert a.metrics.relay_dropped._value.get() == 0


async def test_a_malformed_packet_is_ignored(
    nodes: tuple[Node, Node], make_channel: Callable[[], Channel]
) -> None:
    a, b = nodes
    stranger = make_channel()
    await stranger.connect(lambda _payload: None, lambda: None)
    try:
        async with b.hub.subscribe(BOX) as subscription:
            for garbage in (
                "",
                "no newline",
                "node 1.0\nbox@localhost\t{not json",
                "node x\nbox@localhost\t[]",
                "node 1.0\nbox@localhost\t[1]",
            ):
                await stranger.send(garbage)
            a.hub.publish(Event("deleted", BOX, "after the garbage"))
            async with asyncio.timeout(20):
                assert (await subscription.next()).message_id == "after the garbage"
    finally:
        await stranger.close()


class RedisServer:
    """A redis-server of the test's own, on its own port: never the shared one."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:  # its log, until it says it is ready
            if "Ready to accept connections" in line:
                return
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.communicate(timeout=30)  # and close its pipe
            self.process = None


@pytest.fixture(params=["postgres", "redis"])
def private_server(request: pytest.FixtureRequest) -> Iterator[Cluster | RedisServer]:
    server: Cluster | RedisServer = Cluster() if request.param == "postgres" else RedisServer()
    server.start()
    yield server
    if isinstance(server, Cluster):
        server.remove()
    else:
        server.stop()


def private_channel(server: Cluster | RedisServer) -> Channel:
    return PostgresChannel(server.url) if isinstance(server, Cluster) else RedisChannel(server.url)


async def heard_again(a: Node, b: Node) -> int:
    """Publish markers on A until B hears one (each attempt waits on the event itself, up
    to a second); returns the attempts it took."""
    for attempt in range(1, 61):
        try:
            async with b.hub.subscribe(BOX) as subscription:
                a.hub.publish(Event("deleted", BOX, f"marker {attempt}"))
                async with asyncio.timeout(1):
                    while (await subscription.next()).message_id != f"marker {attempt}":
                        pass
                    return attempt
        except (TimeoutError, SubscriberDropped):
            continue
    raise AssertionError("the relay never came back")


async def test_losing_the_channel_ends_local_streams_and_push_comes_back(
    private_server: Cluster | RedisServer,
) -> None:
    a, b = Node(private_channel(private_server)), Node(private_channel(private_server))
    for node in (a, b):
        await node.start()
    try:
        assert await heard_again(a, b) == 1
        async with b.hub.subscribe(BOX) as watching:
            private_server.stop()
            # B cannot know what A publishes now: its streams end, so clients catch up.
            with pytest.raises(SubscriberDropped):
                async with asyncio.timeout(30):
                    await watching.next()
        private_server.start()
        await heard_again(a, b)
        assert b.metrics.relay_reconnects._value.get() >= 1
    finally:
        for node in (a, b):
            await node.stop()


async def test_an_event_too_large_for_a_packet_is_dropped_and_counted(
    nodes: tuple[Node, Node],
) -> None:
    """Only a summary the parser cannot make is this large; the ones after it still cross."""
    a, b = nodes
    too_large = Event("message", BOX, "0" * 24, summary(0, "x" * 8000))
    after = Event("deleted", BOX, "after the large one")
    async with b.hub.subscribe(BOX) as subscription:
        a.hub.publish(too_large)
        a.hub.publish(after)
        async with asyncio.timeout(20):
            assert await subscription.next() == after
    assert a.metrics.relay_dropped._value.get() == 1


def test_every_summary_field_round_trips_through_the_relay_encoding() -> None:
    """Each field distinct, an astral character, a seen flag set: encode then decode gives
    the same event back (a swapped or dropped field would not)."""
    original = MessageSummary(
        id="06H2M94A4X1F9D3RGB0B4XMG",
        address=BOX,
        received_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        size=2048,
        sender="Sender <s@x.test>",
        subject="Subject 😀",
        snippet="snippet text",
        attachments=3,
        date="Mon, 30 Nov 2026",
        message_id="<id@x.test>",
        to="To <t@x.test>",
        seen=True,
    )
    for event in (
        Event("message", BOX, original.id, original),
        Event("deleted", BOX, original.id),
        Event("expired", BOX, ""),
    ):
        assert decode(encode(event)) == event
