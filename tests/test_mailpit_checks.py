"""The sink's Mailpit tools beyond reading mail, each against the real thing: chaos
triggers seen by a real SMTP client, release through a relay that is a second burnbox,
sa-check through a real spamd, and html-check over caniemail's data."""

from __future__ import annotations

import asyncio
import base64
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest

from burnbox.qa import spamd as spamd_client
from burnbox.qa.chaos import Chaos
from burnbox.qa.htmlcheck.probes import probe_of
from burnbox.qa.htmlcheck.report import check
from burnbox.qa.htmlcheck.support import features
from burnbox.qa.release import MAX_RECIPIENTS
from burnbox.settings import SettingsError, load
from burnbox.settings_values import Endpoint
from burnbox.web.mailpit import checks
from tests.helpers import Running
from tests.process import free_port
from tests.spamd import spamd
from tests.test_mailpit import send_request, spec_keys

__all__ = ["spamd"]  # a fixture
NEWSLETTERS = Path(__file__).resolve().parent.parent.parent / "shared" / "newsletters"


@pytest.fixture
def sink(start_burnbox: Callable[..., Running]) -> Running:
    return start_burnbox(sink=True, access="public")


def smtp_send(running: Running, raw: bytes, recipient: str = "dev@qa.invalid") -> None:
    before = running.call(running.app.store.usage(recipient))[0]
    with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10) as client:
        client.sendmail("app@qa.example", [recipient], raw)
    running.wait_for_mail({recipient: before + 1})


def html_message(html: str) -> bytes:
    message = EmailMessage()
    message["From"] = "app@qa.example"
    message["To"] = "dev@qa.invalid"
    message["Subject"] = "html"
    message.set_content("text")
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


# -- chaos ------------------------------------------------------------------------------------


def test_chaos_makes_smtp_answer_the_errors_the_test_asks_for(
    start_burnbox: Callable[..., Running],
) -> None:
    sink = start_burnbox(sink=True, access="public", sink_chaos=True)
    url = sink.http + "/api/v1/chaos"
    quiet = {"ErrorCode": 451, "Probability": 0}
    assert httpx.get(url).json() == {"Authentication": quiet, "Recipient": quiet, "Sender": quiet}
    answer = httpx.put(url, json={"sender": {"errorcode": 452, "PROBABILITY": 100}})  # any case
    assert answer.json() == {
        "Authentication": quiet,
        "Recipient": quiet,
        "Sender": {"ErrorCode": 452, "Probability": 100},
    }
    with smtplib.SMTP("127.0.0.1", sink.smtp_port, timeout=10) as client:
        client.ehlo()
        code, text = client.mail("app@qa.example")
        assert (code, text[:5]) == (452, b"4.0.0")
        assert b"Chaos" in text
        httpx.put(url, json={"Recipient": {"ErrorCode": 550, "Probability": 100}})  # Sender: 0%
        assert client.mail("app@qa.example")[0] == 250
        assert client.rcpt("dev@qa.invalid")[0] == 550
        assert client.noop()[0] == 250  # a chosen error is not the client's: the session goes on
    assert httpx.put(url, json={}).json()["Recipient"] == quiet  # `{}` resets every trigger
    smtp_send(sink, b"Subject: after\r\n\r\nx\r\n")
    assert httpx.get(sink.http + "/api/v1/webui").json()["ChaosEnabled"] is True


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"Sender": {"ErrorCode": 399, "Probability": 5}}, "ErrorCode must be from 400 to 599"),
        ({"Sender": {"ErrorCode": 600, "Probability": 5}}, "ErrorCode must be from 400 to 599"),
        (
            {"Recipient": {"ErrorCode": 451, "Probability": 101}},
            "Probability must be from 0 to 100",
        ),
        (
            {"Recipient": {"ErrorCode": 451, "Probability": "5"}},
            "Probability must be from 0 to 100",
        ),
        ({"Authentication": 5}, "expected an object"),
    ],
)
def test_chaos_refuses_triggers_out_of_range(
    start_burnbox: Callable[..., Running], body: dict[str, Any], why: str
) -> None:
    sink = start_burnbox(sink=True, access="public", sink_chaos=True)
    url = sink.http + "/api/v1/chaos"
    httpx.put(url, json={"Sender": {"ErrorCode": 421, "Probability": 7}})
    answer = httpx.put(url, json=body)
    assert answer.status_code == 400
    assert why in answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    assert httpx.get(url).json()["Sender"] == {"ErrorCode": 421, "Probability": 7}  # unchanged


