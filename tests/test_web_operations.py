"""Health, readiness and metrics over real HTTP."""

from __future__ import annotations

import contextlib
import smtplib

import httpx
from httpx_sse import connect_sse

from tests.helpers import Running, auth, create, metric, send, url


def test_healthz_and_readyz(server: Running) -> None:
    assert httpx.get(server.http + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.http + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "store": True,
        "smtp": True,
        "http": True,
        "reaper": True,
        "webhooks": True,
    }


def test_readyz_reports_listeners_down(server: Running) -> None:
    server.call(server.app.smtp.stop(1.0))
    ready = httpx.get(server.http + "/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["smtp"] is False


def test_security_headers_on_every_response(server: Running) -> None:
    for path in ("/healthz", "/metrics", "/nope"):
        headers = httpx.get(server.http + path).headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_metrics_count_without_naming_anyone(server: Running) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.sendmail(
            "private.sender@example.org",
            ["secret.person@localhost"],
            b"Subject: Very Private Subject\r\n\r\nbody\r\n",
        )
        with contextlib.suppress(smtplib.SMTPRecipientsRefused):
            client.sendmail("x@example.org", ["someone@relay.test"], b"x")
        open_sessions = httpx.get(server.http + "/metrics").text
        assert "burnbox_smtp_sessions 1.0" in open_sessions
    text = httpx.get(server.http + "/metrics").text
    assert "burnbox_messages_received_total 1.0" in text
    assert 'burnbox_messages_refused_total{reason="relay"} 1.0' in text
    assert "burnbox_messages_stored 1.0" in text
    assert "burnbox_bytes_stored " in text
    for private in ("secret.person", "private.sender", "Very Private", "relay.test", "127.0.0.1"):
        assert private not in text


def test_metrics_an_operator_of_several_nodes_needs(server: Running) -> None:
    """Store latency, push subscribers, purge runs and their duration, inboxes live."""
    before = httpx.get(server.http + "/metrics").text
    inbox = create(server)
    with (
        httpx.Client(timeout=10) as client,
        connect_sse(
            client, "GET", url(server, inbox["address"], "/events"), headers=auth(inbox)
        ) as source,
    ):
        events = source.iter_sse()  # kept: a dropped iterator closes the stream
        assert next(events).retry == 2000  # subscribed
        watching = httpx.get(server.http + "/metrics").text
        send(server, inbox["address"], b"Subject: counted\r\n\r\nx\r\n")
    server.call(server.app.reaper.run_once())
    after = httpx.get(server.http + "/metrics").text
    assert metric(watching, "burnbox_push_subscribers") == 1
    assert metric(after, "burnbox_inboxes") == metric(before, "burnbox_inboxes") + 1
    assert metric(after, "burnbox_store_add_seconds_count") == 1
    assert metric(after, "burnbox_store_add_seconds_sum") > 0
    runs = metric(after, "burnbox_purge_seconds_count")
    assert runs >= metric(before, "burnbox_purge_seconds_count") + 1
