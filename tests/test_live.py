"""Instant push over real connections: SSE, WebSocket and long-poll."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect as ws_connect
from websockets.typing import Origin

from tests.helpers import Running, auth, create, send, url


def messages_only(events: Iterator[ServerSentEvent]) -> Iterator[ServerSentEvent]:
    return (event for event in events if event.event != "message" or event.data)


def opened(events: Iterator[ServerSentEvent]) -> Iterator[ServerSentEvent]:
    """Wait for the stream's first frame (sent once subscribed), then yield the rest."""
    first = next(events)
    assert first.retry == 2000
    return messages_only(events)


def test_sse_pushes_new_mail(server: Running) -> None:
    inbox = create(server)
    with (
        httpx.Client(timeout=10) as client,
        connect_sse(
            client, "GET", url(server, inbox["address"], "/events"), headers=auth(inbox)
        ) as source,
    ):
        assert source.response.headers["content-type"].startswith("text/event-stream")
        assert source.response.headers["x-accel-buffering"] == "no"
        assert source.response.headers["cache-control"].startswith("no-cache")
        events = opened(source.iter_sse())
        send(server, inbox["address"], b"Subject: live\r\n\r\nhello\r\n")
        event = next(events)
        assert event.event == "message"
        data = json.loads(event.data)
        assert data["subject"] == "live"
        assert data["id"] == event.id


def test_sse_catch_up_with_last_event_id_is_exact(server: Running) -> None:
    inbox = create(server)
    send(server, inbox["address"], b"Subject: m0\r\n\r\nx\r\n")
    [first] = httpx.get(url(server, inbox["address"], "/messages"), headers=auth(inbox)).json()[
        "messages"
    ]
    for number in range(1, 4):  # missed while disconnected
        send(server, inbox["address"], f"Subject: m{number}\r\n\r\nx\r\n".encode())
    headers = {**auth(inbox), "Last-Event-ID": first["id"]}
    with (
        httpx.Client(timeout=10) as client,
        connect_sse(
            client, "GET", url(server, inbox["address"], "/events"), headers=headers
        ) as source,
    ):
        events = opened(source.iter_sse())
        caught_up = [json.loads(next(events).data)["subject"] for _ in range(3)]
        assert caught_up == ["m1", "m2", "m3"]
        send(server, inbox["address"], b"Subject: m4\r\n\r\nx\r\n")
        assert json.loads(next(events).data)["subject"] == "m4"  # no duplicates before it


def test_sse_deleted_and_expired_events(server: Running) -> None:
    inbox = create(server)
    send(server, inbox["address"], b"Subject: doomed\r\n\r\nx\r\n")
    [message] = httpx.get(url(server, inbox["address"], "/messages"), headers=auth(inbox)).json()[
        "messages"
    ]
    with (
        httpx.Client(timeout=10) as client,
        connect_sse(
            client, "GET", url(server, inbox["address"], "/events"), headers=auth(inbox)
        ) as source,
    ):
        events = opened(source.iter_sse())
        httpx.delete(
            url(server, inbox["address"], f"/messages/{message['id']}"), headers=auth(inbox)
        )
        deleted = next(events)
        assert deleted.event == "deleted"
        assert json.loads(deleted.data) == {"id": message["id"]}
        httpx.delete(url(server, inbox["address"]), headers=auth(inbox))
        expired = next(events)
        assert expired.event == "expired"
        assert json.loads(expired.data) == {"id": None}
        assert list(events) == []  # the stream ends with the inbox


def test_sse_refuses_unreadable_like_missing(server: Running) -> None:
    inbox = create(server)
    unreadable = httpx.get(url(server, inbox["address"], "/events"))
    missing = httpx.get(url(server, "nobody@localhost", "/events"))
    assert unreadable.status_code == missing.status_code == 404
    assert unreadable.content == missing.content


def ws_url(server: Running, address: str) -> str:
    return f"ws://127.0.0.1:{server.http_port}/api/inboxes/{address}/ws"