def test_chaos_refuses_a_body_that_is_not_a_json_object(
    start_burnbox: Callable[..., Running],
) -> None:
    sink = start_burnbox(sink=True, access="public", sink_chaos=True)
    url = sink.http + "/api/v1/chaos"
    httpx.put(url, json={"Sender": {"ErrorCode": 421, "Probability": 7}})
    for body in (b"{not json", b"[1, 2]", b'"text"'):
        answer = httpx.put(url, content=body)
        assert (answer.status_code, answer.text) == (400, "invalid JSON: expected an object")
    assert httpx.get(url).json()["Sender"] == {"ErrorCode": 421, "Probability": 7}  # unchanged


def test_the_authentication_trigger_is_kept_but_has_nothing_to_fire_on(
    start_burnbox: Callable[..., Running],
) -> None:
    sink = start_burnbox(sink=True, access="public", sink_chaos=True)
    every = {"ErrorCode": 454, "Probability": 100}
    answer = httpx.put(sink.http + "/api/v1/chaos", json={"Authentication": every})
    assert answer.json()["Authentication"] == every
    with smtplib.SMTP("127.0.0.1", sink.smtp_port, timeout=10) as client:
        client.ehlo()
        assert not client.has_extn("auth")  # no AUTH offered, so no AUTH to fail
        assert client.docmd("AUTH", "PLAIN AGFAYg==")[0] == 500  # unknown here: not a chaos code
        assert client.mail("app@qa.example")[0] == 250


def test_chaos_fires_at_the_rate_set() -> None:
    rolls = iter([0.0, 0.299, 0.3, 0.999])
    chaos = Chaos(chance=lambda: next(rolls))
    chaos.set({"Sender": {"ErrorCode": 451, "Probability": 30}})
    assert [chaos.fault("Sender") for _ in range(4)] == [451, 451, None, None]
    assert chaos.fault("Recipient") is None  # 0%: never rolled


def test_chaos_is_off_unless_the_operator_turns_it_on(sink: Running) -> None:
    for answer in (
        httpx.get(sink.http + "/api/v1/chaos"),
        httpx.put(sink.http + "/api/v1/chaos", json={}),
    ):
        assert (answer.status_code, answer.text) == (400, "Chaos is not enabled")
    assert httpx.get(sink.http + "/api/v1/webui").json()["ChaosEnabled"] is False


# -- release ----------------------------------------------------------------------------------


@pytest.fixture
def relayed(start_burnbox: Callable[..., Running]) -> tuple[Running, Running]:
    """A sink whose relay is a second burnbox (returned second), allowing *@example.test."""
    relay = start_burnbox(sink=True, access="public")
    sink = start_burnbox(
        sink=True,
        access="public",
        sink_relay=Endpoint("127.0.0.1", relay.smtp_port),
        sink_relay_allow=("*@example.test",),
    )
    return sink, relay


def test_release_sends_through_the_relay(relayed: tuple[Running, Running]) -> None:
    sink, relay = relayed
    message_id = httpx.post(sink.http + "/api/v1/send", json=send_request()).json()["ID"]
    release = sink.http + f"/api/v1/message/{message_id}/release"
    answer = httpx.post(release, json={"To": ["user1@example.test"]})
    assert (answer.status_code, answer.text) == (200, "ok")
    relay.wait_for_mail({"user1@example.test": 1})
    arrived = httpx.get(relay.http + "/api/v1/message/latest").json()
    original = httpx.get(sink.http + f"/api/v1/message/{message_id}").json()
    assert arrived["MessageID"] == original["MessageID"]  # kept, as stored
    envelope = httpx.get(relay.http + "/api/v2/messages").json()["items"][0]["Raw"]
    assert envelope["From"] == "sender@example.test"  # MAIL FROM: its From, as Mailpit
    assert envelope["To"] == ["user1@example.test"]
    raw = httpx.get(relay.http + "/api/v1/message/latest/raw").text
    assert "bcc@example.test" not in raw
    assert "Bcc:" not in raw
    relay_view = httpx.get(sink.http + "/api/v1/webui").json()["MessageRelay"]
    assert relay_view["Enabled"] is True
    assert relay_view["AllowedRecipients"] == "*@example.test"
    assert relay_view["SMTPServer"] == f"127.0.0.1:{relay.smtp_port}"


