"""Fixtures: a real burnbox on real sockets, a fake clock, and SMTP conversation helpers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop
from playwright.sync_api import Browser, sync_playwright

from burnbox.app import App
from burnbox.settings import Endpoint, Settings
from tests.tools import require

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
                feeds = {address: await stack.enter_async_context(
                    self.app.hub.subscribe(address)) for address in expected}
                async with asyncio.timeout(timeout):
                    for address, count in expected.items():
                        while await held(address) < count:
                            await feeds[address].next()

        self.call(until_stored(), timeout=timeout + 5)


def test_settings(**overrides: Any) -> Settings:
    base = Settings(smtp_listen=Endpoint("127.0.0.1", 0), http_listen=Endpoint("127.0.0.1", 0),
                    hostname="mx.test", domains=("localhost", "example.test", "*.wild.test"))
    return dataclasses.replace(base, **overrides)


test_settings.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def start_burnbox(clock: FakeClock) -> Iterator[Callable[..., Running]]:
    """Start a burnbox with settings overrides; stopped after the test."""
    started: list[Running] = []

    def start(**overrides: Any) -> Running:
        running = Running(test_settings(**overrides), clock)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def server(start_burnbox: Callable[..., Running]) -> Running:
    return start_burnbox()


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


@pytest.fixture
def connect() -> Iterator[Callable[[Running], Conversation]]:
    """Open conversations with any running burnbox; all closed after the test."""
    opened: list[Conversation] = []

    def open_conversation(running: Running) -> Conversation:
        conversation = Conversation(running.smtp_port)
        opened.append(conversation)
        return conversation

    yield open_conversation
    for conversation in opened:
        conversation.close()


@pytest.fixture
def talk(server: Running, connect: Callable[[Running], Conversation]) -> Callable[[], Conversation]:
    """Open conversations with the default test server."""
    return lambda: connect(server)


CORPUS_MISSING = (f"no corpus at {CORPUS}: the real-world messages from public parser test "
                  "suites that ship beside this repository in shared/corpus (MANIFEST.tsv "
                  "names each file's source); CI must have it")


def _corpus() -> list[Path]:
    """Every corpus message, checked against its manifest so a partial copy is noticed."""
    found = sorted(CORPUS.glob("*.eml"))
    if found:
        listed = (CORPUS / "MANIFEST.tsv").read_text().splitlines()[1:]
        assert sorted(line.split("\t")[0] for line in listed if line) == [
            path.name for path in found], "the corpus does not match its MANIFEST.tsv"
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


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for mx.test and 127.0.0.1: (certificate file, key file)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([require("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-days", "2",
                    "-subj", "/CN=mx.test", "-addext", "subjectAltName=DNS:mx.test,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium from Debian's package, driven by Playwright (whose own browser
    download does not work here); one per test module."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=require("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()
