"""One SMTP session: the ESMTP verbs of a receive-only server, and what becomes of a
message once it is read, over SmtpConnection's plumbing."""

from __future__ import annotations

import asyncio
import logging

from burnbox.addressing import AddressError, parse_path
from burnbox.sink import Envelope
from burnbox.smtp import admission, header_section, outcome, replies, trace
from burnbox.smtp.commands import (
    CommandError,
    clean_helo,
    mail_parameter_fault,
    parse_bdat,
    parse_path_command,
)
from burnbox.smtp.connection import SmtpConnection
from burnbox.smtp.context import SmtpContext
from burnbox.smtp.reader import ChunkReader, DotReader, Fault
from burnbox.smtp.transaction import Phase
from burnbox.trust.abuse import Refusal
from burnbox.trust.checker import Arrival

log = logging.getLogger(__name__)


class SmtpSession(SmtpConnection):
    def __init__(self, context: SmtpContext) -> None:
        super().__init__(context)
        self._helo = ""  # the client's name, for the Received: line
        self._esmtp = False
        # The client's blocklist lookups, from the moment it connects (None: no lists).
        self._listing: asyncio.Task[bool | None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        abuse = self._ctx.abuse
        if abuse is not None and abuse.blocklists and not self._closed:
            self._listing = asyncio.ensure_future(abuse.listed(self.client_ip))
            self._listing.add_done_callback(self._count_listing)

    def _count_listing(self, listing: asyncio.Task[bool | None]) -> None:
        if not listing.cancelled():
            found = listing.result()
            answer = "failed_open" if found is None else "listed" if found else "clear"
            self._ctx.metrics.dnsbl.labels(answer).inc()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._listing is not None:
            self._listing.cancel()
        super().connection_lost(exc)

    # -- greeting and state ------------------------------------------------

    def _ehlo(self, argument: str) -> None:
        if self._greet(argument, esmtp=True):
            self._reply(self._ctx.ehlo_reply(tls_active=self._encrypted))

    def _helo_command(self, argument: str) -> None:
        if self._greet(argument, esmtp=False):
            self._reply(replies.reply(f"250 {self._ctx.config.hostname}"))

    def _greet(self, argument: str, *, esmtp: bool) -> bool:
        """EHLO/HELO: remember the client's name and start afresh; False if refused."""
        if not self._count_junk():
            return False
        if not argument.strip():
            self._error(replies.EHLO_SYNTAX)
            return False
        self._helo = clean_helo(argument) or "unknown"
        self._esmtp = esmtp
        self._new_transaction(Phase.READY)
        return True

    def _rset(self, argument: str) -> None:
        if self._count_junk():
            self._new_transaction(Phase.GREET if self.phase is Phase.GREET else Phase.READY)
            self._reply(replies.RESET_OK)

    def _tls_started(self) -> None:
        """RFC 3207 4.2: forget everything learned before TLS."""
        self._helo = ""
        self._esmtp = False
        self._new_transaction(Phase.GREET)
        self._made_progress()

    # -- MAIL and RCPT -----------------------------------------------------

    def _mail_command(self, argument: str) -> None:
        if self.phase is Phase.GREET:
            self._error(replies.NEED_HELO)
            return
        if self.phase is Phase.MAIL:
            self._error(replies.NESTED_MAIL)
            return
        try:
            command = parse_path_command(argument, "FROM")
        except CommandError as error:
            self._error(replies.syntax_error(str(error)))
            return
        problem = self._take_mail_params(command.params)
        if problem is None and command.path != "<>":
            try:
                parse_path(command.path, utf8_allowed=self.transaction.utf8)
            except AddressError as error:
                problem = replies.bad_address(error.reason, sender=True)
        if problem is None and self._ctx.abuse is not None:
            problem = self._abuse_at_mail(trace.bare(command.path))
        if problem is not None:
            self._new_transaction(Phase.READY)
            self._error(problem)
            return
        fault = self._chaos("Sender")  # a reply, not a client error: it counts toward no limit
        if fault is not None:
            self._new_transaction(Phase.READY)
            self._reply(fault)
            return
        self._made_progress()
        self.transaction.sender = command.path
        self.phase = Phase.MAIL
        self._reply(replies.SENDER_OK)

    def _chaos(self, trigger: str) -> bytes | None:
        code = self._ctx.chaos.fault(trigger) if self._ctx.chaos is not None else None
        return None if code is None else replies.chaos(code)

    def _abuse_at_mail(self, sender: str) -> bytes | None:
        assert self._ctx.abuse is not None
        refusal = self._ctx.abuse.at_mail(self.client_ip, sender, self._ctx.clock().timestamp())
        if refusal is None:
            return None
        self._ctx.metrics.refuse(refusal.value)
        return replies.RATE_LIMITED if refusal is Refusal.RATE else replies.SENDER_REFUSED

    def _take_mail_params(self, params: dict[str, str | None]) -> bytes | None:
        """MAIL FROM's parameters: 555 for one we do not know (or any without EHLO), 501
        for a known one with a malformed value."""
        if params and not self._esmtp:
            return replies.PARAM_UNSUPPORTED
        if self.transaction.chunks_failed:  # a new MAIL starts a transaction afresh
            self._new_transaction(Phase.READY)
        fault = mail_parameter_fault(params)
        if fault is not None:
            return replies.bad_parameter(fault) if fault else replies.PARAM_UNSUPPORTED
        size, body = params.get("SIZE"), params.get("BODY")
        if size is not None:
            if (problem := admission.size_refusal(int(size), self._ctx.config)) is not None:
                self._ctx.metrics.refuse("too_big")
                return problem
            self.transaction.declared_size = int(size)
        if body is not None:
            self.transaction.body_type = body.upper()
        self.transaction.utf8 = self.transaction.utf8 or "SMTPUTF8" in params
        return None

    def _rcpt_command(self, argument: str) -> None:
        if self.phase is not Phase.MAIL:
            self._error(replies.NEED_MAIL)
            return
        key = self._recipient(argument)
        if key is None:
            return
        fault = self._chaos("Recipient")
        if fault is not None:
            self._reply(fault)
            return
        if key not in self.transaction.recipients:
            count, declared = len(self.transaction.recipients) + 1, self.transaction.declared_size
            refused = admission.recipient_refusal(count, declared, self._ctx.config)
            if refused is not None:
                self._ctx.metrics.refuse("too_many_recipients")
                self._reply(refused)
                return
        self._made_progress()
        if self._ctx.recipient_check is not None or self._listing is not None:
            self._run_step(self._check_recipient(key))
            return
        self.transaction.recipients[key] = None
        self._reply(replies.RECIPIENT_OK)

    def _recipient(self, argument: str) -> str | None:
        """The normalised address RCPT names, or None once its refusal is said."""
        try:
            command = parse_path_command(argument, "TO")
        except CommandError as error:
            self._error(replies.syntax_error(str(error)))
            return None
        if command.params:
            self._error(replies.PARAM_UNSUPPORTED)
            return None
        path = command.path
        if path.lower() == "<postmaster>":  # RFC 5321 4.5.1: always accepted
            path = f"<postmaster@{self._ctx.primary_domain}>"
        try:
            address = parse_path(path, utf8_allowed=self.transaction.utf8)
        except AddressError as error:
            self._ctx.metrics.refuse("bad_address")
            self._error(
                replies.UTF8_REQUIRED
                if error.needs_utf8
                else replies.bad_address(error.reason, sender=False)
            )
            return None
        if not self._ctx.domains.accepts(address.domain):
            self._ctx.metrics.refuse("relay")
            self._error(replies.RELAY_DENIED)
            return None
        return str(address)

    async def _check_recipient(self, key: str) -> bytes:
        if self._listing is not None and await self._listing:
            self._ctx.metrics.refuse("dnsbl")
            self._errors += 1
            return replies.LISTED_CLIENT
        try:
            check = self._ctx.recipient_check
            exists = True if check is None else await check(key)
        except Exception as error:
            log.error("recipient check failed (%s); answered 451", type(error).__name__)
            return replies.LOCAL_ERROR
        if not exists:
            self._ctx.metrics.refuse("unclaimed")
            self._errors += 1
            return replies.NO_SUCH_MAILBOX
        if self.phase is Phase.MAIL:  # the transaction may have been reset meanwhile
            self.transaction.recipients[key] = None
        return replies.RECIPIENT_OK

    # -- DATA and BDAT -----------------------------------------------------

    def _data_command(self, argument: str) -> None:
        transaction = self.transaction
        if argument.strip():
            self._error(replies.NO_ARGUMENTS)
        elif self.phase is not Phase.MAIL:
            self._error(replies.NEED_MAIL)
        elif not transaction.recipients:
            self._error(replies.NEED_RCPT)
        elif transaction.body_type == "BINARYMIME":
            self._error(replies.BINARY_NEEDS_BDAT)
        elif transaction.chunks is not None:
            self._error(replies.MIXED_DATA_BDAT)
        else:
            config = self._ctx.config
            self._reply(replies.START_DATA)
            self._start_body(DotReader(config.max_message_size, config.max_line_length))

    def _bdat_command(self, argument: str) -> None:
        try:
            size, last = parse_bdat(argument)
        except CommandError:
            # Without a size we cannot tell chunk bytes from commands: stop here.
            self._send_and_close(replies.BDAT_SYNTAX)
            return
        transaction = self.transaction
        sink = None  # no valid transaction: the chunk is read to its end and dropped
        if self.phase is Phase.MAIL and transaction.recipients and not (transaction.chunks_failed):
            if transaction.chunks is None:
                transaction.chunks = bytearray()
            sink = transaction.chunks
        transaction.last_chunk = last
        self._start_body(ChunkReader(size, sink, self._ctx.config.max_message_size))

    def _body_ended(self, reader: DotReader | ChunkReader) -> None:
        if isinstance(reader, DotReader):
            self._end_data(reader)
        else:
            self._end_chunk(reader)

    def _end_data(self, reader: DotReader) -> None:
        if reader.fault is Fault.NONE:
            self._deliver(reader.message())
            return
        self._new_transaction(Phase.READY)
        if reader.fault is Fault.TOO_BIG:
            self._ctx.metrics.refuse("too_big")
            self._error(replies.MESSAGE_TOO_BIG)
        else:
            self._ctx.metrics.refuse("line_too_long")
            self._error(replies.TEXT_LINE_TOO_LONG)

    def _end_chunk(self, reader: ChunkReader) -> None:
        transaction = self.transaction
        if transaction.chunks is None:  # no valid transaction: the chunk was dropped
            self._error(replies.NEED_RCPT if self.phase is Phase.MAIL else replies.NEED_MAIL)
        elif reader.fault is Fault.TOO_BIG:
            self._ctx.metrics.refuse("too_big")
            # Later chunks of this transaction are read and dropped too.
            self._new_transaction(Phase.READY, chunks_failed=True)
            self._error(replies.MESSAGE_TOO_BIG)
        elif transaction.last_chunk:
            self._deliver(bytes(transaction.chunks))
        else:
            self._reply(replies.chunk_received(reader.received))

    # -- delivery -----------------------------------------------------------

    def _deliver(self, message: bytes) -> None:
        raw = self._received_header() + header_section.normalise(message)
        recipients = list(self.transaction.recipients)
        sender = trace.bare(self.transaction.sender or "")
        envelope = (
            Envelope(sender, tuple(recipients))
            if self._ctx.deliverer.sink  # only sink mode keeps it
            else None
        )
        arrival = Arrival(self.client_ip, self._helo, sender) if self._ctx.checks else None
        self._new_transaction(Phase.READY)
        self._run_step(self._store(recipients, raw, envelope, arrival))

    async def _store(
        self,
        recipients: list[str],
        raw: bytes,
        envelope: Envelope | None,
        arrival: Arrival | None,
    ) -> bytes:
        """Deliver; the reply that says truly what became of the message."""
        try:
            # No asyncio.timeout here (a timer per message cost 7% of ingest): the watchdog
            # cancels a step that outlives the delivery timeout.
            ids = await self._ctx.deliverer.deliver(recipients, raw, envelope, arrival)
        except asyncio.CancelledError:
            if not self._watchdog.step_overdue:
                raise
            return outcome.overdue(self._ctx.metrics)
        except Exception as error:
            return outcome.failed(error, len(recipients), self._ctx.metrics)
        self._junk = 0
        return replies.stored(ids[0])

    def _received_header(self) -> bytes:
        config, transaction = self._ctx.config, self.transaction
        using = trace.protocol(utf8=transaction.utf8, esmtp=self._esmtp, encrypted=self._encrypted)
        client = self.client_ip if config.received_client_ip else None
        return trace.received(self._helo, client, config.hostname, using, self._ctx.received_date())

    # -- the rest ------------------------------------------------------------

    def _noop(self, argument: str) -> None:
        if self._count_junk():
            self._reply(replies.OK)

    def _vrfy(self, argument: str) -> None:
        if self._count_junk():
            self._reply(replies.CANNOT_VRFY)

    def _help(self, argument: str) -> None:
        if self._count_junk():
            self._reply(replies.HELP)

    def _expn(self, argument: str) -> None:
        if self._count_junk():
            self._error(replies.NOT_IMPLEMENTED)

    def _quit(self, argument: str) -> None:
        self._send_and_close(replies.BYE)

    def _starttls(self, argument: str) -> None:
        if self._ctx.ssl_context is None:
            self._error(replies.NOT_IMPLEMENTED)
        elif self._tls is not None:
            self._error(replies.ALREADY_TLS)
        elif argument.strip():
            self._error(replies.NO_ARGUMENTS)
        else:
            self._reply(replies.READY_TLS)
            self._start_tls()


SmtpSession.HANDLERS = {
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