def test_release_sends_only_to_allowed_recipients(relayed: tuple[Running, Running]) -> None:
    sink, relay = relayed
    message_id = httpx.post(sink.http + "/api/v1/send", json=send_request()).json()["ID"]
    release = sink.http + f"/api/v1/message/{message_id}/release"
    for body, why in [
        ({"To": ["someone@elsewhere.example"]}, "recipient not allowed: someone@elsewhere.example"),
        ({"To": ["user1@example.test", "x@elsewhere.example"]}, "recipient not allowed"),
        ({"To": ["not an address"]}, "invalid email address"),
        ({"To": []}, "no recipients"),
        ({}, "no recipients"),
    ]:
        refused = httpx.post(release, json=body)
        assert refused.status_code == 400
        assert why in refused.text
    unknown = sink.http + "/api/v1/message/nothere/release"
    assert httpx.post(unknown, json={"To": ["a@example.test"]}).status_code == 404
    assert httpx.get(relay.http + "/api/v1/messages").json()["total"] == 0  # nothing went


def test_a_relay_that_does_not_answer_is_said_so(start_burnbox: Callable[..., Running]) -> None:
    closed = Endpoint("127.0.0.1", free_port())
    sink = start_burnbox(sink=True, access="public", sink_relay=closed, sink_relay_allow=("*",))
    message_id = httpx.post(sink.http + "/api/v1/send", json=send_request()).json()["ID"]
    answer = httpx.post(
        sink.http + f"/api/v1/message/{message_id}/release", json={"To": ["a@b.example"]}
    )
    assert (answer.status_code, answer.text) == (400, "the relay could not be reached")


def test_release_is_bounded_and_says_what_the_relay_refused(
    start_burnbox: Callable[..., Running],
) -> None:
    relay = start_burnbox()  # not a sink: it refuses mail for domains not its own (550)
    sink = start_burnbox(
        sink=True,
        access="public",
        sink_relay=Endpoint("127.0.0.1", relay.smtp_port),
        sink_relay_allow=("*",),
    )
    message_id = httpx.post(sink.http + "/api/v1/send", json=send_request()).json()["ID"]
    release = sink.http + f"/api/v1/message/{message_id}/release"
    refused = httpx.post(release, json={"To": ["someone@elsewhere.example"]})
    assert (refused.status_code, refused.text) == (400, "the relay refused every recipient")
    many = [f"user{n}@localhost" for n in range(MAX_RECIPIENTS + 1)]
    too_many = httpx.post(release, json={"To": many})
    assert (too_many.status_code, too_many.text) == (400, f"at most {MAX_RECIPIENTS} recipients")
    assert httpx.post(release, json={"To": many[:MAX_RECIPIENTS]}).text == "ok"
    relay.wait_for_mail({many[MAX_RECIPIENTS - 1]: 1})


def test_release_is_off_without_a_relay(sink: Running) -> None:
    message_id = httpx.post(sink.http + "/api/v1/send", json=send_request()).json()["ID"]
    answer = httpx.post(
        sink.http + f"/api/v1/message/{message_id}/release", json={"To": ["a@example.test"]}
    )
    assert (answer.status_code, answer.text) == (400, "Message relay is not enabled")
    assert httpx.get(sink.http + "/api/v1/webui").json()["MessageRelay"]["Enabled"] is False


def test_a_relay_needs_the_recipients_it_may_send_to() -> None:
    base = {"BURNBOX_SINK": "true", "BURNBOX_ACCESS": "public"}
    with pytest.raises(SettingsError, match="BURNBOX_SINK_RELAY_ALLOW"):
        load(environ={**base, "BURNBOX_SINK_RELAY": "127.0.0.1:25"}, env_file=None)
    for key, value in [
        ("BURNBOX_SINK_RELAY", "127.0.0.1:25"),
        ("BURNBOX_SINK_CHAOS", "true"),
        ("BURNBOX_SPAMASSASSIN", "127.0.0.1:783"),
    ]:
        with pytest.raises(SettingsError, match=key):  # sink mode's alone
            load(environ={key: value, "BURNBOX_SINK_RELAY_ALLOW": "*"}, env_file=None)


# -- SpamAssassin -----------------------------------------------------------------------------


