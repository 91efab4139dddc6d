"""Mailpit's `sa-check`: SpamAssassin's verdict on a message, asked of a real spamd
(BURNBOX_SPAMASSASSIN=host:port) over its own protocol (SPAMC/1.5, REPORT).

Written here rather than taken from PyPI's aiospamc: the exchange is one request and one
reply, and that client would bring a logging framework and a command-line toolkit into the
service. Bounds: messages over MAX_MESSAGE are not sent (the sink keeps none larger than
its message size limit, 25 MiB by default; spamd bounds how much of each part it scans);
the whole exchange has TIMEOUT seconds; at most MAX_REPLY bytes are read.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from burnbox.settings_values import Endpoint

MAX_MESSAGE = 64 * 1024 * 1024
MAX_REPLY = 1024 * 1024
TIMEOUT = 30.0
_VERDICT = re.compile(
    r"^Spam:\s*(\w+)\s*;\s*(-?[\d.]+)\s*/\s*(-?[\d.]+)", re.IGNORECASE | re.MULTILINE
)
_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$")
_CONTINUED = re.compile(r"^\s{6,}(\S.*)$")  # a description's next line, under the last


class SpamdError(Exception):
    """What went wrong, in words for the client (no library's or spamd's text)."""


def verdict(
    score: float, spam: bool, rules: list[dict[str, Any]] | None, error: str = ""
) -> dict[str, Any]:
    """Mailpit's SpamAssassinResponse."""
    return {"Error": error, "IsSpam": spam, "Rules": rules, "Score": score}


async def check(spamd: Endpoint, raw: bytes) -> dict[str, Any]:
    """The verdict; spamd that cannot be asked gives `Error`, as Mailpit's does."""
    if len(raw) > MAX_MESSAGE:
        return verdict(
            0.0, False, None, f"messages over {MAX_MESSAGE // 1024 // 1024} MiB are not checked"
        )
    try:
        reply = await asyncio.wait_for(_ask(spamd, raw), TIMEOUT)
        return parse_reply(reply)
    except TimeoutError:
        return verdict(0.0, False, None, "spamd did not answer in time")
    except OSError:
        return verdict(0.0, False, None, "spamd could not be reached")
    except SpamdError as error:
        return verdict(0.0, False, None, str(error))


async def _ask(spamd: Endpoint, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(spamd.host, spamd.port)
    try:
        head = f"REPORT SPAMC/1.5\r\nContent-length: {len(raw)}\r\n\r\n".encode("ascii")
        writer.write(head + raw)
        await writer.drain()
        writer.write_eof()  # spamd answers once the request is whole
        reply = await reader.read(MAX_REPLY + 1)
        while len(reply) <= MAX_REPLY and (more := await reader.read(MAX_REPLY + 1 - len(reply))):
            reply += more
        if len(reply) > MAX_REPLY:
            raise SpamdError("spamd's answer was too long")
        return reply
    finally:
        writer.close()


def parse_reply(reply: bytes) -> dict[str, Any]:
    """SPAMD/1.1's status line, its `Spam:` header and the report's table of rules (pure)."""
    head, _, body = reply.partition(b"\r\n\r\n")
    text = head.decode("latin-1")
    status = text.split("\r\n", 1)[0].split()
    if len(status) < 2 or not status[0].startswith("SPAMD/") or status[1] != "0":
        raise SpamdError("spamd could not check the message")
    found = _VERDICT.search(text)
    if found is None:
        raise SpamdError("spamd's answer had no verdict")
    spam = found.group(1).lower() in ("true", "yes")
    return verdict(float(found.group(2)), spam, rules_of(body.decode("utf-8", "replace")))


def rules_of(report: str) -> list[dict[str, Any]]:
    """The rows under the report's `---- ----` rule line: score, name, description (which
    may go on over more lines, indented)."""
    rules: list[dict[str, Any]] = []
    lines = report.splitlines()
    start = next((n + 1 for n, line in enumerate(lines) if line.startswith("----")), len(lines))
    for line in lines[start:]:
        row, more = _RULE.match(line), _CONTINUED.match(line)
        if row is not None:
            rules.append(
                {
                    "Description": row.group(3).strip(),
                    "Name": row.group(2),
                    "Score": float(row.group(1)),
                }
            )
        elif more is not None and rules:
            rules[-1]["Description"] += " " + more.group(1).strip()
    return rules
