"""SMTP senders that behave as real MTAs do at the edges: a whole transaction pipelined,
then the sending side shut down (Exim's habit on plain connections), over plain TCP or TLS.

TLS is done with memory BIOs over the raw socket, so the test controls exactly what reaches
the wire: its commands, then a TCP half-close with no TLS close_notify (the peer can still
write, and we keep reading and decrypting).
"""

from __future__ import annotations

import socket
import ssl

READ_TIMEOUT = 30.0  # seconds to wait for the server's next bytes


class PipelinedSender:
    def __init__(self, port: int, tls_context: ssl.SSLContext | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT)
        self._plain = b""
        self._tls: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        assert self.reply().startswith("220")
        if tls_context is not None:
            self._start_tls(tls_context)

    def _start_tls(self, context: ssl.SSLContext) -> None:
        self.sock.sendall(b"EHLO client.test\r\n")
        assert self.reply().startswith("250")
        self.sock.sendall(b"STARTTLS\r\n")
        assert self.reply().startswith("220")
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname="mx.test")
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._pump()
        self._pump()

    def _pump(self) -> bool:
        """Flush what TLS wants to send; read once from the wire. False at EOF."""
        if self._outgoing.pending:
            self.sock.sendall(self._outgoing.read())
        data = self.sock.recv(65536)
        if not data:
            return False
        if self._tls is None:
            self._plain += data
        else:
            self._incoming.write(data)
        return True

    def send(self, data: bytes) -> None:
        if self._tls is None:
            self.sock.sendall(data)
        else:
            self._tls.write(data)
            self.sock.sendall(self._outgoing.read())

    def half_close(self) -> None:
        """No more from us (a TCP FIN; under TLS, no close_notify either)."""
        self.sock.shutdown(socket.SHUT_WR)

    def _received(self) -> bool:
        """Move decrypted bytes into the plain buffer; False once nothing more can come."""
        if self._tls is None:
            return self._pump()
        try:
            chunk = self._tls.read(65536)
        except ssl.SSLWantReadError:
            return self._pump()
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return False
        self._plain += chunk
        return bool(chunk)  # nothing, without an error: the server said close_notify

    def reply(self) -> str:
        """One whole reply, or '' if the server closed first."""
        lines: list[str] = []
        while True:
            while b"\r\n" not in self._plain:
                if not self._received():
                    return "\n".join(lines)
            line, self._plain = self._plain.split(b"\r\n", 1)
            lines.append(line.decode())
            if len(line) < 4 or line[3:4] != b"-":
                return "\n".join(lines)

    def replies_until_closed(self) -> list[str]:
        answers = []
        while answer := self.reply():
            answers.append(answer)
        return answers

    def close(self) -> None:
        self.sock.close()
