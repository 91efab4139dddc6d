"""Sink mode and the MailHog API: the `mailhog` npm package's own test suite (unchanged), a
MailHog client from PyPI, and contract tests of our own for every route and field."""

from __future__ import annotations

import base64
import json
import os
import shutil
import smtplib
import socket
import subprocess
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import mailhog
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from burnbox.settings import Settings, SettingsError, check_sink
from burnbox.settings_values import Endpoint
from burnbox.sink import SINK_ADDRESS
from tests.helpers import Running, test_settings
from tests.tools import npm_install, require, shared

HARNESS = Path(__file__).resolve().parent / "conformance" / "mailhog"
SUITE = Path(__file__).resolve().parent.parent.parent / "shared" / "conformance" / "mailhog-node"
MAILHOG_SMTP, MAILHOG_HTTP = 1025, 8025  # the suite talks to MailHog's own ports


def free_loopback_alias() -> str:
    """A loopback address (127.77.k.1) where MailHog's two ports are free: the suite needs
    exactly 1025 and 8025, and a private address keeps them from clashing with anything
    on 127.0.0.1."""
    for k in range(1, 200):
        host = f"127.77.{k}.1"
        try:
            for port in (MAILHOG_SMTP, MAILHOG_HTTP):
                with socket.socket() as probe:
                    probe.bind((host, port))
        except OSError:
            continue
        return host
    raise AssertionError("no free loopback alias for ports 1025 and 8025")


def sink_settings(**overrides: Any) -> Settings:
    return test_settings(sink=True, access="public", **overrides)


@pytest.fixture
def sink(start_burnbox: Callable[..., Running]) -> Running:
    return start_burnbox(sink=True, access="public", sink_api="mailhog")


def send(running: Running, sender: str, recipients: list[str], message: EmailMessage) -> None:
    """Send, and wait until it is stored: its first recipient's copy and the shared view's
    are stored together."""
    before = running.call(running.app.store.usage(recipients[0]))[0]
    with smtplib.SMTP(running.app.smtp_endpoint.host, running.smtp_port, timeout=10) as client:
        client.send_message(message, sender, recipients)
    running.wait_for_mail({recipients[0]: before + 1})


