"""Pure: what burnbox writes about a message's arrival (RFC 5321 4.4): the Received field
put at the top of every message it stores, and the envelope's reverse path as stored."""

from __future__ import annotations


def protocol(*, utf8: bool, esmtp: bool, encrypted: bool) -> str:
    """The `with` keyword (RFC 3848, RFC 6531): SMTP, ESMTP or UTF8SMTP, S under TLS."""
    name = "UTF8SMTP" if utf8 else "ESMTP" if esmtp else "SMTP"
    return name + ("S" if encrypted else "")


def received(helo: str, client_ip: str | None, hostname: str, using: str, date: str) -> bytes:
    """The Received field, folded; `client_ip` only when the operator wants it shown."""
    client = f" ([{client_ip}])" if client_ip is not None else ""
    return (
        f"Received: from {helo}{client}\r\n\tby {hostname} (burnbox) with {using};\r\n\t{date}\r\n"
    ).encode("ascii", "replace")


def bare(path: str) -> str:
    """A reverse path without its angle brackets (`<>`, a bounce's, is empty)."""
    return path[1:-1] if path.startswith("<") and path.endswith(">") else path
