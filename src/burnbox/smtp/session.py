"""One SMTP session: the ESMTP verbs of a receive-only server, over SmtpConnection."""

from __future__ import annotations

import logging
from collections.abc import Callable

from burnbox.addressing import AddressError, parse_path
from burnbox.smtp import replies
from burnbox.smtp.commands import CommandError, clean_helo, parse_bdat, parse_path_command
from burnbox.smtp.connection import SmtpConnection
from burnbox.smtp.reader import ChunkReader, DotReader
from burnbox.smtp.tls import TlsLayer

log = logging.getLogger(__name__)
_BODY_TYPES = frozenset({"7BIT", "8BITMIME", "BINARYMIME"})
MAX_SIZE_DIGITS = 18  # a SIZE value longer than this is malformed, not merely large
# The MAIL FROM parameters we implement, each with the test its value must pass.
_MAIL_PARAMETERS: dict[str, Callable[[str | None], bool]] = {
    "SIZE": lambda value: value is not None and value.isascii() and value.isdigit()
    and len(value) <= MAX_SIZE_DIGITS,
    "BODY": lambda value: value is not None and value.upper() in _BODY_TYPES,
    "SMTPUTF8": lambda value: value is None,
}


class SmtpSession(SmtpConnection):
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
        """MAIL FROM's parameters: 555 for one we do not know (or any without EHLO), 501
        for a known one with a malformed value."""
        if params and not self._esmtp:
            return replies.PARAM_UNSUPPORTED
        self._utf8 = False
        self._body_type = "7BIT"
        for name, value in params.items():
            if name not in _MAIL_PARAMETERS:
                return replies.PARAM_UNSUPPORTED
            if not _MAIL_PARAMETERS[name](value):
                return replies.bad_parameter(name)
            if name == "SIZE" and value is not None:
                problem = self._declare_size(int(value))
                if problem is not None:
                    return problem
            elif name == "BODY" and value is not None:
                self._body_type = value.upper()
            elif name == "SMTPUTF8":
                self._utf8 = True
        return None

    def _declare_size(self, size: int) -> bytes | None:
        if size > self._ctx.config.max_message_size:
            self._ctx.metrics.refuse("too_big")
            return replies.MESSAGE_TOO_BIG
        if size > self._ctx.config.store_max_bytes:
            self._ctx.metrics.refuse("too_big")
            return replies.TOO_BIG_FOR_STORE
        self._declared_size = size
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
        if key not in self._recipients:
            refused = self._room_for_one_more()
            if refused is not None:
                self._ctx.metrics.refuse("too_many_recipients")
                self._out.append(refused)
                return
        self._progress = self._loop.time()
        if self._ctx.recipient_check is not None:
            self._run_step(self._check_recipient(key))
            return
        self._recipients[key] = None
        self._out.append(replies.RECIPIENT_OK)

    def _room_for_one_more(self) -> bytes | None:
        """Why one more recipient cannot be taken (a 452: the sender sends to it later in
        a transaction of its own), or None."""
        count = len(self._recipients) + 1
        if count > self._ctx.config.max_recipients:
            return replies.TOO_MANY_RECIPIENTS
        # One copy per inbox: with SIZE declared, refuse the recipient that would make the
        # copies larger than the store could ever hold.
        if self._declared_size * count > self._ctx.config.store_max_bytes:
            return replies.TOO_MANY_FOR_SIZE
        return None

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
            self._flush()  # the last clear-text reply
            # Anything pipelined after STARTTLS was sent in clear text: it is
            # dropped, never executed after the handshake (CVE-2011-0411 class).
            self._buf.clear()
            self._progress = self._loop.time()  # the handshake must finish in idle_timeout
            self._tls_layer = TlsLayer(self._ctx.ssl_context)


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

