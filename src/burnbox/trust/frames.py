"""Length-prefixed pickles over a stream socket: how the server and its check process talk.

Both ends are ours (a socketpair made by the server), so pickle is safe here. A frame
goes out at the end of the event loop's turn, with whatever else the turn sent, in one
write; or, when someone waits on its answer, at once (with what is queued): held to the
end of a busy turn, a session's request left the check process idle, and cost 12 to 15%
of ingest with checks on (bench/auth_ingest.py).
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from collections.abc import Callable
from typing import Any, cast

_LENGTH = struct.Struct(">I")


class Frames(asyncio.Protocol):
    """Calls `on_frame` with each object received; `send` queues one to go."""

    def __init__(self, on_frame: Callable[[Any], None], on_lost: Callable[[], None]) -> None:
        self._on_frame = on_frame
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # kept: getpid() a lookup (3.11)
        self._received = bytearray()
        self._outgoing: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        self._received += data
        start = 0
        while len(self._received) - start >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._received, start)
            end = start + _LENGTH.size + length
            if end > len(self._received):
                break
            frame = pickle.loads(self._received[start + _LENGTH.size : end])  # noqa: S301 (ours)
            start = end
            self._on_frame(frame)
        del self._received[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._on_lost()

    @property
    def open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    @property
    def buffered(self) -> int:
        """Bytes written and not yet taken by the other end (nor by the kernel's buffer)."""
        return 0 if self._transport is None else self._transport.get_write_buffer_size()

    def send(self, frame: Any, *, at_once: bool = False) -> None:
        """Queue `frame` for the end of this turn of the loop; or, `at_once`, write it now
        with whatever is queued."""
        data = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
        if not self._outgoing and not at_once and self._loop is not None:
            self._loop.call_soon(self.flush)
        self._outgoing += (_LENGTH.pack(len(data)), data)
        if at_once:
            self.flush()

    def flush(self) -> None:
        """Write what is queued now, rather than at the end of this turn of the loop."""
        if self._outgoing and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(self._outgoing))
        self._outgoing.clear()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
