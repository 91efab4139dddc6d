"""Group commit: concurrent writes share one transaction.

Each write waits in a queue; one worker takes everything queued when it gets
to run (up to MAX_BATCH), applies it in one transaction, commits once, and
answers every waiter. While one batch commits the next one gathers, so the
batch grows with concurrency and no write waits on a timer.

A write whose caller gives up (the SMTP session's delivery timeout cancels it) is withdrawn
if it is still queued: it is never committed, so the 451 its sender hears is true. Once its
batch is being committed it can no longer be withdrawn, so the cancellation is held back
until the batch's outcome is known: the caller then hears 250 for a write that committed,
never 451 (which would make the sender deliver it twice).
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


class _Pending(Generic[Job, Result]):
    __slots__ = ("future", "job", "taken")

    def __init__(self, job: Job, future: asyncio.Future[Result]) -> None:
        self.job = job
        self.future = future
        self.taken = False  # in a batch being committed: its outcome is no longer ours


class GroupCommitter(Generic[Job, Result]):
    def __init__(
        self,
        commit: Callable[[list[Job]], Awaitable[list[Result | BaseException]]],
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self._commit = commit
        self._queue: asyncio.Queue[_Pending[Job, Result]] = asyncio.Queue(max_queued)
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._worker = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None

    @property
    def waiting(self) -> int:
        """Writes queued for the next batch."""
        return self._queue.qsize()

    async def submit(self, job: Job) -> Result:
        """The job's result once committed. Cancelled while queued: withdrawn, never
        committed. Cancelled once its batch is committing: answers as the batch does."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        pending = _Pending(job, future)
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            raise QueueFull from None
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if not pending.taken:
                future.cancel()  # withdrawn: the worker skips it
                raise
        # Too late to withdraw: the outcome decides what the caller is told.
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return await future

    async def _run(self) -> None:
        while True:
            batch = self._take(await self._queue.get())
            if not batch:
                continue
            try:
                results = await self._commit([pending.job for pending in batch])
            except Exception as error:
                results = [error] * len(batch)
            for pending, result in zip(batch, results, strict=True):
                if pending.future.done():
                    continue
                if isinstance(result, BaseException):
                    pending.future.set_exception(result)
                else:
                    pending.future.set_result(result)

    def _take(self, first: _Pending[Job, Result]) -> list[_Pending[Job, Result]]:
        """The next batch: what is queued now and not withdrawn, marked taken."""
        batch = [first]
        while len(batch) < MAX_BATCH and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        batch = [pending for pending in batch if not pending.future.done()]
        for pending in batch:
            pending.taken = True
        return batch
