"""One SMTP session: a receive-only ESMTP state machine on asyncio.Protocol.

Bytes are scanned with bytes.find (no object per line). Pipelined commands are
answered in order, and replies are written once per batch. Each step that
must wait (storing a message, the TLS handshake) marks the session busy: no
further command is read until it is done, and reading pauses if a client
piles up bytes meanwhile. Every limit is enforced as bytes arrive.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, cast

from burnbox.addressing import AddressError, parse_path
from burnbox.smtp import replies
from burnbox.smtp.commands import (
    HTTP_VERBS,
    CommandError,
    clean_helo,
    parse_bdat,
    parse_path_command,
    split_verb,
)
from burnbox.smtp.reader import ChunkReader, DotReader, Fault
from burnbox.storage.base import StoreFull

if TYPE_CHECKING:
    from burnbox.smtp.server import SmtpContext

log = logging.getLogger(__name__)

PAUSE_BUFFER = 64 * 1024  # bytes a busy session buffers before it stops reading
RATE_CHECK_PERIOD = 5.0  # seconds between data-rate checks, at most
BUSY_CHECK_PERIOD = 1.0  # seconds between watchdog looks while a step is running
_BODY_TYPES = frozenset({"7BIT", "8BITMIME", "BINARYMIME"})

Handler = Callable[["SmtpSession", str], None]


class SmtpSession(asyncio.Protocol):
    def __init__(self, context: SmtpContext) -> None:
        self._ctx = context
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self.client_ip = ""
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._closed = False
        self._busy = False
        self._read_paused = False
        self._write_paused = False
        self._discarding_line = False
        self._tls = False
        self._helo = ""
        self._esmtp = False
        self._errors = 0
        self._junk = 0
        self._shutting_down = False
        self._progress = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._body: DotReader | ChunkReader | None = None
        self._body_started = 0.0
        self._reset_transaction()

    # -- transaction state -------------------------------------------------

    def _reset_transaction(self) -> None:
        self._mail: str | None = None
        self._utf8 = False
        self._body_type = "7BIT"
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
        if self._body is not None and not self._buf and not self._busy:
            self._feed_body(data)  # the common case: body bytes go straight to the reader
        else:
            self._buf += data
        self._process()
        self._flush()
        if self._busy and len(self._buf) > PAUSE_BUFFER:
            self._pause_reading()

    def eof_received(self) -> bool | None:
        return None  # close our side too

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
        handler = _HANDLERS.get(verb)
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

    # -- commands ---------------------------------------------------------

    def _ehlo(self, argument: str) -> None:
        if self._greet(argument, esmtp=True):
            self._out.append(self._ctx.ehlo_reply(tls_active=self._tls))

    def _helo_command(self, argument: str) -> None:
        if self._greet(argument, esmtp=False):
            self._out.append(replies.reply(f"250 {self._ctx.config.hostname}"))

    def _greet(self, argument: str, *, esmtp: bool) -> bool:
        """EHLO/HELO: remember the client's name and start afresh; False if refused."""
        if not self._count_junk():
            return False
        if not argument.strip():
            self._error(replies.EHLO_SYNTAX)
            return False
        self._helo = clean_helo(argument) or "unknown"
        self._esmtp = esmtp
        self._reset_transaction()
        return True

    def _mail_command(self, argument: str) -> None:
        if not self._helo:
            self._error(replies.NEED_HELO)
            return
        if self._mail is not None:
            self._error(replies.NESTED_MAIL)
            return
        try:
            command = parse_path_command(argument, "FROM")
        except CommandError as error:
            self._error(replies.syntax_error(str(error)))
            return
        problem = self._take_mail_params(command.params)
        if problem is not None:
            self._error(problem)
            return
        if command.path != "<>":
            try:
                parse_path(command.path, utf8_allowed=self._utf8)
            except AddressError as error:
                self._utf8 = False
                self._error(replies.bad_address(error.reason, sender=True))
                return
        self._progress = self._loop.time()
        self._mail = command.path
        self._out.append(replies.SENDER_OK)

    def _take_mail_params(self, params: dict[str, str | None]) -> bytes | None:
        if params and not self._esmtp:
            return replies.PARAM_UNSUPPORTED
        self._utf8 = False
        self._body_type = "7BIT"
        for name, value in params.items():
            if name == "SIZE" and value is not None and value.isdigit():
                if int(value) > self._ctx.config.max_message_size:
                    self._ctx.metrics.refuse("too_big")
                    return replies.MESSAGE_TOO_BIG
            elif name == "BODY" and value is not None and value.upper() in _BODY_TYPES:
                self._body_type = value.upper()
            elif name == "SMTPUTF8" and value is None:
                self._utf8 = True
            else:
                return replies.PARAM_UNSUPPORTED
        return None

    def _rcpt_command(self, argument: str) -> None:
        if self._mail is None:
            self._error(replies.NEED_MAIL)
            return
        try:
            command = parse_path_command(argument, "TO")
        except CommandError as error:
            self._error(replies.syntax_error(str(error)))
            return
        if command.params:
            self._error(replies.PARAM_UNSUPPORTED)
            return
        path = command.path
        if path.lower() == "<postmaster>":  # RFC 5321 4.5.1: always accepted
            path = f"<postmaster@{self._ctx.primary_domain}>"
        try:
            address = parse_path(path, utf8_allowed=self._utf8)
        except AddressError as error:
            self._ctx.metrics.refuse("bad_address")
            if error.needs_utf8:
                self._error(replies.UTF8_REQUIRED)
            else:
                self._error(replies.bad_address(error.reason, sender=False))
            return
        if not self._ctx.domains.accepts(address.domain):
            self._ctx.metrics.refuse("relay")
            self._error(replies.RELAY_DENIED)
            return
        key = str(address)
        if key not in self._recipients and len(self._recipients) >= (
                self._ctx.config.max_recipients):
            self._ctx.metrics.refuse("too_many_recipients")
            self._out.append(replies.TOO_MANY_RECIPIENTS)
            return
        self._progress = self._loop.time()
        if self._ctx.recipient_check is not None:
            self._run_step(self._check_recipient(key))
            return
        self._recipients[key] = None
        self._out.append(replies.RECIPIENT_OK)

    async def _check_recipient(self, key: str) -> bytes:
        try:
            exists = await self._ctx.recipient_check(key)  # type: ignore[misc]
        except Exception as error:
            log.error("recipient check failed (%s); answered 451", type(error).__name__)
            return replies.LOCAL_ERROR
        if not exists:
            self._ctx.metrics.refuse("unclaimed")
            self._errors += 1
            return replies.NO_SUCH_MAILBOX
        if self._mail is not None:  # the transaction may have been reset meanwhile
            self._recipients[key] = None
        return replies.RECIPIENT_OK

    def _data_command(self, argument: str) -> None:
        if argument.strip():
            self._error(replies.NO_ARGUMENTS)
        elif self._mail is None:
            self._error(replies.NEED_MAIL)
        elif not self._recipients:
            self._error(replies.NEED_RCPT)
        elif self._body_type == "BINARYMIME":
            self._error(replies.BINARY_NEEDS_BDAT)
        elif self._bdat is not None:
            self._error(replies.MIXED_DATA_BDAT)
        else:
            config = self._ctx.config
            self._out.append(replies.START_DATA)
            self._start_body(DotReader(config.max_message_size, config.max_line_length))

    def _bdat_command(self, argument: str) -> None:
        try:
            size, last = parse_bdat(argument)
        except CommandError:
            # Without a size we cannot tell chunk bytes from commands: stop here.
            self._send_and_close(replies.BDAT_SYNTAX)
            return
        if self._mail is not None and self._recipients and not self._bdat_failed:
            if self._bdat is None:
                self._bdat = bytearray()
            sink: bytearray | None = self._bdat
        else:
            sink = None
        self._bdat_last = last
        self._start_body(ChunkReader(size, sink, self._ctx.config.max_message_size))

    def _rset(self, argument: str) -> None:
        if self._count_junk():
            self._reset_transaction()
            self._out.append(replies.RESET_OK)

    def _noop(self, argument: str) -> None:
        if self._count_junk():
            self._out.append(replies.OK)

    def _vrfy(self, argument: str) -> None:
        if self._count_junk():
            self._out.append(replies.CANNOT_VRFY)

    def _help(self, argument: str) -> None:
        if self._count_junk():
            self._out.append(replies.HELP)

    def _expn(self, argument: str) -> None:
        if self._count_junk():
            self._error(replies.NOT_IMPLEMENTED)

    def _quit(self, argument: str) -> None:
        self._send_and_close(replies.BYE)

    def _starttls(self, argument: str) -> None:
        if self._ctx.ssl_context is None:
            self._error(replies.NOT_IMPLEMENTED)
        elif self._tls:
            self._error(replies.ALREADY_TLS)
        elif argument.strip():
            self._error(replies.NO_ARGUMENTS)
        else:
            self._out.append(replies.READY_TLS)
            self._flush()
            if self._transport is not None:
                self._transport.pause_reading()  # the handshake bytes are start_tls's
            # Anything pipelined after STARTTLS was sent in clear text: it is
            # dropped, never executed after the handshake (CVE-2011-0411 class).
            self._buf.clear()
            self._run_step(self._upgrade())

    async def _upgrade(self) -> bytes | None:
        assert self._transport is not None
        assert self._ctx.ssl_context is not None
        transport = await self._loop.start_tls(
            self._transport, self, self._ctx.ssl_context, server_side=True,
            ssl_handshake_timeout=self._ctx.config.idle_timeout)
        if transport is None:
            raise ConnectionError("TLS handshake failed")
        self._transport = transport
        self._tls = True
        self._helo = ""  # RFC 3207 4.2: forget everything learned before TLS
        self._esmtp = False
        self._reset_transaction()
        self._progress = self._loop.time()
        return None

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
        raw = self._received_header() + message
        recipients = list(self._recipients)
        self._reset_transaction()
        self._run_step(self._store(recipients, raw))

    async def _store(self, recipients: list[str], raw: bytes) -> bytes:
        try:
            # asyncio.timeout, not wait_for: in 3.11 wait_for wraps the call in a second task.
            async with asyncio.timeout(self._ctx.config.delivery_timeout):
                ids = await self._ctx.deliverer.deliver(recipients, raw)
        except StoreFull:
            self._ctx.metrics.refuse("store_full")
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
        date = email.utils.format_datetime(self._ctx.clock())
        return (f"Received: from {self._helo}{client}\r\n\tby {self._ctx.config.hostname} "
                f"(burnbox) with {protocol};\r\n\t{date}\r\n").encode("ascii", "replace")

    # -- steps that wait ---------------------------------------------------

    def _run_step(self, step: Coroutine[Any, Any, bytes | None]) -> None:
        """Run `step` with the session busy; its reply (if any) is sent when done."""
        self._busy = True
        task = self._loop.create_task(step)
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

    # -- replies, errors, limits ------------------------------------------

    def _error(self, answer: bytes) -> None:
        """A 5yz reply for the client's mistake; too many of them end the session."""
        self._out.append(answer)
        self._errors += 1
        if self._errors >= self._ctx.config.max_errors:
            self._send_and_close(replies.TOO_MANY_ERRORS)

    def _count_junk(self) -> bool:
        self._junk += 1
        if self._junk > self._ctx.config.junk_limit:
            self._send_and_close(replies.TOO_MANY_JUNK)
            return False
        return True

    def _flush(self) -> None:
        if self._out and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(self._out) if len(self._out) > 1 else self._out[0])
        self._out.clear()

    def _send_and_close(self, answer: bytes) -> None:
        self._out.append(answer)
        self._flush()
        self._closed = True
        if self._transport is not None:
            self._transport.close()

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


_HANDLERS: dict[str, Handler] = {
    "EHLO": SmtpSession._ehlo,
    "HELO": SmtpSession._helo_command,
    "MAIL": SmtpSession._mail_command,
    "RCPT": SmtpSession._rcpt_command,
    "DATA": SmtpSession._data_command,
    "BDAT": SmtpSession._bdat_command,
    "RSET": SmtpSession._rset,
    "NOOP": SmtpSession._noop,
    "VRFY": SmtpSession._vrfy,
    "HELP": SmtpSession._help,
    "EXPN": SmtpSession._expn,
    "QUIT": SmtpSession._quit,
    "STARTTLS": SmtpSession._starttls,
}
