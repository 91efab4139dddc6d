"""The plumbing of an SMTP session: bytes in and out, bodies, steps, limits, timers.

The verbs themselves (EHLO, MAIL, ...) are in session.py, a subclass.

Bytes are scanned with bytes.find (no object per line). Pipelined commands are
answered in order, and replies are written once per batch. Each step that
must wait (storing a message, the TLS handshake) marks the session busy: no
further command is read until it is done, and reading pauses if a client
piles up bytes meanwhile. Every limit is enforced as bytes arrive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, cast

from burnbox.smtp import header_section, replies
from burnbox.smtp.commands import (
    HTTP_VERBS,
    split_verb,
)
from burnbox.smtp.reader import ChunkReader, DotReader, Fault
from burnbox.smtp.tls import TlsFailed, TlsLayer
from burnbox.storage.base import StoreFull, TooLargeForStore

if TYPE_CHECKING:
    from burnbox.smtp.server import SmtpContext

log = logging.getLogger(__name__)

PAUSE_BUFFER = 64 * 1024  # bytes a busy session buffers before it stops reading
RATE_CHECK_PERIOD = 5.0  # seconds between data-rate checks, at most
BUSY_CHECK_PERIOD = 1.0  # seconds between watchdog looks while a step is running

Handler = Callable[[Any, str], None]


class SmtpConnection(asyncio.Protocol):
    HANDLERS: ClassVar[dict[str, Handler]] = {}  # verb → method, filled by the subclass

    def __init__(self, context: SmtpContext) -> None:
        self._ctx = context
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self.client_ip = ""
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._closed = False
        self._eof = False  # the client has shut down its sending side
        self._busy = False
        self._read_paused = False
        self._write_paused = False
        self._discarding_line = False
        self._tls = False
        self._tls_layer: TlsLayer | None = None  # after STARTTLS: the wire is encrypted
        self._helo = ""
        self._esmtp = False
        self._errors = 0
        self._bad_commands = 0
        self._junk = 0
        self._shutting_down = False
        self._progress = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._step: asyncio.Task[bytes | None] | None = None
        self._step_started = 0.0
        self._step_overdue = False
        self._body: DotReader | ChunkReader | None = None
        self._body_started = 0.0
        self._reset_transaction()

    # -- transaction state -------------------------------------------------

    def _reset_transaction(self) -> None:
        self._mail: str | None = None
        self._utf8 = False
        self._body_type = "7BIT"
        self._declared_size = 0  # MAIL FROM's SIZE=, if given
        self._recipients: dict[str, None] = {}  # ordered set of normalised addresses
        self._bdat: bytearray | None = None  # the message so far, during BDAT
        self._bdat_failed = False
        self._bdat_last = False

    @property
    def idle(self) -> bool:
        """No transaction, body or step in flight: safe to close at shutdown."""
        return self._mail is None and self._body is None and not self._busy

    # -- asyncio.Protocol --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        peer = self._transport.get_extra_info("peername")
        self.client_ip = str(peer[0]) if peer else ""
        if not self._ctx.registry.admit(self):
            self._ctx.metrics.smtp_sessions.inc()  # balanced in connection_lost
            self._send_and_close(replies.TOO_MANY_CONNECTIONS)
            return
        self._ctx.metrics.smtp_sessions.inc()
        self._out.append(self._ctx.greeting)
        self._flush()
        self._arm(self._progress + self._ctx.config.idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._ctx.registry.leave(self)
        self._ctx.metrics.smtp_sessions.dec()
        if self._timer is not None:
            self._timer.cancel()
        self._buf = bytearray()
        self._body = None
        self._bdat = None

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        if self._tls_layer is not None:
            self._tls_received(self._tls_layer, data)
            return
        self._plain_received(data)

    def _tls_received(self, layer: TlsLayer, data: bytes) -> None:
        try:
            plain = layer.receive(data)
        except TlsFailed:
            self._abort()
            return
        if layer.handshaking or not self._tls:
            self._write(layer.outgoing())
            if not layer.handshaking:
                self._tls_started()
        if plain:
            self._plain_received(plain)
        else:
            self._flush()
        if layer.peer_closed:
            self._eof = True
            self._close_if_finished()

    def _tls_started(self) -> None:
        """RFC 3207 4.2: forget everything learned before TLS."""
        self._tls = True
        self._helo = ""
        self._esmtp = False
        self._reset_transaction()
        self._progress = self._loop.time()

    def _plain_received(self, data: bytes) -> None:
        if self._body is not None and not self._buf and not self._busy:
            self._feed_body(data)  # the common case: body bytes go straight to the reader
        else:
            self._buf += data
        self._process()
        self._flush()
        if self._busy and len(self._buf) > PAUSE_BUFFER:
            self._pause_reading()

    def eof_received(self) -> bool | None:
        """The client sends no more, but may still read: Exim pipelines `BDAT ... LAST`
        and QUIT, then shuts down its side. What it sent is answered in full (a 250 it never
        saw would make it send the message again); our side closes once that is done."""
        self._eof = True
        self._close_if_finished()
        return True  # keep the transport open for our replies

    def pause_writing(self) -> None:
        self._write_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if not self._busy:
            self._resume_reading()

    # -- the command loop -------------------------------------------------

    def _process(self) -> None:
        config = self._ctx.config
        while not self._busy and not self._closed:
            if self._body is not None:
                if not self._buf:
                    return
                data = bytes(self._buf)
                self._buf.clear()
                self._feed_body(data)
                continue
            end = self._buf.find(b"\r\n")
            if end < 0:
                if len(self._buf) > config.max_command_line:
                    if not self._discarding_line:
                        self._error(replies.LINE_TOO_LONG)
                        self._discarding_line = True
                    # Keep a trailing CR: the CRLF that ends the long line may be split.
                    del self._buf[: -1 if self._buf.endswith(b"\r") else None]
                return
            line = bytes(self._buf[:end])
            del self._buf[: end + 2]
            if self._discarding_line:
                self._discarding_line = False
            elif end + 2 > config.max_command_line:
                self._error(replies.LINE_TOO_LONG)
            else:
                self._command(line)

    def _command(self, line: bytes) -> None:
        if b"\r" in line or b"\n" in line:
            self._error(replies.BARE_NEWLINE)
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._error(replies.BAD_UTF8)
            return
        verb, argument = split_verb(text)
        handler = self.HANDLERS.get(verb)
        if handler is None:
            if verb in HTTP_VERBS:  # a browser or proxy talking to the wrong port
                self._send_and_close(replies.HTTP_REFUSED)
            else:
                self._error(replies.UNRECOGNISED)
            return
        if self._shutting_down and self._mail is None:
            self._send_and_close(replies.SHUTTING_DOWN)
            return
        handler(self, argument)

    # -- message bodies ---------------------------------------------------

    def _start_body(self, reader: DotReader | ChunkReader) -> None:
        self._progress = self._body_started = self._loop.time()
        self._body = reader
        check = self._body_started + min(RATE_CHECK_PERIOD, self._ctx.config.min_data_rate_after)
        if self._timer is not None and self._timer.when() > check:
            self._timer.cancel()  # the data-rate check must not wait for the idle deadline
            self._arm(check)
        data = bytes(self._buf)  # possibly empty: a zero-size BDAT chunk ends at once
        self._buf.clear()
        self._feed_body(data)

    def _feed_body(self, data: bytes) -> None:
        assert self._body is not None
        self._progress = self._loop.time()
        used = self._body.feed(data)
        if used is None:
            return
        if used < len(data):
            self._buf[:0] = memoryview(data)[used:]
        reader, self._body = self._body, None
        if isinstance(reader, DotReader):
            self._end_data(reader)
        else:
            self._end_chunk(reader)

    def _end_data(self, reader: DotReader) -> None:
        if reader.fault is Fault.NONE:
            self._deliver(reader.message())
            return
        self._reset_transaction()
        if reader.fault is Fault.TOO_BIG:
            self._ctx.metrics.refuse("too_big")
            self._error(replies.MESSAGE_TOO_BIG)
        else:
            self._ctx.metrics.refuse("line_too_long")
            self._error(replies.TEXT_LINE_TOO_LONG)

    def _end_chunk(self, reader: ChunkReader) -> None:
        if self._bdat is None:  # no valid transaction: the chunk was read and dropped
            self._error(replies.NEED_RCPT if self._mail is not None else replies.NEED_MAIL)
        elif reader.fault is Fault.TOO_BIG:
            self._ctx.metrics.refuse("too_big")
            self._reset_transaction()
            self._bdat_failed = True  # later chunks of this transaction are dropped too
            self._error(replies.MESSAGE_TOO_BIG)
        elif self._bdat_last:
            message, self._bdat = bytes(self._bdat), None
            self._deliver(message)
        else:
            self._out.append(replies.chunk_received(reader.received))

    def _deliver(self, message: bytes) -> None:
        raw = self._received_header() + header_section.normalise(message)
        recipients = list(self._recipients)
        self._reset_transaction()
        self._run_step(self._store(recipients, raw))

    async def _store(self, recipients: list[str], raw: bytes) -> bytes:
        try:
            # No asyncio.timeout here (a timer per message cost 7% of ingest): the watchdog
            # cancels a step that outlives delivery_timeout.
            ids = await self._ctx.deliverer.deliver(recipients, raw)
        except asyncio.CancelledError:
            if not self._step_overdue:
                raise
            log.error("delivery took too long; answered 451")
            self._ctx.metrics.refuse("store_error")
            return replies.LOCAL_ERROR
        except TooLargeForStore:
            self._ctx.metrics.refuse("too_big")
            log.warning("a message too big for the store: answered 552 (recipients: %d)",
                        len(recipients))
            return replies.TOO_BIG_FOR_STORE
        except StoreFull:
            self._ctx.metrics.refuse("store_full")
            log.error("the store is full: answered 452 (recipients: %d)", len(recipients))
            return replies.STORE_FULL
        except Exception as error:
            log.error("delivery failed (%s); answered 451", type(error).__name__)
            self._ctx.metrics.refuse("store_error")
            return replies.LOCAL_ERROR
        self._junk = 0
        return replies.stored(ids[0])

    def _received_header(self) -> bytes:
        protocol = ("UTF8SMTP" if self._utf8 else "ESMTP" if self._esmtp else "SMTP") + (
            "S" if self._tls else "")
        client = f" ([{self.client_ip}])" if self._ctx.config.received_client_ip else ""
        date = self._ctx.received_date()
        return (f"Received: from {self._helo}{client}\r\n\tby {self._ctx.config.hostname} "
                f"(burnbox) with {protocol};\r\n\t{date}\r\n").encode("ascii", "replace")

    # -- steps that wait ---------------------------------------------------

    def _run_step(self, step: Coroutine[Any, Any, bytes | None]) -> None:
        """Run `step` with the session busy; its reply (if any) is sent when done."""
        self._busy = True
        self._step_overdue = False
        self._step_started = self._loop.time()
        task = self._loop.create_task(step)
        self._step = task
        self._ctx.registry.hold(task)
        task.add_done_callback(self._step_done)

    def _step_done(self, task: asyncio.Task[bytes | None]) -> None:
        self._busy = False
        if self._closed:
            return
        if task.cancelled() or task.exception() is not None:
            self._abort()
            return
        answer = task.result()
        if answer is not None:
            self._out.append(answer)
        if self._shutting_down and self.idle:
            self._send_and_close(replies.SHUTTING_DOWN)
            return
        if not self._write_paused:
            self._resume_reading()
        self._process()
        self._flush()
        self._close_if_finished()

    # -- replies, errors, limits ------------------------------------------

    def _error(self, answer: bytes) -> None:
        """A 5yz reply for the client's mistake; too many of them end the session, and
        unrecognised or malformed commands (500, 501) sooner: talking to the wrong port,
        probing, or another protocol."""
        self._out.append(answer)
        self._errors += 1
        if answer[:3] in (b"500", b"501") and answer is not replies.TEXT_LINE_TOO_LONG:
            self._bad_commands += 1
            if self._bad_commands >= self._ctx.config.max_bad_commands:
                self._send_and_close(replies.TOO_MANY_BAD_COMMANDS)
                return
        if self._errors >= self._ctx.config.max_errors:
            self._send_and_close(replies.TOO_MANY_ERRORS)

    def _count_junk(self) -> bool:
        self._junk += 1
        if self._junk > self._ctx.config.junk_limit:
            self._send_and_close(replies.TOO_MANY_JUNK)
            return False
        return True

    def _flush(self) -> None:
        if self._out:
            data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
            self._out.clear()
            if self._tls_layer is not None:
                try:
                    data = self._tls_layer.send(data)
                except TlsFailed:
                    self._abort()
                    return
            self._write(data)

    def _write(self, data: bytes) -> None:
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _close_transport(self) -> None:
        """Close after what is buffered is written, with our close_notify under TLS."""
        if self._tls_layer is not None:
            self._write(self._tls_layer.close())
        if self._transport is not None:
            self._transport.close()

    def _close_if_finished(self) -> None:
        """After the client's EOF: close once every command it sent has its reply."""
        if self._eof and not self._busy and not self._closed:
            self._closed = True
            self._close_transport()

    def _send_and_close(self, answer: bytes) -> None:
        if self._tls_layer is not None and self._tls_layer.handshaking:
            self._abort()  # nothing can be said in the middle of a handshake
            return
        self._out.append(answer)
        self._flush()
        self._closed = True
        self._close_transport()

    def _abort(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.abort()

    def _pause_reading(self) -> None:
        if not self._read_paused and self._transport is not None:
            self._read_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._read_paused and self._transport is not None and not self._closed:
            self._read_paused = False
            self._transport.resume_reading()

    def begin_shutdown(self) -> None:
        """Stop at the next safe point: now if idle, else when the transaction ends."""
        self._shutting_down = True
        if self.idle and not self._closed:
            self._send_and_close(replies.SHUTTING_DOWN)

    def force_close(self) -> None:
        """Shutdown's grace is over: say so and close, whatever is in flight."""
        if not self._closed:
            self._send_and_close(replies.SHUTTING_DOWN)

    def _arm(self, when: float) -> None:
        self._timer = self._loop.call_at(when, self._watchdog)

    def _watchdog(self) -> None:
        """Idle timeout (only progress resets it) and the minimum data rate."""
        if self._closed:
            return
        now = self._loop.time()
        idle_deadline = self._progress + self._ctx.config.idle_timeout
        if self._busy:
            overdue = now - self._step_started > self._ctx.config.delivery_timeout
            if overdue and self._step is not None and not self._step_overdue:
                self._step_overdue = True
                self._step.cancel()  # a store that hangs: the sender hears 451, not silence
            self._arm(now + BUSY_CHECK_PERIOD)
        elif now >= idle_deadline:
            self._send_and_close(replies.IDLE_TIMEOUT)
        elif self._body is not None:
            config = self._ctx.config
            elapsed = now - self._body_started
            if elapsed > config.min_data_rate_after and (
                    self._body.received / elapsed < config.min_data_rate):
                self._send_and_close(replies.TOO_SLOW)
            else:
                period = min(RATE_CHECK_PERIOD, config.min_data_rate_after)
                self._arm(min(idle_deadline, now + period))
        else:
            self._arm(idle_deadline)


