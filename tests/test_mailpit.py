"""Sink mode speaks Mailpit's API v1 (web/mailpit): shapes checked against Mailpit's own
swagger.json in ../shared, over a running burnbox and real SMTP."""

from __future__ import annotations

import hashlib
import json
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import Running
from tests.tools import shared

SPEC = Path(__file__).resolve().parent.parent.parent / "shared" / "conformance" / "mailpit"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100ffff03000006000557bfabd40000000049454e44ae426082"
)
HTML = '<html><body><p>Hello <a href="https://example.test/x">there</a></p></body></html>'


def spec_keys(name: str) -> set[str]:
    document = json.loads(shared(SPEC / "swagger.json", "Mailpit's swagger.json").read_text())
    return set(document["definitions"][name]["properties"])


@pytest.fixture
def sink(start_burnbox: Callable[..., Running]) -> Running:
    return start_burnbox(sink=True, access="public")


def newsletter(subject: str = "Your code") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "App <app@qa.example>"
    message["To"] = "Dev <dev@qa.invalid>, ops@qa.test"
    message["Cc"] = "cc@qa.example"
    message["Reply-To"] = "Support <help@qa.example>"
    message["Subject"] = subject
    message["Message-ID"] = "<code-1@qa.example>"
    message["List-Unsubscribe"] = "<https://qa.example/unsub>, <mailto:unsub@qa.example>"
    message.set_content("Your code is 482913.")
    message.add_alternative(HTML, subtype="html")
    html = message.get_body(("html",))
    assert isinstance(html, EmailMessage)
    html.add_related(PNG, maintype="image", subtype="png", cid="<inline-image>")
    message.add_attachment(PNG, maintype="image", subtype="png", filename="pixel.png")
    return message


def send(running: Running, message: EmailMessage, recipients: list[str]) -> None:
    before = running.call(running.app.store.usage(recipients[0]))[0]
    with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10) as client:
        client.send_message(message, "bounce@qa.example", recipients)
    running.wait_for_mail({recipients[0]: before + 1})


def listed(running: Running, **params: Any) -> dict[str, Any]:
    answer = httpx.get(running.http + "/api/v1/messages", params=params)
    assert answer.status_code == 200
    result: dict[str, Any] = answer.json()
    return result


def test_list_and_message_have_exactly_mailpits_fields(sink: Running) -> None:
    send(sink, newsletter(), ["dev@qa.invalid", "ops@qa.test"])
    page = listed(sink)
    assert set(page) == spec_keys("MessagesSummary") | {"count"}
    assert (page["total"], page["unread"], page["count"], page["start"]) == (1, 1, 1, 0)
    [item] = page["messages"]
    assert set(item) == spec_keys("MessageSummary")
    assert item["From"] == {"Name": "App", "Address": "app@qa.example"}
    assert [to["Address"] for to in item["To"]] == ["dev@qa.invalid", "ops@qa.test"]
    assert (item["Subject"], item["MessageID"], item["Read"]) == (
        "Your code",
        "code-1@qa.example",
        False,
    )
    assert item["Attachments"] == 1
    assert item["Snippet"] == "Your code is 482913."

    whole = httpx.get(sink.http + f"/api/v1/message/{item['ID']}").json()
    assert set(whole) == spec_keys("Message")
    assert whole["ReplyTo"] == [{"Name": "Support", "Address": "help@qa.example"}]
    assert whole["Cc"] == [{"Name": "", "Address": "cc@qa.example"}]
    assert whole["ListUnsubscribe"]["Links"] == [
        "https://qa.example/unsub",
        "mailto:unsub@qa.example",
    ]
    assert set(whole["ListUnsubscribe"]) == spec_keys("ListUnsubscribe")
    assert whole["Text"].strip() == "Your code is 482913."
    assert whole["HTML"].strip() == HTML
    [attached] = whole["Attachments"]
    [inline] = whole["Inline"]
    assert set(attached) == spec_keys("Attachment")
    assert (attached["FileName"], attached["ContentType"], attached["Size"]) == (
        "pixel.png",
        "image/png",
        len(PNG),
    )
    assert attached["Checksums"]["SHA256"] == hashlib.sha256(PNG).hexdigest()
    assert inline["ContentID"] == "inline-image"
    part = httpx.get(sink.http + f"/api/v1/message/{item['ID']}/part/{attached['PartID']}")
    assert part.content == PNG
    assert listed(sink)["unread"] == 0  # reading it marked it read


