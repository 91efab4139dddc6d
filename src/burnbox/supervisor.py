"""Supervision: a node's long-lived parts, watched; the first to stop unexpectedly stops it.

A part that dies quietly is worse than a crash. A node whose HTTP server task had died kept
answering SMTP with 250 and printing "ready" while every page and API call hung, and nothing
was logged. So every long-lived part (the HTTP server, the reaper, the relay, the SMTP
listener, the parse pool) either runs as a task started here or reports its own failure
here. When one ends, raises or reports, the failure is logged with the part's name and the
exception's type only (an exception's text may carry an address), readiness turns false, and
`failed()` wakes the caller, which stops the node and exits non-zero so that Docker, systemd
or Kubernetes restart it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

log = logging.getLogger(__name__)
CHECK_PERIOD = 1.0  # seconds between looks at the parts that have no task of their own


@dataclass(frozen=True, slots=True)
class Failure:
    part: str
    reason: str  # an exception's type name, or "ended" / "stopped"


class PartExited(Exception):
    """A part called sys.exit() (uvicorn does on a failed start): kept inside its task,
    where it is reported like any other failure, instead of unwinding the event loop."""


def describe(error: BaseException) -> str:
    """An exception for a log line: its type and where it was raised, never its text (which
    may carry an address or a subject)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return type(error).__name__
    where = PurePath(frames[-1].filename)
    return f"{type(error).__name__} at {'/'.join(where.parts[-2:])}:{frames[-1].lineno}"


async def _contained(work: Coroutine[Any, Any, None]) -> None:
    try:
        await work
    except SystemExit as exit_:
        raise PartExited(f"exit status {exit_.code}") from None


class Supervisor:
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._checks: dict[str, Callable[[], bool]] = {}
        self._stopping = False
        self.failure: Failure | None = None
        self._failed = asyncio.Event()
        self._checker: asyncio.Task[None] | None = None

    def start(self, part: str, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `work` as the long-lived part `part`; it must not end before stop()."""
        task = asyncio.get_running_loop().create_task(_contained(work), name=f"burnbox {part}")
        self._tasks[part] = task
        task.add_done_callback(functools.partial(self._ended, part))
        return task

    def check(self, part: str, alive: Callable[[], bool]) -> None:
        """Watch a part that has no task (a listener): `alive` is asked every CHECK_PERIOD."""
        self._checks[part] = alive
        if self._checker is None:
            self._checker = asyncio.get_running_loop().create_task(self._check_forever())

    def fail(self, part: str, reason: str) -> None:
        """A part reports that it cannot go on."""
        if self._stopping or self.failure is not None:
            return
        self.failure = Failure(part, reason)
        log.critical("%s stopped unexpectedly (%s); stopping this node", part, reason)
        self._failed.set()

    def alive(self) -> dict[str, bool]:
        """Each watched part: still running (readiness)."""
        healthy = self.failure is None
        states = {part: healthy and not task.done() for part, task in self._tasks.items()}
        states.update({part: healthy and alive() for part, alive in self._checks.items()})
        return states

    async def failed(self) -> Failure:
        await self._failed.wait()
        assert self.failure is not None
        return self.failure

    def stopping(self) -> None:
        """From now on parts end because they are told to: nothing is a failure."""
        self._stopping = True

    async def stop_all(self, *, finishing: tuple[str, ...] = ()) -> None:
        """Cancel every part's task, except those in `finishing`, which were told to end
        and are waited for."""
        self._stopping = True
        tasks = [*self._tasks.items(), *([("", self._checker)] if self._checker else [])]
        for part, task in tasks:
            if part not in finishing:
                task.cancel()
        await asyncio.gather(*(task for _, task in tasks), return_exceptions=True)

    def _ended(self, part: str, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            self.fail(part, "stopped")
            return
        error = task.exception()
        self.fail(part, "ended" if error is None else describe(error))

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(CHECK_PERIOD)  # a period, not a wait for an event
            for part, alive in self._checks.items():
                if not alive():
                    self.fail(part, "stopped")
