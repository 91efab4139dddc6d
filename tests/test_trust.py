"""Who really sent a message, end to end: mail over SMTP to a running burnbox whose sender
checks ask a real DNS server on loopback (SPF, DKIM keys made at run time and signed with
dkimpy, DMARC); the results in the stored message, the API and its push; and the abuse
controls (a per-client rate with a second client on 127.0.0.2, a blocklist, refused
senders)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import smtplib
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any, Literal

import dkim
import httpx
import pytest
from playwright.sync_api import Browser, expect

from burnbox import delivery
from burnbox.trust import worker
from burnbox.trust.abuse import client_key
from burnbox.trust.results import untrust
from tests.dns import DnsServer, Zone
from tests.helpers import Running, create, metric, url
from tests.keys import RSA_KEY
from tests.pages import Visit, violations
from tests.receiver import Receiver

SECOND = "127.0.0.2"  # a second client on this machine


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    zone = Zone(ttl=60)
    zone.add("acme.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    zone.add("mx.acme.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    zone.add("_dmarc.acme.test", "TXT", "v=DMARC1; p=reject; rua=mailto:d@acme.test")
    zone.add("rsa._domainkey.acme.test", "TXT", RSA_KEY[1])
    zone.add("bank.test", "TXT", "v=spf1 ip4:192.0.2.10 -all")
    zone.add("_dmarc.bank.test", "TXT", "v=DMARC1; p=reject")
    zone.add("nodns.test", "A", "192.0.2.99")  # a domain with no SPF, DKIM or DMARC
    zone.add("2.0.0.127.bl.test", "A", "127.0.0.2")  # 127.0.0.2 is listed
    zone.timeouts.update({"slow.test", "_dmarc.slow.test", "2.0.0.127.slowbl.test"})
    server = DnsServer(zone)
    yield server
    server.close()


@pytest.fixture
def checking(start_burnbox: Callable[..., Running], dns: DnsServer) -> Running:
    return start_burnbox(auth_checks=True, dns_server=dns.address, access="public")


def mail(sender: str, subject: str, body: str = "Your code is 482913.\n") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "someone@localhost"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="acme.test")
    message.set_content(body)
    return message.as_bytes().replace(b"\n", b"\r\n")


def signed(message: bytes) -> bytes:
    signature = dkim.sign(
        message, b"rsa", b"acme.test", RSA_KEY[0], include_headers=[b"from", b"subject", b"to"]
    )
    return bytes(signature) + message


def send(
    server: Running, raw: bytes, mail_from: str, *, to: str = "someone@localhost", source: str = ""
) -> tuple[int, bytes]:
    with smtplib.SMTP(
        "127.0.0.1", server.smtp_port, timeout=10, source_address=(source, 0) if source else None
    ) as client:
        client.ehlo("mx.acme.test")
        code, answer = client.mail(mail_from)
        if code != 250:
            return code, answer
        code, answer = client.rcpt(to)
        if code != 250:
            return code, answer
        return client.data(raw)


def checked(server: Running, address: str, subject: str, timeout: float = 20) -> dict[str, Any]:
    """The message's full view once its checks are recorded (woken by its push events)."""
    deadline = time.monotonic() + timeout
    with httpx.Client() as http:
        while time.monotonic() < deadline:
            page = http.get(url(server, address, "/messages")).json()["messages"]
            found = [item for item in page if item["subject"] == subject]
            if found and found[0]["authentication"] is not None:
                return dict(http.get(url(server, address, f"/messages/{found[0]['id']}")).json())
            after = page[0]["id"] if page else None
            http.get(url(server, address, "/messages"), params={"wait": 2, "after": after or "0"})
    raise AssertionError(f"no results for {subject!r}")


def test_a_signed_message_from_its_domain_is_verified(checking: Running) -> None:
    code, _ = send(checking, signed(mail("Acme <billing@acme.test>", "All pass")), "b@acme.test")
    assert code == 250
    view = checked(checking, "someone@localhost", "All pass")
    assert view["authentication"] == {
        "spf": "pass", "dkim": "pass", "dmarc": "pass", "arc": "none",
        "from_domain": "acme.test", "verdict": "verified",
    }  # fmt: skip
    assert view["summary"]["authentication"] == view["authentication"]
    raw = httpx.get(url(checking, "someone@localhost", f"/messages/{view['summary']['id']}/raw"))
    first = raw.content.split(b"\r\n")[0:3]
    assert first[0] == b"Authentication-Results: mx.test;"
    assert b"spf=pass smtp.mailfrom=acme.test" in raw.content.split(b"\r\n\r\n")[0]
    assert b"dkim=pass header.d=acme.test header.s=rsa" in raw.content


