"""Webhooks end to end: registration through the API, deliveries to a real receiver on
loopback (allowed through BURNBOX_WEBHOOK_ALLOW), signatures verified with the
`standardwebhooks` package, retries, durability, once across nodes, and every SSRF refusal."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from burnbox.destinations import RefusedDestination, parse_allow, resolve
from tests.helpers import Running, send
from tests.postgres import postgres_url, reset
from tests.receiver import WAIT, Receiver

__all__ = ["postgres_url"]
LOOPBACK = ("127.0.0.0/8",)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def inbox(server: Running, local: str) -> tuple[str, dict[str, str]]:
    made = httpx.post(server.http + "/api/inboxes", json={"local_part": local}).json()
    return made["address"], {"Authorization": f"Bearer {made['token']}"}


def register(server: Running, address: str, auth: dict[str, str], **body: Any) -> httpx.Response:
    return httpx.post(f"{server.http}/api/inboxes/{address}/webhooks", json=body, headers=auth)


def mail(to: str, subject: str = "Verify your account") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Acme <no-reply@acme.test>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Your code is 482913. Confirm: https://acme.test/verify?t=1")
    return message


def event(request: tuple[dict[str, str], bytes, str], secret: str) -> dict[str, Any]:
    """The delivered event, after its signature is verified as a receiver would."""
    headers, body, _ = request
    verified: dict[str, Any] = Verifier(secret).verify(body, headers)
    return verified


def test_a_received_message_is_delivered_signed(
    start_burnbox: Callable[..., Running], receiver: Receiver
) -> None:
    server = start_burnbox(webhook_allow=LOOPBACK)
    address, auth = inbox(server, "hooked")
    made = register(server, address, auth, url=receiver.url, include_body=True)
    assert made.status_code == 201
    secret = made.json()["secret"]
    assert secret.startswith("whsec_")
    assert set(made.json()) == {"id", "url", "events", "include_body", "created_at", "secret"}
    send(server, address, mail(address))
    (delivered,) = receiver.wait_for(1)
    told = event(delivered, secret)
    assert told["type"] == "message.received"
    assert told["data"]["inbox"] == address
    assert told["data"]["message"]["subject"] == "Verify your account"
    assert told["data"]["codes"] == ["482913"]
    assert told["data"]["links"][0]["url"] == "https://acme.test/verify?t=1"
    assert "482913" in told["data"]["text"]
    with pytest.raises(WebhookVerificationError):  # a tampered body fails verification
        Verifier(secret).verify(delivered[1] + b" ", delivered[0])
    listed = httpx.get(f"{server.http}/api/inboxes/{address}/webhooks", headers=auth).json()
    assert listed[0]["last_status"] == "200"
    assert listed[0]["delivered"] == 1
    assert "secret" not in listed[0]


def test_a_failing_receiver_gets_it_again_later_and_once_it_is_back(
    start_burnbox: Callable[..., Running],
) -> None:
    first = Receiver(answers=[500])
    server = start_burnbox(webhook_allow=LOOPBACK)
    address, auth = inbox(server, "retried")
    secret = register(server, address, auth, url=first.url, events=["message.received"]).json()[
        "secret"
    ]
    send(server, address, mail(address))
    first.wait_for(1)  # answered 500
    wait_status(server, address, auth, lambda hook: hook["last_status"] == "500")
    port = first.port
    first.close()  # now down: connection refused
    server.clock.advance(hours=1)
    status = wait_status(
        server, address, auth, lambda hook: hook["last_status"].startswith("error")
    )
    assert status["pending"] == 1
    back = Receiver(port=port)  # back on the same address
    try:
        server.clock.advance(hours=1)
        (_, again) = back.wait_for(1)[0], back.requests[0]
        told = event(again, secret)
        assert told["type"] == "message.received"
        assert first.requests[0][0]["webhook-id"] == again[0]["webhook-id"]  # one event
        done = wait_status(server, address, auth, lambda hook: hook["delivered"] == 1)
        assert done["pending"] == 0
    finally:
        back.close()


def test_an_event_is_given_up_after_the_retry_time(
    start_burnbox: Callable[..., Running],
) -> None:
    failing = Receiver(answers=[500] * 10)
    try:
        server = start_burnbox(webhook_allow=LOOPBACK, webhook_retry_for=60.0)
        address, auth = inbox(server, "givenup")
        register(server, address, auth, url=failing.url, events=["message.received"])
        send(server, address, mail(address))
        failing.wait_for(1)
        wait_status(server, address, auth, lambda hook: hook["last_status"] == "500")
        server.clock.advance(hours=2)
        hook = wait_status(server, address, auth, lambda item: item["failed"] == 1)
        assert (hook["pending"], hook["delivered"]) == (0, 0)
    finally:
        failing.close()


def test_a_redirect_is_not_followed(start_burnbox: Callable[..., Running]) -> None:
    redirecting = Receiver(answers=[302])
    try:
        server = start_burnbox(webhook_allow=LOOPBACK)
        address, auth = inbox(server, "redirected")
        register(server, address, auth, url=redirecting.url, events=["message.received"])
        send(server, address, mail(address))
        redirecting.wait_for(1)
        hook = wait_status(server, address, auth, lambda item: item["last_status"] == "302")
        assert hook["pending"] == 1  # to be tried again at the URL registered, not followed
    finally:
        redirecting.close()


def test_a_slow_receiver_holds_up_only_itself(
    start_burnbox: Callable[..., Running], receiver: Receiver
) -> None:
    release = threading.Event()
    slow = Receiver(hold=release)
    try:
        server = start_burnbox(webhook_allow=LOOPBACK)
        stuck, stuck_auth = inbox(server, "stuck")
        register(server, stuck, stuck_auth, url=slow.url, events=["message.received"])
        for number in range(4):
            send(server, stuck, mail(stuck, f"slow {number}"))
        slow.wait_for(2)  # its two sends at once are taken, and hang
        quick, quick_auth = inbox(server, "quick")
        register(server, quick, quick_auth, url=receiver.url, events=["message.received"])
        send(server, quick, mail(quick, "fast"))
        (arrived,) = receiver.wait_for(1)  # while the slow one still holds its sends
        assert json.loads(arrived[1])["data"]["message"]["subject"] == "fast"
        assert len(slow.requests) == 2
        assert not release.is_set()
    finally:
        release.set()
        slow.close()


def test_a_huge_answer_is_not_read(start_burnbox: Callable[..., Running]) -> None:
    chatty = Receiver(body_size=50_000_000)
    try:
        server = start_burnbox(webhook_allow=LOOPBACK)
        address, auth = inbox(server, "chatty")
        register(server, address, auth, url=chatty.url, events=["message.received"])
        send(server, address, mail(address))
        chatty.wait_for(1)
        hook = wait_status(server, address, auth, lambda item: item["delivered"] == 1)
        assert hook["last_status"] == "200"
    finally:
        chatty.close()
    # The sender hung up after a few KB: only what the socket buffers took got out.
    assert chatty.written < 50_000_000 // 2


def test_burning_an_inbox_tells_its_hooks(
    start_burnbox: Callable[..., Running], receiver: Receiver
) -> None:
    server = start_burnbox(webhook_allow=LOOPBACK)
    address, auth = inbox(server, "burned")
    secret = register(server, address, auth, url=receiver.url, events=["inbox.burned"]).json()[
        "secret"
    ]
    assert httpx.delete(f"{server.http}/api/inboxes/{address}", headers=auth).status_code == 204
    (burned,) = receiver.wait_for(1)
    assert event(burned, secret)["type"] == "inbox.burned"


def _received_deleted_received_burned(
    server: Running, receiver: Receiver, address: str, auth: dict[str, str], heard: int
) -> None:
    """A message received and deleted, another received, then the inbox burned; the three
    events of the first two heard (beyond the `heard` before) before the burn."""
    send(server, address, mail(address, "Hello node"))
    listed = httpx.get(f"{server.http}/api/inboxes/{address}/messages", headers=auth).json()
    message_id = listed["messages"][0]["id"]
    gone = httpx.delete(f"{server.http}/api/inboxes/{address}/messages/{message_id}", headers=auth)
    assert gone.status_code == 204
    send(server, address, mail(address, "Burned with its inbox"))
    receiver.wait_for(heard + 3)
    assert httpx.delete(f"{server.http}/api/inboxes/{address}", headers=auth).status_code == 204


def test_the_node_wide_webhook_hears_every_inbox(
    start_burnbox: Callable[..., Running], receiver: Receiver
) -> None:
    """Every event type, for inboxes it never registered with, from three starts of the
    RAM-only store: each verified, and no webhook-id ever twice."""
    secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    heard: list[tuple[str, str]] = []
    for start in range(3):
        server = start_burnbox(
            webhook_allow=LOOPBACK, webhook_url=receiver.url, webhook_secret=secret
        )
        address, auth = inbox(server, f"kept{start}")
        _received_deleted_received_burned(server, receiver, address, auth, len(heard))
        expiring, _ = inbox(server, f"expiring{start}")
        server.clock.advance(days=2)  # past its lifetime: the dispatcher tells its end
        for request in receiver.wait_for(len(heard) + 5)[len(heard) :]:
            told = event(request, secret)
            assert "text" not in told["data"]
            heard.append((told["type"], told["data"]["inbox"]))
            assert request[0]["webhook-id"] not in {
                r[0]["webhook-id"] for r in receiver.requests[: len(heard) - 1]
            }
        server.stop()
        assert sorted(heard[-5:]) == sorted(
            [
                ("message.received", address),
                ("message.deleted", address),
                ("message.received", address),
                ("inbox.burned", address),  # not the burned mail's deletes: as its own hook
                ("inbox.expired", expiring),
            ]
        )
    ids = [request[0]["webhook-id"] for request in receiver.requests]
    assert len(ids) == 15
    assert len(set(ids)) == 15


def test_deliveries_survive_a_restart_on_sqlite(
    start_burnbox: Callable[..., Running], tmp_path: Path
) -> None:
    store = f"sqlite://{tmp_path / 'mail.db'}"
    down = Receiver()
    port = down.port
    down.close()  # the receiver is down while the mail comes
    first = start_burnbox(webhook_allow=LOOPBACK, store=store)
    address, auth = inbox(first, "durable")
    url = f"http://127.0.0.1:{port}/hook"
    register(first, address, auth, url=url, events=["message.received"])
    send(first, address, mail(address))
    wait_status(first, address, auth, lambda hook: hook["last_status"].startswith("error"))
    first.stop()
    back = Receiver(port=port)
    try:
        second = start_burnbox(webhook_allow=LOOPBACK, store=store)
        second.clock.advance(hours=1)
        (delivered,) = back.wait_for(1)
        assert json.loads(delivered[1])["data"]["inbox"] == address
    finally:
        back.close()


def test_each_event_is_delivered_once_across_nodes(
    start_burnbox: Callable[..., Running], receiver: Receiver, postgres_url: str
) -> None:
    asyncio.run(reset(postgres_url))
    nodes = [start_burnbox(webhook_allow=LOOPBACK, store=postgres_url) for _ in range(2)]
    address, auth = inbox(nodes[0], "shared")
    register(nodes[0], address, auth, url=receiver.url, events=["message.received"])
    for number in range(10):
        send(nodes[number % 2], address, mail(address, f"m{number}"))
    arrived = receiver.wait_for(10)
    ids = [headers["webhook-id"] for headers, _, _ in arrived]
    assert len(set(ids)) == 10
    assert len(ids) == 10  # nothing twice, though both nodes dispatch


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8025/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/",
        "http://192.168.1.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://100.64.0.1/",
        "http://[fe80::1]/",
        "ftp://example.org/",
        "file:///etc/passwd",
        "http://user:pass@example.org/",
        "javascript:alert(1)",
    ],
)
def test_a_refused_destination_fails_registration_at_once(server: Running, url: str) -> None:
    address, auth = inbox(server, "ssrf")
    refused = register(server, address, auth, url=url)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "destination_refused"


def test_the_allow_list_admits_exactly_its_networks() -> None:
    async def check() -> None:
        allowed = await resolve("http://127.0.0.1:9/x", parse_allow(["127.0.0.1/32"]))
        assert allowed.addresses == ("127.0.0.1",)
        with pytest.raises(RefusedDestination):
            await resolve("http://127.0.0.2:9/x", parse_allow(["127.0.0.1/32"]))

    asyncio.run(check())


def test_registrations_are_bounded_removable_and_private_to_the_inbox(
    start_burnbox: Callable[..., Running], receiver: Receiver
) -> None:
    server = start_burnbox(webhook_allow=LOOPBACK)
    address, auth = inbox(server, "owner")
    _, stranger = inbox(server, "stranger")
    made = [register(server, address, auth, url=receiver.url) for _ in range(6)]
    assert [answer.status_code for answer in made] == [201] * 5 + [409]
    assert made[5].json()["error"]["code"] == "too_many_webhooks"
    hooks = f"{server.http}/api/inboxes/{address}/webhooks"
    assert httpx.get(hooks, headers=stranger).status_code == 404  # another inbox's token
    first = made[0].json()["id"]
    assert httpx.delete(f"{hooks}/{first}", headers=stranger).status_code == 404
    assert httpx.delete(f"{hooks}/{first}", headers=auth).status_code == 204
    assert httpx.delete(f"{hooks}/{first}", headers=auth).status_code == 404
    assert len(httpx.get(hooks, headers=auth).json()) == 4
    unresolvable = register(server, address, auth, url="https://hooks.invalid/x")
    assert unresolvable.json()["error"]["code"] == "destination_refused"
    assert register(server, address, auth, url=receiver.url, bogus=1).status_code == 422


def wait_status(
    server: Running, address: str, auth: dict[str, str], done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The hook's state once `done` holds, read after each attempt the dispatcher settles
    (woken by it, never by a timer of ours)."""

    async def until() -> dict[str, Any]:
        opened = await server.app.inboxes.open(address, auth["Authorization"][7:])
        async with asyncio.timeout(WAIT):
            while True:
                seen = server.app.dispatcher.attempts
                hook = (await server.app.webhooks.of(opened))[0]
                state = {
                    "last_status": hook.last_status,
                    "pending": hook.pending,
                    "delivered": hook.delivered,
                    "failed": hook.failed,
                }
                if done(state):
                    return state
                await server.app.dispatcher.wait_attempts(seen + 1)

    return server.call(until(), timeout=WAIT + 5)
