"""Contract tests of the mail.tm listener: every endpoint, status code and field, in
JSON-LD and in plain JSON, against the shapes documented at docs.mail.tm."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from burnbox.settings_values import Endpoint
from tests.helpers import Running, send

LD = {"accept": "application/ld+json"}
PLAIN = {"accept": "application/json"}
DOMAIN_FIELDS = {"id", "domain", "isActive", "isPrivate", "createdAt", "updatedAt"}
ACCOUNT_FIELDS = {
    "id", "address", "quota", "used", "isDisabled", "isDeleted", "createdAt", "updatedAt",
}  # fmt: skip
ITEM_FIELDS = {
    "id", "accountId", "msgid", "from", "to", "subject", "intro", "seen", "isDeleted",
    "hasAttachments", "size", "downloadUrl", "sourceUrl", "createdAt", "updatedAt",
}  # fmt: skip
FULL_FIELDS = ITEM_FIELDS | {
    "cc", "bcc", "flagged", "verifications", "retention", "retentionDate", "text", "html",
    "attachments",
}  # fmt: skip
ATTACHMENT_FIELDS = {
    "id", "filename", "contentType", "disposition", "transferEncoding", "related", "size",
    "downloadUrl",
}  # fmt: skip
LD_KEYS = {"@context", "@id", "@type"}


class MailTm:
    """A thin client of our own for the contract: raw httpx, every status visible."""

    def __init__(self, running: Running) -> None:
        assert running.app.mailtm_endpoint is not None
        self.running = running
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{running.app.mailtm_endpoint.port}")

    def account(self, address: str, password: str = "secret-1") -> tuple[str, str]:
        """Make an account and sign in: (account id, token)."""
        made = self.http.post("/accounts", json={"address": address, "password": password})
        assert made.status_code == 201, made.text
        signed = self.http.post("/token", json={"address": address, "password": password})
        assert signed.status_code == 200, signed.text
        return signed.json()["id"], signed.json()["token"]

    def mail(self, to: str, subject: str = "Your code", attachment: bytes | None = None) -> None:
        count = self.running.call(self.running.app.store.usage(to))[0]
        message = EmailMessage()
        message["From"] = "Shop <noreply@shop.example>"
        message["To"] = to
        message["Cc"] = "Other <other@example.test>"
        message["Subject"] = subject
        message.set_content("Your code is 482913. Confirm: https://shop.example/verify?t=abc")
        message.add_alternative("<p>Your code is <b>482913</b></p><script>x()</script>", "html")
        if attachment is not None:
            message.add_attachment(attachment, "application", "pdf", filename="invoice.pdf")
        send(self.running, to, message)
        self.running.wait_for_mail({to: count + 1})


@pytest.fixture
def mailtm(start_burnbox: Callable[..., Running]) -> Iterator[MailTm]:
    client = MailTm(
        start_burnbox(
            mailtm_listen=Endpoint("127.0.0.1", 0),
            mailtm_rate="1000/s",
            mailtm_account_rate="1000/s",
        )
    )
    yield client
    client.http.close()


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", **headers}


def fields(document: dict[str, Any]) -> set[str]:
    return set(document) - LD_KEYS


# -- domains --------------------------------------------------------------------------


def test_domains_in_both_formats_list_only_concrete_domains(mailtm: MailTm) -> None:
    ld = mailtm.http.get(
        "/domains", headers={"authorization": "Bearer"}
    )  # Mailjs sends an empty one
    assert ld.status_code == 200
    assert ld.headers["content-type"].startswith("application/ld+json")
    body = ld.json()
    assert body["@type"] == "hydra:Collection"
    assert body["hydra:totalItems"] == 2
    members = body["hydra:member"]
    assert [item["domain"] for item in members] == ["localhost", "example.test"]  # no *.wild
    assert all(fields(item) == DOMAIN_FIELDS and item["@type"] == "Domain" for item in members)
    plain = mailtm.http.get("/domains", headers=PLAIN)
    assert plain.headers["content-type"].startswith("application/json")
    assert plain.json() == [{key: item[key] for key in DOMAIN_FIELDS} for item in members]
    one = mailtm.http.get(f"/domains/{members[1]['id']}")
    assert one.status_code == 200
    assert one.json()["@id"] == f"/domains/{members[1]['id']}"
    assert fields(one.json()) == DOMAIN_FIELDS


def test_an_unknown_domain_is_404_in_each_error_shape(mailtm: MailTm) -> None:
    ld = mailtm.http.get("/domains/0123456789abcdef01234567")
    assert ld.status_code == 404
    assert ld.json()["@type"] == "hydra:Error"
    assert ld.json()["detail"] == "Not Found"
    assert ld.json()["error"]["code"] == "not_found"
    plain = mailtm.http.get("/domains/0123456789abcdef01234567", headers=PLAIN)
    assert plain.headers["content-type"].startswith("application/json")
    assert plain.json()["status"] == 404
    assert plain.json()["detail"] == "Not Found"


# -- accounts and tokens ----------------------------------------------------------------


def test_an_account_is_made_signed_in_and_read(mailtm: MailTm) -> None:
    made = mailtm.http.post("/accounts", json={"address": "Bob@LocalHost", "password": "pw-123"})
    assert made.status_code == 201
    account = made.json()
    assert fields(account) == ACCOUNT_FIELDS
    assert account["@type"] == "Account"
    assert account["address"] == "bob@localhost"
    assert account["used"] == 0
    assert account["isDeleted"] is False
    assert len(account["id"]) == 24
    first = mailtm.http.post("/token", json={"address": "bob@localhost", "password": "pw-123"})
    second = mailtm.http.post("/token", json={"address": "bob@localhost", "password": "pw-123"})
    assert first.json()["id"] == account["id"]
    for token in (first.json()["token"], second.json()["token"]):  # several live at once
        me = mailtm.http.get("/me", headers=bearer(token, **PLAIN))
        assert me.status_code == 200
        assert me.json()["address"] == "bob@localhost"
        assert set(me.json()) == ACCOUNT_FIELDS
        by_id = mailtm.http.get(f"/accounts/{account['id']}", headers=bearer(token))
        assert by_id.json()["@id"] == f"/accounts/{account['id']}"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"address": "taken@localhost", "password": "secret-2"}, "address"),
        ({"address": "not an address", "password": "secret-2"}, "address"),
        ({"address": "bob@elsewhere.example", "password": "secret-2"}, "address"),
        ({"address": "new@localhost", "password": "short"}, "password"),
        ({"address": "new@localhost", "password": "é" * 600}, "password"),  # 1200 bytes
        ({"address": "new@localhost"}, "password"),
    ],
)
def test_a_refused_account_is_422_with_violations(
    mailtm: MailTm, body: dict[str, str], path: str
) -> None:
    mailtm.account("taken@localhost")
    for headers, kind in ((LD, "ConstraintViolationList"), (PLAIN, None)):
        refused = mailtm.http.post("/accounts", json=body, headers=headers)
        assert refused.status_code == 422
        assert refused.json()["violations"][0]["propertyPath"] == path
        assert refused.json()["error"]["code"] == "invalid_request"
        assert refused.json().get("@type") == kind


def test_a_body_that_is_not_json_is_400(mailtm: MailTm) -> None:
    bad = mailtm.http.post("/accounts", content=b"{", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "bad_request"


def test_wrong_credentials_and_bad_tokens_are_401(mailtm: MailTm) -> None:
    mailtm.account("bob@localhost")
    for address, password in (("bob@localhost", "wrong-pw"), ("nobody@localhost", "secret-1")):
        refused = mailtm.http.post("/token", json={"address": address, "password": password})
        assert refused.status_code == 401
        assert refused.json()["message"] == "Invalid credentials."
        assert refused.json()["code"] == 401
    missing = mailtm.http.get("/me")
    assert (missing.status_code, missing.json()["message"]) == (401, "JWT Token not found")
    assert missing.json()["error"]["code"] == "unauthorized"
    for token in (
        "x.y.z",
        "garbage",
        "eyJhbGciOiJub25lIn0.eyJ1c2VybmFtZSI6ImJvYkBsb2NhbGhvc3QifQ.",
    ):
        assert mailtm.http.get("/me", headers=bearer(token)).status_code == 401


def test_a_token_works_only_for_its_own_account(mailtm: MailTm) -> None:
    _, alice = mailtm.account("alice@localhost")
    bob_id, bob = mailtm.account("bob@localhost")
    assert mailtm.http.get(f"/accounts/{bob_id}", headers=bearer(alice)).status_code == 403
    assert mailtm.http.delete(f"/accounts/{bob_id}", headers=bearer(alice)).status_code == 403
    mailtm.mail("bob@localhost")
    bobs = mailtm.http.get("/messages", headers=bearer(bob, **PLAIN)).json()[0]["id"]
    for method in ("GET", "PATCH", "DELETE"):
        answer = mailtm.http.request(
            method, f"/messages/{bobs}", headers=bearer(alice), json={"seen": True}
        )
        assert answer.status_code == 404
    assert mailtm.http.get(f"/sources/{bobs}", headers=bearer(alice)).status_code == 404
    assert mailtm.http.get(f"/messages/{bobs}/download", headers=bearer(alice)).status_code == 404


def test_deleting_an_account_burns_it_and_its_tokens(mailtm: MailTm) -> None:
    account_id, token = mailtm.account("bob@localhost")
    mailtm.mail("bob@localhost")
    gone = mailtm.http.delete(f"/accounts/{account_id}", headers=bearer(token))
    assert gone.status_code == 204
    assert mailtm.http.get("/me", headers=bearer(token)).status_code == 401
    assert mailtm.running.call(mailtm.running.app.store.usage("bob@localhost"))[0] == 0
    again = mailtm.http.post("/token", json={"address": "bob@localhost", "password": "secret-1"})
    assert again.status_code == 401
    # The address is free again, and its new owner's tokens are not the old owner's.
    new_id, new_token = mailtm.account("bob@localhost", "other-pw")
    assert new_id != account_id
    assert mailtm.http.get("/messages", headers=bearer(new_token, **PLAIN)).json() == []


def test_an_expired_account_is_gone_for_its_token_and_password(mailtm: MailTm) -> None:
    _, token = mailtm.account("bob@localhost")
    mailtm.running.clock.advance(seconds=mailtm.running.app.settings.inbox_ttl + 1)
    assert mailtm.http.get("/me", headers=bearer(token)).status_code == 401
    signed = mailtm.http.post("/token", json={"address": "bob@localhost", "password": "secret-1"})
    assert signed.status_code == 401


def test_account_creation_has_its_rate_limit(start_burnbox: Callable[..., Running]) -> None:
    client = MailTm(start_burnbox(mailtm_listen=Endpoint("127.0.0.1", 0), inbox_create_rate="2/m"))
    with client.http:
        for number in range(2):
            client.account(f"user{number}@localhost")
        body = {"address": "u9@localhost", "password": "pw-123"}
        refused = client.http.post("/accounts", json=body)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1


def test_requests_beyond_the_rate_are_429(start_burnbox: Callable[..., Running]) -> None:
    client = MailTm(start_burnbox(mailtm_listen=Endpoint("127.0.0.1", 0)))  # 8/s
    with client.http:
        answers = [client.http.get("/domains").status_code for _ in range(9)]
        client.running.clock.advance(seconds=1)
        after_a_second = client.http.get("/domains").status_code
    assert answers == [200] * 8 + [429]
    assert after_a_second == 200


def test_an_account_has_its_own_rate_whatever_its_addresses(
    start_burnbox: Callable[..., Running],
) -> None:
    """One account used from many client addresses is still held to its own rate."""
    running = start_burnbox(
        mailtm_listen=Endpoint("127.0.0.1", 0), mailtm_rate="1000/s", mailtm_account_rate="5/s"
    )
    first = MailTm(running)
    _, token = first.account("bob@localhost")
    other = httpx.Client(
        base_url=str(first.http.base_url),
        transport=httpx.HTTPTransport(local_address="127.0.0.2"),
    )
    try:
        answers = [
            client.get("/me", headers=bearer(token)).status_code
            for client in (first.http, other) * 3
        ]
        assert answers == [200] * 5 + [429]
        assert other.get("/domains").status_code == 200  # the address itself is not limited
        running.clock.advance(seconds=1)
        assert other.get("/me", headers=bearer(token)).status_code == 200
    finally:
        first.http.close()
        other.close()


# -- messages ---------------------------------------------------------------------------


def test_messages_are_listed_30_a_page_newest_first(mailtm: MailTm) -> None:
    _, token = mailtm.account("bob@localhost")
    for number in range(31):
        mailtm.mail("bob@localhost", subject=f"n{number}")
    first = mailtm.http.get("/messages", headers=bearer(token)).json()
    assert first["hydra:totalItems"] == 31
    assert len(first["hydra:member"]) == 30
    assert first["hydra:member"][0]["subject"] == "n30"
    view = {"@type": "hydra:PartialCollectionView", "hydra:first": "/messages?page=1"}
    view["hydra:last"] = "/messages?page=2"
    assert first["hydra:view"] == {
        **view,
        "@id": "/messages?page=1",
        "hydra:next": "/messages?page=2",
    }  # API Platform's view, as mail.tm sends it
    assert all(fields(item) == ITEM_FIELDS for item in first["hydra:member"])
    second = mailtm.http.get("/messages?page=2", headers=bearer(token)).json()
    assert [item["subject"] for item in second["hydra:member"]] == ["n0"]
    assert second["hydra:view"] == {
        **view,
        "@id": "/messages?page=2",
        "hydra:previous": "/messages?page=1",
    }
    beyond = mailtm.http.get("/messages?page=5", headers=bearer(token)).json()
    assert beyond["hydra:member"] == []
    assert beyond["hydra:view"] == {
        **view,
        "@id": "/messages?page=5",
        "hydra:previous": "/messages?page=4",
    }
    plain = mailtm.http.get("/messages?page=2", headers=bearer(token, **PLAIN)).json()
    assert [item["subject"] for item in plain] == ["n0"]
    assert mailtm.http.get("/messages?page=0", headers=bearer(token)).status_code == 422


def test_a_collection_of_one_page_has_no_view(mailtm: MailTm) -> None:
    """mail.tm (API Platform) leaves hydra:view out when everything fits one page."""
    _, token = mailtm.account("bob@localhost")
    mailtm.mail("bob@localhost")
    for path in ("/messages", "/messages?page=1", "/domains"):
        collection = mailtm.http.get(path, headers=bearer(token)).json()
        assert set(collection) == {
            "@context",
            "@id",
            "@type",
            "hydra:member",
            "hydra:totalItems",
        }, path


def test_patch_with_no_body_marks_a_message_seen(mailtm: MailTm) -> None:
    """What mail.tm clients send (pymailtm, mailtm wrappers): a bare PATCH."""
    _, token = mailtm.account("bob@localhost")
    mailtm.mail("bob@localhost")
    (item,) = mailtm.http.get("/messages", headers=bearer(token, **PLAIN)).json()
    assert item["seen"] is False
    path = f"/messages/{item['id']}"
    for headers in ({}, {"content-type": "application/merge-patch+json"}):
        answer = mailtm.http.patch(path, headers=bearer(token, **headers))
        assert answer.status_code == 200, answer.text
        assert answer.json()["seen"] is True
    unseen = mailtm.http.patch(
        path,
        content=b'{"seen": false}',
        headers=bearer(token, **{"content-type": "application/merge-patch+json"}),
    )
    assert unseen.json()["seen"] is False
    again = mailtm.http.patch(
        path, content=b"{}", headers=bearer(token, **{"content-type": "application/json"})
    )
    assert again.json()["seen"] is True


def check_the_attachment(
    mailtm: MailTm, token: str, message_id: str, attachments: list[dict[str, Any]]
) -> None:
    """The one attachment: its fields, its download, and 404 for one it does not have."""
    (attachment,) = attachments
    assert set(attachment) == ATTACHMENT_FIELDS
    assert (attachment["filename"], attachment["transferEncoding"]) == ("invoice.pdf", "base64")
    download = mailtm.http.get(attachment["downloadUrl"], headers=bearer(token))
    assert download.content == b"%PDF-1.4 x"
    assert download.headers["content-type"] == "application/pdf"
    missing = f"/messages/{message_id}/attachment/ATTACH000099"
    assert mailtm.http.get(missing, headers=bearer(token)).status_code == 404


def test_one_message_in_full_then_seen_then_deleted(mailtm: MailTm) -> None:
    account_id, token = mailtm.account("bob@localhost")
    mailtm.mail("bob@localhost", attachment=b"%PDF-1.4 x")
    item = mailtm.http.get("/messages", headers=bearer(token, **PLAIN)).json()[0]
    assert item["from"] == {"name": "Shop", "address": "noreply@shop.example"}
    assert item["to"] == [{"name": "", "address": "bob@localhost"}]
    assert item["accountId"] == f"/accounts/{account_id}"
    assert item["hasAttachments"] is True
    full = mailtm.http.get(f"/messages/{item['id']}", headers=bearer(token)).json()
    assert fields(full) == FULL_FIELDS
    assert full["@type"] == "Message"
    assert "482913" in full["text"]
    assert full["cc"] == ["other@example.test"]
    assert "https://shop.example/verify?t=abc" in full["verifications"]
    assert len(full["html"]) == 1
    assert "<b>482913</b>" in full["html"][0]
    assert "script" not in full["html"][0]  # burnbox's sanitised HTML, never the raw part
    check_the_attachment(mailtm, token, item["id"], full["attachments"])

    seen = mailtm.http.patch(
        f"/messages/{item['id']}",
        content=json.dumps({"seen": True}),
        headers=bearer(token, **{"content-type": "application/merge-patch+json"}),
    )
    assert seen.status_code == 200
    assert seen.json()["seen"] is True
    source = mailtm.http.get(f"/sources/{item['id']}", headers=bearer(token)).json()
    assert source["@type"] == "Source"
    assert source["downloadUrl"] == item["downloadUrl"]
    raw = mailtm.http.get(item["downloadUrl"], headers=bearer(token))
    assert raw.headers["content-type"] == "message/rfc822"
    assert raw.content == mailtm.running.stored("bob@localhost")[0]
    assert source["data"] == raw.content.decode()
    assert mailtm.http.delete(f"/messages/{item['id']}", headers=bearer(token)).status_code == 204
    assert mailtm.http.get(f"/messages/{item['id']}", headers=bearer(token)).status_code == 404


def test_the_same_mail_is_in_burnbox_own_api_with_the_account_token(mailtm: MailTm) -> None:
    _, token = mailtm.account("bob@localhost")
    mailtm.mail("bob@localhost")
    own = httpx.get(
        mailtm.running.http + "/api/inboxes/bob@localhost/messages", headers=bearer(token)
    )
    assert own.status_code == 200
    assert [item["subject"] for item in own.json()["messages"]] == ["Your code"]


def test_responses_carry_the_security_headers_and_open_cors(mailtm: MailTm) -> None:
    answer = mailtm.http.get("/domains", headers={"origin": "https://app.example"})
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["access-control-allow-origin"] == "*"
    too_big = mailtm.http.post("/accounts", content=b"x" * 20_000)
    assert too_big.status_code == 413


# -- Mercure -------------------------------------------------------------------------------


def events(lines: Iterator[str], count: int) -> list[tuple[str | None, dict[str, Any]]]:
    """The next `count` events with data: (id, parsed data)."""
    found: list[tuple[str | None, dict[str, Any]]] = []
    event_id: str | None = None
    for line in lines:
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            found.append((event_id, json.loads(line[6:])))
            event_id = None
            if len(found) == count:
                break
    return found


def test_the_mercure_hub_pushes_messages_and_account_updates(mailtm: MailTm) -> None:
    account_id, token = mailtm.account("bob@localhost")
    mailtm.mail("bob@localhost", subject="before")
    first = mailtm.http.get("/messages", headers=bearer(token, **PLAIN)).json()[0]["id"]
    mailtm.mail("bob@localhost", subject="missed")
    url = f"/.well-known/mercure?topic=/accounts/{account_id}"
    headers = bearer(token, **{"last-event-id": first})
    with mailtm.http.stream("GET", url, headers=headers, timeout=15) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        # Catch-up after Last-Event-ID; each message is followed by the account's update.
        (event_id, missed), (_, update) = events(lines, 2)
        assert update["@type"] == "Account"
        assert missed["subject"] == "missed"
        assert missed["@type"] == "Message"
        assert event_id == missed["id"]
        mailtm.mail("bob@localhost", subject="live")
        (_, live), (no_id, account) = events(lines, 2)
        assert live["subject"] == "live"
        assert fields(live) == ITEM_FIELDS
        assert account["@type"] == "Account"
        assert no_id is None
        assert account["used"] > 0


def test_the_mercure_hub_serves_only_the_tokens_own_topic(mailtm: MailTm) -> None:
    _, token = mailtm.account("bob@localhost")
    other_id, _ = mailtm.account("alice@localhost")
    wrong = mailtm.http.get(
        f"/.well-known/mercure?topic=/accounts/{other_id}", headers=bearer(token)
    )
    assert wrong.status_code == 403
    assert mailtm.http.get("/.well-known/mercure?topic=/accounts/x").status_code == 401
