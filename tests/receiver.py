"""An HTTP receiver on loopback for webhook deliveries (tests/test_webhooks.py, and the
sender checks' in tests/test_trust.py)."""

from __future__ import annotations

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WAIT = 20.0  # seconds a delivery may take to arrive


class Receiver:
    """An HTTP receiver on loopback: records each request and answers from a script."""

    def __init__(
        self,
        answers: list[int] | None = None,
        port: int = 0,
        hold: threading.Event | None = None,
        body_size: int = 2,
    ) -> None:
        self.requests: list[tuple[dict[str, str], bytes, str]] = []
        self.answers = list(answers or [])
        self.hold = hold  # set: answer; unset: keep the sender waiting (a slow receiver)
        self.written = 0  # bytes of its answers it got out
        self.body_size = body_size
        self._arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        """One POST: recorded, then answered with the next status (200 once they run out)."""
        body = handler.rfile.read(int(handler.headers.get("content-length", "0")))
        with self._arrived:
            headers = {k.lower(): v for k, v in handler.headers.items()}
            self.requests.append((headers, body, handler.path))
            status = self.answers.pop(0) if self.answers else 200
            self._arrived.notify_all()
        if self.hold is not None:
            self.hold.wait(WAIT)
        handler.send_response(status)
        if status in (301, 302, 307):
            handler.send_header("location", "http://127.0.0.1:9/elsewhere")
        handler.send_header("content-length", str(self.body_size))
        handler.end_headers()
        with contextlib.suppress(OSError):  # the sender may stop reading, as it should
            for start in range(0, self.body_size, 65536):
                handler.wfile.write(b"k" * min(65536, self.body_size - start))
                self.written = start + 65536

    def wait_for(self, count: int) -> list[tuple[dict[str, str], bytes, str]]:
        """Until `count` requests have come (woken by each arrival); fails after WAIT s."""
        with self._arrived:
            assert self._arrived.wait_for(lambda: len(self.requests) >= count, WAIT), self.requests
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
