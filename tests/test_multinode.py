"""Two burnbox processes sharing PostgreSQL: push crosses nodes, catch-up stays exact."""

from __future__ import annotations

import asyncio
import json
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from tests.postgres import postgres_url, reset
from tests.test_durability import free_port

__all__ = ["postgres_url"]  # a fixture, used through request.getfixturevalue


@dataclass
class Node:
    process: subprocess.Popen[str]
    smtp: int
    http: str


def start_node(store: str, hub: str, folder: Path) -> Node:
    smtp, http = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "burnbox", "serve", "--store", store, "--hub", hub,
         "--smtp-listen", f"127.0.0.1:{smtp}", "--http-listen", f"127.0.0.1:{http}",
         "--env-file", "/dev/null"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=folder)
    assert process.stdout is not None
    banner = "".join(process.stdout.readline() for _ in range(6))
    assert "push     across nodes" in banner, banner
    return Node(process, smtp, f"http://127.0.0.1:{http}")


@pytest.fixture(params=["postgres", "redis://127.0.0.1:6379/0"], ids=["pg-notify", "redis"])
def nodes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    url = str(request.getfixturevalue("postgres_url"))
    asyncio.run(reset(url))
    first = start_node(url, request.param, tmp_path)
    second = start_node(url, request.param, tmp_path)
    yield first, second
    for node in (first, second):
        node.process.terminate()
        node.process.communicate(timeout=30)


def send(node: Node, to: str, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", node.smtp, timeout=10) as client:
        client.sendmail("a@example.org", [to], f"Subject: {subject}\r\n\r\nx\r\n".encode())


def test_mail_received_on_one_node_is_pushed_on_the_other(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    inbox = httpx.post(a.http + "/api/inboxes").json()
    headers = {"Authorization": f"Bearer {inbox['token']}"}
    events_on_b = f"{b.http}/api/inboxes/{inbox['address']}/events"
    with httpx.Client(timeout=15) as client, connect_sse(client, "GET", events_on_b,
                                                         headers=headers) as source:
        events = source.iter_sse()
        assert next(events).retry == 2000  # subscribed on B
        send(a, inbox["address"], "via A")
        event = next(event for event in events if event.event == "message" and event.data)
        assert json.loads(event.data)["subject"] == "via A"
        last = event.id
    send(a, inbox["address"], "missed 1")  # nobody listening now
    send(b, inbox["address"], "missed 2")
    with httpx.Client(timeout=15) as client, connect_sse(
            client, "GET", events_on_b, headers={**headers, "Last-Event-ID": last}) as source:
        events = (event for event in source.iter_sse() if event.event == "message" and event.data)
        assert [json.loads(next(events).data)["subject"] for _ in range(2)] == [
            "missed 1", "missed 2"]
        send(a, inbox["address"], "live again")
        assert json.loads(next(events).data)["subject"] == "live again"


def test_workers_share_the_listeners(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = str(request.getfixturevalue("postgres_url"))
    asyncio.run(reset(url))
    smtp, http = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "burnbox", "serve", "--store", url, "--workers", "2",
         "--smtp-listen", f"127.0.0.1:{smtp}", "--http-listen", f"127.0.0.1:{http}",
         "--access", "public", "--env-file", "/dev/null"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert process.stdout is not None
        banner = "".join(process.stdout.readline() for _ in range(7))
        assert "workers  2" in banner, banner
        assert "push     across nodes via postgres" in banner, banner
        workers = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        assert len(workers) == 2
        node = Node(process, smtp, f"http://127.0.0.1:{http}")
        for number in range(40):  # new connections: the kernel spreads them over the workers
            send(node, "shared@localhost", f"w{number}")
        listed = httpx.get(f"{node.http}/api/inboxes/shared@localhost/messages?limit=100")
        assert len(listed.json()["messages"]) == 40
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
