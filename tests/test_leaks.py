"""Nothing leaks: inbox lifetimes, downloads and push, tried as an attacker would, over real
HTTP, SSE and WebSocket connections to a running burnbox (issue 18, item by item)."""

from __future__ import annotations

import asyncio
import json
import smtplib
import socket
import threading
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from httpx_sse import connect_sse
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from tests.helpers import Running, auth, create, send, url
from tests.postgres import postgres_url, reset
from tests.process import nodes_running

__all__ = ["postgres_url"]

RESET_MAIL = b"Subject: Reset your password\r\n\r\nYour reset code is 918273\r\n"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'mail.db'}"
    database = str(request.getfixturevalue("postgres_url"))
    asyncio.run(reset(database))
    return database


def everything_readable(base: str, headers: dict[str, str], message_id: str) -> list[int]:
    """The status of every way to read one message."""
    return [
        httpx.get(f"{base}/messages/{message_id}{tail}", headers=headers).status_code
        for tail in ("", "/raw", "/html", "/attachments/0")
    ]


# 1. An inbox's mail belongs to its lifetime, not to its address.


def test_an_address_made_again_starts_empty_before_any_purge(
    start_burnbox: Callable[..., Running], store_url: str
) -> None:
    server = start_burnbox(store=store_url, inbox_ttl=5.0)
    victim = create(server, local_part="victim")
    send(server, victim["address"], RESET_MAIL)
    [old] = httpx.get(url(server, victim["address"], "/messages"), headers=auth(victim)).json()[
        "messages"
    ]
    server.clock.advance(seconds=6)  # expired; the reaper has not run
    attacker = create(server, local_part="victim")  # a millisecond later, in effect
    base, headers = url(server, attacker["address"]), auth(attacker)
    page = httpx.get(base + "/messages", headers=headers).json()
    assert page["messages"] == []
    assert httpx.get(base, headers=headers).json()["messages"] == 0
    assert everything_readable(base, headers, old["id"]) == [404, 404, 404, 404]
    assert httpx.get(base + "/messages?after=0&wait=0.2", headers=headers).json()["messages"] == []
    with ws_connect(
        base.replace("http", "ws", 1) + "/ws?after=0", additional_headers=headers, open_timeout=10
    ) as stream:
        send(server, attacker["address"], b"Subject: new owner's own\r\n\r\nhi\r\n")
        first = json.loads(stream.recv(timeout=10))
    assert first["data"]["subject"] == "new owner's own"  # not the victim's, replayed first
    old_token = everything_readable(url(server, victim["address"]), auth(victim), old["id"])
    assert old_token == [404, 404, 404, 404]  # the old token: nothing
    replayed = {**headers, "Last-Event-ID": "0"}
    with (
        httpx.Client(timeout=10) as client,
        connect_sse(client, "GET", base + "/events", headers=replayed) as source,
    ):
        events = source.iter_sse()
        assert next(events).retry
        assert json.loads(next(events).data)["subject"] == "new owner's own"


def test_across_two_nodes_the_old_owners_mail_stays_unreadable(
    postgres_url: str, tmp_path: Path
) -> None:
    """Node A holds the victim's inbox until it expires (its stream says so, by A's timer:
    no reaper has run); at that moment the attacker makes the address again on node B."""
    asyncio.run(reset(postgres_url))
    flags = ("--store", postgres_url, "--hub", "postgres", "--inbox-ttl", "3s")
    with nodes_running(2, *flags) as nodes:
        a, b = (f"http://127.0.0.1:{node.http_port}" for node in nodes)
        victim = httpx.post(a + "/api/inboxes", json={"local_part": "victim"}).json()
        with smtplib.SMTP("127.0.0.1", nodes[0].smtp, timeout=10) as smtp:
            smtp.sendmail("a@example.org", [victim["address"]], RESET_MAIL)
        old = f"{a}/api/inboxes/{quote(victim['address'])}"
        [listed] = httpx.get(old + "/messages", headers=auth(victim)).json()["messages"]
        with (
            httpx.Client(timeout=8) as client,
            connect_sse(client, "GET", old + "/events", headers=auth(victim)) as source,
        ):
            # (its sender checks may be pushed first, as "updated": this node asks no DNS)
            ended = next(
                event for event in source.iter_sse() if event.event not in ("message", "updated")
            )
            assert ended.event == "expired"
        attacker = httpx.post(b + "/api/inboxes", json={"local_part": "victim"})
        assert attacker.status_code == 201
        new = f"{b}/api/inboxes/{quote(attacker.json()['address'])}"
        headers = auth(attacker.json())
        assert httpx.get(new + "/messages", headers=headers).json()["messages"] == []
        assert everything_readable(new, headers, listed["id"]) == [404] * 4
        assert httpx.get(new + "/messages?after=0", headers=headers).json()["messages"] == []


