"""Sink ingest with Mailpit's API attached against the sink alone.

In one run, alternating, burnbox in sink mode (RAM-only store) takes --messages messages of
2 KB and of 100 KB over SMTP (20 sessions, MAIL, RCPT and BDAT in one write) in two ways:

- **plain**: the sink with nobody listening (what the MailHog-era sink did);
- **with Mailpit's events**: a client attached to `/api/events` (Mailpit's WebSocket, which
  turns every arrival into a list item: the message parsed again) that must see a `new`
  event for every message sent.

Prints msgs/s of each run, the medians and their ratio (attached / plain), per size.

    .venv/bin/python bench/sink_ingest.py [--runs 3] [--messages 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import websockets

from harness import median, message, raise_nofile, send_all, start_burnbox

SESSIONS = 20


async def watch(url: str, expected: int, ready: asyncio.Event, done: asyncio.Event) -> None:
    """Count `new` events until every message has been announced."""
    seen = 0
    async with websockets.connect(url, max_size=None) as socket:
        ready.set()
        async for frame in socket:
            if json.loads(frame)["Type"] == "new":
                seen += 1
                if seen == expected:
                    done.set()
                    return


async def one_run(size: int, count: int, attached: bool) -> float:
    server = start_burnbox(sink="true", access="public", auth_checks="off")
    try:
        ready, done = asyncio.Event(), asyncio.Event()
        watcher = None
        if attached:
            url = f"ws://127.0.0.1:{server.http_port}/api/events"
            watcher = asyncio.create_task(watch(url, count, ready, done))
            await asyncio.wait_for(ready.wait(), 10)
        recipients = [f"qa{number % 100}@app.test" for number in range(count)]
        started = time.monotonic()
        stored = await send_all(server.port, recipients, message(size), SESSIONS)
        if watcher is not None:
            await asyncio.wait_for(done.wait(), 120)  # every arrival told: part of the work
        elapsed = time.monotonic() - started
        if stored != count:
            raise SystemExit(f"{stored} of {count} stored, the rest refused (4yz)")
        return count / elapsed
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=5000)
    options = parser.parse_args()
    raise_nofile()
    for size, count in ((2048, options.messages), (100 * 1024, options.messages // 10)):
        rates: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(options.runs):
            for attached in (False, True):
                rate = asyncio.run(one_run(size, count, attached))
                rates[attached].append(rate)
                way = "with Mailpit's events" if attached else "plain"
                print(f"{size // 1024:4} KB  {way:22} {rate:8.0f} msgs/s", flush=True)
        plain, attached_rate = median(rates[False]), median(rates[True])
        print(
            f"{size // 1024:4} KB  median plain {plain:.0f}, with events {attached_rate:.0f}: "
            f"ratio {attached_rate / plain:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
