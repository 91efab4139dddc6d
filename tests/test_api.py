"""The HTTP API over real HTTP, with mail sent over real SMTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.helpers import Conversation, FakeClock, Running, auth, create, iso, send, url


def test_create_a_random_inbox(server: Running) -> None:
    inbox = create(server)
    local, _, domain = inbox["address"].partition("@")
    assert domain == "localhost"
    assert len(local.split("-")) == 3
    assert inbox["token"].startswith("bbx_")
    assert len(inbox["token"]) >= 4 + 32  # 192 bits in URL-safe base64 after the prefix
    assert inbox["expires_at"] == iso(server.clock.now + timedelta(days=1))
    assert inbox["expires_in"] == 86400


def test_choose_local_part_and_domain(server: Running) -> None:
    assert create(server, local_part="Alice.Test", domain="EXAMPLE.test")["address"] == (
        "alice.test@example.test"
    )
    assert create(server, local_part="bob", domain="deep.wild.test")["address"] == (
        "bob@deep.wild.test"
    )
    taken = httpx.post(
        server.http + "/api/inboxes", json={"local_part": "alice.test", "domain": "example.test"}
    )
    assert taken.status_code == 409
    assert taken.json() == {
        "error": {"code": "address_taken", "message": "That address is in use."}
    }


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"local_part": "../etc"}, 422, "invalid_address"),
        ({"domain": "gmail.com"}, 422, "invalid_address"),
        ({"local_part": "x" * 65}, 422, "invalid_request"),
        ({"bogus": 1}, 422, "invalid_request"),
        ({"cookie": "maybe"}, 422, "invalid_request"),
    ],
)
def test_bad_inbox_requests(
    server: Running, body: dict[str, object], status: int, code: str
) -> None:
    response = httpx.post(server.http + "/api/inboxes", json=body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_request_bodies_are_bounded(server: Running) -> None:
    response = httpx.post(
        server.http + "/api/inboxes",
        content=b"{" + b" " * 20_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_unreadable_answers_exactly_like_missing(server: Running) -> None:
    inbox = create(server)
    missing = httpx.get(url(server, "nobody@localhost", "/messages"))
    no_token = httpx.get(url(server, inbox["address"], "/messages"))
    wrong = httpx.get(
        url(server, inbox["address"], "/messages"), headers={"Authorization": "Bearer " + "x" * 32}
    )
    garbage = httpx.get(url(server, "not an address", "/messages"))
    for response in (no_token, wrong, garbage):
        assert response.status_code == missing.status_code == 404
        assert response.content == missing.content
    assert (
        httpx.get(url(server, inbox["address"], "/messages"), headers=auth(inbox)).status_code
        == 200
    )


def test_token_never_needed_in_url_and_cookie_works(server: Running) -> None:
    response = httpx.post(server.http + "/api/inboxes", json={"cookie": True})
    address = response.json()["address"]
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/api/" in cookie
    with httpx.Client(base_url=server.http, cookies=response.cookies) as browser:
        assert browser.get(f"/api/inboxes/{quote(address)}").status_code == 200
        foreign = browser.delete(
            f"/api/inboxes/{quote(address)}", headers={"Origin": "https://evil.test"}
        )
        assert foreign.status_code == 404  # a cross-site write riding on the cookie
        same = browser.delete(f"/api/inboxes/{quote(address)}", headers={"Origin": server.http})
        assert same.status_code == 204


def test_the_cookie_outlives_a_server_clock_that_is_behind(
    clock: FakeClock,
    start_burnbox: Callable[..., Running],
) -> None:
    """The server's clock 30 hours behind: its Expires date is already past by the client's
    clock, but Max-Age, which a client prefers, counts from the client's own clock."""
    clock.advance(hours=-30)
    server = start_burnbox()
    response = httpx.post(server.http + "/api/inboxes", json={"cookie": True})
    assert "Max-Age=86400" in response.headers["set-cookie"]
    address = response.json()["address"]
    with httpx.Client(base_url=server.http, cookies=response.cookies) as browser:
        assert browser.get(f"/api/inboxes/{quote(address)}").status_code == 200