def test_a_body_changed_after_signing_fails_dkim(checking: Running) -> None:
    tampered = signed(mail("Acme <billing@acme.test>", "Tampered")).replace(b"482913", b"999999")
    send(checking, tampered, "b@acme.test")
    results = checked(checking, "someone@localhost", "Tampered")["authentication"]
    assert (results["dkim"], results["spf"], results["dmarc"]) == ("fail", "pass", "pass")


def test_a_spoofed_sender_is_marked_possibly_forged(checking: Running) -> None:
    send(checking, mail("Your Bank <security@bank.test>", "Spoofed"), "security@bank.test")
    results = checked(checking, "someone@localhost", "Spoofed")["authentication"]
    assert (results["spf"], results["dkim"], results["dmarc"]) == ("fail", "none", "fail")
    assert results["verdict"] == "failed"


def test_a_sender_with_no_records_cannot_be_verified(checking: Running) -> None:
    send(checking, mail("News <news@nodns.test>", "No records"), "news@nodns.test")
    results = checked(checking, "someone@localhost", "No records")["authentication"]
    assert (results["spf"], results["dkim"], results["dmarc"]) == ("none", "none", "none")
    assert results["verdict"] == "unverified"


def test_a_resolver_that_never_answers_stalls_nothing(checking: Running) -> None:
    started = time.monotonic()
    code, _ = send(checking, mail("Slow <a@slow.test>", "Slow DNS"), "a@slow.test")
    assert code == 250
    assert time.monotonic() - started < 1.5  # the 250 waited for no DNS
    listed = httpx.get(url(checking, "someone@localhost", "/messages")).json()["messages"]
    assert [item["authentication"] for item in listed if item["subject"] == "Slow DNS"] == [None]
    results = checked(checking, "someone@localhost", "Slow DNS", timeout=30)["authentication"]
    assert results["spf"] == "temperror"
    assert results["dmarc"] == "temperror"


