"""Where large parses run: inline when small, in a worker process when large.

Every heavy look at a message (the ingest summary of multipart mail, the API's
full view, the sanitised frame page, an attachment) goes through run(). A
thread did not isolate them: parsing a 60,000-part message builds about a
million objects, and the garbage collector's full passes stop every thread,
the event loop's included (a NOOP on another session waited 259 ms). One worker
process, started on first use, takes that work off the server's heap. Small
messages stay inline, where a round trip to the process would cost more than
the parse.

The worker is supervised here: when it dies (killed, or out of memory on one message), a new
one is started and the parse is tried once more; if that worker dies too, the parse fails
with ParseFailed (the sender hears 451 and retries; a reader gets 503). If no worker can be
started at all, the pool reports itself failed (`on_failure`), and the node stops.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger(__name__)
Result = TypeVar("Result")


class ParseFailed(Exception):
    """The worker process died during this parse; a new one starts with the next."""


class ParsePool:
    def __init__(self, inline_max: int) -> None:
        self._inline_max = inline_max
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False
        self.restarts = 0  # workers that died and were replaced
        self.on_restart: Callable[[], None] | None = None  # told of each (metrics)
        # Told (with the exception's type) when no worker can be started: the node stops.
        self.on_failure: Callable[[str], None] | None = None

    async def run(self, size: int, function: Callable[..., Result], *args: Any) -> Result:
        """`function(*args)` for a message of `size` bytes; `function` must be module-level
        (it may cross to the worker process)."""
        if size <= self._inline_max:
            return function(*args)
        if self._closed:
            raise RuntimeError("the parse pool is shut down")
        try:
            return await self._in_worker(function, *args)
        except BrokenProcessPool:
            # Most often the worker died before this parse (killed, or out of memory on an
            # earlier message): once more, on a new worker. A message that kills the worker
            # itself fails twice, and its sender hears 451.
            try:
                return await self._in_worker(function, *args)
            except BrokenProcessPool:
                raise ParseFailed from None

    async def _in_worker(self, function: Callable[..., Result], *args: Any) -> Result:
        if self._pool is None:
            # spawn, not fork: the server process has threads and an event loop.
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        pool = self._pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
        except BrokenProcessPool:
            self._replace(pool)
            raise
        except OSError as error:  # no worker process could be started at all
            if self.on_failure is not None:
                self.on_failure(type(error).__name__)
            raise

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._pool is broken:
            self._pool = None  # the next large parse starts a new worker
            self.restarts += 1
            if self.on_restart is not None:
                self.on_restart()
            log.error("the parse worker process died; a new one starts with the next parse")
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
