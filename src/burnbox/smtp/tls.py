"""TLS for one SMTP session after STARTTLS, over memory BIOs: bytes in, bytes out.

Why not `loop.start_tls`: asyncio's and uvloop's TLS transports treat the client's end of
sending (a TCP half-close, or its close_notify) as the end of the connection, and drop the
replies still owed. A sender that pipelines its transaction and QUIT, then shuts down its
side, would never see the 250 for a message that was stored, and would send it again. Here
the session decides when to close, exactly as on a plain connection. asyncio's own TLS
transport is built the same way (ssl.SSLObject over two MemoryBIOs), so the cost is the
same.
"""

from __future__ import annotations

import contextlib
import ssl

READ_SIZE = 64 * 1024  # plaintext bytes taken from the TLS layer at a time


class TlsFailed(Exception):
    """The handshake or a record failed: the session is aborted."""


class TlsLayer:
    def __init__(self, context: ssl.SSLContext) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self.handshaking = True
        self.peer_closed = False  # the client sent close_notify: it sends no more

    def receive(self, data: bytes) -> bytes:
        """Take bytes from the wire; returns the plaintext they complete (maybe none).
        Whatever the layer must send in answer (handshake, tickets) waits in outgoing()."""
        self._incoming.write(data)
        if self.handshaking:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                return b""
            except (ssl.SSLError, OSError) as error:
                raise TlsFailed(type(error).__name__) from None
            self.handshaking = False
        plain = bytearray()
        while not self.peer_closed:
            try:
                chunk = self._tls.read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.peer_closed = True
                break
            except (ssl.SSLError, OSError) as error:
                raise TlsFailed(type(error).__name__) from None
            if not chunk:
                break
            plain += chunk
        return bytes(plain)

    def send(self, plain: bytes) -> bytes:
        """Plaintext to encrypt; returns what to put on the wire."""
        if plain and not self.handshaking:
            try:
                self._tls.write(plain)
            except (ssl.SSLError, OSError) as error:
                raise TlsFailed(type(error).__name__) from None
        return self.outgoing()

    def outgoing(self) -> bytes:
        return self._outgoing.read() if self._outgoing.pending else b""

    def close(self) -> bytes:
        """Our close_notify, to send before the TCP close (no wait for the client's)."""
        if not self.handshaking:
            with contextlib.suppress(ssl.SSLError, OSError):  # theirs is not awaited
                self._tls.unwrap()
        return self.outgoing()