def test_past_the_bound_on_checks_at_once_a_message_is_marked_temperror_at_once(
    start_burnbox: Callable[..., Running], dns: DnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Background checks are bounded (delivery.MAX_CHECKING): one past it is not queued to
    wait for DNS, it is recorded as temperror straight away and counted as skipped."""
    monkeypatch.setattr(delivery, "MAX_CHECKING", 1)
    server = start_burnbox(auth_checks=True, dns_server=dns.address, access="public")
    assert send(server, mail("Slow <a@slow.test>", "Waits"), "a@slow.test")[0] == 250
    assert send(server, mail("Slow <b@slow.test>", "Skipped"), "b@slow.test")[0] == 250
    results = checked(server, "someone@localhost", "Skipped")["authentication"]
    listed = httpx.get(url(server, "someone@localhost", "/messages")).json()["messages"]
    waiting = [item["authentication"] for item in listed if item["subject"] == "Waits"]
    assert waiting == [None]  # still asking DNS (a 5 s budget): the second did not wait for it
    assert (results["spf"], results["dkim"], results["dmarc"]) == ("temperror",) * 3
    scraped = httpx.get(server.http + "/metrics").text
    assert metric(scraped, 'burnbox_auth_checks_total{way="skipped"}') == 1


def test_results_recorded_later_are_pushed_as_an_update(checking: Running) -> None:
    inbox = create(checking, local_part="pushed")
    with httpx.stream("GET", url(checking, inbox["address"], "/events"), timeout=30) as events:
        lines = events.iter_lines()
        next(lines)  # the stream is open: subscribed
        send(checking, mail("Slow <a@slow.test>", "Push me"), "a@slow.test", to=inbox["address"])
        kinds = []
        for line in lines:
            if line.startswith("event: "):
                kinds.append(line.removeprefix("event: "))
            if line.startswith("data: ") and kinds[-1] == "updated":
                assert '"spf":"temperror"' in line.replace(" ", "")
                break
    assert kinds == ["message", "updated"]


def test_a_forged_authentication_results_on_arrival_is_never_trusted(checking: Running) -> None:
    forged = (
        b"Authentication-Results: mx.test; spf=pass smtp.mailfrom=bank.test;\r\n"
        b"\tdkim=pass header.d=bank.test; dmarc=pass header.from=bank.test\r\n"
        b"Authentication-Results: other.example; spf=none\r\n"
    ) + mail("Your Bank <security@bank.test>", "Forged results")
    send(checking, forged, "security@bank.test")
    view = checked(checking, "someone@localhost", "Forged results")
    assert view["authentication"]["verdict"] == "failed"
    raw = httpx.get(url(checking, "someone@localhost", f"/messages/{view['summary']['id']}/raw"))
    section = raw.content.split(b"\r\n\r\n")[0]
    ours = [line for line in section.split(b"\r\n") if line.startswith(b"Authentication-R")]
    assert ours[0] == b"Authentication-Results: mx.test;"  # ours, first
    assert b"Authentication-Results: mx.test;" not in ours[1:]
    assert section.startswith(b"Authentication-Results: mx.test;\r\n\tspf=fail")
    assert b"X-Untrusted-Authentication-Results: mx.test; spf=pass" in section
    assert b"Authentication-Results: other.example; spf=none" in section  # not ours: as sent


def test_a_signature_over_a_field_that_claims_our_name_is_checked_as_it_was_sent(
    checking: Running,
) -> None:
    """The claiming field is renamed in what is stored, after the signature that covers it
    was verified on the message as it arrived (RFC 6376 6)."""
    claim = b"Authentication-Results: mx.test; dkim=pass header.d=acme.test\r\n"
    message = claim + mail("Acme <billing@acme.test>", "Signed claim")
    signature = dkim.sign(
        message, b"rsa", b"acme.test", RSA_KEY[0],
        include_headers=[b"from", b"subject", b"to", b"authentication-results"],
    )  # fmt: skip
    send(checking, bytes(signature) + message, "billing@acme.test")
    view = checked(checking, "someone@localhost", "Signed claim")
    assert view["authentication"]["dkim"] == "pass"
    assert view["authentication"]["verdict"] == "verified"
    raw = httpx.get(url(checking, "someone@localhost", f"/messages/{view['summary']['id']}/raw"))
    assert b"\r\nX-Untrusted-Authentication-Results: mx.test; dkim=pass" in raw.content


def test_untrust_renames_only_our_own_and_folded_ones() -> None:
    raw = (
        b"Received: x\r\nAuthentication-Results:\r\n MX.Test; dkim=pass\r\n"
        b"authentication-results: mx.test.; spf=pass\r\nAuthentication-Results: mx.test2; x\r\n"
        b"\r\nAuthentication-Results: mx.test; in the body\r\n"
    )
    renamed = untrust(raw, "mx.test")
    assert renamed.count(b"X-Untrusted-Authentication-Results") == 2
    assert b"Authentication-Results: mx.test2; x" in renamed
    assert renamed.endswith(b"\r\n\r\nAuthentication-Results: mx.test; in the body\r\n")


# -- abuse ---------------------------------------------------------------------------------


def test_the_rate_per_client_holds_one_client_and_not_another(
    start_burnbox: Callable[..., Running],
) -> None:
    server = start_burnbox(smtp_rate_per_ip="2/m")
    raw = mail("a@example.org", "rate")
    answers = [send(server, raw, "a@example.org")[0] for _ in range(3)]
    assert answers == [250, 250, 450]
    code, answer = send(server, raw, "a@example.org")
    assert (code, answer[:5]) == (450, b"4.7.1")
    assert send(server, raw, "a@example.org", source=SECOND)[0] == 250  # unaffected
    server.clock.advance(seconds=30)  # a token back
    assert send(server, raw, "a@example.org")[0] == 250
    metrics = httpx.get(server.http + "/metrics").text
    assert 'burnbox_messages_refused_total{reason="rate_limited"} 2.0' in metrics


def test_ipv6_clients_are_counted_by_their_64() -> None:
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"


def test_a_listed_client_is_refused_before_anything_is_stored(
    start_burnbox: Callable[..., Running], dns: DnsServer
) -> None:
    server = start_burnbox(dnsbl=("bl.test",), dns_server=dns.address)
    raw = mail("a@example.org", "listed")
    code, answer = send(server, raw, "a@example.org", source=SECOND)
    assert (code, answer[:5]) == (554, b"5.7.1")
    assert send(server, raw, "a@example.org")[0] == 250  # 127.0.0.1 is not listed
    assert server.count() == 1
    metrics = httpx.get(server.http + "/metrics").text
    assert 'burnbox_messages_refused_total{reason="dnsbl"} 1.0' in metrics


def test_a_blocklist_that_does_not_answer_lets_mail_through(
    start_burnbox: Callable[..., Running], dns: DnsServer
) -> None:
    server = start_burnbox(dnsbl=("slowbl.test",), dns_server=dns.address)
    code, _ = send(server, mail("a@example.org", "open"), "a@example.org", source=SECOND)
    assert code == 250
    metrics = httpx.get(server.http + "/metrics").text
    assert 'burnbox_dnsbl_lookups_total{outcome="failed_open"} 1.0' in metrics


@pytest.mark.parametrize(
    ("sender", "code"),
    [("x@spam.test", 550), ("x@news.spam.test", 550), ("boss@corp.test", 550),
     ("other@corp.test", 250), ("x@notspam.test", 250)],
)  # fmt: skip
def test_refused_senders(start_burnbox: Callable[..., Running], sender: str, code: int) -> None:
    server = start_burnbox(block_senders=("*.spam.test", "spam.test", "boss@corp.test"))
    assert send(server, mail(sender, "blocked?"), sender)[0] == code


# -- what a reader sees ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "scheme"), [(1280, "light"), (375, "dark")], ids=["desktop", "phone-dark"]
)
def test_the_page_marks_the_sender_in_words(
    browser: Browser, checking: Running, axe: Path, width: int, scheme: Literal["light", "dark"]
) -> None:
    context = browser.new_context(
        viewport={"width": width, "height": 800}, color_scheme=scheme, bypass_csp=True
    )
    try:
        visit = Visit(context, checking)
        address = visit.open()
        send(
            checking, signed(mail("Acme <billing@acme.test>", "Genuine")), "b@acme.test", to=address
        )
        send(
            checking, mail("Bank <security@bank.test>", "Forged"), "security@bank.test", to=address
        )
        checked(checking, address, "Forged")
        page = visit.page
        for subject, words, kind in (
            ("Genuine", "✓ Verified: sent by acme.test", "verified"),
            ("Forged", "✗ Failed: possibly forged (not sent by bank.test)", "failed"),
        ):
            if page.locator("#back").is_visible():
                page.locator("#back").click()
            page.locator("#messages button", has_text=subject).click()
            mark = page.locator("#v-auth")
            expect(mark).to_have_text(words)
            assert kind in (mark.get_attribute("class") or "")
            assert violations(page, axe) == []
        visit.shot(f"sender-mark-{width}-{scheme}")
    finally:
        context.close()


# -- the other API surfaces ------------------------------------------------------------------


def test_a_webhook_carries_the_results_once_the_checks_have_run(
    start_burnbox: Callable[..., Running], dns: DnsServer
) -> None:
    receiver = Receiver()
    try:
        secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
        server = start_burnbox(
            auth_checks=True,
            dns_server=dns.address,
            access="public",
            webhook_allow=("127.0.0.0/8",),
            webhook_url=receiver.url,
            webhook_secret=secret,
        )
        send(server, mail("Slow <a@slow.test>", "Hooked"), "a@slow.test")  # checks take 2 s+
        send(server, signed(mail("Acme <billing@acme.test>", "Hooked 2")), "b@acme.test")
        assert [json.loads(body)["data"]["message"]["subject"] for _, body, _ in
                receiver.wait_for(1)] == ["Hooked 2"]  # fmt: skip
        checked(server, "someone@localhost", "Hooked")  # its checks have ended meanwhile
        server.clock.advance(seconds=2)  # and the dispatcher looks at held events again
        received = [json.loads(body) for _, body, _ in receiver.wait_for(2)]
        told = {item["data"]["message"]["subject"]: item["data"] for item in received}
        assert told["Hooked"]["authentication"]["spf"] == "temperror"  # waited for its checks
        assert told["Hooked 2"]["authentication"]["verdict"] == "verified"
    finally:
        receiver.close()


def test_the_mcp_tools_say_who_sent_the_code(checking: Running) -> None:
    from mcp import Client

    async def flow() -> dict[str, Any]:
        async with Client(checking.http + "/mcp") as client:
            made = (await client.call_tool("create_inbox", {})).structured_content
            assert made is not None
            genuine = signed(mail("Acme <billing@acme.test>", "MCP code"))
            send(checking, genuine, "b@acme.test", to=made["address"])
            checked(checking, made["address"], "MCP code")
            waited = await client.call_tool("wait_for_code", {"inbox": made["inbox"]})
            assert waited.structured_content is not None
            return dict(waited.structured_content)

    # In a thread of its own: the page tests' browser (Playwright's sync API) holds this
    # module's main thread as a running event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        code = pool.submit(asyncio.run, flow()).result(60)
    assert code["code"] == "482913"
    assert code["sender_check"]["verdict"] == "verified"
    assert code["sender_check"]["from_domain"] == "acme.test"


def test_a_killed_check_process_loses_no_mail_and_is_replaced(checking: Running) -> None:
    assert checking.app.checks is not None
    code, _ = send(checking, signed(mail("Acme <billing@acme.test>", "Before")), "b@acme.test")
    assert code == 250
    assert checked(checking, "someone@localhost", "Before")["authentication"]["dkim"] == "pass"
    first = checking.app.checks.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    for number in range(3):  # whether it is seen gone before or while the mail is asked about
        subject = f"After {number}"
        code, _ = send(checking, signed(mail("Acme <billing@acme.test>", subject)), "b@acme.test")
        assert code == 250
        view = checked(checking, "someone@localhost", subject)
        assert view["authentication"]["dkim"] in ("pass", "temperror")
    assert checked(checking, "someone@localhost", "After 2")["authentication"]["dkim"] == "pass"
    assert checking.app.checks.pid not in (None, first)
    assert checking.app.checks.restarts == 1
    scraped = httpx.get(checking.http + "/metrics").text
    assert metric(scraped, 'burnbox_helper_restarts_total{helper="checks"}') == 1


def test_a_check_process_that_stops_answering_holds_mail_back_briefly_and_is_replaced(
    start_burnbox: Callable[..., Running], dns: DnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped (SIGSTOP), the process answers nothing: a message waits PATIENCE for its
    results, is stored without them, and is marked temperror once the silence has lasted
    longer than a check may take; the silent process is then killed and replaced."""
    monkeypatch.setattr(worker, "PATIENCE", 0.5)
    monkeypatch.setattr(worker, "SLACK", 0.5)  # silent past the 5 s budget and this: stuck
    server = start_burnbox(auth_checks=True, dns_server=dns.address, access="public")
    assert server.app.checks is not None
    send(server, signed(mail("Acme <billing@acme.test>", "Warm")), "b@acme.test")
    assert checked(server, "someone@localhost", "Warm")["authentication"]["dkim"] == "pass"
    stopped = server.app.checks.pid
    assert stopped is not None
    os.kill(stopped, signal.SIGSTOP)
    try:
        started = time.monotonic()
        code, _ = send(server, signed(mail("Acme <billing@acme.test>", "Held")), "b@acme.test")
        assert code == 250
        assert time.monotonic() - started < 5  # not the 60 s delivery timeout's 451
        listed = httpx.get(url(server, "someone@localhost", "/messages")).json()["messages"]
        assert [item["authentication"] for item in listed if item["subject"] == "Held"] == [None]
        held = checked(server, "someone@localhost", "Held")["authentication"]
        assert (held["spf"], held["dkim"], held["dmarc"]) == ("temperror",) * 3
    finally:
        os.kill(stopped, signal.SIGCONT)  # a no-op once it has been killed
    code, _ = send(server, signed(mail("Acme <billing@acme.test>", "Later")), "b@acme.test")
    assert code == 250
    assert checked(server, "someone@localhost", "Later")["authentication"]["dkim"] == "pass"
    assert server.app.checks.pid not in (None, stopped)
    assert server.app.checks.restarts == 1
    scraped = httpx.get(server.http + "/metrics").text
    assert metric(scraped, 'burnbox_helper_restarts_total{helper="checks"}') == 1
    assert metric(scraped, "burnbox_auth_late_total") == 1  # "Held"; "Later" had its own
    assert metric(scraped, 'burnbox_helper_restarts_total{helper="parse"}') == 0


def warmed_check_process(server: Running) -> tuple[worker.CheckProcess, int]:
    """The node's check process, once it has checked a message, and its pid."""
    checks = server.app.checks
    assert checks is not None
    send(server, signed(mail("Acme <billing@acme.test>", "Warm")), "b@acme.test")
    assert checked(server, "someone@localhost", "Warm")["authentication"]["dkim"] == "pass"
    assert checks.pid is not None
    return checks, checks.pid


def test_past_the_bound_on_answers_awaited_a_message_does_not_wait(
    start_burnbox: Callable[..., Running], dns: DnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With MAX_WAITING answers awaited from a check process that gives none (stopped), the
    next message does not queue behind them: it is stored at once, without its results,
    and checked in the background; the ones that waited get theirs when it goes on. Three
    are sent at once: whichever comes third is the one past the bound (waited on, not
    polled for)."""
    monkeypatch.setattr(worker, "MAX_WAITING", 2)
    monkeypatch.setattr(worker, "PATIENCE", 30.0)  # they wait for the process, not the clock
    server = start_burnbox(auth_checks=True, dns_server=dns.address, access="public")
    checks, stopped = warmed_check_process(server)
    os.kill(stopped, signal.SIGSTOP)
    subjects = [f"Sent {n}" for n in range(3)]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        try:
            sent = {
                pool.submit(
                    send, server, signed(mail("Acme <a@acme.test>", subject)), "a@acme.test"
                ): subject
                for subject in subjects
            }
            done, waiting = concurrent.futures.wait(
                sent, timeout=20, return_when=concurrent.futures.FIRST_COMPLETED
            )
            assert len(done) == 1  # the one past the bound; two still wait for answers
            (over,) = done
            assert over.result()[0] == 250
            assert not any(future.done() for future in waiting)
            assert checks.waiting == 3  # the two, and the third's check in the background
            listed = httpx.get(url(server, "someone@localhost", "/messages")).json()["messages"]
            stored = [item for item in listed if item["subject"] in subjects]
            assert [item["authentication"] for item in stored] == [None]  # stored, unchecked
            assert stored[0]["subject"] == sent[over]
        finally:
            os.kill(stopped, signal.SIGCONT)
        assert [future.result()[0] for future in waiting] == [250, 250]
    for subject in subjects:
        assert checked(server, "someone@localhost", subject)["authentication"]["dkim"] == "pass"
    assert checks.restarts == 0


def test_past_the_bound_on_bytes_unsent_a_message_does_not_wait(
    start_burnbox: Callable[..., Running], dns: DnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests a stopped check process has not taken hold a copy of their messages; past
    MAX_BUFFERED bytes of them none is sent: the next message is stored at once and its
    background check says temperror at once, rather than adding its copy to the pile."""
    monkeypatch.setattr(worker, "MAX_BUFFERED", 64 << 10)
    monkeypatch.setattr(worker, "PATIENCE", 3.0)
    server = start_burnbox(auth_checks=True, dns_server=dns.address, access="public")
    checks, stopped = warmed_check_process(server)
    large = "Your statement follows.\n" + "0123456789abcdef" * 62_500  # 1 MB: past any socket's
    os.kill(stopped, signal.SIGSTOP)
    try:
        started = time.monotonic()
        held = signed(mail("Acme <a@acme.test>", "Held", large))
        assert send(server, held, "a@acme.test")[0] == 250
        assert time.monotonic() - started >= 3.0  # it waited PATIENCE for an answer
        started = time.monotonic()
        assert send(server, signed(mail("Acme <b@acme.test>", "Over")), "b@acme.test")[0] == 250
        assert time.monotonic() - started < 1.5  # it did not: nothing was asked
        for subject in ("Held", "Over"):  # Held's background check came after its own copy
            found = checked(server, "someone@localhost", subject, timeout=3)["authentication"]
            assert (found["spf"], found["dkim"], found["dmarc"]) == ("temperror",) * 3
        assert checks.waiting == 0
    finally:
        os.kill(stopped, signal.SIGCONT)
    # Until the process has read the 1 MB request (nothing tells when), the pile may still
    # be past the bound: the next message is stored either way, checked or temperror.
    assert send(server, signed(mail("Acme <billing@acme.test>", "Later")), "b@acme.test")[0] == 250
    later = checked(server, "someone@localhost", "Later")["authentication"]
    assert later["dkim"] in ("pass", "temperror")
    assert checks.restarts == 0
    assert checks.pid == stopped  # it went on, not replaced
