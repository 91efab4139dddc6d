"""The sender checks in a process of their own, beside the server's event loop.

Why a process: checking one signed 2 KB message costs about 100 µs of Python and RSA,
about as much as everything else the server does to take it in; on the event loop the
checks cut ingest by 60% (bench/auth_ingest.py). In a process they run on another core,
and the loop only pays for a round trip on a socketpair (frames.py): a "now" goes at
once, since a session waits on it; the answers go a few per write.

The process keeps the resolver and its cache. Two requests: "now" checks with only kept
answers and says None when it would have to ask DNS (the deliverer stores the results
with the message); "check" asks DNS within the budget (after the 250, in the background).
Neither can lose mail or hold it long: when the process is starting, falls behind, dies,
stops answering or cannot be started, "now" says None (at the latest after PATIENCE) and
"check" says temperror, and the mail is stored all the same. A process that dies, or
answers nothing for longer than a check may take, is replaced at the next request.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import signal
import socket
from collections import deque
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

from burnbox.trust.checker import BUDGET, Arrival, Checked, Checker, checked, timed_out
from burnbox.trust.frames import Frames
from burnbox.trust.resolver import Resolver

log = logging.getLogger(__name__)
MAX_WAITING = 2000  # "now" requests in flight; past it the checks go to the background
MAX_BUFFERED = 64 << 20  # bytes of requests the process has not taken; past it, none sent
ANSWERS_PER_WRITE = 4  # at about 100 µs each: the first waits at most 0.4 ms (16: 4% slower)
SLACK = 5.0  # seconds past the budget before a silent process counts as gone
PATIENCE = 1.0  # seconds a message waits for its results; then it is stored without them
LAPSE_STEP = PATIENCE / 4  # at least this long between sweeps of the late: a few a second
READY = "ready"


class CheckProcess:
    def __init__(self, dns_server: str | None, *, budget: float = BUDGET) -> None:
        self._dns_server = dns_server
        self._budget = budget
        self._process: BaseProcess | None = None
        self._frames: Frames | None = None
        # Kept, not looked up at each message: in Python 3.11 get_running_loop() makes a
        # getpid() system call (strace: one a message, before).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = False
        self._closed = False
        self._waiting: dict[int, asyncio.Future[Checked | None]] = {}
        self._ids = itertools.count()
        self._now_sent: deque[tuple[float, int]] = deque()  # (when, ident), oldest first
        self._lapsing: asyncio.TimerHandle | None = None
        self._unanswered_since: float | None = None  # requests wait, the process silent
        self._reviving: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self.restarts = 0  # processes that died (or were killed, silent) and were replaced
        self.on_restart: Callable[[], None] | None = None  # told of each (metrics)
        self.on_late: Callable[[int], None] | None = None  # told how many went on without

    @property
    def pid(self) -> int | None:
        """The check process's, while there is one."""
        return None if self._process is None else self._process.pid

    @property
    def waiting(self) -> int:
        """Requests sent and not yet answered (nor given up on)."""
        return len(self._waiting)

    def now(self, arrival: Arrival, raw: bytes) -> asyncio.Future[Checked | None]:
        """The results from kept answers, or None (not kept, or no process to ask). Asked
        at once, so that the caller can go on with the message while they are worked out."""
        if not self._ready or len(self._waiting) >= MAX_WAITING:
            self._revive()
            return _none()
        return self._ask("now", arrival, raw)

    async def check(self, arrival: Arrival, raw: bytes) -> Checked:
        """The results, asking DNS; temperror for what the budget or a lost process ends."""
        await self.start()
        answer = self._ask("check", arrival, raw)
        try:
            async with asyncio.timeout(self._budget + SLACK):
                return await answer or checked(timed_out(arrival))
        except TimeoutError:
            self._replace_if_silent()
            return checked(timed_out(arrival))

    def _ask(self, kind: str, arrival: Arrival, raw: bytes) -> asyncio.Future[Checked | None]:
        """The answer to come; None if the process ends (or is not running) first."""
        frames, loop = self._frames, self._loop
        # Requests the process has not taken (stopped, or far behind) fill memory, each
        # with a copy of its message: past the bound none is sent ("now" says None, and
        # "check" temperror), and the mail is stored all the same.
        if frames is None or loop is None or not frames.open or frames.buffered > MAX_BUFFERED:
            return _none()
        answer: asyncio.Future[Checked | None] = loop.create_future()
        ident = next(self._ids)
        self._waiting[ident] = answer
        if kind == "check":  # may outlive its caller; a "now" goes when answered or late
            answer.add_done_callback(lambda _: self._waiting.pop(ident, None))
        request = (ident, kind, arrival.client_ip, arrival.helo, arrival.mail_from, raw)
        frames.send(request, at_once=kind == "now")  # a session waits on a "now"
        sent = loop.time()
        if self._unanswered_since is None:
            self._unanswered_since = sent
        if kind == "now":
            self._sent_now(loop, sent, ident)
        return answer

    def _sent_now(self, loop: asyncio.AbstractEventLoop, sent: float, ident: int) -> None:
        """Note when a "now" was asked: one timer for all of them, not one each (a timer
        per message costs as much as the rest of the request)."""
        self._now_sent.append((sent, ident))
        if self._lapsing is None:
            self._lapsing = loop.call_later(PATIENCE, self._lapse)

    def _lapse(self) -> None:
        """Messages whose results are later than PATIENCE go on without them (the
        deliverer checks them in the background), and a silent process is replaced. The
        next sweep is LAPSE_STEP away at the soonest: under load one is due every few
        messages, and one a message costs more than it saves (a message may then wait
        PATIENCE + LAPSE_STEP)."""
        self._lapsing = None
        loop = asyncio.get_running_loop()
        late, lapsed = loop.time() - PATIENCE, 0
        while self._now_sent and self._now_sent[0][0] <= late:
            answer = self._waiting.pop(self._now_sent.popleft()[1], None)
            if answer is not None and not answer.done():
                answer.set_result(None)
                lapsed += 1
        if lapsed and self.on_late is not None:
            self.on_late(lapsed)
        self._replace_if_silent()
        if self._now_sent:
            due = max(self._now_sent[0][0] + PATIENCE, loop.time() + LAPSE_STEP)
            self._lapsing = loop.call_at(due, self._lapse)

    def _replace_if_silent(self) -> None:
        """A process that has said nothing for longer than any check may take, while
        requests wait, is stuck: it is killed, and the next request starts another."""
        since, now = self._unanswered_since, asyncio.get_running_loop().time()
        if since is not None and now - since > self._budget + SLACK and self._process:
            log.error("the sender-check process stopped answering; it is replaced")
            self._process.kill()

    def _revive(self) -> None:
        """Start a process again in the background, if the last one died."""
        dead = self._frames is not None and not self._frames.open
        if dead and not self._closed and self._reviving is None:
            self._reviving = asyncio.get_running_loop().create_task(self.start())
            self._reviving.add_done_callback(self._revived)

    def _revived(self, _: asyncio.Task[None]) -> None:
        self._reviving = None

    async def start(self) -> None:
        """Start the process if it is not running (again, if it died); returns before it
        is ready: until then "now" says None."""
        async with self._starting:  # one at a time: a second caller finds it running
            if self._closed or (self._frames is not None and self._frames.open):
                return
            if self._process is not None:  # it died: count it, reap it, start another
                self.restarts += 1
                if self.on_restart is not None:
                    self.on_restart()
                log.error("the sender-check process died; a new one is started")
                self._reap()
            try:
                await self._start()
            except OSError as error:
                log.error("the sender-check process could not start (%s)", type(error).__name__)

    async def _start(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            # spawn, not fork: the server process has threads and an event loop.
            context = multiprocessing.get_context("spawn")
            self._process = context.Process(
                target=serve,
                args=(theirs, self._dns_server, self._budget),
                name="burnbox-checks",
                daemon=True,
            )
            self._process.start()
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._ready = False
        self._unanswered_since = None
        frames = self._frames = Frames(self._answered, self._lost)
        self._loop = asyncio.get_running_loop()
        await self._loop.connect_accepted_socket(lambda: frames, sock=ours)

    def _answered(self, frame: Any) -> None:
        self._unanswered_since = None
        if frame == (READY,):
            self._ready = True
            return
        ident, auth, results = frame
        answer = self._waiting.pop(ident, None)
        if answer is not None and not answer.done():
            answer.set_result(None if auth is None else Checked(auth, results))

    def _lost(self) -> None:
        self._ready = False
        for answer in list(self._waiting.values()):
            if not answer.done():
                answer.set_result(None)
        self._waiting.clear()

    def _reap(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.join(timeout=1)

    async def close(self) -> None:
        self._closed = True
        if self._lapsing is not None:
            self._lapsing.cancel()
        if self._frames is not None:
            self._frames.close()
        process, self._process = self._process, None
        if process is not None:
            # It leaves once its end of the socket closes; a stuck one is killed.
            await asyncio.to_thread(process.join, SLACK)
            if process.is_alive():
                process.kill()
                await asyncio.to_thread(process.join, 1)


def _none() -> asyncio.Future[Checked | None]:
    """An answer that is already there: nothing (no process to ask)."""
    answer: asyncio.Future[Checked | None] = asyncio.get_running_loop().create_future()
    answer.set_result(None)
    return answer


# -- in the check process -------------------------------------------------------------


def serve(sock: socket.socket, dns_server: str | None, budget: float) -> None:
    """The check process: answers requests until the server closes its end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when it stops
    try:
        import uvloop
    except ImportError:
        runner = asyncio.Runner()
    else:
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    with runner:
        runner.run(_serve(sock, dns_server, budget))


async def _serve(sock: socket.socket, dns_server: str | None, budget: float) -> None:
    loop = asyncio.get_running_loop()
    ended = loop.create_future()
    resolver = Resolver(dns_server)
    answers = _Answers(Checker(resolver, budget=budget), loop)
    frames = Frames(answers.received, lambda: _end(ended))
    answers.frames = frames
    await loop.connect_accepted_socket(lambda: frames, sock=sock)
    frames.send((READY,))
    try:
        await ended
    finally:
        for task in list(answers.checking):
            task.cancel()
        await resolver.close()


def _end(ended: asyncio.Future[None]) -> None:
    if not ended.done():
        ended.set_result(None)


class _Answers:
    """Answers "now" in small batches, each sent as soon as it is known: a session waits
    for it, and the server can go on with those while the rest are checked; one write per
    batch, since a system call costs as much as a fifth of a check."""

    def __init__(self, checker: Checker, loop: asyncio.AbstractEventLoop) -> None:
        self.checker = checker
        self._loop = loop
        self.frames: Frames | None = None
        self.checking: set[asyncio.Task[None]] = set()
        self._now_asked: deque[tuple[int, Arrival, bytes]] = deque()

    def received(self, frame: Any) -> None:
        ident, kind, client_ip, helo, mail_from, raw = frame
        arrival = Arrival(client_ip, helo, mail_from)
        if kind == "now":
            if not self._now_asked:
                self._loop.call_soon(self._next)
            self._now_asked.append((ident, arrival, raw))
            return
        task = self._loop.create_task(self._check(ident, arrival, raw))
        self.checking.add(task)
        task.add_done_callback(self.checking.discard)

    def _next(self) -> None:
        for _ in range(ANSWERS_PER_WRITE):
            if not self._now_asked:
                break
            ident, arrival, raw = self._now_asked.popleft()
            self._answer(ident, self._now(arrival, raw))
        if self.frames is not None:
            self.frames.flush()
        if self._now_asked:
            self._loop.call_soon(self._next)

    def _now(self, arrival: Arrival, raw: bytes) -> Checked | None:
        try:
            return self.checker.now(arrival, raw)
        except Exception as error:  # a defect: the background check tries again
            log.error("a sender check failed (%s)", type(error).__name__)
            return None

    async def _check(self, ident: int, arrival: Arrival, raw: bytes) -> None:
        try:
            result = await self.checker.check(arrival, raw)
        except Exception as error:  # a defect: the message is kept, its results unknown
            log.error("a sender check failed (%s)", type(error).__name__)
            result = checked(timed_out(arrival))
        self._answer(ident, result)

    def _answer(self, ident: int, result: Checked | None) -> None:
        if self.frames is not None and self.frames.open:
            auth, results = (None, None) if result is None else result
            self.frames.send((ident, auth, results))
