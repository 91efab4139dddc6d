"""One timer per SMTP session: the idle timeout, the delivery timeout, the minimum data rate.

Only progress (MAIL, RCPT, body bytes, STARTTLS) moves the idle deadline; NOOP and friends
do not. While a step runs (storing a message), the watchdog looks every second whether it
has outlived the delivery timeout; while a body is read, whether it arrives fast enough.
There is no timer per message: one per message cost 7% of ingest.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from burnbox.smtp import replies
from burnbox.smtp.context import SmtpConfig

RATE_CHECK_PERIOD = 5.0  # seconds between data-rate checks, at most
BUSY_CHECK_PERIOD = 1.0  # seconds between looks while a step is running


class Watched(Protocol):
    """What the watchdog reads of its session, and what it may do to it."""

    @property
    def watched_closed(self) -> bool: ...

    @property
    def watched_busy(self) -> bool: ...

    @property
    def body_received(self) -> int | None:
        """Bytes of the body being read, or None when no body is."""

    def cancel_step(self) -> None: ...

    def time_out(self, answer: bytes) -> None: ...


class Watchdog:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, config: SmtpConfig, session: Watched
    ) -> None:
        self._loop = loop
        self._config = config
        self._session = session
        self._timer: asyncio.TimerHandle | None = None
        self._progress = loop.time()
        self._step_started = 0.0
        self._body_started = 0.0
        self.step_overdue = False  # the running step was cancelled for taking too long

    def start(self) -> None:
        self._arm(self._progress + self._config.smtp_idle_timeout)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def progress(self) -> None:
        self._progress = self._loop.time()

    def step_began(self) -> None:
        self.step_overdue = False
        self._step_started = self._loop.time()

    def body_began(self) -> None:
        """The data-rate check starts now, and must not wait for the idle deadline."""
        self._progress = self._body_started = self._loop.time()
        check = self._body_started + min(RATE_CHECK_PERIOD, self._config.smtp_min_data_rate_after)
        if self._timer is not None and self._timer.when() > check:
            self._timer.cancel()
            self._arm(check)

    def _arm(self, when: float) -> None:
        self._timer = self._loop.call_at(when, self._look)

    def _look(self) -> None:
        session = self._session
        if session.watched_closed:
            return
        now = self._loop.time()
        idle_deadline = self._progress + self._config.smtp_idle_timeout
        received = session.body_received
        if session.watched_busy:
            self._check_step(now)
            self._arm(now + BUSY_CHECK_PERIOD)
        elif now >= idle_deadline:
            session.time_out(replies.IDLE_TIMEOUT)
        elif received is not None:
            self._check_rate(now, idle_deadline, received)
        else:
            self._arm(idle_deadline)

    def _check_step(self, now: float) -> None:
        overdue = now - self._step_started > self._config.smtp_delivery_timeout
        if overdue and not self.step_overdue:
            self.step_overdue = True
            self._session.cancel_step()  # a store that hangs: the sender hears 451

    def _check_rate(self, now: float, idle_deadline: float, received: int) -> None:
        elapsed = now - self._body_started
        if elapsed > self._config.smtp_min_data_rate_after and (
            received / elapsed < self._config.smtp_min_data_rate
        ):
            self._session.time_out(replies.TOO_SLOW)
        else:
            period = min(RATE_CHECK_PERIOD, self._config.smtp_min_data_rate_after)
            self._arm(min(idle_deadline, now + period))