def test_streams_end_when_their_inbox_expires(start_burnbox: Callable[..., Running]) -> None:
    """The reaper has not run (it may be a minute away): the stream ends by its own timer
    at the inbox's end, says `expired`, and sends nothing after."""
    server = start_burnbox(inbox_ttl=1.0)
    inbox = create(server)
    base = url(server, inbox["address"])
    # Waits on the stream, each read bounded: the end must come by the stream's own timer,
    # within seconds, not with the reaper's next round a minute on.
    with (
        httpx.Client(timeout=8) as client,
        connect_sse(client, "GET", base + "/events", headers=auth(inbox)) as source,
    ):
        events = source.iter_sse()
        assert next(events).retry
        server.clock.advance(seconds=2)  # by our clock, it has ended
        ended = next(event for event in events if event.event != "message")
        assert ended.event == "expired"
        assert json.loads(ended.data) == {"id": None}
        assert list(events) == []  # and the stream is over


def test_a_pending_long_poll_ends_at_once_when_its_inbox_is_burned(server: Running) -> None:
    inbox = create(server)
    base = url(server, inbox["address"])
    answers: list[int] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            httpx.get(
                base + "/messages?after=0&wait=60", headers=auth(inbox), timeout=70
            ).status_code
        )
    )
    waiting.start()
    wait_until_subscribed(server, inbox["address"])
    assert httpx.delete(base, headers=auth(inbox)).status_code == 204
    waiting.join(timeout=10)
    assert answers == [404]  # as a normal read of a burned inbox, and not 60 s later


def wait_until_subscribed(server: Running, address: str) -> None:
    """Until a push stream watches `address` (a check on the server's loop, repeated)."""

    async def watched() -> bool:
        return server.app.hub.watched(address)

    for _ in range(10_000):
        if server.call(watched()):
            return
    raise AssertionError("nobody subscribed")


# 2. Any file name a sender can write downloads, with a safe Content-Disposition.


NAMES = [
    "отчёт.pdf",
    "報告書.txt",
    "😀 party.png",
    "café.txt",
    "a/b\\c.txt",
    "evil\u202egpj.exe",
    "x" * 400 + ".txt",
    "\x07bell.txt",
]


def test_every_attachment_name_downloads_with_an_ascii_fallback(server: Running) -> None:
    inbox = create(server)
    message = EmailMessage()
    message["Subject"] = "names"
    message.set_content("see attached")
    for name in NAMES:
        message.add_attachment(b"data", maintype="text", subtype="plain", filename=name)
    send(server, inbox["address"], message)
    [summary] = httpx.get(url(server, inbox["address"], "/messages"), headers=auth(inbox)).json()[
        "messages"
    ]
    view = httpx.get(
        url(server, inbox["address"], f"/messages/{summary['id']}"), headers=auth(inbox)
    ).json()
    assert len(view["attachments"]) == len(NAMES)
    for attachment in view["attachments"]:
        download = httpx.get(server.http + attachment["url"], headers=auth(inbox))
        assert download.status_code == 200, attachment["filename"]
        disposition = download.headers["content-disposition"]
        assert disposition.isascii()
        fallback = disposition.split('filename="')[1].split('"')[0]
        assert fallback
        assert "/" not in fallback
        assert "\\" not in fallback
        encoded = disposition.split("filename*=UTF-8''")[1]
        for forbidden in ("%2F", "%5C", "%E2%80%AE", "%07"):  # / \ RLO BEL
            assert forbidden not in encoded
        assert len(fallback) <= 150
    assert "café.txt" in [a["filename"] for a in view["attachments"]]  # not mojibake


# 3. Security headers on every response, and no caching of mail.


def test_a_fault_on_our_side_is_json_with_the_security_headers(
    start_burnbox: Callable[..., Running],
) -> None:
    server = start_burnbox(ingest_parse_inline_max=10)
    inbox = create(server)
    send(server, inbox["address"], b"Subject: big enough for the worker\r\n\r\n" + b"x" * 100)
    [summary] = httpx.get(url(server, inbox["address"], "/messages"), headers=auth(inbox)).json()[
        "messages"
    ]
    server.app.parse_pool.close()  # a real fault: the parsing process is gone for good
    failed = httpx.get(
        url(server, inbox["address"], f"/messages/{summary['id']}"), headers=auth(inbox)
    )
    assert failed.status_code == 500
    assert failed.json() == {
        "error": {"code": "internal", "message": "Something went wrong on our side."}
    }
    for header in (
        "content-security-policy",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
    ):
        assert header in failed.headers


