"""What the tests share: a fake clock, a burnbox running in a thread, an SMTP conversation
at the byte level, API and SMTP shortcuts, the corpus, a private PostgreSQL cluster.
Fixtures are in conftest.py; test modules import helpers from here, never from each other."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import glob
import os
import pwd
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
import uvloop
from httpx_sse import connect_sse

from burnbox.app import App
from burnbox.settings import Settings
from burnbox.settings_values import Endpoint
from tests.process import free_port, start_node

T = TypeVar("T")

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"

REPLY_TIMEOUT = 10.0  # seconds a test waits for one SMTP reply before failing


def real_now() -> datetime:
    """The real time, to the whole second: where every fake clock starts, so that nothing
    a test checks depends on the date it runs (a browser and a cookie jar compare our
    dates with the real clock)."""
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    """A time as the API writes it."""
    return moment.isoformat().replace("+00:00", "Z")


class FakeClock:
    """The one thing besides ids that tests may fake: it starts at the real time, and
    then moves only when the test says."""

    def __init__(self) -> None:
        self.now = real_now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class RealClock(FakeClock):
    """The real clock, for tests that run a real client which waits in real time (a
    mail.tm client sleeps a second after a 429 and expects the budget to have refilled)."""

    def __call__(self) -> datetime:
        return datetime.now(UTC)


class Running:
    """A burnbox App running on its own event loop in a background thread."""

    def __init__(self, settings: Settings, clock: FakeClock) -> None:
        self.clock = clock
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.app: App = self.call(self._build(settings))
        self.smtp_port = self.app.smtp_endpoint.port
        self.http_port = self.app.http_endpoint.port
        self.http = f"http://127.0.0.1:{self.http_port}"

    async def _build(self, settings: Settings) -> App:
        app = App(settings, clock=self.clock)
        await app.start()
        return app

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        """Stop it (once: a test may stop a node itself before the fixture does)."""
        if self.loop.is_closed():
            return
        self.call(self.app.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def stored(self, address: str) -> list[bytes]:
        """Raw bytes of every message in an inbox, oldest first."""

        async def fetch() -> list[bytes]:
            summaries = await self.app.store.summaries(address, limit=10_000)
            return [await self.app.store.raw(address, s.id) for s in reversed(summaries)]

        return self.call(fetch())

    def count(self) -> int:
        return self.app.store.stats().messages

    def wait_for_mail(self, expected: dict[str, int], timeout: float = 60.0) -> None:
        """Until each address holds at least its count of messages: woken by the hub's
        events for those inboxes, never by a timer; fails after `timeout` seconds."""

        async def held(address: str) -> int:
            return (await self.app.store.usage(address))[0]

        async def until_stored() -> None:
            async with contextlib.AsyncExitStack() as stack:
                feeds = {
                    address: await stack.enter_async_context(self.app.hub.subscribe(address))
                    for address in expected
                }
                async with asyncio.timeout(timeout):
                    for address, count in expected.items():
                        while await held(address) < count:
                            await feeds[address].next()

        self.call(until_stored(), timeout=timeout + 5)


def wait_for_checks(running: Running, address: str, timeout: float = 30.0) -> None:
    """Until every message held for `address` has its sender checks recorded: woken by
    the hub's "updated" events for it, never by a timer."""

    async def unchecked() -> int:
        summaries = await running.app.store.summaries(address, limit=10_000)
        return sum(not summary.auth for summary in summaries)

    async def until_checked() -> None:
        async with running.app.hub.subscribe(address) as feed, asyncio.timeout(timeout):
            while await unchecked():
                await feed.next()

    running.call(until_checked(), timeout=timeout + 5)


def test_settings(**overrides: Any) -> Settings:
    base = Settings(
        smtp_listen=Endpoint("127.0.0.1", 0),
        http_listen=Endpoint("127.0.0.1", 0),
        hostname="mx.test",
        domains=("localhost", "example.test", "*.wild.test"),
        # The sender checks ask DNS: the tests that want them give a DNS server of their own
        # (tests/test_trust.py); the others run as a node with them off.
        auth_checks=False,
    )
    return dataclasses.replace(base, **overrides)


test_settings.__test__ = False  # type: ignore[attr-defined]


class Conversation:
    """A byte-level SMTP client: send exact bytes, read whole replies."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=REPLY_TIMEOUT)
        self._pending = b""
        self.greeting = self.reply()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> str:
        """One complete (possibly multi-line) reply; '' when the server closed."""
        lines: list[str] = []
        while True:
            while b"\r\n" not in self._pending:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return "\n".join(lines)
                self._pending += chunk
            line, self._pending = self._pending.split(b"\r\n", 1)
            text = line.decode()
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                return "\n".join(lines)

    def command(self, line: str | bytes) -> str:
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.reply()

    def closed(self) -> bool:
        """True once the server has closed the connection (waits for it)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


CORPUS_MISSING = (
    f"no corpus at {CORPUS}: the real-world messages from public parser test "
    "suites that ship beside this repository in shared/corpus (MANIFEST.tsv "
    "names each file's source); CI must have it"
)


