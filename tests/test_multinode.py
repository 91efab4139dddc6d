"""Two burnbox processes sharing PostgreSQL: push crosses nodes, catch-up stays exact."""

from __future__ import annotations

import asyncio
import json
import smtplib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from tests.helpers import auth, inbox_feed, metric
from tests.postgres import postgres_url, reset
from tests.process import Node, nodes_running, start_node

__all__ = ["postgres_url"]  # a fixture, used through request.getfixturevalue


@pytest.fixture(params=["postgres", "redis://127.0.0.1:6379/0"], ids=["pg-notify", "redis"])
def nodes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    url = str(request.getfixturevalue("postgres_url"))
    asyncio.run(reset(url))
    flags = ("--store", url, "--hub", request.param)
    with nodes_running(2, *flags, cwd=tmp_path, banner_lines=6) as (first, second):
        for node in (first, second):
            assert "push     across nodes" in node.banner, node.banner
        yield first, second


def send(node: Node, to: str, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", node.smtp, timeout=10) as client:
        client.sendmail("a@example.org", [to], f"Subject: {subject}\r\n\r\nx\r\n".encode())


def test_mail_received_on_one_node_is_pushed_on_the_other(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    with inbox_feed(a.http, b.http) as (inbox, events):  # made on A, subscribed on B
        send(a, inbox["address"], "via A")
        event = next(event for event in events if event.event == "message" and event.data)
        assert json.loads(event.data)["subject"] == "via A"
        last = event.id
    events_on_b = f"{b.http}/api/inboxes/{inbox['address']}/events"
    send(a, inbox["address"], "missed 1")  # nobody listening now
    send(b, inbox["address"], "missed 2")
    with (
        httpx.Client(timeout=15) as client,
        connect_sse(
            client, "GET", events_on_b, headers={**auth(inbox), "Last-Event-ID": last}
        ) as source,
    ):
        events = (event for event in source.iter_sse() if event.event == "message" and event.data)
        assert [json.loads(next(events).data)["subject"] for _ in range(2)] == [
            "missed 1",
            "missed 2",
        ]
        send(a, inbox["address"], "live again")
        assert json.loads(next(events).data)["subject"] == "live again"
    # What an operator watches across nodes: A sent packets, B heard them and timed the lag.
    on_a, on_b = (httpx.get(node.http + "/metrics").text for node in (a, b))
    assert metric(on_a, "burnbox_relay_packets_sent_total") >= 1
    assert metric(on_b, "burnbox_relay_received_total") >= 2  # "via A" and "live again"
    assert metric(on_b, "burnbox_relay_lag_seconds_count") >= 1


def test_workers_share_the_listeners(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = str(request.getfixturevalue("postgres_url"))
    asyncio.run(reset(url))
    node = start_node(
        "--store", url, "--workers", "2", "--access", "public", cwd=tmp_path, banner_lines=7
    )
    try:
        assert "workers  2" in node.banner, node.banner
        assert "push     across nodes via postgres" in node.banner, node.banner
        pid = node.process.pid
        workers = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        assert len(workers) == 2
        for number in range(40):  # new connections: the kernel spreads them over the workers
            send(node, "shared@localhost", f"w{number}")
        listed = httpx.get(f"{node.http}/api/inboxes/shared@localhost/messages?limit=100")
        assert len(listed.json()["messages"]) == 40
        # Whichever worker answers a scrape (each is a new connection), it speaks for the node:
        # mail and sessions the other worker holds included.
        held = [smtplib.SMTP("127.0.0.1", node.smtp, timeout=10) for _ in range(6)]
        try:
            for _ in range(16):
                scraped = httpx.get(node.http + "/metrics").text
                assert metric(scraped, "burnbox_messages_received_total") == 40
                assert metric(scraped, "burnbox_smtp_sessions") == 6
                assert metric(scraped, "burnbox_messages_stored") == 40
        finally:
            for session in held:
                session.quit()
    finally:
        code, stderr = node.stop()
    assert code == 0, stderr
