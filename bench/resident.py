"""A million messages resident on PostgreSQL: are reads still quick, and does emptying a
partition hold up ingest?

The store is filled through PostgresStore.add (the code path SMTP delivery uses, batches of
--batch messages) with --messages messages of --size bytes in --inboxes inboxes, arriving
over --hours hours (TTL a day, so the ring's spans are 2.3 hours: storage/ring.py), stamped
in the hours to come. burnbox then serves that database (its reaper held off, so that the
bench chooses when the partition is emptied), and:

1. reads: for --samples inboxes, claimed over the API, `GET .../messages` (the list) and
   `GET .../messages/{id}` (one message), one request at a time; p50 and p99 of each;
2. ingest while a partition goes: --sessions SMTP sessions send without pause; the latency
   of each message (its BDAT sent to its 250) is kept with when it was sent. After
   --quiet seconds the first whole span's partition is emptied and the counters lowered
   after it (storage/ring.py: what maintenance does to an expired one; here for room, as
   its mail has not expired) from a connection of its own; the p99 of messages sent
   while it ran is compared with those sent before.

Targets (issue 26): list and open at p99 under 10 ms; ingest p99 while a partition is
emptied at most 2x that before it.

    .venv/bin/python bench/resident.py                     # 1,000,000 in 100,000 inboxes
    .venv/bin/python bench/resident.py --messages 200000 --inboxes 20000
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from burnbox.ids import MessageIds
from burnbox.model import MessageSummary
from burnbox.storage import emptying, ring
from burnbox.storage.postgres import PostgresStore
from harness import BODY, message, raise_nofile, start_burnbox
from retention import new_database

TTL = timedelta(days=1)


class Clock:
    """The arrival time the loader is at (message ids carry it)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def summaries(
    ids: MessageIds, clock: Clock, addresses: list[str], size: int
) -> list[MessageSummary]:
    now = clock()
    return [
        MessageSummary(
            id=ids(),
            address=address,
            received_at=now,
            expires_at=now + TTL,
            size=size,
            sender="load@example.org",
            subject=f"resident {n}",
            snippet="resident mail",
            attachments=0,
        )
        for n, address in enumerate(addresses)
    ]


async def fill(url: str, options: argparse.Namespace) -> None:
    """--messages messages, round-robin over the inboxes, their arrival spread evenly."""
    start = datetime.now(UTC) + timedelta(minutes=1)
    clock = Clock(start)
    store = PostgresStore(
        url, max_bytes=2**40, inbox_max_messages=10**6, message_ttl=TTL.total_seconds(), clock=clock
    )
    await store.open()
    ids, raw = MessageIds(clock), message(options.size)
    step = timedelta(hours=options.hours) / (options.messages // options.batch)
    began = time.monotonic()
    try:
        for first in range(0, options.messages, options.batch):
            addresses = [
                f"r{(first + n) % options.inboxes}@localhost" for n in range(options.batch)
            ]
            await store.add(summaries(ids, clock, addresses, len(raw)), raw)
            clock.at += step
            if first % 100_000 == 0:
                print(f"  filled {first:>9,} ({time.monotonic() - began:.0f} s)", flush=True)
    finally:
        await store.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def reads(http: str, options: argparse.Namespace) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"list": [], "open": []}
    picked = random.Random(1).sample(range(options.inboxes), options.samples)
    with httpx.Client(base_url=http, timeout=30) as client:
        for number in picked:
            answer = client.post("/api/inboxes", json={"local_part": f"r{number}"})
            answer.raise_for_status()
            made = answer.json()
            headers = {"Authorization": f"Bearer {made['token']}"}
            path = f"/api/inboxes/{made['address']}/messages"
            for kind in ("list", "open"):
                started = time.perf_counter()
                answer = client.get(path, headers=headers)
                timings[kind].append(time.perf_counter() - started)
                answer.raise_for_status()
                if kind == "list":
                    listed = answer.json()["messages"]
                    if not listed:
                        raise SystemExit(f"inbox r{number} is empty")
                    path += "/" + listed[0]["id"]
    return timings


