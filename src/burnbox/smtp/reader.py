"""Message bodies as they arrive: DATA (dot-terminated) and BDAT (counted).

Pure and socket-free. DATA ends only at <CRLF>.<CRLF>: a bare LF or bare CR
never ends it, so no byte sequence can split one DATA into two messages (the
SMTP smuggling class). The body is scanned with bytes.find, never split into
per-line objects, and every bound is enforced as bytes arrive: once a message
is too big or has an over-long line, its bytes are dropped, not kept, and the
reader keeps just enough of the tail to see the end marker.
"""

from __future__ import annotations

from enum import Enum

_END = b"\r\n.\r\n"
_TAIL = len(_END) - 1  # bytes of context needed to find an end marker split across chunks


class Fault(Enum):
    NONE = 0
    TOO_BIG = 1
    LINE_TOO_LONG = 2


class DotReader:
    """Collects a DATA body, unstuffs dots, enforces size and line bounds."""

    def __init__(self, max_size: int, max_line: int) -> None:
        self._max_size = max_size
        self._max_line = max_line
        # A virtual CRLF in front: the DATA line's own CRLF starts the first line,
        # so an empty message (".") and a leading stuffed dot need no special case.
        self._buf = bytearray(b"\r\n")
        self._line = 0  # length of the current, unfinished line
        self._tail = b""  # while discarding: the last bytes seen, to find the end marker
        self.received = 0
        self.fault = Fault.NONE

    def feed(self, data: bytes) -> int | None:
        """Take bytes; returns how many of them the message used once its end is
        seen (the rest is the next command), or None while the body goes on."""
        self.received += len(data)
        if self.fault is Fault.NONE:
            self._check_lines(data)
            if self.fault is not Fault.NONE:
                self._start_discarding()
        if self.fault is not Fault.NONE:
            return self._feed_discarding(data)
        start = max(len(self._buf) - _TAIL, 0)
        self._buf += data
        end = self._buf.find(_END, start)
        if end >= 0:
            used = len(data) - (len(self._buf) - end - len(_END))
            del self._buf[end + 2 :]
            if len(self._buf) - 2 > self._max_size:
                self.fault = Fault.TOO_BIG
                self._buf = bytearray()
            return used
        if len(self._buf) - 2 > self._max_size:
            self.fault = Fault.TOO_BIG
            self._start_discarding()
        return None

    def message(self) -> bytes:
        """The unstuffed message (once, after feed() returned a count with no fault)."""
        body = bytes(memoryview(self._buf)[2:]) if len(self._buf) > 2 else b""
        self._buf = bytearray()
        # RFC 5321 4.5.2: a line's leading period is removed, whatever follows it.
        if body.startswith(b"."):
            body = body[1:]
        return body.replace(b"\r\n.", b"\r\n") if b"\r\n." in body else body

    def _start_discarding(self) -> None:
        self._tail = bytes(self._buf[-_TAIL:])
        self._buf = bytearray()

    def _feed_discarding(self, data: bytes) -> int | None:
        window = self._tail + data
        end = window.find(_END)
        if end >= 0:
            return end + len(_END) - len(self._tail)
        self._tail = window[-_TAIL:]
        return None

    def _check_lines(self, data: bytes) -> None:
        last = data.rfind(b"\n")
        if last < 0:
            self._line += len(data)
        else:
            first = data.find(b"\n")
            longest = self._line + first
            if len(data) > self._max_line:  # only then can a whole line hide inside
                position = first
                while position < last:
                    following = data.find(b"\n", position + 1)
                    longest = max(longest, following - position - 1)
                    position = following
            self._line = len(data) - last - 1
            if longest > self._max_line:
                self.fault = Fault.LINE_TOO_LONG
        if self._line > self._max_line:
            self.fault = Fault.LINE_TOO_LONG


class ChunkReader:
    """Consumes exactly one BDAT chunk of `size` bytes into `sink` (None: discard).

    The chunk is always read to its end, whatever happens to the transaction, so
    that chunk bytes can never be taken for commands (RFC 3030 section 2).
    """

    def __init__(self, size: int, sink: bytearray | None, max_size: int) -> None:
        self._left = size
        self._sink = sink
        self._max_size = max_size
        self.received = 0
        self.fault = Fault.NONE

    def feed(self, data: bytes) -> int | None:
        used = min(self._left, len(data))
        self._left -= used
        self.received += used
        if self._sink is not None and self.fault is Fault.NONE:
            if len(self._sink) + used > self._max_size:
                self.fault = Fault.TOO_BIG
                self._sink.clear()
            else:
                self._sink += data[:used] if used < len(data) else data
        return used if self._left == 0 else None
