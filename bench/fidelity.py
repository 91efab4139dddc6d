"""Rendering fidelity: does burnbox show mail as its sender meant it?

Each template in ../shared/newsletters is sent over SMTP as the HTML part of a message.
In headless Chromium (JavaScript off), this renders (a) the original HTML with every
network request refused and (b) burnbox's HTML view, the page its sandboxed frame shows,
at 600 and 360 px wide, and compares the two full-page screenshots: the share of pixels
(over the larger of the two, padded with white) whose channels all differ by at most
TOLERANCE. 1.0 is identical.

    .venv/bin/python bench/fidelity.py [--shots DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import smtplib
import statistics
import sys
import urllib.request
from email.message import EmailMessage
from pathlib import Path

from PIL import Image, ImageChops
from playwright.sync_api import Browser, Route, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import start_burnbox

NEWSLETTERS = Path(__file__).resolve().parent.parent.parent / "shared" / "newsletters"
WIDTHS = (600, 360)
TOLERANCE = 24  # per channel, of 255: anti-aliasing and sub-pixel text differ a little
ADDRESS = "fidelity@localhost"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def send(port: int, name: str, html: str) -> None:
    message = EmailMessage()
    message["From"] = "News <news@example.org>"
    message["To"] = ADDRESS
    message["Subject"] = name
    message.set_content(f"{name} (text part)")
    message.add_alternative(html, subtype="html")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.send_message(message)


def message_ids(http: str) -> dict[str, str]:
    url = f"{http}/api/inboxes/{ADDRESS}/messages?limit=100"
    with urllib.request.urlopen(url, timeout=30) as response:
        page = json.load(response)
    return {item["subject"]: item["id"] for item in page["messages"]}


def screenshot(
    browser: Browser, width: int, *, html: str | None = None, url: str = ""
) -> Image.Image:
    context = browser.new_context(
        viewport={"width": width, "height": 800}, java_script_enabled=False
    )
    page = context.new_page()

    def only_ours(route: Route) -> None:
        if url and route.request.url.startswith(url.split("/api/")[0]):
            route.continue_()
        else:
            route.abort()  # the original's remote content, and anything else

    page.route("**/*", only_ours)
    if html is not None:
        page.set_content(html, wait_until="load")
    else:
        page.goto(url, wait_until="load")
    shot = page.screenshot(full_page=True)
    context.close()
    return Image.open(io.BytesIO(shot)).convert("RGB")


def similarity(first: Image.Image, second: Image.Image) -> float:
    size = (max(first.width, second.width), max(first.height, second.height))
    padded = []
    for image in (first, second):
        canvas = Image.new("RGB", size, "white")
        canvas.paste(image, (0, 0))
        padded.append(canvas)
    difference = ImageChops.difference(*padded).convert("RGB")
    channels = [
        band.point(lambda value: 255 if value > TOLERANCE else 0) for band in difference.split()
    ]
    differing = ImageChops.lighter(ImageChops.lighter(channels[0], channels[1]), channels[2])
    histogram = differing.histogram()
    return histogram[0] / (size[0] * size[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", type=Path, help="also save the screenshots here")
    options = parser.parse_args()
    templates = sorted(NEWSLETTERS.glob("*.html"))
    if not templates:
        raise SystemExit(f"no templates in {NEWSLETTERS}")
    server = start_burnbox(access="public", message_ttl="1h")
    try:
        http = f"http://127.0.0.1:{server.http_port}"
        for template in templates:
            send(server.port, template.stem, template.read_text())
        ids = message_ids(http)
        scores: dict[int, list[float]] = {width: [] for width in WIDTHS}
        print(f"{'template':40} " + " ".join(f"{width:>7}px" for width in WIDTHS))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            for template in templates:
                row = []
                for width in WIDTHS:
                    original = screenshot(browser, width, html=template.read_text())
                    frame_url = f"{http}/api/inboxes/{ADDRESS}/messages/{ids[template.stem]}/html"
                    shown = screenshot(browser, width, url=frame_url)
                    if options.shots:
                        options.shots.mkdir(parents=True, exist_ok=True)
                        original.save(options.shots / f"{template.stem}-{width}-original.png")
                        shown.save(options.shots / f"{template.stem}-{width}-burnbox.png")
                    score = similarity(original, shown)
                    scores[width].append(score)
                    row.append(score)
                print(f"{template.stem:40} " + " ".join(f"{score:9.3f}" for score in row))
            browser.close()
        print(f"{'mean':40} " + " ".join(f"{statistics.mean(scores[w]):9.3f}" for w in WIDTHS))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