def test_list_read_and_paginate(server: Running) -> None:
    inbox = create(server)
    for number in range(5):
        send(server, inbox["address"], f"Subject: n{number}\r\n\r\nbody {number}\r\n".encode())
    first = httpx.get(url(server, inbox["address"], "/messages?limit=2"), headers=auth(inbox))
    page = first.json()
    assert [m["subject"] for m in page["messages"]] == ["n4", "n3"]
    assert "text" not in page["messages"][0]
    assert "html" not in page["messages"][0]
    rest = httpx.get(
        url(server, inbox["address"], f"/messages?limit=3&before={page['next_before']}"),
        headers=auth(inbox),
    ).json()
    assert [m["subject"] for m in rest["messages"]] == ["n2", "n1", "n0"]
    assert rest["next_before"] is None
    info = httpx.get(url(server, inbox["address"]), headers=auth(inbox)).json()
    assert info["messages"] == 5
    assert info["bytes"] > 0


def hostile_message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Shop <shop@example.org>"
    message["To"] = to
    message["Subject"] = "Confirm your account"
    message.set_content("Confirm here: https://shop.test/confirm?k=1\nYour code is 771203.\n")
    message.add_alternative(
        '<p onclick="alert(1)">Hi<script>alert(2)</script></p>'
        '<img src="https://track.test/pixel.gif"><img src="cid:logo@shop">'
        '<a href="javascript:alert(3)">x</a><a href="https://shop.test/confirm?k=1">Confirm</a>',
        subtype="html",
    )
    html_part = message.get_body(("html",))
    assert isinstance(html_part, EmailMessage)
    html_part.add_related(b"\x89PNG fake", maintype="image", subtype="png", cid="<logo@shop>")
    message.add_attachment(
        b"<script>alert(4)</script>", maintype="text", subtype="html", filename="../../evil.html"
    )
    return message


def delivered_view(
    server: Running, make: Callable[[str], EmailMessage]
) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    """A new inbox, the one message sent to it, and that message's full view."""
    inbox = create(server)
    send(server, inbox["address"], make(inbox["address"]))
    [summary] = httpx.get(url(server, inbox["address"], "/messages"), headers=auth(inbox)).json()[
        "messages"
    ]
    view = httpx.get(
        url(server, inbox["address"], f"/messages/{summary['id']}"), headers=auth(inbox)
    ).json()
    return inbox, summary, view


def test_full_view_is_sanitised_with_codes_links_and_attachments(server: Running) -> None:
    inbox, summary, view = delivered_view(server, hostile_message)
    html = view["html"]
    for bad in ("script", "onclick", "javascript:", "track.test"):
        assert bad not in html
    assert view["remote_blocked"] == ["https://track.test/pixel.gif"]
    assert view["codes"] == ["771203"]
    assert view["links"] == [{"url": "https://shop.test/confirm?k=1", "text": "Confirm"}]
    logo = next(a for a in view["attachments"] if a["content_id"] == "logo@shop")
    assert f'src="{logo["url"]}"' in html
    assert ("Subject", "Confirm your account") in [tuple(h) for h in view["headers"]]
    remote = httpx.get(
        url(server, inbox["address"], f"/messages/{summary['id']}?remote=allow"),
        headers=auth(inbox),
    ).json()
    assert 'src="https://track.test/pixel.gif"' in remote["html"]
    assert "script" not in remote["html"]


