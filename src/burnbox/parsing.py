"""Full parses of large messages, in a separate process.

A thread did not isolate them: parsing a 60,000-part message builds about a
million objects, and the garbage collector's full passes stop every thread,
the event loop's included (a NOOP on another session waited 259 ms). One worker
process, started on first use, takes that work off the server's heap entirely.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from burnbox import mime
from burnbox.model import Overview


class ParsePool:
    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    async def overview(self, raw: bytes) -> Overview:
        if self._closed:
            raise RuntimeError("the parse pool is shut down")
        if self._pool is None:
            # spawn, not fork: the server process has threads and an event loop.
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return await asyncio.get_running_loop().run_in_executor(self._pool, mime.overview, raw)

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
