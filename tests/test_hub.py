from __future__ import annotations

import asyncio

import pytest

from burnbox.hub import Event, Hub, SubscriberDropped


async def test_publish_reaches_only_that_inbox() -> None:
    hub = Hub()
    async with hub.subscribe("a@x") as a, hub.subscribe("b@x") as b:
        hub.publish(Event("message", "a@x", "1"))
        assert (await a.next()).message_id == "1"
        hub.publish(Event("message", "b@x", "2"))
        assert (await b.next()).message_id == "2"
    assert hub.subscriber_count == 0
    assert not hub.watched("a@x")


async def test_a_slow_subscriber_is_dropped_and_publish_never_blocks() -> None:
    hub = Hub(queue_size=3)
    async with hub.subscribe("a@x") as slow, hub.subscribe("a@x") as fast:
        for number in range(3):
            hub.publish(Event("message", "a@x", str(number)))
            await fast.next()
        hub.publish(Event("message", "a@x", "overflow"))  # slow's queue is full now
        assert slow.dropped
        assert hub.subscriber_count == 1
        with pytest.raises(SubscriberDropped):
            await slow.next()
        assert (await fast.next()).message_id == "overflow"


async def test_waiting_subscriber_wakes_on_publish() -> None:
    hub = Hub()
    async with hub.subscribe("a@x") as subscription:
        waiter = asyncio.ensure_future(subscription.next())
        # Scheduled after the waiter's first step, so it publishes to a subscriber that waits.
        asyncio.get_running_loop().call_soon(hub.publish, Event("expired", "a@x", ""))
        assert (await asyncio.wait_for(waiter, 1)).kind == "expired"


async def test_the_count_is_reported_on_every_change_and_a_drop_counts_once() -> None:
    hub = Hub(queue_size=1)
    reported: list[int] = []
    hub.on_count = reported.append
    async with hub.subscribe("a@x") as slow, hub.subscribe("b@x"):
        hub.publish(Event("message", "a@x", "1"))
        hub.publish(Event("message", "a@x", "2"))  # slow's queue is full: dropped
        assert slow.dropped
        hub.drop_all()
    assert reported == [1, 2, 1, 0]
    assert hub.subscriber_count == 0