def test_attachment_and_raw_downloads_are_safe(server: Running) -> None:
    inbox, summary, view = delivered_view(server, hostile_message)
    evil = next(a for a in view["attachments"] if a["filename"].endswith("evil.html"))
    download = httpx.get(server.http + evil["url"], headers=auth(inbox))
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"_.._evil.html\"; filename*=UTF-8''_.._evil.html"
    )  # no path
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.content == b"<script>alert(4)</script>"
    raw = httpx.get(
        url(server, inbox["address"], f"/messages/{summary['id']}/raw"), headers=auth(inbox)
    )
    assert raw.headers["content-type"] == "message/rfc822"
    assert raw.content.startswith(b"Received: from ")
    assert (
        httpx.get(
            url(server, inbox["address"], f"/messages/{summary['id']}/attachments/99"),
            headers=auth(inbox),
        ).status_code
        == 404
    )


def test_seen_and_delete(server: Running) -> None:
    inbox = create(server)
    send(server, inbox["address"], b"Subject: s\r\n\r\nx\r\n")
    [summary] = httpx.get(url(server, inbox["address"], "/messages"), headers=auth(inbox)).json()[
        "messages"
    ]
    message = url(server, inbox["address"], f"/messages/{summary['id']}")
    assert httpx.patch(message, json={"seen": True}, headers=auth(inbox)).json()["seen"] is True
    assert httpx.patch(message, json={"seen": 1, "x": 2}, headers=auth(inbox)).status_code == 422
    assert httpx.delete(message, headers=auth(inbox)).status_code == 204
    assert httpx.get(message, headers=auth(inbox)).status_code == 404
    assert httpx.delete(message, headers=auth(inbox)).status_code == 404


def test_extend_up_to_the_maximum(start_burnbox: Callable[..., Running]) -> None:
    server = start_burnbox(inbox_ttl=3600.0, inbox_max_lifetime=5400.0)
    inbox = create(server)
    created = server.clock.now
    server.clock.advance(minutes=50)
    extended = httpx.post(url(server, inbox["address"], "/extend"), headers=auth(inbox)).json()
    assert extended["expires_at"] == iso(created + timedelta(minutes=90))  # the cap
    assert extended["expires_in"] == 40 * 60
    server.clock.advance(minutes=41)
    assert httpx.get(url(server, inbox["address"]), headers=auth(inbox)).status_code == 404


def test_burn_deletes_inbox_and_mail_at_once(server: Running) -> None:
    inbox = create(server)
    send(server, inbox["address"], b"Subject: s\r\n\r\nx\r\n")
    assert httpx.delete(url(server, inbox["address"]), headers=auth(inbox)).status_code == 204
    assert server.stored(inbox["address"]) == []
    assert httpx.get(url(server, inbox["address"]), headers=auth(inbox)).status_code == 404


def test_unclaimed_mail_is_kept_for_whoever_creates_the_inbox(server: Running) -> None:
    send(server, "early@localhost", b"Subject: before\r\n\r\nx\r\n")
    inbox = create(server, local_part="early")
    [summary] = httpx.get(url(server, inbox["address"], "/messages"), headers=auth(inbox)).json()[
        "messages"
    ]
    assert summary["subject"] == "before"


def test_unclaimed_reject(
    start_burnbox: Callable[..., Running], connect: Callable[[Running], Conversation]
) -> None:
    server = start_burnbox(unclaimed="reject")
    conversation = connect(server)
    conversation.command("EHLO c")
    conversation.command("MAIL FROM:<a@example.org>")
    assert conversation.command("RCPT TO:<ghost@localhost>").startswith("550 5.1.1")
    inbox = create(server, local_part="real")
    assert conversation.command(f"RCPT TO:<{inbox['address']}>").startswith("250")
    conversation.command("DATA")
    assert conversation.command("hi\r\n.").startswith("250")
    assert len(server.stored("real@localhost")) == 1


def test_public_access(start_burnbox: Callable[..., Running]) -> None:
    server = start_burnbox(access="public")
    send(server, "qa-run-1@localhost", b"Subject: public\r\n\r\nx\r\n")
    listed = httpx.get(url(server, "qa-run-1@localhost", "/messages")).json()["messages"]
    assert [m["subject"] for m in listed] == ["public"]
    assert httpx.get(url(server, "someone@gmail.com", "/messages")).status_code == 404


