"""The page for everyone: axe-core (npm, the version its lock file pins) run in real Chromium
on every state a reader meets, at a desktop's and a phone's width, in light and dark; the
whole flow by keyboard alone; new mail said once to screen readers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.helpers import Running
from tests.pages import Visit, send, verification_mail, violations

VIEWS = [(1280, 860, "light"), (1280, 860, "dark"), (375, 740, "light"), (375, 740, "dark")]


def text_mail(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Shop <orders@shop.test>"
    message["To"] = to
    message["Subject"] = "Your order, in plain text"
    message.set_content("Order 1234 is on its way: https://shop.test/track?o=1234\n")
    return message


@pytest.fixture(params=VIEWS, ids=lambda view: f"{view[0]}px-{view[2]}")
def reader(request: pytest.FixtureRequest, browser: Browser, server: Running) -> Iterator[Visit]:
    width, height, scheme = request.param
    context = browser.new_context(
        viewport={"width": width, "height": height},
        color_scheme=scheme,
        bypass_csp=True,  # only so that axe-core's own script can be put in the page
    )
    yield Visit(context, server)
    context.close()


def open_message(visit: Visit, subject: str) -> None:
    page = visit.page
    if page.locator("#back").is_visible():
        page.locator("#back").click()
    page.locator("#messages button", has_text=subject).click()
    page.locator("#v-subject", has_text=subject).wait_for()


def test_axe_finds_nothing_in_any_state(reader: Visit, axe: Path) -> None:
    page, server = reader.page, reader.server
    address = reader.open()
    page.locator("#empty").wait_for()
    states = {"empty inbox": violations(page, axe)}
    send(server, verification_mail(address))
    send(server, text_mail(address))
    page.locator("#messages button", has_text="plain text").wait_for()
    page.locator("#messages button", has_text="Confirm your Acme account").wait_for()
    states["list"] = violations(page, axe)
    open_message(reader, "Confirm your Acme account")
    page.wait_for_function("document.getElementById('v-html').dataset.fitted === 'true'")
    states["HTML message"] = violations(page, axe)
    open_message(reader, "Your order, in plain text")
    page.locator("#v-text a", has_text="https://shop.test/track?o=1234").wait_for()
    states["text message"] = violations(page, axe)
    assert {state: found for state, found in states.items() if found} == {}, json.dumps(
        states, indent=1
    )
    assert reader.errors == []


def focused_text(page: Page) -> str:
    return str(page.evaluate("document.activeElement ? document.activeElement.textContent : ''"))


def test_the_keyboard_alone_reads_a_message_and_copies_its_code(visit: Visit) -> None:
    page, server = visit.page, visit.server
    address = visit.open()
    send(server, verification_mail(address, "Keyboard mail"))
    page.locator("#messages button", has_text="Keyboard mail").wait_for()
    for _ in range(30):  # Tab through the page until the message is focused
        page.keyboard.press("Tab")
        if "Keyboard mail" in focused_text(page):
            break
    else:
        pytest.fail("the message list cannot be reached with Tab")
    page.keyboard.press("Enter")
    page.locator("#v-extract .code", has_text="482913").wait_for()
    assert page.evaluate("document.activeElement.id") == "v-subject"  # it lands on the mail
    for _ in range(10):
        page.keyboard.press("Tab")
        if focused_text(page) == "Copy code":
            break
    else:
        pytest.fail("the code's copy button cannot be reached with Tab")
    page.keyboard.press("Enter")
    page.locator("#toast", has_text="Code copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == "482913"
    page.keyboard.press("Escape")
    page.locator("#view").wait_for(state="hidden")
    assert "Keyboard mail" in focused_text(page)  # back on the message it came from


def test_new_mail_is_said_once_to_screen_readers(visit: Visit) -> None:
    page, server = visit.page, visit.server
    address = visit.open()
    page.locator("#empty").wait_for()
    announcer = page.locator("#announcer")
    assert announcer.get_attribute("aria-live") == "polite"
    send(server, verification_mail(address, "Your code is here"))
    page.locator("#messages button", has_text="Your code is here").wait_for()
    expected = "New message from Acme <no-reply@acme.test>: Your code is here"
    page.locator("#announcer", has_text=expected).wait_for()
    page.evaluate("document.getElementById('announcer').textContent = ''")
    page.locator("#messages button", has_text="Your code is here").click()  # seen: an update
    page.locator("#messages button.unread").wait_for(state="detached")
    assert announcer.text_content() == ""  # an update to a known message is not news