def test_message_views_and_downloads_are_not_cached(server: Running) -> None:
    inbox = create(server)
    send(server, inbox["address"], RESET_MAIL)
    [summary] = httpx.get(url(server, inbox["address"], "/messages"), headers=auth(inbox)).json()[
        "messages"
    ]
    for tail in ("", "/raw", "/html"):
        answer = httpx.get(
            url(server, inbox["address"], f"/messages/{summary['id']}{tail}"), headers=auth(inbox)
        )
        assert answer.headers["cache-control"] == "private, no-store", tail


# 4. Push streams are capped per client IP and in all.


@pytest.fixture
def capped(start_burnbox: Callable[..., Running]) -> Running:
    return start_burnbox(push_max_streams_per_ip=3)


def open_sse(client: httpx.Client, server: Running, inbox: dict[str, str]) -> httpx.Response:
    request = client.build_request(
        "GET", url(server, inbox["address"], "/events"), headers=auth(inbox)
    )
    return client.send(request, stream=True)


def test_push_streams_per_client_ip_are_capped(capped: Running) -> None:
    inbox = create(capped)
    with httpx.Client(timeout=10) as client:
        held = [open_sse(client, capped, inbox) for _ in range(3)]
        assert [stream.status_code for stream in held] == [200] * 3
        refused = open_sse(client, capped, inbox)
        assert refused.status_code == 429
        refused.read()
        assert refused.json()["error"]["code"] == "rate_limited"
        assert "retry-after" in refused.headers
        socket_url = url(capped, inbox["address"], "/ws").replace("http", "ws", 1)
        with (
            pytest.raises(ConnectionClosed) as closed,
            ws_connect(
                socket_url, additional_headers=auth(inbox), open_timeout=10
            ) as refused_socket,
        ):
            refused_socket.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4429
        long_poll = httpx.get(
            url(capped, inbox["address"], "/messages?wait=1"), headers=auth(inbox)
        )
        assert long_poll.status_code == 429
        held[0].close()
        wait_until_released(capped, "127.0.0.1", 2)
        again = open_sse(client, capped, inbox)
        assert again.status_code == 200  # a place given back is a place again
        again.close()
        for stream in held[1:]:
            stream.close()
    metrics = httpx.get(capped.http + "/metrics").text
    assert 'burnbox_push_refused_total{limit="per_ip"} 3.0' in metrics


def wait_until_released(server: Running, client: str, count: int) -> None:
    async def held() -> int:
        return int(server.app.web.state.services.streams.held(client))

    for _ in range(10_000):
        if server.call(held()) <= count:
            return
    raise AssertionError("the stream was never released")


# 5. Long-poll returns what follows `after`, oldest first, with a cursor to the rest.


def test_long_poll_after_pages_forward_without_gaps(server: Running) -> None:
    inbox = create(server)
    for number in range(7):
        send(server, inbox["address"], f"Subject: m{number}\r\n\r\nx\r\n".encode())
    listed = httpx.get(url(server, inbox["address"], "/messages"), headers=auth(inbox)).json()[
        "messages"
    ]
    after, seen = listed[-1]["id"], []  # m0
    while after is not None:
        page = httpx.get(
            url(server, inbox["address"], f"/messages?after={after}&limit=3"), headers=auth(inbox)
        ).json()
        seen += [message["subject"] for message in page["messages"]]
        after = page["next_after"]
    assert seen == [f"m{number}" for number in range(1, 7)]


# 6. Failed reads are rate-limited per client IP, missing and forbidden alike.


def test_token_guessing_is_rate_limited(start_burnbox: Callable[..., Running]) -> None:
    server = start_burnbox(failed_read_rate="5/m")
    inbox = create(server)
    wrong = {"Authorization": "Bearer bbx_" + "A" * 32}
    answers = [
        httpx.get(url(server, inbox["address"]), headers=wrong).status_code for _ in range(5)
    ]
    assert answers == [404] * 5
    for address in (inbox["address"], "nobody@localhost"):  # no telling which exists
        limited = httpx.get(url(server, address), headers=wrong)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
    assert httpx.get(url(server, inbox["address"]), headers=auth(inbox)).status_code == 429