def mail(subject: str, to: str = "Dev <dev@anywhere.example>", **extra: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "App <app@qa.example>"
    message["To"] = to
    message["Subject"] = subject
    for name, value in extra.items():
        message[name.replace("_", "-")] = value
    message.set_content("Your code is 482913.")
    return message


# -- the mailhog package's own suite, unchanged ------------------------------------------


def test_the_mailhog_packages_own_suite_passes_unchanged(
    start_burnbox: Callable[..., Running], tmp_path: Path
) -> None:
    shared(SUITE / "index.test.js", "mailhog-node suite")
    node = require("node")
    require("msmtp")  # what carries out the suite's `sendmail -S host:port` (bin/sendmail)
    host = free_loopback_alias()
    start_burnbox(
        sink=True,
        access="public",
        sink_api="mailhog",
        smtp_listen=Endpoint(host, MAILHOG_SMTP),
        http_listen=Endpoint(host, MAILHOG_HTTP),
    )
    harness = npm_install(HARNESS, tmp_path / "harness")
    # The suite requires the package as `require('.')`: it runs inside a copy of it.
    suite = harness / "suite"
    shutil.copytree(harness / "node_modules" / "mailhog", suite)
    shutil.copytree(SUITE, suite, dirs_exist_ok=True)
    assert (suite / "index.test.js").read_bytes() == (SUITE / "index.test.js").read_bytes()
    result = subprocess.run(
        [node, str(harness / "node_modules" / "mocha" / "bin" / "mocha.js"), "index.test.js"],
        cwd=suite,
        env={
            **os.environ,
            "MAILHOG_HOST": host,
            "PATH": f"{harness / 'bin'}{os.pathsep}{os.environ['PATH']}",
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "41 passing" in result.stdout
    assert "failing" not in result.stdout


# -- a MailHog client from PyPI ------------------------------------------------------------


def test_a_python_mailhog_client_runs_its_typical_calls(
    start_burnbox: Callable[..., Running],
) -> None:
    host = free_loopback_alias()
    running = start_burnbox(
        sink=True,
        access="public",
        sink_api="mailhog",
        smtp_listen=Endpoint(host, MAILHOG_SMTP),
        http_listen=Endpoint(host, MAILHOG_HTTP),
    )
    client = mailhog.Mailhog(host=host, port=MAILHOG_HTTP)
    send(
        running, "app@qa.example", ["alice@shop.test"], mail("Welcome Alice", to="alice@shop.test")
    )
    send(running, "app@qa.example", ["bob@other.test"], mail("Reset Bob", to="bob@other.test"))
    everything = client.messages()
    assert (everything.total, everything.count) == (2, 2)
    latest_to_bob = client.search("bob@other.test", kind="to", limit=1).items[0]
    assert latest_to_bob.get_recipients() == ["bob@other.test"]
    assert latest_to_bob.get_sender() == "app@qa.example"
    assert latest_to_bob.get_subject() == "Reset Bob"
    assert client.search("Welcome", kind="containing").count == 1
    client.delete(latest_to_bob)
    assert client.messages().total == 1
    client.delete_all()
    assert client.messages().total == 0


AWESOME_CLIENT = """
const { MailhogClient } = require("mailhog-awesome");
(async () => {
  const client = new MailhogClient({ host: process.env.MAILHOG_HOST, port: 8025 });
  const all = await client.getAllEmails();          // always asks for a limit of 5000
  const last = await client.getLastEmail({ to: "bob@other.test" });
  const found = await client.getEmails({ body: "Welcome" });
  const deleted = await client.deleteEmails({ to: "alice@shop.test" });
  const left = await client.getAllEmails();
  console.log(JSON.stringify({ all: all.map((e) => e.subject), last: last.subject,
    found: found.map((e) => e.to), deleted, left: left.map((e) => e.subject) }));
})().catch((error) => { console.error(error); process.exit(1); });
"""


def test_the_mailhog_awesome_client_works_with_its_default_limit(
    start_burnbox: Callable[..., Running], tmp_path: Path
) -> None:
    """npm mailhog-awesome 0.1.4, unchanged: every call asks /api/v2 for 5000 messages."""
    node = require("node")
    host = free_loopback_alias()
    running = start_burnbox(
        sink=True, access="public", sink_api="mailhog", http_listen=Endpoint(host, MAILHOG_HTTP)
    )
    send(running, "app@qa.example", ["alice@shop.test"], mail("Welcome", to="alice@shop.test"))
    send(running, "app@qa.example", ["bob@other.test"], mail("Reset", to="bob@other.test"))
    harness = npm_install(HARNESS, tmp_path / "harness")
    (harness / "flow.js").write_text(AWESOME_CLIENT)
    result = subprocess.run(
        [node, "flow.js"],
        cwd=harness,
        env={**os.environ, "MAILHOG_HOST": host},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == {
        "all": ["Reset", "Welcome"],
        "last": "Reset",
        "found": ["alice@shop.test"],
        "deleted": True,
        "left": ["Reset"],
    }


def test_the_v2_websocket_pushes_each_new_message(sink: Running) -> None:
    socket_url = sink.http.replace("http:", "ws:") + "/api/v2/websocket"
    with ws_connect(socket_url, open_timeout=10) as feed:
        send(sink, "app@qa.example", ["live@x.test"], mail("Live"))
        pushed = json.loads(feed.recv(timeout=30))
    stored = httpx.get(sink.http + f"/api/v1/messages/{pushed['ID']}").json()
    assert pushed == stored  # MailHog's message object, as the API has it
    assert pushed["Content"]["Headers"]["Subject"] == ["Live"]
    foreign = {"Origin": "http://evil.example"}  # a page of another site
    with pytest.raises(InvalidStatus), ws_connect(socket_url, additional_headers=foreign):
        pass


def test_the_v2_websocket_is_absent_without_sink_mode(server: Running) -> None:
    socket_url = server.http.replace("http:", "ws:") + "/api/v2/websocket"
    with pytest.raises((InvalidStatus, ConnectionClosed)), ws_connect(socket_url) as feed:
        feed.recv(timeout=10)


# -- sink mode -------------------------------------------------------------------------


def test_sink_mode_is_refused_unless_public() -> None:
    with pytest.raises(SettingsError, match="BURNBOX_ACCESS=public"):
        check_sink(test_settings(sink=True))


@pytest.mark.parametrize("host", ["0.0.0.0", "8.8.8.8", "mail.example.org"])
def test_sink_mode_is_refused_on_a_public_listen_address(host: str) -> None:
    settings = sink_settings(smtp_listen=Endpoint(host, 25))
    with pytest.raises(SettingsError, match="BURNBOX_SMTP_LISTEN"):
        check_sink(settings)
    check_sink(sink_settings(smtp_listen=Endpoint(host, 25), sink_any_listen=True))
    check_sink(sink_settings(smtp_listen=Endpoint("10.1.2.3", 25)))  # a private network


def test_sink_mode_accepts_every_domain_reserved_names_included(sink: Running) -> None:
    reserved = ["x@burnbox.invalid", "y@qa.test", "z@example.com", "w@localhost", "v@a.example"]
    with smtplib.SMTP("127.0.0.1", sink.smtp_port, timeout=10) as client:
        client.ehlo("qa.test")
        client.mail("app@qa.example")
        assert client.rcpt("someone@never-configured.example")[0] == 250
        assert all(client.rcpt(address)[0] == 250 for address in reserved)
        assert client.rcpt(SINK_ADDRESS)[0] >= 500  # the shared view is no address at all


def test_the_start_banner_and_readyz_say_sink_mode_is_on(sink: Running) -> None:
    assert "sink     ON" in sink.app.banner()
    assert httpx.get(sink.http + "/readyz").json()["sink"] is True


def test_without_sink_mode_there_is_no_mailhog_api(server: Running) -> None:
    assert httpx.get(server.http + "/api/v2/messages").status_code == 404
    assert httpx.get(server.http + "/readyz").json()["sink"] is False


def test_each_message_is_kept_once_in_the_view_and_once_per_inbox(sink: Running) -> None:
    message = mail("Hello", to="a@one.test, b@two.test", Cc="c@three.test")
    send(sink, "app@qa.example", ["a@one.test", "b@two.test", "c@three.test"], message)
    listed = httpx.get(sink.http + "/api/v2/messages").json()
    assert (listed["total"], listed["count"], listed["start"]) == (1, 1, 0)
    (item,) = listed["items"]
    assert [f"{p['Mailbox']}@{p['Domain']}" for p in item["To"]] == [
        "a@one.test",
        "b@two.test",
        "c@three.test",
    ]
    own = httpx.get(sink.http + "/api/inboxes/b@two.test/messages").json()["messages"]
    assert [summary["subject"] for summary in own] == ["Hello"]  # and the per-address inbox


def test_the_shared_view_is_bounded_by_the_per_inbox_cap(
    start_burnbox: Callable[..., Running],
) -> None:
    running = start_burnbox(sink=True, access="public", sink_api="mailhog", inbox_max_messages=3)
    for number in range(5):
        send(running, "app@qa.example", [f"u{number}@x.test"], mail(f"n{number}"))
    listed = httpx.get(running.http + "/api/v2/messages").json()
    assert listed["total"] == 3
    subjects = [item["Content"]["Headers"]["Subject"][0] for item in listed["items"]]
    assert subjects == ["n4", "n3", "n2"]  # newest first; the oldest went first


# -- the routes and fields -----------------------------------------------------------------


def test_a_message_object_has_mailhogs_shape(sink: Running) -> None:
    message = mail("Shape", Cc="c@three.test")
    message.add_attachment(b"\x00\x01binary", "application", "octet-stream", filename="a.bin")
    send(sink, "app@qa.example", ["dev@anywhere.example"], message)
    (item,) = httpx.get(sink.http + "/api/v2/messages").json()["items"]
    assert set(item) == {"ID", "From", "To", "Content", "Created", "MIME", "Raw"}
    assert item["From"] == {"Relays": None, "Mailbox": "app", "Domain": "qa.example", "Params": ""}
    headers = item["Content"]["Headers"]
    assert headers["Subject"] == ["Shape"]
    assert headers["Return-Path"] == ["<app@qa.example>"]
    assert headers["Received"][0].startswith("from ")
    assert set(item["Content"]) == {"Headers", "Body", "Size", "MIME"}
    assert item["Raw"]["From"] == "app@qa.example"
    assert item["Raw"]["To"] == ["dev@anywhere.example"]
    assert item["Raw"]["Helo"]
    assert item["Raw"]["Data"].startswith("Received: from ")
    parts = item["MIME"]["Parts"]
    assert len(parts) == 2
    attachment = parts[1]
    assert attachment["Headers"]["Content-Transfer-Encoding"] == ["base64"]
    assert base64.b64decode(attachment["Body"]) == b"\x00\x01binary"  # still encoded
    one = httpx.get(sink.http + f"/api/v1/messages/{item['ID']}").json()
    assert one == item
    assert httpx.get(sink.http + "/api/v1/messages").json() == [item]
    part = httpx.get(sink.http + f"/api/v1/messages/{item['ID']}/mime/part/1/download")
    assert part.content == b"\x00\x01binary"
    raw = httpx.get(sink.http + f"/api/v1/messages/{item['ID']}/download")
    assert raw.headers["content-type"] == "message/rfc822"
    assert raw.content.decode().removesuffix("\r\n") == item["Raw"]["Data"]
    missing = httpx.get(sink.http + f"/api/v1/messages/{item['ID']}/mime/part/9/download")
    assert missing.status_code == 404


def test_v2_pages_and_search_kinds(sink: Running) -> None:
    for number in range(3):
        send(sink, f"s{number}@qa.example", [f"r{number}@x.test"], mail(f"m{number}"))
    page = httpx.get(sink.http + "/api/v2/messages", params={"start": 1, "limit": 1}).json()
    assert (page["total"], page["count"], page["start"]) == (3, 1, 1)
    assert page["items"][0]["Content"]["Headers"]["Subject"] == ["m1"]
    for kind, query, subjects in [
        ("from", "s2@qa.example", ["m2"]),
        ("to", "r0@x.test", ["m0"]),
        ("containing", "SUBJECT: M1", ["m1"]),  # the raw source, any case
        ("containing", "482913", ["m2", "m1", "m0"]),
    ]:
        found = httpx.get(sink.http + "/api/v2/search", params={"kind": kind, "query": query})
        got = [item["Content"]["Headers"]["Subject"][0] for item in found.json()["items"]]
        assert got == subjects, (kind, query)
    for params in ({"kind": "bcc", "query": "x"}, {"kind": "from", "query": ""}, {}):
        bad = httpx.get(sink.http + "/api/v2/search", params=params)
        assert (bad.status_code, bad.content) == (400, b""), params  # as MailHog answers


def send_many(running: Running, count: int) -> None:
    """`count` messages over one SMTP session, each to its own address, then stored."""
    with smtplib.SMTP(running.app.smtp_endpoint.host, running.smtp_port, timeout=30) as client:
        for number in range(count):
            client.send_message(mail(f"p{number}"), "app@qa.example", [f"p{number}@x.test"])
    running.wait_for_mail({f"p{count - 1}@x.test": 1})
    running.wait_for_mail({SINK_ADDRESS: count})


@pytest.mark.parametrize("path", ["/api/v2/messages", "/api/v2/search"])
def test_v2_paging_falls_back_and_clamps_as_mailhog_does(sink: Running, path: str) -> None:
    """MailHog never refuses a start or limit: over 250 is 250; zero, negative, empty or not
    a number is start 0 and limit 50 (npm mailhog-awesome always asks for 5000)."""
    send_many(sink, 260)
    search = {"kind": "containing", "query": "482913"} if path.endswith("search") else {}

    def page(**params: str) -> dict[str, Any]:
        answer = httpx.get(sink.http + path, params={**search, **params}, timeout=30)
        assert answer.status_code == 200, (params, answer.text)
        return dict(answer.json())

    def subjects(found: dict[str, Any]) -> list[str]:
        return [item["Content"]["Headers"]["Subject"][0] for item in found["items"]]

    for limit in ("5000", "251", "+300", "9223372036854775807"):
        found = page(limit=limit)
        assert (found["total"], found["count"], found["start"]) == (260, 250, 0), limit
    for limit in ("0", "-3", "", "ten", "1.5", " 7", "99999999999999999999"):
        found = page(limit=limit)
        assert (found["count"], found["start"]) == (50, 0), limit
        assert subjects(found) == [f"p{n}" for n in range(259, 209, -1)]  # newest first
    for start in ("-1", "", "x", "0"):
        assert page(start=start, limit="2")["start"] == 0, start
    found = page(start="258", limit="5")
    assert (found["start"], found["count"], subjects(found)) == (258, 2, ["p1", "p0"])
    beyond = page(start="1000", limit="5")
    assert (beyond["total"], beyond["count"], beyond["start"], beyond["items"]) == (
        260,
        0,
        1000,
        [],
    )


def test_raw_helo_is_the_name_the_client_gave(start_burnbox: Callable[..., Running]) -> None:
    for received_ip in (False, True):
        running = start_burnbox(
            sink=True, access="public", sink_api="mailhog", received_client_ip=received_ip
        )
        with smtplib.SMTP(
            "127.0.0.1", running.smtp_port, local_hostname="client.example", timeout=10
        ) as client:
            client.send_message(mail("helo"), "app@qa.example", ["h@x.test"])
        with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10) as client:
            client.helo("[127.0.0.1]")
            client.send_message(mail("helo literal"), "app@qa.example", ["h@x.test"])
        running.wait_for_mail({"h@x.test": 2})
        items = httpx.get(running.http + "/api/v2/messages").json()["items"]
        assert [item["Raw"]["Helo"] for item in items] == ["[127.0.0.1]", "client.example"]


def test_jim_is_never_enabled(sink: Running) -> None:
    assert httpx.get(sink.http + "/api/v2/jim").status_code == 404
    assert httpx.delete(sink.http + "/api/v2/jim").status_code == 404
    refused = httpx.post(sink.http + "/api/v2/jim")
    assert refused.status_code == 501
    assert refused.json()["error"]["code"] == "not_supported"


def test_deletes_one_and_all(sink: Running) -> None:
    for number in range(2):
        send(sink, "app@qa.example", ["dev@x.test"], mail(f"d{number}"))
    items = httpx.get(sink.http + "/api/v2/messages").json()["items"]
    assert httpx.delete(sink.http + f"/api/v1/messages/{items[0]['ID']}").status_code == 200
    assert httpx.delete(sink.http + f"/api/v1/messages/{items[0]['ID']}").status_code == 404
    assert httpx.get(sink.http + "/api/v2/messages").json()["total"] == 1
    assert httpx.delete(sink.http + "/api/v1/messages").status_code == 200
    assert httpx.get(sink.http + "/api/v2/messages").json()["total"] == 0
    send(sink, "app@qa.example", ["dev@x.test"], mail("after"))  # the view stays open
    assert httpx.get(sink.http + "/api/v2/messages").json()["total"] == 1
    foreign = httpx.delete(sink.http + "/api/v1/messages", headers={"origin": "https://evil.test"})
    assert foreign.status_code == 403


def test_release_delivers_only_to_itself(sink: Running) -> None:
    send(sink, "app@qa.example", ["dev@x.test"], mail("to release"))
    (item,) = httpx.get(sink.http + "/api/v2/messages").json()["items"]
    url = sink.http + f"/api/v1/messages/{item['ID']}/release"
    to_self = {"host": "localhost", "port": str(sink.smtp_port), "email": "qa@y.test"}
    released = httpx.post(url, content=json.dumps(to_self))  # no content type, as MailHog's clients
    assert released.status_code == 200
    sink.wait_for_mail({SINK_ADDRESS: 2})
    newest = httpx.get(sink.http + "/api/v2/messages").json()["items"][0]
    assert newest["Raw"]["To"] == ["qa@y.test"]
    assert newest["ID"] != item["ID"]
    for host, port in (("smtp.gmail.com", 25), ("127.0.0.1", 25), ("10.0.0.1", sink.smtp_port)):
        elsewhere = {"host": host, "port": port, "email": "victim@y.test"}
        refused = httpx.post(url, json=elsewhere)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "not_supported"
    assert httpx.post(url, content=b"not json").status_code == 422


def test_v1_events_push_each_new_message(sink: Running) -> None:
    with httpx.stream("GET", sink.http + "/api/v1/events", timeout=15) as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")  # subscribed: nothing sent now is missed
        send(sink, "app@qa.example", ["dev@x.test"], mail("pushed"))
        data = next(line for line in lines if line.startswith("data: "))
    pushed = json.loads(data[6:])
    assert pushed["Content"]["Headers"]["Subject"] == ["pushed"]
