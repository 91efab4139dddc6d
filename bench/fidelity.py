"""Rendering fidelity: does burnbox show mail as its sender meant it?

Each template in ../shared/newsletters and ../shared/newsletters/responsive is sent over
SMTP as the HTML part of a message. In headless Chromium (JavaScript off), this renders
(a) the original HTML with every network request refused and (b) burnbox's HTML view, the
page its sandboxed frame shows, at 600 and 360 px wide, and compares the two full-page
screenshots: the share of pixels (over the larger of the two, padded with white) whose
channels all differ by at most TOLERANCE. 1.0 is identical. Per template, then the mean
and the minimum of each set and of all, at each width.

`--page` also opens each message in burnbox's own page as a person sees it (JavaScript on,
1280 px: list and message side by side; 375 px: a phone) and reports the frame's height
against the height of the mail inside it, and whether the mail scrolls inside the frame.

    .venv/bin/python bench/fidelity.py [--shots DIR] [--page] [--json FILE]
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
SETS = {"ours": NEWSLETTERS, "responsive": NEWSLETTERS / "responsive"}
WIDTHS = (600, 360)
PAGE_WIDTHS = (1280, 375)
TOLERANCE = 24  # per channel, of 255: anti-aliasing and sub-pixel text differ a little
ADDRESS = "fidelity@localhost"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def templates() -> list[tuple[str, Path]]:
    found = [
        (name, path) for name, folder in SETS.items() for path in sorted(folder.glob("*.html"))
    ]
    if not found:
        raise SystemExit(f"no templates in {NEWSLETTERS}")
    return found


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


def score_all(browser: Browser, http: str, shots: Path | None) -> dict[str, dict[int, float]]:
    ids = message_ids(http)
    scores: dict[str, dict[int, float]] = {}
    print(f"{'template':46} " + " ".join(f"{width:>7}px" for width in WIDTHS))
    for _, template in templates():
        row = scores[template.stem] = {}
        for width in WIDTHS:
            original = screenshot(browser, width, html=template.read_text())
            frame_url = f"{http}/api/inboxes/{ADDRESS}/messages/{ids[template.stem]}/html"
            shown = screenshot(browser, width, url=frame_url)
            if shots:
                shots.mkdir(parents=True, exist_ok=True)
                original.save(shots / f"{template.stem}-{width}-original.png")
                shown.save(shots / f"{template.stem}-{width}-burnbox.png")
            row[width] = similarity(original, shown)
        print(f"{template.stem:46} " + " ".join(f"{row[w]:9.3f}" for w in WIDTHS))
    return scores


def summarise(scores: dict[str, dict[int, float]]) -> None:
    groups = {name: [t.stem for set_name, t in templates() if set_name == name] for name in SETS}
    groups["all"] = list(scores)
    for name, members in groups.items():
        for label, combine in (("mean", statistics.mean), ("min", min)):
            values = [f"{combine(scores[m][w] for m in members):9.3f}" for w in WIDTHS]
            print(f"{label + ' (' + name + ')':46} " + " ".join(values))


def page_view(
    browser: Browser, http: str, width: int, subject: str, message_id: str
) -> dict[str, float]:
    """The page as a person sees it: the frame's height, the mail's, and the page's."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.add_init_script(
        f"localStorage.setItem('burnbox.inboxes', JSON.stringify([{{address: '{ADDRESS}'}}]));"
        f"localStorage.setItem('burnbox.current', '{ADDRESS}');"
    )
    page = context.new_page()
    page.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(http) else route.abort(),
    )
    page.goto(http + "/", wait_until="load")
    page.click(f'button[data-id="{message_id}"]')
    page.wait_for_function(
        "() => { const f = document.getElementById('v-html');"
        " return f && f.dataset.fitted === 'true'; }",
        timeout=30_000,
    )
    sizes: dict[str, float] = page.evaluate(
        "() => { const f = document.getElementById('v-html'); const d = f.contentDocument;"
        " const root = d.scrollingElement || d.documentElement;"
        " return {frame: f.clientHeight, mail: root.scrollHeight,"
        " inner: root.scrollHeight - root.clientHeight,"
        " frame_width: f.getBoundingClientRect().width}; }"
    )
    context.close()
    return sizes


def page_views(browser: Browser, http: str) -> dict[str, dict[int, dict[str, float]]]:
    ids = message_ids(http)
    found: dict[str, dict[int, dict[str, float]]] = {}
    widths = " ".join(f"{w:>17}px" for w in PAGE_WIDTHS)
    print(f"\n{'page view: frame / mail height (px)':46} {widths}")
    for _, template in templates():
        row = found[template.stem] = {}
        for width in PAGE_WIDTHS:
            row[width] = page_view(browser, http, width, template.stem, ids[template.stem])
        cells = [
            f"{row[w]['frame']:7.0f} / {row[w]['mail']:7.0f}"
            + ("  inner!" if row[w]["inner"] > 1 else "")
            for w in PAGE_WIDTHS
        ]
        print(f"{template.stem:46} " + "  ".join(cells))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", type=Path, help="also save the screenshots here")
    parser.add_argument("--page", action="store_true", help="also measure the page view")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    options = parser.parse_args()
    server = start_burnbox(access="public", message_ttl="1h")
    try:
        http = f"http://127.0.0.1:{server.http_port}"
        for _, template in templates():
            send(server.port, template.stem, template.read_text())
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            scores = score_all(browser, http, options.shots)
            summarise(scores)
            views = page_views(browser, http) if options.page else {}
            browser.close()
        if options.json:
            options.json.write_text(json.dumps({"scores": scores, "page": views}, indent=1))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