def test_websocket_pushes_new_mail(server: Running) -> None:
    inbox = create(server)
    with ws_connect(
        ws_url(server, inbox["address"]),
        additional_headers=auth(inbox),
        origin=Origin(server.http),
        open_timeout=10,
    ) as socket:
        send(server, inbox["address"], b"Subject: over ws\r\n\r\nx\r\n")
        event = json.loads(socket.recv(timeout=10))
        assert event["event"] == "message"
        assert event["data"]["subject"] == "over ws"


def close_code(closed: ConnectionClosedError) -> int | None:
    return closed.rcvd.code if closed.rcvd is not None else None


async def _drop_all(server: Running) -> None:
    server.app.hub.drop_all()  # what the relay does when it loses the other nodes


def test_websocket_says_catch_up_or_gone_with_different_close_codes(server: Running) -> None:
    inbox = create(server)
    with ws_connect(
        ws_url(server, inbox["address"]),
        additional_headers=auth(inbox),
        origin=Origin(server.http),
        open_timeout=10,
    ) as socket:
        send(server, inbox["address"], b"Subject: first\r\n\r\nx\r\n")
        assert json.loads(socket.recv(timeout=10))["data"]["subject"] == "first"
        server.call(_drop_all(server))
        with pytest.raises(ConnectionClosedError) as dropped:
            socket.recv(timeout=10)
    assert close_code(dropped.value) == 1013
    with ws_connect(
        ws_url(server, inbox["address"]),
        additional_headers=auth(inbox),
        origin=Origin(server.http),
        open_timeout=10,
    ) as socket:
        httpx.delete(url(server, inbox["address"], ""), headers=auth(inbox)).raise_for_status()
        assert json.loads(socket.recv(timeout=10)) == {"event": "expired", "data": {"id": None}}
        with pytest.raises(ConnectionClosedError) as gone:
            socket.recv(timeout=10)
    assert close_code(gone.value) == 4404


def test_websocket_checks_origin_and_token(server: Running) -> None:
    inbox = create(server)
    with pytest.raises(InvalidStatus) as cross_site:
        ws_connect(
            ws_url(server, inbox["address"]),
            additional_headers=auth(inbox),
            origin=Origin("https://evil.test"),
            open_timeout=10,
        )
    assert cross_site.value.response.status_code == 403
    refusals = []
    for address, headers in ((inbox["address"], {}), ("nobody@localhost", auth(inbox))):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(ws_url(server, address), additional_headers=headers, open_timeout=10)
        refusals.append((refused.value.response.status_code, refused.value.response.body))
    assert refusals[0] == refusals[1]  # no token answers like no inbox


def test_long_poll_answers_when_mail_arrives(server: Running) -> None:
    inbox = create(server)
    send(server, inbox["address"], b"Subject: old\r\n\r\nx\r\n")
    [old] = httpx.get(url(server, inbox["address"], "/messages"), headers=auth(inbox)).json()[
        "messages"
    ]
    result: dict[str, list[dict[str, str]]] = {}
    finished: list[float] = []
    started = threading.Event()

    def poll() -> None:
        started.set()
        response = httpx.get(
            url(server, inbox["address"], f"/messages?wait=30&after={old['id']}"),
            headers=auth(inbox),
            timeout=40,
        )
        result["messages"] = response.json()["messages"]
        finished.append(time.monotonic())

    poller = threading.Thread(target=poll)
    poller.start()
    started.wait()
    # The poll must already be waiting when the mail lands; a message sent before it
    # subscribed would be found by its first look, so either order gives the same answer.
    send(server, inbox["address"], b"Subject: new\r\n\r\nx\r\n")
    sent = time.monotonic()
    poller.join(35)
    assert [m["subject"] for m in result["messages"]] == ["new"]
    assert finished[0] - sent < 5


def test_long_poll_times_out_empty(server: Running) -> None:
    inbox = create(server)
    started = time.monotonic()
    response = httpx.get(
        url(server, inbox["address"], "/messages?wait=0.5&after=0"), headers=auth(inbox)
    )
    assert response.json()["messages"] == []
    assert time.monotonic() - started >= 0.45