async def send_for(port: int, stop: asyncio.Event, latencies: list[tuple[float, float]]) -> None:
    """One session sending until `stop` is set: (when sent, seconds to its 250) for each."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(b"EHLO load.test\r\n")
    while (await reader.readline())[3:4] == b"-":
        pass
    raw = b"From: load@example.org\r\nSubject: live\r\n\r\n" + BODY * 20
    number = 0
    while not stop.is_set():
        number += 1
        sent = time.monotonic()
        writer.write(
            b"MAIL FROM:<load@example.org>\r\nRCPT TO:<live%d@localhost>\r\n" % (number % 500)
            + b"BDAT %d LAST\r\n" % len(raw)
            + raw
        )
        answers = [await reader.readline() for _ in range(3)]
        if not answers[2].startswith(b"250"):
            raise SystemExit(f"not stored: {answers!r}")
        latencies.append((sent, time.monotonic() - sent))
    writer.write(b"QUIT\r\n")
    writer.close()


async def empty_oldest(url: str) -> list[tuple[str, float]]:
    """Empty the first whole span's partition as maintenance empties an expired one (its
    mail is not expired here: for room, as eviction would, but noted first as for expiry),
    and lower the counters after it: each step's name and when it ended, after "began"."""
    connection = await asyncpg.connect(url)
    try:
        kept = ring.Ring(position=5)
        await kept.open(connection)  # the spans the database was made with
        slot = kept.slot_at(int(time.time() * 1000) + 60_000 + kept.width_ms)  # a whole span
        held = await connection.fetchval(f"SELECT count(*) FROM messages_s{slot}")
        print(f"emptying the partition of {held:,} messages")
        steps = [("began", time.monotonic())]
        seen = await emptying.snapshot(connection, slot)
        steps.append(("noting what it holds", time.monotonic()))
        if await emptying.empty(connection, slot, room=2**62, seen=seen) is None:
            raise SystemExit("the partition was not emptied (its lock was busy)")
        steps.append(("emptying it under its lock", time.monotonic()))
        await emptying.drain(connection)
        steps.append(("lowering the counters", time.monotonic()))
        return steps
    finally:
        await connection.close()


async def ingest_during_drop(port: int, url: str, options: argparse.Namespace) -> None:
    latencies: list[tuple[float, float]] = []
    stop = asyncio.Event()
    senders = [
        asyncio.create_task(send_for(port, stop, latencies)) for _ in range(options.sessions)
    ]
    await asyncio.sleep(options.quiet)
    steps = await empty_oldest(url)
    await asyncio.sleep(options.after)
    stop.set()
    await asyncio.gather(*senders)
    started, ended = steps[0][1], steps[-1][1]
    before = [took for sent, took in latencies if sent < started]
    spans = [("all of it", started, ended)]
    spans += [(name, since, until) for (_, since), (name, until) in itertools.pairwise(steps)]
    for name, since, until in spans:
        during = [took for sent, took in latencies if since <= sent <= until]
        if len(during) < 20:
            print(f"{name}: {until - since:.2f} s, {len(during)} messages sent: too few")
            continue
        ratio = percentile(during, 0.99) / percentile(before, 0.99)
        print(
            f"{name}: {until - since:.2f} s; ingest p99 {percentile(during, 0.99) * 1000:.1f} ms "
            f"({len(during)} msgs) against {percentile(before, 0.99) * 1000:.1f} ms before: "
            f"{ratio:.2f}x (target <= 2)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--inboxes", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--hours", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--quiet", type=float, default=10.0)
    parser.add_argument("--after", type=float, default=5.0)
    options = parser.parse_args()
    raise_nofile()
    url = new_database()
    began = time.monotonic()
    asyncio.run(fill(url, options))
    print(f"filled {options.messages:,} in {time.monotonic() - began:.0f} s")
    server = start_burnbox(
        store=url,
        message_ttl="24h",
        reap_interval="24h",
        auth_checks="off",
        inbox_create_rate="100000/s",
    )
    try:
        timings = reads(f"http://127.0.0.1:{server.http_port}", options)
        for kind, values in timings.items():
            print(
                f"{kind}: p50 {statistics.median(values) * 1000:.2f} ms, "
                f"p99 {percentile(values, 0.99) * 1000:.2f} ms (target < 10 ms)"
            )
        asyncio.run(ingest_during_drop(server.port, url, options))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
