"""Sink mode speaks Mailpit's API v1 (web/mailpit): shapes checked against Mailpit's own
swagger.json in ../shared, over a running burnbox and real SMTP."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import os
import shutil
import smtplib
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import bcrypt
import httpx
import pytest
from PIL import Image
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect
from websockets.typing import Origin

from burnbox.parts import sink_users
from burnbox.settings import SettingsError
from burnbox.settings_values import Endpoint
from burnbox.web.mailpit import search
from tests.helpers import Running, real_now, test_settings
from tests.spamd import spamd
from tests.tools import require, shared

__all__ = ["spamd"]  # a fixture
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
    wanted = ("Your code", "code-1@qa.example", False)
    assert (item["Subject"], item["MessageID"], item["Read"]) == wanted
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
    about = (attached["FileName"], attached["ContentType"], attached["Size"])
    assert about == ("pixel.png", "image/png", len(PNG))
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


# -- search ---------------------------------------------------------------------------------


def plain(subject: str, sender: str, to: str, body: str = "hello", **extra: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    for name, value in extra.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def found(running: Running, query: str, **params: str) -> list[str]:
    answer = httpx.get(running.http + "/api/v1/search", params={"query": query, **params})
    assert answer.status_code == 200, answer.text
    return [item["Subject"] for item in answer.json()["messages"]]


@pytest.fixture
def searchable_sink(sink: Running) -> Running:
    send(
        sink,
        plain("Welcome aboard", "Shop <shop@store.example>", "ann@qa.test", "welcome text body"),
        ["ann@qa.test"],
    )
    send(
        sink,
        plain(
            "Two words here",
            "News <news@paper.example>",
            "bob@qa.test",
            "news text body",
            cc="Carol <carol@qa.test>",
        ),
        ["bob@qa.test"],
    )
    send(sink, newsletter("Your code"), ["dev@qa.invalid"])  # with attachment and inline part
    return sink


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("to:ann", ["Welcome aboard"]),
        ("from:paper.example", ["Two words here"]),
        ("cc:carol", ["Two words here"]),
        ("addressed:carol", ["Two words here"]),
        ("reply-to:help@qa.example", ["Your code"]),
        ('subject:"two words"', ["Two words here"]),
        ("SUBJECT:welcome", ["Welcome aboard"]),  # prefixes ignore case
        ("message-id:code-1@qa.example", ["Your code"]),
        ("-subject:welcome", ["Your code", "Two words here"]),
        ("!subject:welcome to:bob", ["Two words here"]),
        ("has:attachment", ["Your code"]),
        ("has:inline", ["Your code"]),
        ("-has:attachments", ["Two words here", "Welcome aboard"]),
        ('"hello there"', ["Your code"]),  # the HTML part reduced to text
        ("news text", ["Two words here"]),  # the text part, when there is no HTML
        ("pixel.png", ["Your code"]),  # attachment names
        ('"words here"', ["Two words here"]),
        ("wel_ome", ["Welcome aboard"]),  # LIKE's `_`, unescaped as Mailpit's
        ("tag:anything", []),
        ("is:tagged", []),
        ("larger:1k", ["Your code"]),
        ("smaller:1k", ["Two words here", "Welcome aboard"]),
        ("after:2000-01-01", ["Your code", "Two words here", "Welcome aboard"]),
        ("before:2000-01-01", []),
        ("before:not-a-date", ["Your code", "Two words here", "Welcome aboard"]),  # ignored
        ("foo:bar", []),  # an unknown prefix is free text
    ],
)
def test_search_syntax(searchable_sink: Running, query: str, expected: list[str]) -> None:
    assert found(searchable_sink, query) == expected


def test_search_counts_read_flags_and_paging(searchable_sink: Running) -> None:
    sink = searchable_sink
    answer = httpx.get(sink.http + "/api/v1/search", params={"query": "-has:inline", "limit": "1"})
    body = answer.json()
    assert set(body) == spec_keys("MessagesSummary") | {"count"}
    assert (body["total"], body["messages_count"], body["count"]) == (3, 2, 1)
    assert found(sink, "is:unread") == ["Your code", "Two words here", "Welcome aboard"]
    marked = httpx.put(sink.http + "/api/v1/messages", json={"Search": "to:ann", "Read": True})
    assert marked.text == "ok"
    assert found(sink, "is:read") == ["Welcome aboard"]
    both = httpx.put(sink.http + "/api/v1/messages", json={"IDs": ["x"], "Search": "to:ann"})
    assert both.status_code == 400
    assert found(sink, "-has:inline", limit="0") == []  # 0 on a search: an empty page
    latest = httpx.get(sink.http + "/api/v1/message/latest", params={"query": "to:bob"}).json()
    assert latest["Subject"] == "Two words here"
    nothing = httpx.get(sink.http + "/api/v1/message/latest", params={"query": "to:nobody"})
    assert (nothing.status_code, nothing.headers["content-type"][:10]) == (404, "text/plain")


def test_blank_searches_and_delete_by_search(searchable_sink: Running) -> None:
    sink = searchable_sink
    blank = httpx.get(sink.http + "/api/v1/search", params={"query": "  "})
    assert (blank.status_code, blank.text) == (400, "Error: no search query")
    assert httpx.delete(sink.http + "/api/v1/search").status_code == 400
    gone = httpx.delete(sink.http + "/api/v1/search", params={"query": "-has:attachment"})
    assert gone.text == "ok"
    assert [item["Subject"] for item in listed(sink)["messages"]] == ["Your code"]


def test_search_terms_sizes_and_dates_as_mailpit_reads_them() -> None:
    terms = search.parse('subject:"two words" -to:ann ! "an exact phrase" Foo:bar')
    assert terms == [
        search.Term(False, "subject", "two words"),
        search.Term(True, "to", "ann"),
        search.Term(False, "", "!"),  # one character: not a negation
        search.Term(False, "", "an exact phrase"),
        search.Term(False, "", "Foo:bar"),
    ]
    with pytest.raises(search.EmptyQuery):
        search.parse('  ""  ')
    assert [search.size_in_bytes(text) for text in ("2kb", "1.5m", "10", "3 MB", "9x")] == [
        2048,
        1572864,
        10,
        3145728,
        0,
    ]
    berlin, today = ZoneInfo("Europe/Berlin"), real_now().date()
    midnight = datetime(today.year, today.month, today.day)
    assert search.parse_date(today.isoformat(), berlin) == midnight.replace(tzinfo=berlin)
    written = f"{today.day} {today:%B} {today.year}"  # as a person writes it: "1 May 2024"
    assert search.parse_date(written, UTC) == midnight.replace(tzinfo=UTC)
    stamped = f"{today.isoformat()}T10:00:00Z"
    assert search.parse_date(stamped, berlin) == midnight.replace(hour=10, tzinfo=UTC)
    assert search.parse_date("soon", UTC) is None
    assert search.like("a_c", "xxabcxx")
    assert not search.like("a.c", "abc")  # only % and _ are wildcards


# -- the event stream -------------------------------------------------------------------------


def next_of(socket: Any, kind: str) -> dict[str, Any]:
    """The next frame of this Type (others that come first are passed over)."""
    while True:
        frame: dict[str, Any] = json.loads(socket.recv(timeout=30))
        if frame["Type"] == kind:
            return frame


def test_events_new_stats_update_delete_and_truncate(sink: Running) -> None:
    url = sink.http.replace("http://", "ws://") + "/api/events"
    with ws_connect(url) as socket:
        send(sink, newsletter(), ["dev@qa.invalid"])
        new = next_of(socket, "new")
        assert set(new["Data"]) == spec_keys("MessageSummary")
        assert new["Data"]["Subject"] == "Your code"
        stats = next_of(socket, "stats")
        assert stats["Data"] == {"Total": 1, "Unread": 1, "Version": stats["Data"]["Version"]}
        message_id = new["Data"]["ID"]
        httpx.put(sink.http + "/api/v1/messages", json={"IDs": [message_id], "Read": True})
        assert next_of(socket, "update")["Data"] == {"ID": message_id, "Read": True}
        httpx.delete(sink.http + "/api/v1/messages")
        assert next_of(socket, "delete")["Data"] == {"ID": message_id}
        assert next_of(socket, "truncate")["Data"] is None
        assert next_of(socket, "stats")["Data"]["Total"] == 0


def test_mail_past_its_ttl_is_one_prune_event(start_burnbox: Callable[..., Running]) -> None:
    sink = start_burnbox(sink=True, access="public", message_ttl=60.0)
    url = sink.http.replace("http://", "ws://") + "/api/events"
    with ws_connect(url) as socket:
        for subject in ("one", "two", "three"):
            send(sink, newsletter(subject), ["dev@qa.invalid"])
            next_of(socket, "new")
        while next_of(socket, "stats")["Data"]["Total"] != 3:  # all three told of first
            continue
        sink.clock.advance(seconds=61)
        assert sink.call(sink.app.reaper.run_once()) >= 3  # the shared view's and the inbox's
        frames = [json.loads(socket.recv(timeout=30)) for _ in range(2)]
        assert frames[0] == {"Type": "prune", "Data": None}  # once, not once a message
        assert frames[1]["Type"] == "stats"
        assert frames[1]["Data"]["Total"] == 0
    assert httpx.get(sink.http + "/api/v1/messages").json()["total"] == 0


def test_events_refuse_another_sites_page(sink: Running) -> None:
    url = sink.http.replace("http://", "ws://") + "/api/events"
    with pytest.raises(InvalidStatus):
        ws_connect(url, origin=Origin("https://evil.test"))


# -- send -------------------------------------------------------------------------------------


def send_request() -> dict[str, Any]:
    content = base64.b64encode(PNG).decode()
    return {
        "From": {"Email": "sender@example.test", "Name": "Sender Name"},
        "To": [{"Email": "recipient@example.test", "Name": "Recipient Name"}],
        "Cc": [{"Email": "cc@example.test", "Name": "Carbon Name"}],
        "Bcc": ["bcc@example.test"],
        "ReplyTo": [{"Email": "noreply@example.test", "Name": "No Reply"}],
        "Subject": "Test Email with Attachment",
        "Text": "This is a test email with an attachment.",
        "HTML": '<p>Inline: <img src="cid:inline-image"></p>',
        "Headers": {"List-Unsubscribe": "<mailto:u@example.test>", "Subject": "overridden?"},
        "Attachments": [
            {"Content": content, "Filename": "test.png"},
            {"Content": content, "FileName": "test.png", "ContentID": "inline-image"},
        ],
    }


def test_send_makes_the_message_mailpit_makes(sink: Running) -> None:
    answer = httpx.post(sink.http + "/api/v1/send", json=send_request())
    assert answer.status_code == 200, answer.text
    message_id = answer.json()["ID"]
    assert set(answer.json()) == {"ID"}
    whole = httpx.get(sink.http + f"/api/v1/message/{message_id}").json()
    assert whole["Subject"] == "Test Email with Attachment"  # Headers may not override it
    assert whole["From"] == {"Name": "Sender Name", "Address": "sender@example.test"}
    assert whole["Bcc"] == [{"Name": "", "Address": "bcc@example.test"}]
    assert whole["ReturnPath"] == "sender@example.test"
    [attached] = whole["Attachments"]
    [inline] = whole["Inline"]
    assert (attached["ContentType"], attached["FileName"]) == ("image/png", "test.png")
    assert (inline["ContentID"], inline["ContentType"]) == ("inline-image", "image/png")
    assert whole["Text"].strip() == "This is a test email with an attachment."
    headers = httpx.get(sink.http + f"/api/v1/message/{message_id}/headers").json()
    assert set(headers) == {
        "Bcc", "Cc", "Content-Type", "Date", "From", "List-Unsubscribe", "Message-Id",
        "Mime-Version", "Reply-To", "Return-Path", "Subject", "To",
    }  # fmt: skip
    for recipient in ("recipient@example.test", "cc@example.test", "bcc@example.test"):
        assert sink.call(sink.app.store.usage(recipient))[0] == 1  # delivered, as SMTP mail


def test_send_refuses_what_mailpit_refuses(sink: Running) -> None:
    bad_from = {**send_request(), "From": {"Email": "not an address"}}
    answer = httpx.post(sink.http + "/api/v1/send", json=bad_from)
    assert (answer.status_code, answer.json()) == (
        400,
        {"Error": "invalid From address: not an address"},
    )
    bad_to = {**send_request(), "To": [{"Email": "x@"}]}
    assert httpx.post(sink.http + "/api/v1/send", json=bad_to).json() == {
        "Error": "invalid To address: x@"
    }
    garbled = httpx.post(sink.http + "/api/v1/send", content=b"{not json")
    assert garbled.status_code == 400
    bad_file = {**send_request(), "Attachments": [{"Content": "@@@", "Filename": "x"}]}
    assert httpx.post(sink.http + "/api/v1/send", json=bad_file).status_code == 400
    huge = {**send_request(), "Text": "x" * (sink.app.settings.max_message_size * 2)}
    assert httpx.post(sink.http + "/api/v1/send", json=huge).status_code == 413
    assert listed(sink)["total"] == 0


# -- basic auth -------------------------------------------------------------------------------


@pytest.fixture
def guarded(start_burnbox: Callable[..., Running], tmp_path: Path) -> Running:
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
    users = tmp_path / "htpasswd"
    # htpasswd -B writes $2y$; Mailpit's files come that way.
    users.write_text(f"# QA users\nqa:{hashed.replace('$2b$', '$2y$')}\n")
    return start_burnbox(sink=True, access="public", sink_auth_file=str(users))


def test_basic_auth_guards_the_sink_but_not_the_probes(guarded: Running) -> None:
    url = guarded.http + "/api/v1/messages"
    refused = httpx.get(url)
    assert (refused.status_code, refused.headers["www-authenticate"][:5]) == (401, "Basic")
    assert httpx.get(url, auth=("qa", "wrong")).status_code == 401
    assert httpx.get(url, auth=("nobody", "secret")).status_code == 401
    assert httpx.get(url, auth=("qa", "secret")).status_code == 200
    assert httpx.get(guarded.http + "/api/v2/messages").status_code == 401  # MailHog's too
    assert httpx.get(guarded.http + "/healthz").status_code == 200
    assert httpx.get(guarded.http + "/metrics").status_code == 200
    events = guarded.http.replace("http://", "ws://") + "/api/events"
    with pytest.raises(InvalidStatus):
        ws_connect(events)
    token = base64.b64encode(b"qa:secret").decode()
    with ws_connect(events, additional_headers={"Authorization": f"Basic {token}"}) as socket:
        sent = httpx.post(guarded.http + "/api/v1/send", json=send_request(), auth=("qa", "secret"))
        new = next_of(socket, "new")
    assert new["Data"]["ID"] == sent.json()["ID"]
    assert new["Data"]["Username"] == "qa"  # who sent it through the API
    whole = httpx.get(guarded.http + "/api/v1/message/latest", auth=("qa", "secret")).json()
    assert whole["Username"] == "qa"


def test_a_guesser_runs_out_of_tries(guarded: Running) -> None:
    url = guarded.http + "/api/v1/messages"
    for _ in range(40):
        httpx.get(url, auth=("qa", "guess"))
    assert httpx.get(url, auth=("qa", "secret")).status_code == 401  # refused before checking
    guarded.clock.advance(seconds=2)  # the budget refills by the app's clock: one try back
    assert httpx.get(url, auth=("qa", "secret")).status_code == 200


def test_an_unusable_auth_file_stops_the_start(tmp_path: Path) -> None:
    broken = tmp_path / "htpasswd"
    broken.write_text("qa:{SHA}not-bcrypt\n")
    for path in (str(broken), str(tmp_path / "missing")):
        with pytest.raises(SettingsError, match="BURNBOX_SINK_AUTH_FILE"):
            sink_users(test_settings(sink=True, access="public", sink_auth_file=path))


# -- info and webui ---------------------------------------------------------------------------


def spec_nested(name: str, field: str) -> set[str]:
    document = json.loads(shared(SPEC / "swagger.json", "Mailpit's swagger.json").read_text())
    return set(document["definitions"][name]["properties"][field]["properties"])


def test_info_counts_what_this_sink_took_and_let_go(sink: Running) -> None:
    for subject in ("one", "two"):
        send(sink, newsletter(subject), ["dev@qa.invalid"])
    first = listed(sink)["messages"][0]
    httpx.request("DELETE", sink.http + "/api/v1/messages", json={"IDs": [first["ID"]]})
    info = httpx.get(sink.http + "/api/v1/info").json()
    assert set(info) == spec_keys("AppInformation")
    assert set(info["RuntimeStats"]) == spec_nested("AppInformation", "RuntimeStats")
    stats = info["RuntimeStats"]
    assert (stats["SMTPAccepted"], stats["MessagesDeleted"], stats["SMTPIgnored"]) == (2, 1, 0)
    assert stats["SMTPAcceptedSize"] > 2 * len(PNG)
    assert stats["Memory"] > 10 * 2**20
    assert (info["Messages"], info["Unread"], info["Database"]) == (1, 1, "memory")
    assert info["Version"] == info["LatestVersion"]


def test_webui_reports_only_what_is_configured(sink: Running) -> None:
    config = httpx.get(sink.http + "/api/v1/webui").json()
    assert set(config) == spec_keys("WebUIConfiguration")
    relay = spec_nested("WebUIConfiguration", "MessageRelay")
    assert set(config["MessageRelay"]) == relay | {"RecipientAllowlist"}  # deprecated, still sent
    assert (config["ChaosEnabled"], config["SpamAssassin"], config["MessageRelay"]["Enabled"]) == (
        False,
        False,
        False,
    )


# -- tags -------------------------------------------------------------------------------------


def test_tags_set_listed_searched_renamed_and_deleted(sink: Running) -> None:
    send(sink, newsletter("plain"), ["dev@qa.invalid"])
    send(
        sink, plain("tagged", "a@qa.example", "b@qa.test", X_Tags="Billing, urgent"), ["b@qa.test"]
    )
    untagged = listed(sink)["messages"][1]["ID"]
    assert listed(sink)["tags"] == ["Billing", "urgent"]  # from X-Tags, as Mailpit at ingest
    url = sink.http.replace("http://", "ws://") + "/api/events"
    with ws_connect(url) as socket:
        answer = httpx.put(
            sink.http + "/api/v1/tags", json={"IDs": [untagged], "Tags": ["QA/run #1", "qa run 1"]}
        )
        assert answer.text == "ok"
        update = next_of(socket, "update")
    assert update["Data"] == {"ID": untagged, "Tags": ["QA run 1"]}  # cleaned, one of a case
    assert httpx.get(sink.http + "/api/v1/tags").json() == ["Billing", "QA run 1", "urgent"]
    assert found(sink, 'tag:"qa run 1"') == ["plain"]
    assert found(sink, "is:tagged") == ["tagged", "plain"]
    with ws_connect(url) as socket:
        renamed = httpx.put(sink.http + "/api/v1/tags/urgent", json={"Name": "later"})
        assert renamed.text == "ok"
        frames = [json.loads(socket.recv(timeout=30)) for _ in range(2)]
        assert frames[0] == {"Type": "prune", "Data": None}  # list again, as Mailpit says
        assert frames[1]["Type"] == "stats"
        assert found(sink, "tag:later") == ["tagged"]
        assert httpx.delete(sink.http + "/api/v1/tags/Billing").text == "ok"
        assert json.loads(socket.recv(timeout=30)) == {"Type": "prune", "Data": None}
    assert httpx.get(sink.http + "/api/v1/tags").json() == ["later", "QA run 1"]
    info = httpx.get(sink.http + "/api/v1/info").json()
    assert info["Tags"] == {"later": 1, "QA run 1": 1}
    sent = httpx.post(sink.http + "/api/v1/send", json={**send_request(), "Tags": ["Sent"]})
    assert httpx.get(sink.http + f"/api/v1/message/{sent.json()['ID']}").json()["Tags"] == ["Sent"]


# -- the mailpit-api client's own end-to-end suite, unchanged ---------------------------------

SUITE = Path(__file__).resolve().parent.parent.parent / "shared" / "conformance" / "mailpit-api"
# The suite's release test expects the text `ok` (its client reads release's answer as text,
# and Mailpit answers `ok`) to equal the object {ID}: no server can pass it. The release
# itself is checked below: the message reaches the relay.
CANNOT_PASS = {"releaseMessage() should release a messsage"}


def test_the_mailpit_api_clients_own_suite(
    start_burnbox: Callable[..., Running], tmp_path: Path, spamd: Endpoint
) -> None:
    shared(SUITE / "tests" / "e2e.spec.ts", "mailpit-api suite")
    npm = require("npm")
    suite = tmp_path / "mailpit-api"
    shutil.copytree(SUITE, suite)
    subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=suite,
        check=True,
        timeout=300,
        capture_output=True,
    )
    users = tmp_path / "htpasswd"
    users.write_text("qa:" + bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    relay = start_burnbox(sink=True, access="public")  # every feature on: none returns early
    running = start_burnbox(
        sink=True,
        access="public",
        sink_auth_file=str(users),
        sink_chaos=True,
        sink_relay=Endpoint("127.0.0.1", relay.smtp_port),
        sink_relay_allow=("*@example.test",),
        spamassassin=spamd,
    )
    outcomes = _vitest(npm, suite, running.http, tmp_path / "report.json")
    assert len(outcomes) == 29, outcomes
    failed = {title: why for title, (status, why) in outcomes.items() if status != "passed"}
    assert set(failed) == CANNOT_PASS, failed
    assert "expected 'ok' to deeply equal" in failed[next(iter(CANNOT_PASS))]
    relay.wait_for_mail({"user1@example.test": 1})  # the release did go out


def _vitest(npm: str, suite: Path, base_url: str, report: Path) -> dict[str, tuple[str, str]]:
    """Each test's status and first failure message."""
    vitest = [npm, "exec", "--", "vitest", "run", "--project", "e2e", "--reporter=json"]
    result = subprocess.run(
        [*vitest, f"--outputFile={report}"],
        cwd=suite,
        env={**os.environ, "BASEURL": base_url, "USERNAME": "qa", "PASSWORD": "secret"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert report.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    return {
        test["title"]: (test["status"], "".join(test["failureMessages"][:1]))
        for file in json.loads(report.read_text())["testResults"]
        for test in file["assertionResults"]
    }


# -- the link check ---------------------------------------------------------------------------


class Statuses(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/ok")
        else:
            self.send_response(200 if self.path == "/ok" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def statuses() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Statuses)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_link_check_asks_loopback_links_only(sink: Running, statuses: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@qa.example", "b@qa.test", "links"
    message.set_content(f"Also {statuses}/gone in the text.")
    message.add_alternative(
        f'<a href="{statuses}/ok">ok</a> <a href="{statuses}/moved">moved</a> '
        '<a href="https://example.test/x">nowhere</a> <a href="http://192.0.2.7/">not ours</a>',
        subtype="html",
    )
    send(sink, message, ["b@qa.test"])
    url = sink.http + "/api/v1/message/latest/link-check"
    report = httpx.get(url, timeout=30).json()
    assert set(report) == spec_keys("LinkCheckResponse")
    codes = {link["URL"]: (link["StatusCode"], link["Status"]) for link in report["Links"]}
    assert codes[f"{statuses}/ok"] == (200, "OK")
    assert codes[f"{statuses}/moved"][0] == 302
    assert codes[f"{statuses}/gone"] == (404, "Not Found")
    assert codes["https://example.test/x"][0] == 0  # it does not resolve here
    assert codes["http://192.0.2.7/"] == (
        0,
        "not checked: only loopback hosts are (BURNBOX_SINK_LINK_CHECK_ALLOW)",
    )
    assert report["Errors"] == 3
    followed = httpx.get(url, params={"follow": "true"}, timeout=30).json()
    assert {link["URL"]: link["StatusCode"] for link in followed["Links"]}[
        f"{statuses}/moved"
    ] == 200
    assert listed(sink)["unread"] == 0  # checking its links read it


# -- thumbnails -------------------------------------------------------------------------------


def test_thumbnails_of_image_parts_and_blank_ones_for_others(sink: Running) -> None:
    large = io.BytesIO()
    Image.new("RGB", (400, 300), "red").save(large, "PNG")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@qa.example", "b@qa.test", "pictures"
    message.set_content("three parts")
    message.add_attachment(PNG, maintype="image", subtype="png", filename="tiny.png")
    message.add_attachment(large.getvalue(), maintype="image", subtype="png", filename="big.png")
    message.add_attachment(b"just text", maintype="text", subtype="plain", filename="notes.txt")
    send(sink, message, ["b@qa.test"])
    whole = httpx.get(sink.http + "/api/v1/message/latest").json()
    pictures = {}
    for part in whole["Attachments"]:
        url = sink.http + f"/api/v1/message/{whole['ID']}/part/{part['PartID']}/thumb"
        answer = httpx.get(url)
        assert answer.headers["content-type"] == "image/jpeg"
        pictures[part["FileName"]] = Image.open(io.BytesIO(answer.content))
    assert all(picture.size == (180, 120) for picture in pictures.values())
    red = pictures["big.png"].getpixel((90, 60))
    assert isinstance(red, tuple)
    assert red[0] > 200  # the red picture fills it
    assert pictures["notes.txt"].getpixel((90, 60)) == (255, 255, 255)  # blank
    assert httpx.get(sink.http + "/api/v1/message/NOSUCH/part/2/thumb").status_code == 400
    assert httpx.get(sink.http + "/api/v1/message/latest/part/2/thumb").status_code == 400


def test_before_on_the_list_and_search(sink: Running) -> None:
    """Mailpit's undocumented `before`: only what came strictly before it; an unreadable
    one is ignored."""
    send(sink, newsletter("old"), ["dev@qa.invalid"])
    cut = sink.clock() + timedelta(minutes=1)
    sink.clock.advance(minutes=2)
    send(sink, newsletter("new"), ["dev@qa.invalid"])
    moment = cut.isoformat()
    page = listed(sink, before=moment)
    assert [item["Subject"] for item in page["messages"]] == ["old"]
    assert (page["total"], page["messages_count"]) == (2, 2)  # the mailbox's, as Mailpit
    assert found(sink, "has:attachment", before=moment) == ["old"]
    searched = httpx.get(
        sink.http + "/api/v1/search", params={"query": "has:attachment", "before": moment}
    ).json()
    assert searched["messages_count"] == 1
    assert len(listed(sink, before="not a date")["messages"]) == 2