def test_inbox_creation_is_rate_limited(start_burnbox: Callable[..., Running]) -> None:
    server = start_burnbox(inbox_create_rate="2/m")
    create(server)
    create(server)
    limited = httpx.post(server.http + "/api/inboxes")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert limited.headers["retry-after"] == "30"
    server.clock.advance(seconds=30)
    create(server)
    spoofed = httpx.post(server.http + "/api/inboxes", headers={"X-Forwarded-For": "10.9.9.9"})
    assert spoofed.status_code == 429  # no proxy is trusted: the header means nothing


def test_trusted_proxy_header_names_the_client(start_burnbox: Callable[..., Running]) -> None:
    server = start_burnbox(inbox_create_rate="1/h", trusted_proxies=("127.0.0.1",))
    for client in ("198.51.100.1", "198.51.100.2"):
        response = httpx.post(server.http + "/api/inboxes", headers={"X-Forwarded-For": client})
        assert response.status_code == 201
    again = httpx.post(server.http + "/api/inboxes", headers={"X-Forwarded-For": "198.51.100.1"})
    assert again.status_code == 429


def test_expired_inboxes_are_purged(server: Running) -> None:
    inbox = create(server)
    send(server, inbox["address"], b"Subject: s\r\n\r\nx\r\n")
    server.clock.advance(hours=25)
    purged = server.call(server.app.reaper.run_once())
    assert purged == 1
    assert server.stored(inbox["address"]) == []
    assert httpx.get(url(server, inbox["address"]), headers=auth(inbox)).status_code == 404


def test_domains_and_openapi(server: Running) -> None:
    assert httpx.get(server.http + "/api/domains").json() == {
        "domains": ["localhost", "example.test"]
    }
    spec = httpx.get(server.http + "/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/api/inboxes/{address}/messages/{message_id}" in spec["paths"]
    assert httpx.get(server.http + "/api/docs").status_code == 200


def test_errors_are_json_with_stable_codes(server: Running) -> None:
    assert httpx.get(server.http + "/api/nope").json() == {
        "error": {"code": "not_found", "message": "Not Found"}
    }
    assert httpx.put(server.http + "/api/inboxes").json()["error"]["code"] == ("method_not_allowed")
    inbox = create(server)
    bad = httpx.get(url(server, inbox["address"], "/messages?limit=1000"), headers=auth(inbox))
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_request"


def test_views_of_large_messages_come_from_the_worker_process(
    start_burnbox: Callable[..., Running], server: Running
) -> None:
    """Above the inline size the parse runs in the worker process; the answers must not differ."""
    inline = delivered_view(server, hostile_message)
    pooled_server = start_burnbox(ingest_parse_inline_max=100)
    inbox, summary, view = delivered_view(pooled_server, hostile_message)
    assert pooled_server.app.parse_pool._pool is not None  # the worker really ran
    base = url(pooled_server, inbox["address"], f"/messages/{summary['id']}")
    for field in ("text", "remote_blocked", "codes", "links"):
        assert view[field] == inline[2][field], field
    # Addresses and MIME boundaries differ between the two deliveries; the fields do not.
    assert [name for name, _ in view["headers"]] == [name for name, _ in inline[2]["headers"]]
    assert len(view["attachments"]) == len(inline[2]["attachments"])
    page = httpx.get(base + "/html", headers=auth(inbox))
    assert page.status_code == 200
    assert "Confirm" in page.text
    assert "data:image/png;base64," in page.text  # the cid: image, inlined by the worker
    evil = next(a for a in view["attachments"] if a["filename"].endswith("evil.html"))
    assert httpx.get(pooled_server.http + evil["url"], headers=auth(inbox)).content == (
        b"<script>alert(4)</script>"
    )
