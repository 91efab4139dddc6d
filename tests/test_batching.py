"""Group commit and the rate limiter, without a store or a socket: their bounds hold."""

from __future__ import annotations

import asyncio

import pytest

from burnbox.ratelimit import RateLimiter
from burnbox.storage.batching import GroupCommitter, QueueFull


async def test_concurrent_writes_share_one_commit_and_the_queue_is_bounded() -> None:
    release = asyncio.Event()
    committing = asyncio.Event()
    batches: list[list[int]] = []

    async def commit(batch: list[int]) -> list[int | BaseException]:
        batches.append(batch)
        committing.set()
        await release.wait()  # a slow disk: writes pile up behind this commit
        return [job * 10 for job in batch]

    committer: GroupCommitter[int, int] = GroupCommitter(commit, max_queued=3)
    committer.start()
    try:
        first = asyncio.ensure_future(committer.submit(1))
        await committing.wait()  # the worker has taken the first write and is committing it
        waiting = [asyncio.ensure_future(committer.submit(n)) for n in (2, 3, 4)]
        overflow = asyncio.ensure_future(committer.submit(5))  # tasks start in this order
        with pytest.raises(QueueFull):  # the bound: the sender is told 451, nothing waits
            await overflow
        release.set()
        assert await first == 10
        assert await asyncio.gather(*waiting) == [20, 30, 40]
        assert batches == [[1], [2, 3, 4]]  # the three that waited shared one commit
    finally:
        await committer.stop()


async def test_a_failed_commit_fails_every_write_in_it() -> None:
    async def commit(batch: list[int]) -> list[int | BaseException]:
        raise OSError("disk gone")

    committer: GroupCommitter[int, int] = GroupCommitter(commit)
    committer.start()
    try:
        results = await asyncio.gather(
            committer.submit(1), committer.submit(2), return_exceptions=True
        )
        assert all(isinstance(result, OSError) for result in results)
    finally:
        await committer.stop()


async def test_a_write_given_up_while_queued_is_never_committed() -> None:
    release = asyncio.Event()
    committing = asyncio.Event()
    committed: list[int] = []

    async def commit(batch: list[int]) -> list[int | BaseException]:
        committing.set()
        await release.wait()
        committed.extend(batch)
        return list(batch)

    committer: GroupCommitter[int, int] = GroupCommitter(commit)
    committer.start()
    try:
        first = asyncio.ensure_future(committer.submit(1))
        await committing.wait()
        submitted = asyncio.Event()

        async def second() -> int:
            submitted.set()  # submit queues its job before its first wait: no step between
            return await committer.submit(2)

        queued = asyncio.ensure_future(second())
        await submitted.wait()
        assert committer.waiting == 1
        queued.cancel()  # the session's delivery timeout: its sender hears 451
        with pytest.raises(asyncio.CancelledError):
            await queued
        release.set()
        assert await first == 1
        third = await committer.submit(3)
        assert third == 3
        assert committed == [1, 3]  # 2 was withdrawn: the 451 was true
    finally:
        await committer.stop()


async def test_a_write_given_up_while_committing_answers_as_its_commit_did() -> None:
    release = asyncio.Event()
    committing = asyncio.Event()

    async def commit(batch: list[int]) -> list[int | BaseException]:
        committing.set()
        await release.wait()
        return list(batch)

    committer: GroupCommitter[int, int] = GroupCommitter(commit)
    committer.start()
    try:
        in_flight = asyncio.ensure_future(committer.submit(7))
        await committing.wait()
        in_flight.cancel()  # too late to withdraw: it is being committed
        release.set()
        assert await in_flight == 7  # so its caller hears 250, not 451
    finally:
        await committer.stop()


def test_rate_limiter_refills_and_keeps_a_bounded_number_of_clients() -> None:
    limiter = RateLimiter(burst=2, seconds_per_token=30.0, max_keys=100)
    assert limiter.take("a", 0.0) is None
    assert limiter.take("a", 0.0) is None
    assert limiter.take("a", 0.0) == 30.0
    assert limiter.take("a", 30.0) is None  # one token back after 30 s
    for client in range(1000):
        limiter.take(f"10.0.{client // 256}.{client % 256}", 31.0)
    assert len(limiter._buckets) == 100  # the oldest clients were forgotten
