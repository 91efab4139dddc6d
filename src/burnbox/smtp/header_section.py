"""A message's header section with one line-end rule, applied before anything is stored.

A bare CR or LF in the header section (`Subject: hi\\nFrom: boss@bank.example`) is read
differently by different consumers: the stdlib parser treats each as a line end, a strict
RFC 5322 reader does not, and so a forged `From` could show in one view and not in another.
burnbox makes every bare CR and bare LF in the header section a CRLF, up to the first empty
line read the same way (which ends the section), so the bytes a user downloads, the headers
the API and the page show, and any mail client all see the same header lines. This is what
senders that end lines with LF alone mean, and what Postfix's default (`normalize`) does.
The body is kept byte for byte.
"""

from __future__ import annotations

import re

_LINE_END = re.compile(rb"\r\n|\r|\n")


def normalise(message: bytes) -> bytes:
    """`message` with CRLF line ends throughout its header section."""
    end = message.find(b"\r\n\r\n")
    head = message[:end] if end >= 0 else message
    if head.count(b"\n") == head.count(b"\r") == head.count(b"\r\n"):
        return message  # CRLF only, up to the first empty line: the usual case, unchanged
    lines = bytearray()
    position = 0
    for line_end in _LINE_END.finditer(message):
        line = message[position : line_end.start()]
        lines += line + b"\r\n"
        position = line_end.end()
        if not line:
            break  # the empty line: the body follows, unchanged
    return bytes(lines) + message[position:]
