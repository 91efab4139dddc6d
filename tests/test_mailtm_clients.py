"""Real mail.tm clients, unchanged, against a running burnbox's mail.tm listener: Mailjs's
own test file (run by Node with the package from the npm registry) and a Python client from
PyPI driving the whole flow, with mail sent over SMTP."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import mailtm
import pytest
import requests
from mailtm.events import EventStream

from burnbox.settings_values import Endpoint
from tests.helpers import RealClock, Running, test_settings
from tests.tools import npm_install, require, shared

HARNESS = Path(__file__).resolve().parent / "conformance" / "mailjs"
MAILJS_TESTS = Path(__file__).resolve().parent.parent.parent / "shared" / "conformance" / "mailjs"
EVENT_TIMEOUT = 60.0  # seconds a pushed event may take to arrive (a busy machine is slow)
WARM_UP_EVERY = 2.0  # seconds between warm-up messages until the stream hears one


@pytest.fixture
def real_time_burnbox(request: pytest.FixtureRequest) -> Iterator[Running]:
    """A burnbox with its mail.tm listener, on the real clock: the clients wait in real
    time (Mailjs sleeps a second after a 429, and expects the budget to have refilled).
    Parametrised indirectly with the request rate, mail.tm's 8/s by default."""
    rate = getattr(request, "param", "8/s")
    settings = test_settings(
        mailtm_listen=Endpoint("127.0.0.1", 0), mailtm_rate=rate, mailtm_account_rate=rate
    )
    running = Running(settings, RealClock())
    yield running
    running.stop()


def base_url(running: Running) -> str:
    assert running.app.mailtm_endpoint is not None
    return f"http://127.0.0.1:{running.app.mailtm_endpoint.port}"


def mailjs_checkout(target: Path) -> Path:
    """Mailjs's tests.js beside the harness (package.json, lock file, dist/mailjs.mjs) with
    the package installed from the npm registry."""
    tests = shared(MAILJS_TESTS / "tests.js", "Mailjs test file")
    npm_install(HARNESS, target)
    shutil.copy(tests, target / "tests.js")
    return target