def test_sa_check_asks_a_real_spamd(start_burnbox: Callable[..., Running], spamd: Endpoint) -> None:
    sink = start_burnbox(sink=True, access="public", spamassassin=spamd)
    smtp_send(sink, b"From: app@qa.example\r\nTo: dev@qa.invalid\r\nSubject: hi\r\n\r\nhello\r\n")
    verdict = httpx.get(sink.http + "/api/v1/message/latest/sa-check").json()
    assert set(verdict) == spec_keys("SpamAssassinResponse")
    assert verdict["Error"] == ""
    assert verdict["IsSpam"] is False
    names = {rule["Name"] for rule in verdict["Rules"]}
    assert "MISSING_DATE" in names
    assert "MISSING_MID" in names
    assert all(set(rule) == spec_keys("Rule") and rule["Description"] for rule in verdict["Rules"])
    assert verdict["Score"] == pytest.approx(
        sum(rule["Score"] for rule in verdict["Rules"]), abs=0.2
    )
    gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
    smtp_send(sink, f"From: app@qa.example\r\nSubject: buy\r\n\r\n{gtube}\r\n".encode())
    spam = httpx.get(sink.http + "/api/v1/message/latest/sa-check").json()
    assert spam["IsSpam"] is True
    assert spam["Score"] >= 1000
    assert "GTUBE" in {rule["Name"] for rule in spam["Rules"]}
    assert httpx.get(sink.http + "/api/v1/webui").json()["SpamAssassin"] is True


def test_sa_check_says_when_spamd_cannot_be_asked(start_burnbox: Callable[..., Running]) -> None:
    sink = start_burnbox(
        sink=True, access="public", spamassassin=Endpoint("127.0.0.1", free_port())
    )
    smtp_send(sink, b"Subject: hi\r\n\r\nhello\r\n")
    verdict = httpx.get(sink.http + "/api/v1/message/latest/sa-check").json()
    assert verdict == {
        "Error": "spamd could not be reached",
        "IsSpam": False,
        "Rules": None,
        "Score": 0.0,
    }


def test_sa_check_sends_spamd_nothing_over_its_bound() -> None:
    oversize = b"x" * (spamd_client.MAX_MESSAGE + 1)
    closed = Endpoint("127.0.0.1", free_port())  # never asked: the bound comes first
    verdict = asyncio.run(spamd_client.check(closed, oversize))
    assert verdict == {
        "Error": "messages over 64 MiB are not checked",
        "IsSpam": False,
        "Rules": None,
        "Score": 0.0,
    }


def test_sa_check_is_off_unless_configured(sink: Running) -> None:
    smtp_send(sink, b"Subject: hi\r\n\r\nhello\r\n")
    answer = httpx.get(sink.http + "/api/v1/message/latest/sa-check")
    assert (answer.status_code, answer.text) == (400, "SpamAssassin is not enabled")
    assert httpx.get(sink.http + "/api/v1/webui").json()["SpamAssassin"] is False
    assert httpx.get(sink.http + "/api/v1/message/nothere/sa-check").status_code == 400


# -- the HTML check ---------------------------------------------------------------------------

USES = """<!DOCTYPE html><html><head><meta name="color-scheme" content="light dark">
<style>/* dark */ @media (prefers-color-scheme: dark) { .card.dark > td { color: rgba(0,0,0,.5) } }
a:hover, p::after { display: flex !important; margin: 1rem }</style></head>
<body><table><tr><td style="padding: 2px; background-color: #fff">
<a href="mailto:x@qa.example">mail</a> <a href="#top">top</a> <img src="cat.webp" alt="">
<img src="data:image/png;base64,iVBORw0KGgo=" alt=""><!-- note --></td></tr></table>
<script>alert(1)</script></body></html>"""
FOUND = {
    "html-doctype": 1,
    "html-meta-color-scheme": 1,
    "css-comments": 1,
    "css-at-media": 1,
    "css-at-media-prefers-color-scheme": 1,
    "css-selector-chaining": 1,
    "css-selector-child": 1,
    "css-selector-class": 2,
    "css-selector-grouping": 1,
    "css-rgba": 1,
    "css-pseudo-class-hover": 1,
    "css-pseudo-element-after": 1,
    "css-display-flex": 1,
    "css-important": 1,
    "css-margin": 1,
    "css-unit-rem": 1,
    "css-unit-px": 1,
    "css-padding": 1,
    "css-background-color": 1,
    "html-table": 1,
    "html-mailto-links": 1,
    "html-anchor-links": 1,
    "image-webp": 1,
    "image-base64": 1,
    "html-comments": 1,
    "html-script": 1,
}


