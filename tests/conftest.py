"""Fixtures: a real burnbox on real sockets, a fake clock, and SMTP conversation helpers."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.helpers import Conversation, FakeClock, Running, test_settings
from tests.pages import Visit
from tests.tools import npm_install, require, self_signed


@pytest.fixture(autouse=True)
def collect_garbage() -> Iterator[None]:
    """Collect after every test: an object a test left unclosed (a socket, a transport) is
    reported against that test, not against whichever test the collector next runs in."""
    yield
    gc.collect()


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


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for mx.test and 127.0.0.1: (certificate file, key file)."""
    return self_signed(tmp_path_factory.mktemp("tls"), days=2)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium from Debian's package, driven by Playwright (whose own browser
    download does not work here); one per test module."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=require("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def visit(browser: Browser, server: Running) -> Iterator[Visit]:
    """The page at 1280 px, allowed the clipboard."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.http)
    yield Visit(context, server)
    context.close()


@pytest.fixture(scope="session")
def axe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """axe-core's script, from the npm registry as tests/conformance/axe's lock file pins it."""
    harness = Path(__file__).resolve().parent / "conformance" / "axe"
    installed = npm_install(harness, tmp_path_factory.mktemp("axe") / "harness")
    return installed / "node_modules" / "axe-core" / "axe.min.js"