def test_mailjs_own_test_file_passes_unchanged(real_time_burnbox: Running, tmp_path: Path) -> None:
    mailtm_server = base_url(real_time_burnbox)
    node = require("node")
    checkout = mailjs_checkout(tmp_path / "mailjs")
    assert (checkout / "tests.js").read_bytes() == (MAILJS_TESTS / "tests.js").read_bytes()
    result = subprocess.run(
        [node, "--test", "tests.js"],
        cwd=checkout,
        env={
            **os.environ,
            "MAILTM_BASE_URL": mailtm_server,
            "MAILTM_MERCURE_URL": mailtm_server + "/.well-known/mercure",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# pass 7" in result.stdout
    assert "# fail 0" in result.stdout


def send(port: int, recipient: str, subject: str, body: str, attachment: bytes) -> None:
    mail = EmailMessage()
    mail["From"] = "Shop <noreply@shop.example>"
    mail["To"] = recipient
    mail["Subject"] = subject
    mail.set_content(body)
    mail.add_attachment(attachment, maintype="application", subtype="pdf", filename="invoice.pdf")
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.send_message(mail)


def watch(stream: EventStream, seen: queue.Queue[dict[str, object]]) -> None:
    """Every event's JSON until the stream ends (the account's deletion ends it)."""
    try:
        for event in stream.iter_events():
            seen.put(event.json())
    except requests.RequestException as error:  # the server went first: the test says so
        seen.put({"@type": f"broken stream ({type(error).__name__})"})
    else:
        seen.put({"@type": "end of stream"})


def next_of_type(
    seen: queue.Queue[dict[str, object]], kind: str, **wanted: object
) -> dict[str, object]:
    """The next event of `kind` whose fields have the `wanted` values (others are passed:
    a late warm-up message, an account update)."""
    while True:
        event = seen.get(timeout=EVENT_TIMEOUT)
        if event.get("@type") == kind and all(event.get(k) == v for k, v in wanted.items()):
            return event


def warm_up(port: int, address: str, seen: queue.Queue[dict[str, object]]) -> None:
    """Until the stream hears a message: one heard proves it is subscribed, so nothing sent
    after is missed. The stream connects in its own thread, on a busy machine late, and a
    message published before it subscribed never reaches it; so send again until one does."""
    deadline = time.monotonic() + EVENT_TIMEOUT
    while time.monotonic() < deadline:
        send(port, address, "Warm-up", "hello", b"%PDF-0")
        with contextlib.suppress(queue.Empty):
            event = seen.get(timeout=WARM_UP_EVERY)
            if event.get("@type") == "Message":
                assert event["subject"] == "Warm-up"
                return
    raise AssertionError("the Mercure stream never heard a message")


def check_the_code_message(client: mailtm.MailTM, message_id: str) -> None:
    """The message read whole through the client: its text, sender and attachment."""
    full = client.get_message(message_id)
    assert "482913" in (full.text or "")
    assert full.from_ is not None
    assert full.from_.address == "noreply@shop.example"
    assert [item.filename for item in full.attachments] == ["invoice.pdf"]
    assert client.download_attachment(full.attachments[0]) == b"%PDF-1.4 x"


def delete_the_account(
    client: mailtm.MailTM, seen: queue.Queue[dict[str, object]], listener: threading.Thread
) -> None:
    """The account deleted: its stream says so and ends; its password no longer signs in."""
    address, password = client.address, client.password
    assert address is not None
    assert password is not None
    client.delete_account()
    assert next_of_type(seen, "Account")["isDeleted"] is True
    assert next_of_type(seen, "end of stream")
    listener.join(EVENT_TIMEOUT)
    with pytest.raises(mailtm.AuthenticationError):
        client.get_token(address, password)


# This client does not wait and retry on 429 as Mailjs does: its flow runs under a
# budget it stays within (the 8/s default is Mailjs's test's, and the contract tests').
@pytest.mark.parametrize("real_time_burnbox", ["100/s"], indirect=True)
def test_a_python_client_from_pypi_runs_the_whole_flow(real_time_burnbox: Running) -> None:
    running = real_time_burnbox
    base = base_url(running)
    client = mailtm.MailTM(base_url=base)
    domains = [domain.domain for domain in client.get_domains().members]
    assert domains == ["localhost", "example.test"]
    account = client.create_account()  # a random address at the first domain, signed in
    assert client.account is not None
    assert client.token
    assert account.address == client.address
    assert account.address.endswith("@localhost")

    hub = base + "/.well-known/mercure"
    stream = EventStream(client.token, f"/accounts/{account.id}", hub_url=hub)
    seen: queue.Queue[dict[str, object]] = queue.Queue()
    listener = threading.Thread(target=watch, args=(stream, seen), daemon=True)
    listener.start()
    warm_up(running.smtp_port, account.address, seen)

    send(running.smtp_port, account.address, "Your code", "Your code is 482913.", b"%PDF-1.4 x")
    pushed = next_of_type(seen, "Message", subject="Your code")
    assert isinstance(used := next_of_type(seen, "Account")["used"], int)
    assert used > 0

    polled = client.wait_for_message(subject="Your code", timeout=EVENT_TIMEOUT, interval=0.2)
    assert polled.id == pushed["id"]
    check_the_code_message(client, polled.id)

    assert client.mark_seen(polled.id) is True
    assert next_of_type(seen, "Message", id=polled.id)["seen"] is True
    source = client.get_source(polled.id)
    assert isinstance(source, dict)
    assert "Subject: Your code" in str(source["data"])
    assert client.download_message(polled.id) == running.stored(account.address)[-1]
    client.delete_message(polled.id)
    assert next_of_type(seen, "Message", id=polled.id, isDeleted=True)
    assert {message.subject for message in client.iter_messages()} == {"Warm-up"}

    delete_the_account(client, seen, listener)


BARE_PATCH_CLIENT = """
import json, sys
from mailtm.client import MailTMClient

MailTMClient.BASE_URL = sys.argv[1]  # the client's one setting: where mail.tm is
client = MailTMClient(account=sys.argv[2], password="secret-password")
(message,) = client.get_messages()
before = message.seen
detail = client.mark_message_as_read(message.id)  # a PATCH with no body at all
after = client.get_message_by_id(message.id)
print(json.dumps({"before": before, "answer": detail.seen, "after": after.seen,
                  "subject": after.subject, "code": "482913" in after.text}))
"""


@pytest.fixture(scope="module")
def mailtm_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PyPI's mailtm-python 0.1.0, unchanged, in a folder of its own: its module is also
    called `mailtm`, as the other client's is."""
    target = tmp_path_factory.mktemp("mailtm-python")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(target), "mailtm-python==0.1.0"],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    return target


def test_a_client_that_marks_seen_with_a_bare_patch(
    real_time_burnbox: Running, mailtm_python: Path
) -> None:
    address = "bare-patch@localhost"
    running = real_time_burnbox
    made = httpx.post(
        base_url(running) + "/accounts",
        json={"address": address, "password": "secret-password"},
    )
    assert made.status_code == 201
    send(running.smtp_port, address, "Your code", "Your code is 482913.", b"%PDF-1")
    running.wait_for_mail({address: 1})
    result = subprocess.run(
        [sys.executable, "-c", BARE_PATCH_CLIENT, base_url(running), address],
        env={**os.environ, "PYTHONPATH": str(mailtm_python)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == {
        "before": False,
        "answer": True,
        "after": True,
        "subject": "Your code",
        "code": True,
    }