def test_html_check_counts_each_feature_the_message_uses(sink: Running) -> None:
    smtp_send(sink, html_message(USES))
    report = httpx.get(sink.http + "/api/v1/message/latest/html-check").json()
    assert set(report) == spec_keys("HTMLCheckResponse")
    assert set(report["Total"]) == spec_keys("HTMLCheckTotal")
    found = {warning["Slug"]: warning["Score"]["Found"] for warning in report["Warnings"]}
    assert {slug: found.get(slug) for slug in FOUND} == FOUND
    assert "css-display-grid" not in found
    assert "html-video" not in found
    for warning in report["Warnings"]:
        assert set(warning) == spec_keys("HTMLCheckWarning")
        assert set(warning["Score"]) == spec_keys("HTMLCheckScore")
        assert all(set(result) == spec_keys("HTMLCheckResult") for result in warning["Results"])
    assert report["Warnings"][0]["Slug"] == "html-script"  # the worst first
    flex = next(w for w in report["Warnings"] if w["Slug"] == "css-display-flex")
    gmail = [
        r for r in flex["Results"] if r["Family"] == "gmail" and r["Platform"] == "desktop-webmail"
    ]
    assert gmail
    assert all(r["Name"].startswith("Gmail Desktop Webmail (") for r in gmail)
    total = report["Total"]
    assert total["Supported"] + total["Partial"] + total["Unsupported"] == pytest.approx(100)
    assert "Gmail" in report["Platforms"]["desktop-webmail"]


def test_html_check_reads_at_most_its_bound() -> None:
    raw = html_message("<p>" + "a" * checks.MAX_HTML + "</p><table></table>")
    html = checks._html_of(raw)
    assert len(html) == checks.MAX_HTML
    assert "<table>" not in html  # what lies past the bound is not checked


def test_html_check_needs_html(sink: Running) -> None:
    smtp_send(sink, b"Subject: plain\r\n\r\nno html here\r\n")
    answer = httpx.get(sink.http + "/api/v1/message/latest/html-check")
    assert (answer.status_code, answer.text) == (400, "message does not contain HTML")
    assert httpx.get(sink.http + "/api/v1/message/nothere/html-check").status_code == 404


def test_every_caniemail_feature_a_message_can_show_is_looked_for() -> None:
    unprobed = {feature.slug for feature in features() if not probe_of(feature)}
    assert unprobed == {"bimi"}  # a DNS record and a header, not HTML
    kinds = {kind for feature in features() for kind, _ in probe_of(feature)}
    assert kinds <= {
        "element", "typed", "attribute", "link", "html-comment", "doctype", "meta", "image",
        "property", "value", "keyword", "function", "unit", "at", "media-feature",
        "pseudo-class", "pseudo-element", "selector", "important", "css-comment",
        "custom-property", "nesting",
    }  # fmt: skip


def test_html_check_totals_stay_within_bounds_on_other_authors_newsletters() -> None:
    templates = sorted(NEWSLETTERS.rglob("*.html"))
    if not templates:
        pytest.skip("no newsletters in ../shared")
    for template in templates:
        report = check(template.read_text(errors="replace"))
        total = report["Total"]
        assert report["Warnings"], template.name  # every real newsletter uses something
        for figure in ("Supported", "Partial", "Unsupported"):
            assert 0 <= total[figure] <= 100, (template.name, total)


# -- the calls cypress-mailpit makes ------------------------------------------------------------