def _corpus() -> list[Path]:
    """Every corpus message, checked against its manifest so a partial copy is noticed."""
    found = sorted(CORPUS.glob("*.eml"))
    if found:
        listed = (CORPUS / "MANIFEST.tsv").read_text().splitlines()[1:]
        assert sorted(line.split("\t")[0] for line in listed if line) == [
            path.name for path in found
        ], "the corpus does not match its MANIFEST.tsv"
    return found


def corpus_messages() -> list[Path]:
    """Inside a test: every corpus message. If the corpus is missing the test fails under
    CI and is skipped elsewhere, saying where the corpus comes from; never an empty list."""
    found = _corpus()
    if not found:
        if os.environ.get("CI"):
            pytest.fail(CORPUS_MISSING)
        pytest.skip(CORPUS_MISSING)
    return found


def corpus_cases() -> list[Any]:
    """For parametrize: one case per corpus message. If the corpus is missing, collection
    fails under CI; elsewhere there is one case, skipped with the reason."""
    found = _corpus()
    if found:
        return found
    if os.environ.get("CI"):
        raise pytest.UsageError(CORPUS_MISSING)
    return [pytest.param(None, marks=pytest.mark.skip(reason=CORPUS_MISSING), id="no-corpus")]


def create(server: Running, **body: object) -> dict[str, Any]:
    response = httpx.post(server.http + "/api/inboxes", json=body or None)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def auth(inbox: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {inbox['token']}"}


def url(server: Running, address: str, tail: str = "") -> str:
    return f"{server.http}/api/inboxes/{quote(address)}{tail}"


def send(server: Running, to: str, message: bytes | EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        if isinstance(message, EmailMessage):
            client.send_message(message, "sender@example.org", [to])
        else:
            client.sendmail("sender@example.org", [to], message)


def begin(conversation: Conversation, recipient: str = "user@localhost") -> None:
    assert conversation.command("EHLO client.test").startswith("250")
    assert conversation.command("MAIL FROM:<sender@example.org>").startswith("250")
    assert conversation.command(f"RCPT TO:<{recipient}>").startswith("250")


STORED = re.compile(rb"250 2\.0\.0 OK: stored as (\w+)")


def serve(store: str, smtp_port: int, http_port: int) -> subprocess.Popen[str]:
    """A node on `store` whose inboxes anyone may read (these tests check what is stored)."""
    return start_node(
        "--store", store, "--access", "public", smtp=smtp_port, http=http_port
    ).process


def metric(text: str, name: str) -> float:
    """One sample's value from the Prometheus text format (0 when it is absent)."""
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


class Cluster:
    """A PostgreSQL cluster in a temporary directory, on its own port: never the shared one."""

    def __init__(self) -> None:
        if not PG_BIN:
            if os.environ.get("CI"):
                pytest.fail("PostgreSQL server binaries are missing")
            pytest.skip("PostgreSQL server binaries are not installed")
        self.bin = Path(PG_BIN[-1])
        self.root = Path(tempfile.mkdtemp(prefix="burnbox-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.data.mkdir()
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0  # initdb refuses to run as root
        if self._as_postgres:
            account = pwd.getpwnam("postgres")
            os.chown(self.data, account.pw_uid, account.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _command(self, tool: str, *arguments: str) -> list[str]:
        command = [str(self.bin / tool), *arguments]
        return ["runuser", "-u", "postgres", "--", *command] if self._as_postgres else command

    def _run(self, tool: str, *arguments: str) -> None:
        subprocess.run(
            self._command(tool, *arguments), check=True, capture_output=True, timeout=120
        )

    def begin_smart_stop(self) -> subprocess.Popen[bytes]:
        """A smart shutdown, begun: PostgreSQL refuses new sessions ("the database system
        is shutting down") until its last session ends, then stops; wait on the result."""
        stop = self._command("pg_ctl", "-D", str(self.data), "-w", "-m", "smart", "stop")
        return subprocess.Popen(stop, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.data / "log"),
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "fast", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def without_received(raw: bytes, count: int) -> bytes:
    """`raw` without its first `count` Received: header fields (each possibly folded)."""
    for _ in range(count):
        match = re.match(rb"Received:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", raw)
        assert match is not None, raw[:300]
        raw = raw[match.end() :]
    return raw


@contextlib.contextmanager
def inbox_feed(create_on: str, listen_on: str) -> Iterator[tuple[dict[str, str], Any]]:
    """An inbox made on one node and its SSE feed on another (or the same), subscribed:
    (the inbox, the feed's events)."""
    inbox = httpx.post(create_on + "/api/inboxes").json()
    url = f"{listen_on}/api/inboxes/{inbox['address']}/events"
    with (
        httpx.Client(timeout=15) as client,
        connect_sse(client, "GET", url, headers=auth(inbox)) as source,
    ):
        events = source.iter_sse()
        assert next(events).retry == 2000  # subscribed
        yield inbox, events
