"""The plumbing of an SMTP session: bytes in and out, TLS, bodies, steps, limits, timers.

The verbs themselves (EHLO, MAIL, ...) and what happens to a finished message are in
session.py, a subclass; it reads and changes the session's `phase` and `transaction`
(transaction.py) and uses the few methods below meant for it (`_reply`, `_error`, ...).

Bytes are scanned with bytes.find (no object per line). Pipelined commands are answered in
order, replies written once per batch. A step that must wait (storing a message, checking a
recipient) marks the session busy: no further command is read until it is done, and reading
pauses if a client piles up bytes meanwhile. Every limit is enforced as bytes arrive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, cast

from burnbox.smtp import replies
from burnbox.smtp.commands import HTTP_VERBS, split_verb
from burnbox.smtp.context import SmtpContext
from burnbox.smtp.reader import ChunkReader, DotReader
from burnbox.smtp.tls import TlsFailed, TlsLayer
from burnbox.smtp.transaction import Phase, Transaction
from burnbox.smtp.watchdog import Watchdog

PAUSE_BUFFER = 64 * 1024  # bytes a busy session buffers before it stops reading

Handler = Callable[[Any, str], None]


class SmtpConnection(asyncio.Protocol):
    HANDLERS: ClassVar[dict[str, Handler]] = {}  # verb → method, filled by the subclass

    def __init__(self, context: SmtpContext) -> None:
        self._ctx = context
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self.client_ip = ""
        self.phase = Phase.GREET
        self._closed = False
        self.transaction = Transaction()
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._eof = False  # the client has shut down its sending side
        self._busy = False  # a step (storing, a recipient check) is running
        self._read_paused = False
        self._write_paused = False
        self._discarding_line = False
        self._tls: TlsLayer | None = None  # after STARTTLS: the wire is encrypted
        self._errors = 0
        self._bad_commands = 0
        self._junk = 0
        self._shutting_down = False
        self._step: asyncio.Task[bytes | None] | None = None
        self._body: DotReader | ChunkReader | None = None
        self._watchdog = Watchdog(self._loop, context.config, self)

    @property
    def idle(self) -> bool:
        """No transaction, body or step in flight: safe to close at shutdown."""
        return self.phase in (Phase.GREET, Phase.READY) and not self._busy

    def _close_phase(self) -> None:
        self.phase = Phase.CLOSED
        self._closed = True  # read on every command: an attribute, not a property

    # -- for the verbs (session.py) ----------------------------------------

    def _reply(self, answer: bytes) -> None:
        self._out.append(answer)

    def _new_transaction(self, phase: Phase, **fields: Any) -> None:
        self.transaction = Transaction(**fields)
        self.phase = phase

    def _made_progress(self) -> None:
        """MAIL, RCPT, body bytes: only these move the idle deadline."""
        self._watchdog.progress()

    def _body_ended(self, reader: DotReader | ChunkReader) -> None:
        """A DATA body or a BDAT chunk has been read whole (or dropped past a limit)."""
        raise NotImplementedError

    def _tls_started(self) -> None:
        """The STARTTLS handshake is done."""
        raise NotImplementedError

    def _start_tls(self) -> None:
        assert self._ctx.ssl_context is not None
        self._flush()  # the last clear-text reply
        # Anything pipelined after STARTTLS was sent in clear text: it is dropped, never
        # executed after the handshake (CVE-2011-0411 class).
        self._buf.clear()
        self._watchdog.progress()  # the handshake must finish in the idle timeout
        self._tls = TlsLayer(self._ctx.ssl_context)

    @property
    def _encrypted(self) -> bool:
        return self._tls is not None and not self._tls.handshaking

    # -- asyncio.Protocol --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        peer = self._transport.get_extra_info("peername")
        self.client_ip = str(peer[0]) if peer else ""
        self._ctx.metrics.smtp_sessions.inc()  # balanced in connection_lost
        if not self._ctx.registry.admit(self):
            self._send_and_close(replies.TOO_MANY_CONNECTIONS)
            return
        self._out.append(self._ctx.greeting)
        self._flush()
        self._watchdog.start()

    def connection_lost(self, exc: Exception | None) -> None:
        self._close_phase()
        self._ctx.registry.leave(self)
        self._ctx.metrics.smtp_sessions.dec()
        self._watchdog.stop()
        self._buf = bytearray()
        self._body = None
        self.transaction = Transaction()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        if self._tls is not None:
            self._tls_received(self._tls, data)
        else:
            self._plain_received(data)

    def _tls_received(self, layer: TlsLayer, data: bytes) -> None:
        was_handshaking = layer.handshaking
        try:
            plain = layer.receive(data)
        except TlsFailed:
            self._abort()
            return
        if was_handshaking:
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
        limit = self._ctx.config.max_command_line
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
                if len(self._buf) > limit:  # an over-long line: one 500, then skip to CRLF
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
            elif end + 2 > limit:
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
        elif self._shutting_down and self.phase is not Phase.MAIL:
            self._send_and_close(replies.SHUTTING_DOWN)
        else:
            handler(self, argument)

    # -- message bodies ---------------------------------------------------

    def _start_body(self, reader: DotReader | ChunkReader) -> None:
        self._body = reader
        self.phase = Phase.BODY
        self._watchdog.body_began()
        data = bytes(self._buf)  # possibly empty: a zero-size BDAT chunk ends at once
        self._buf.clear()
        self._feed_body(data)

    def _feed_body(self, data: bytes) -> None:
        assert self._body is not None
        self._watchdog.progress()
        used = self._body.feed(data)
        if used is None:
            return
        if used < len(data):
            self._buf[:0] = memoryview(data)[used:]
        reader, self._body = self._body, None
        self.phase = Phase.MAIL if self.transaction.sender is not None else Phase.READY
        self._body_ended(reader)

    # -- steps that wait ---------------------------------------------------

    def _run_step(self, step: Coroutine[Any, Any, bytes | None]) -> None:
        """Run `step` with the session busy; its reply (if any) is sent when done."""
        self._busy = True
        self._watchdog.step_began()
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
        config = self._ctx.config
        if answer[:3] in (b"500", b"501") and answer is not replies.TEXT_LINE_TOO_LONG:
            self._bad_commands += 1
            if self._bad_commands >= config.smtp_max_bad_commands:
                self._send_and_close(replies.TOO_MANY_BAD_COMMANDS)
                return
        if self._errors >= config.smtp_max_errors:
            self._send_and_close(replies.TOO_MANY_ERRORS)

    def _count_junk(self) -> bool:
        self._junk += 1
        if self._junk > self._ctx.config.smtp_junk_limit:
            self._send_and_close(replies.TOO_MANY_JUNK)
            return False
        return True

    def _flush(self) -> None:
        if self._out:
            data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
            self._out.clear()
            if self._tls is not None:
                try:
                    data = self._tls.send(data)
                except TlsFailed:
                    self._abort()
                    return
            self._write(data)

    def _write(self, data: bytes) -> None:
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _close_transport(self) -> None:
        """Close after what is buffered is written, with our close_notify under TLS."""
        if self._tls is not None:
            self._write(self._tls.close())
        if self._transport is not None:
            self._transport.close()

    def _close_if_finished(self) -> None:
        """After the client's EOF: close once every command it sent has its reply."""
        if self._eof and not self._busy and not self._closed:
            self._close_phase()
            self._close_transport()

    def _send_and_close(self, answer: bytes) -> None:
        if self._tls is not None and self._tls.handshaking:
            self._abort()  # nothing can be said in the middle of a handshake
            return
        self._out.append(answer)
        self._flush()
        self._close_phase()
        self._close_transport()

    def _abort(self) -> None:
        self._close_phase()
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

    # -- what the watchdog reads, and does -----------------------------------

    @property
    def watched_closed(self) -> bool:
        return self._closed

    @property
    def watched_busy(self) -> bool:
        return self._busy

    @property
    def body_received(self) -> int | None:
        return self._body.received if self._body is not None else None

    def cancel_step(self) -> None:
        if self._step is not None:
            self._step.cancel()

    def time_out(self, answer: bytes) -> None:
        self._send_and_close(answer)