# 7. Cross-site requests.


def test_a_foreign_form_cannot_create_an_inbox(server: Running) -> None:
    form = httpx.post(
        server.http + "/api/inboxes",
        content=b"",
        headers={
            "Origin": "https://evil.test",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert form.status_code == 403
    assert form.json()["error"]["code"] == "cross_origin"
    referred = httpx.post(
        server.http + "/api/inboxes", json={}, headers={"Referer": "https://evil.test/page"}
    )
    assert referred.status_code == 403
    assert (
        httpx.post(
            server.http + "/api/inboxes", json={}, headers={"Origin": server.http}
        ).status_code
        == 201
    )  # our own page


def test_a_cookie_write_with_only_a_foreign_referer_is_refused(server: Running) -> None:
    made = httpx.post(server.http + "/api/inboxes", json={"cookie": True})
    address = made.json()["address"]
    with httpx.Client(base_url=server.http, cookies=made.cookies) as browser:
        refused = browser.delete(
            f"/api/inboxes/{quote(address)}", headers={"Referer": "https://evil.test/x"}
        )
        assert refused.status_code == 404
        assert browser.get(f"/api/inboxes/{quote(address)}").status_code == 200  # still there


def test_the_websocket_origin_check_compares_the_scheme(server: Running) -> None:
    inbox = create(server)
    socket_url = url(server, inbox["address"], "/ws").replace("http", "ws", 1)
    other_scheme = server.http.replace("http://", "https://")
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(
            socket_url, additional_headers={**auth(inbox), "Origin": other_scheme}, open_timeout=10
        )
    assert refused.value.response.status_code == 403  # refused at the handshake
    with ws_connect(
        socket_url, additional_headers={**auth(inbox), "Origin": server.http}, open_timeout=10
    ):
        pass  # the same origin, scheme and all, is let in


@pytest.mark.parametrize("userinfo", ["evil.example@", "user:pass@", "@"])
def test_an_origin_with_user_information_is_foreign(server: Running, userinfo: str) -> None:
    """`http://evil.example@host:port` read as a URL has our host: it is still refused."""
    inbox = create(server)
    socket_url = url(server, inbox["address"], "/ws").replace("http", "ws", 1)
    origin = server.http.replace("http://", f"http://{userinfo}")
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(socket_url, additional_headers={**auth(inbox), "Origin": origin})
    assert refused.value.response.status_code == 403
    form = httpx.post(server.http + "/api/inboxes", json={}, headers={"Origin": origin})
    assert form.status_code == 403


# 8. Smaller ones.


def test_an_over_limit_chunked_body_is_413(server: Running) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"local_part": "'
        for _ in range(40):
            yield b"x" * 1000

    response = httpx.post(
        server.http + "/api/inboxes", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("space", ["\u00a0", "\u0085"])
def test_a_token_wrapped_in_unicode_space_is_not_accepted(server: Running, space: str) -> None:
    """NBSP and NEL as a client sends them in a header: one Latin-1 byte each."""
    inbox = create(server)
    header = f"Bearer {space}{inbox['token']}{space}".encode("latin-1")
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as raw:
        raw.sendall(
            b"GET /api/inboxes/" + quote(inbox["address"]).encode() + b" HTTP/1.1\r\n"
            b"Host: x\r\nConnection: close\r\nAuthorization: " + header + b"\r\n\r\n"
        )
        status = raw.makefile("rb").readline()
    assert status.split()[1] == b"404"


# 9. The sanitiser reads URLs as a browser does.


@pytest.mark.parametrize(
    "link",
    [
        " data:text/html,<b>phish</b>",
        "&#9;data:text/html,x",
        "da&#9;ta:text/html,x",
        "&#1;javascript:alert(1)",
        "java&#10;script:alert(1)",
    ],
)
def test_no_data_or_script_link_survives_in_any_disguise(server: Running, link: str) -> None:
    inbox = create(server)
    message = EmailMessage()
    message["Subject"] = "links"
    message.set_content("text")
    message.add_alternative(
        f'<a href="{link}">open</a><blockquote cite="javascript:x">q</blockquote>', subtype="html"
    )
    send(server, inbox["address"], message)
    [summary] = httpx.get(url(server, inbox["address"], "/messages"), headers=auth(inbox)).json()[
        "messages"
    ]
    html = httpx.get(
        url(server, inbox["address"], f"/messages/{summary['id']}"), headers=auth(inbox)
    ).json()["html"]
    assert "href" not in html
    assert "cite" not in html
