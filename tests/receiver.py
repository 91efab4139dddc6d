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
        self._arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with outer._arrived:
                    outer.requests.append(
                        ({k.lower(): v for k, v in self.headers.items()}, body, self.path)
                    )
                    status = outer.answers.pop(0) if outer.answers else 200
                    outer._arrived.notify_all()
                if outer.hold is not None:
                    outer.hold.wait(WAIT)
                self.send_response(status)
                if status in (301, 302, 307):
                    self.send_header("location", "http://127.0.0.1:9/elsewhere")
                self.send_header("content-length", str(body_size))
                self.end_headers()
                with contextlib.suppress(OSError):  # the sender may stop reading, as it should
                    for start in range(0, body_size, 65536):
                        self.wfile.write(b"k" * min(65536, body_size - start))
                        outer.written = start + 65536

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, count: int) -> list[tuple[dict[str, str], bytes, str]]:
        """Until `count` requests have come (woken by each arrival); fails after WAIT s."""
        with self._arrived:
            assert self._arrived.wait_for(lambda: len(self.requests) >= count, WAIT), self.requests
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
