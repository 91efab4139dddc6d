"""The web page in real headless Chromium (Playwright), as the UI tests drive it: a page that
records every request it and its frames make, and the mail they send over real SMTP."""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Page

from tests.helpers import Running

ARTIFACTS = Path(__file__).parent / "artifacts"


class Visit:
    """A page on the server, with every request it and its frames make recorded."""

    def __init__(self, context: BrowserContext, server: Running) -> None:
        self.server = server
        self.context = context
        self.page: Page = context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        # Nothing may leave the machine; anything aimed elsewhere is recorded, then refused.
        self.page.route(
            "**/*",
            lambda route: route.continue_() if self.local(route.request.url) else route.abort(),
        )

    def local(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in {"data", "about", "blob"} or parts.netloc == (
            f"127.0.0.1:{self.server.http_port}"
        )

    def open(self) -> str:
        self.page.goto(self.server.http + "/")
        self.page.locator("#address", has_text="@").wait_for()
        return self.page.text_content("#address") or ""

    def remote_requests(self) -> list[str]:
        return [url for url in self.requests if not self.local(url)]

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def send(server: Running, message: EmailMessage) -> float:
    """Send over SMTP; returns the time the 250 came back."""
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.send_message(message)
        return time.perf_counter()


def verification_mail(to: str, subject: str = "Confirm your Acme account") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Acme <no-reply@acme.test>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Your verification code is 482913.\n")
    message.add_alternative(
        "<h2>Welcome</h2><p>Your verification code is <b>482913</b>.</p>"
        "<p><a href='https://acme.test/confirm?k=1'>Confirm my account</a></p>"
        "<img src='https://track.test/pixel.gif' alt='tracker'>",
        subtype="html",
    )
    message.add_attachment(
        b"attached notes\n", maintype="text", subtype="plain", filename="notes.txt"
    )
    return message


def violations(page: Page, axe: Path) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it stands (the mail inside the frame is its
    sender's, and runs no script: the frame element itself is checked, not its content).
    The page's context needs bypass_csp, only so that axe-core's script can be put in."""
    page.add_script_tag(path=str(axe))
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {iframes: false})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target)}))"
    )
    return found