def test_the_calls_cypress_mailpit_makes(
    start_burnbox: Callable[..., Running], spamd: Endpoint, tmp_path: Path
) -> None:
    """Each command of ../shared/conformance/cypress-mailpit (src/MailpitCommands.ts), made
    as it makes it: its URLs (the /view ones with the double slash its `mailpitUrl` builds),
    query strings, bodies and basic auth."""
    users = tmp_path / "htpasswd"
    users.write_text("qa:" + bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    sink = start_burnbox(sink=True, access="public", sink_auth_file=str(users), spamassassin=spamd)
    with httpx.Client(base_url=sink.http, auth=("qa", "secret"), follow_redirects=True) as cy:
        sent = cy.post("/api/v1/send", json=cypress_send_body()).json()  # mailpitSendMail
        listed = cy.get("/api/v1/messages?start=0&limit=50").json()  # mailpitGetAllMails
        assert [item["ID"] for item in listed["messages"]] == [sent["ID"]]
        mail = cy.get("/api/v1/message/latest").json()  # mailpitGetMail()
        assert mail["Subject"] == "Hello Mailpit"  # mailpitGetSubject
        assert [to["Address"] for to in mail["To"]] == ["jane@example.com"]
        assert mail["From"]["Address"] == "from@example.com"  # mailpitGetFromAddress
        assert [part["FileName"] for part in mail["Attachments"]] == ["notes.txt"]
        for query in ("subject:Hello Mailpit", "to:jane@example.com"):  # ...BySubject, ...ByTo
            found = cy.get("/api/v1/search", params={"query": query, "start": 0, "limit": 50})
            assert found.json()["messages_count"] == 1  # mailpitHasEmailsBy...
        spam = cy.get(f"/api/v1/message/{mail['ID']}/sa-check").json()
        assert spam["Error"] == ""
        assert isinstance(spam["Score"], float)
        html = cy.get(f"{sink.http}//view/{mail['ID']}.html")  # mailpitGetMailHTMlBody
        assert html.history[0].status_code == 301  # to /view/..., as Go's router answers
        assert "<p>hello from mailpit</p>" in html.text
        text = cy.get(f"{sink.http}//view/{mail['ID']}.txt").text  # mailpitGetMailTextBody
        assert text.strip() == "hello from mailpit"
        cypress_marks_and_deletes(cy, mail["ID"])
    assert httpx.get(sink.http + "/api/v1/messages").status_code == 401  # no auth, no mail


def cypress_marks_and_deletes(cy: httpx.Client, message_id: str) -> None:
    """cypress-mailpit's read-state and delete commands, on a mailbox of one message."""
    for read in (True, False):  # mailpitSetAllEmailStatusAsRead / ...AsUnRead
        assert cy.put("/api/v1/messages", json={"IDs": [], "Read": read}).text == "ok"
        assert cy.get("/api/v1/messages").json()["unread"] == (0 if read else 1)
    answer = cy.put("/api/v1/messages", json={"IDs": [message_id], "Read": True})
    assert answer.text == "ok"  # mailpitSetStatusAsRead
    assert cy.get("/api/v1/messages").json()["unread"] == 0
    assert cy.delete("/api/v1/search", params={"query": "to:nobody@example.com"}).is_success
    assert cy.get("/api/v1/messages").json()["total"] == 1  # nothing matched
    assert cy.delete("/api/v1/search", params={"query": "subject:Hello"}).is_success
    assert cy.get("/api/v1/messages").json()["total"] == 0  # mailpitDeleteEmailsBySearch
    cy.post("/api/v1/send", json=cypress_send_body())
    assert cy.delete("/api/v1/messages").is_success  # mailpitDeleteAllEmails
    assert cy.get("/api/v1/messages").json()["total"] == 0


def cypress_send_body() -> dict[str, Any]:
    """mailpitSendMail's body with its defaults, and one attachment as a test would add."""
    return {
        "Attachments": [{"Content": base64.b64encode(b"notes").decode(), "Filename": "notes.txt"}],
        "Bcc": ["bcc@example.com"],
        "Cc": [{"Email": "cc@example.com", "Name": "CC"}],
        "From": {"Email": "from@example.com", "Name": "From"},
        "HTML": "<p>hello from mailpit</p>",
        "Headers": {},
        "ReplyTo": [{"Email": "replyto@example.com", "Name": "ReplyTo"}],
        "Subject": "Hello Mailpit",
        "Tags": [],
        "Text": "hello from mailpit",
        "To": [{"Email": "jane@example.com", "Name": "Jane"}],
    }


def test_paths_with_empty_segments_redirect_to_the_clean_path(server: Running) -> None:
    """Go's router, so Mailpit, answers `//a//b` with a redirect to `/a/b`; so does burnbox,
    and never to another host."""
    for path, status, location in [
        ("//healthz", 301, "/healthz"),
        ("/api//inboxes?x=1&y=2", 301, "/api/inboxes?x=1&y=2"),
        ("//evil.example/x", 301, "/evil.example/x"),
    ]:
        answer = httpx.get(server.http + path)
        assert (answer.status_code, answer.headers["location"]) == (status, location)
    posted = httpx.post(server.http + "//api/inboxes", json={})
    assert (posted.status_code, posted.headers["location"]) == (308, "/api/inboxes")
    assert httpx.post(server.http + "//api/inboxes", json={}, follow_redirects=True).is_success
    assert httpx.get(server.http + "/healthz").status_code == 200