def test_headers_raw_and_the_view_pages(sink: Running) -> None:
    send(sink, newsletter(), ["dev@qa.invalid"])
    base = sink.http + "/api/v1/message/latest"
    headers = httpx.get(base + "/headers").json()
    assert headers["Message-Id"] == ["<code-1@qa.example>"]  # Go's spelling
    assert headers["Subject"] == ["Your code"]
    raw = httpx.get(base + "/raw")
    assert raw.headers["content-type"].startswith("text/plain")
    assert b"Subject: Your code" in raw.content
    page = httpx.get(sink.http + "/view/latest.html")
    assert HTML in page.text
    policy = page.headers["content-security-policy"]
    assert "sandbox" in policy
    assert "default-src 'none'" in policy
    embedded = httpx.get(sink.http + "/view/latest.html", params={"embed": "1"}).text
    assert 'target="_blank" rel="noreferrer noopener"' in embedded
    assert "Your code is 482913." in httpx.get(sink.http + "/view/latest.txt").text


def test_read_flags_by_ids_and_for_all(sink: Running) -> None:
    for subject in ("one", "two"):
        send(sink, newsletter(subject), ["dev@qa.invalid"])
    ids = [item["ID"] for item in listed(sink)["messages"]]
    put = httpx.put(sink.http + "/api/v1/messages", json={"ids": ids[:1], "READ": True})
    assert (put.status_code, put.text) == (200, "ok")  # keys match ignoring case, as Go's
    assert [item["Read"] for item in listed(sink)["messages"]] == [True, False]
    assert httpx.put(sink.http + "/api/v1/messages", json={"Read": True}).text == "ok"
    assert listed(sink)["unread"] == 0
    assert httpx.put(sink.http + "/api/v1/messages", json={"IDs": [], "Read": False}).text == "ok"
    assert listed(sink)["unread"] == 2


def test_paging_as_mailpit(sink: Running) -> None:
    for number in range(3):
        send(sink, newsletter(f"n{number}"), ["dev@qa.invalid"])
    page = listed(sink, start="1", limit="1")
    assert [item["Subject"] for item in page["messages"]] == ["n1"]  # newest first
    assert (page["count"], page["start"], page["total"]) == (1, 1, 3)
    assert listed(sink, limit="0")["count"] == 3  # 0: the whole mailbox
    assert listed(sink, limit="x", start="-4")["start"] == 0
    assert listed(sink, start="9")["start"] == 9  # echoed past the end


def test_unknown_ids_and_deletes(sink: Running) -> None:
    missing = httpx.get(sink.http + "/api/v1/message/NOSUCHID")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/plain")
    for subject in ("one", "two", "three"):
        send(sink, newsletter(subject), ["dev@qa.invalid"])
    first = listed(sink)["messages"][0]["ID"]
    gone = httpx.request("DELETE", sink.http + "/api/v1/messages", json={"IDs": [first]})
    assert (gone.status_code, gone.text) == (200, "ok")
    assert listed(sink)["total"] == 2
    foreign = httpx.delete(sink.http + "/api/v1/messages", headers={"origin": "https://evil.test"})
    assert foreign.status_code == 403
    assert httpx.delete(sink.http + "/api/v1/messages").text == "ok"  # no body: everything
    assert listed(sink)["total"] == 0
    assert httpx.get(sink.http + "/view/latest.html").status_code == 404


def test_mailhog_owns_the_clashing_paths_when_asked(start_burnbox: Callable[..., Running]) -> None:
    running = start_burnbox(sink=True, access="public", sink_api="mailhog")
    send(running, newsletter(), ["dev@qa.invalid"])
    [item] = httpx.get(running.http + "/api/v1/messages").json()  # MailHog's array
    assert set(item) >= {"ID", "From", "To", "Content", "Created", "MIME", "Raw"}
    whole = httpx.get(running.http + f"/api/v1/message/{item['ID']}").json()
    assert set(whole) == spec_keys("Message")  # Mailpit's other paths are served either way
