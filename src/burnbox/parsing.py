"""Where large parses run: inline when small, in a worker process when large.

Every heavy look at a message (the ingest summary of multipart mail, the API's
full view, the sanitised frame page, an attachment) goes through run(). A
thread did not isolate them: parsing a 60,000-part message builds about a
million objects, and the garbage collector's full passes stop every thread,
the event loop's included (a NOOP on another session waited 259 ms). One worker
process, started on first use, takes that work off the server's heap. Small
messages stay inline, where a round trip to the process would cost more than
the parse.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

Result = TypeVar("Result")


class ParsePool:
    def __init__(self, inline_max: int) -> None:
        self._inline_max = inline_max
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    async def run(self, size: int, function: Callable[..., Result], *args: Any) -> Result:
        """`function(*args)` for a message of `size` bytes; `function` must be module-level
        (it may cross to the worker process)."""
        if size <= self._inline_max:
            return function(*args)
        if self._closed:
            raise RuntimeError("the parse pool is shut down")
        if self._pool is None:
            # spawn, not fork: the server process has threads and an event loop.
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
