"""Group commit: concurrent writes share one transaction.

Each write waits in a queue; one worker takes everything queued when it gets
to run (up to MAX_BATCH), applies it in one transaction, commits once, and
answers every waiter. While one batch commits the next one gathers, so the
batch grows with concurrency and no write waits on a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")
MAX_BATCH = 256  # writes in one transaction
MAX_QUEUED = 10_000  # writes waiting; beyond this a write fails at once (the sender retries)


class QueueFull(Exception):
    """Too many writes are waiting."""


class GroupCommitter(Generic[Job, Result]):
    def __init__(self, commit: Callable[[list[Job]], Awaitable[list[Result | BaseException]]],
                 max_queued: int = MAX_QUEUED) -> None:
        self._commit = commit
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future[Result]]] = asyncio.Queue(
            max_queued)
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._worker = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None

    async def submit(self, job: Job) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((job, future))
        except asyncio.QueueFull:
            raise QueueFull from None
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await self._commit([job for job, _ in batch])
            except Exception as error:
                results = [error] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
