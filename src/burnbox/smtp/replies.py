"""SMTP replies with enhanced status codes (RFC 3463), as wire bytes.

The texts say what happened in plain words; none carries an exception text,
an address or anything the sender did not send us.
"""

from __future__ import annotations


def reply(text: str) -> bytes:
    return text.encode("ascii") + b"\r\n"


def multiline(code: int, lines: list[str]) -> bytes:
    body = [f"{code}-{line}" for line in lines[:-1]] + [f"{code} {lines[-1]}"]
    return reply("\r\n".join(body))


OK = reply("250 2.0.0 OK")
SENDER_OK = reply("250 2.1.0 Sender OK")
RECIPIENT_OK = reply("250 2.1.5 Recipient OK")
RESET_OK = reply("250 2.0.0 Reset")
START_DATA = reply("354 End data with <CR><LF>.<CR><LF>")
BYE = reply("221 2.0.0 Bye")
READY_TLS = reply("220 2.0.0 Ready to start TLS")
CANNOT_VRFY = reply("252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery")
HELP = reply("214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS")

UNRECOGNISED = reply("500 5.5.2 Command unrecognised")
LINE_TOO_LONG = reply("500 5.5.2 Line too long")
BARE_NEWLINE = reply("500 5.5.2 Bare CR or LF is not allowed; lines end with CRLF")
BAD_UTF8 = reply("500 5.5.2 Command is not valid UTF-8")
TEXT_LINE_TOO_LONG = reply("500 5.5.2 Message has a line that is too long; nothing was stored")
NOT_IMPLEMENTED = reply("502 5.5.1 Command not implemented")
NEED_HELO = reply("503 5.5.1 Send EHLO or HELO first")
NESTED_MAIL = reply("503 5.5.1 Sender already given; send RSET to start over")
NEED_MAIL = reply("503 5.5.1 Send MAIL first")
NEED_RCPT = reply("503 5.5.1 Send RCPT first; no valid recipients")
BINARY_NEEDS_BDAT = reply("503 5.5.1 BODY=BINARYMIME needs BDAT, not DATA")
MIXED_DATA_BDAT = reply("503 5.5.1 DATA and BDAT cannot be mixed in one transaction")
ALREADY_TLS = reply("503 5.5.1 TLS is already active")
NO_ARGUMENTS = reply("501 5.5.4 This command takes no arguments")
EHLO_SYNTAX = reply("501 5.5.4 Syntax: EHLO hostname")
BDAT_SYNTAX = reply("501 5.5.4 Syntax: BDAT size [LAST]; closing the session")
PARAM_UNSUPPORTED = reply("555 5.5.4 Parameter not recognised or not implemented")
MESSAGE_TOO_BIG = reply("552 5.3.4 Message too big for this server; nothing was stored")
TOO_BIG_FOR_STORE = reply(
    "552 5.3.4 Message too big for this server's storage with this many "
    "recipients; nothing was stored"
)
RELAY_DENIED = reply("550 5.7.1 Relaying denied: this server accepts mail only for its own domains")
NO_SUCH_MAILBOX = reply("550 5.1.1 No such mailbox: create the inbox first")
SENDER_REFUSED = reply("550 5.7.1 Mail from this sender is refused here")
LISTED_CLIENT = reply("554 5.7.1 Your address is on a blocklist this server uses")
RATE_LIMITED = reply("450 4.7.1 Too many messages from your address; try again later")
UTF8_REQUIRED = reply("553 5.6.7 Non-ASCII address needs the SMTPUTF8 parameter")
TOO_MANY_RECIPIENTS = reply("452 4.5.3 Too many recipients")
TOO_MANY_FOR_SIZE = reply(
    "452 4.5.3 Too many recipients for a message of this size; send to "
    "the others in another transaction"
)
STORE_FULL = reply("452 4.3.1 Insufficient storage; try again later")
LOCAL_ERROR = reply("451 4.3.0 Local error in processing; try again later")
TOO_MANY_CONNECTIONS = reply("421 4.7.0 Too many connections; try again later")
TOO_MANY_ERRORS = reply("421 4.7.0 Too many errors; closing the session")
TOO_MANY_BAD_COMMANDS = reply(
    "421 4.7.0 Too many unrecognised or malformed commands; closing the session"
)
TOO_MANY_JUNK = reply("421 4.7.0 Too many commands without mail; closing the session")
IDLE_TIMEOUT = reply("421 4.4.2 Idle timeout; closing the session")
TOO_SLOW = reply("421 4.4.2 Data arriving too slowly; closing the session")
SHUTTING_DOWN = reply("421 4.3.2 Service shutting down; try again later")
HTTP_REFUSED = reply("500 5.5.2 This is an SMTP server; closing the session")


def chaos(code: int) -> bytes:
    """The error a chaos trigger chose (sink mode's fault injection, for the tests it serves)."""
    return reply(f"{code} {code // 100}.0.0 Chaos: an error asked for by the test's triggers")


def bad_address(reason: str, *, sender: bool) -> bytes:
    code = "501 5.1.7" if sender else "553 5.1.3"
    return reply(f"{code} Bad address: {reason}")


def bad_parameter(name: str) -> bytes:
    return reply(f"501 5.5.4 Syntax error: malformed value for {name}")


def syntax_error(reason: str) -> bytes:
    return reply(f"501 5.5.4 Syntax error: {reason}")


def stored(message_id: str) -> bytes:
    return reply(f"250 2.0.0 OK: stored as {message_id}")


def chunk_received(size: int) -> bytes:
    return reply(f"250 2.0.0 {size} octets received")
