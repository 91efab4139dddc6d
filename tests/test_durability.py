"""Durable stores: what was answered 250 survives kill -9 and a restart."""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.helpers import STORED, serve
from tests.postgres import postgres_url, reset
from tests.process import free_port

__all__ = ["postgres_url"]  # a fixture, used through request.getfixturevalue


def burst(port: int, connection: int, count: int) -> list[str]:
    """Send `count` pipelined messages on one connection; the ids answered 250."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"EHLO burst\r\n")
        while not reader.readline().startswith(b"250 "):
            pass
        ids = []
        for number in range(count):
            sock.sendall(
                b"MAIL FROM:<b@example.org>\r\nRCPT TO:<durable@localhost>\r\nDATA\r\n"
                b"Subject: burst %d/%d\r\n\r\nbody\r\n.\r\n" % (connection, number)
            )
            replies = [reader.readline() for _ in range(4)]
            found = STORED.search(replies[-1])
            if found:
                ids.append(found.group(1).decode())
        return ids


@pytest.fixture(params=["sqlite", "postgres"])
def durable_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'burnbox.db'}"
    url = str(request.getfixturevalue("postgres_url"))
    asyncio.run(reset(url))
    return url


def test_every_250_survives_kill_9(durable_store: str) -> None:
    store = durable_store
    smtp_port, http_port = free_port(), free_port()
    first = serve(store, smtp_port, http_port)
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answered = [
                i for ids in pool.map(lambda n: burst(smtp_port, n, 50), range(8)) for i in ids
            ]
        first.send_signal(signal.SIGKILL)  # right after the last 250: no chance to flush
    finally:
        first.kill()
        first.communicate()
    assert len(answered) == 400
    second = serve(store, smtp_port, http_port)
    try:
        found: list[str] = []
        before = None
        while True:
            params = {"limit": 100, **({"before": before} if before else {})}
            page = httpx.get(
                f"http://127.0.0.1:{http_port}/api/inboxes/durable@localhost/messages",
                params=params,
            ).json()
            found += [message["id"] for message in page["messages"]]
            before = page["next_before"]
            if before is None:
                break
        assert sorted(found) == sorted(answered)
        metrics = httpx.get(f"http://127.0.0.1:{http_port}/metrics").text
        assert "burnbox_messages_stored 400.0" in metrics
    finally:
        second.terminate()
        second.communicate()
