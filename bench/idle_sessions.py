"""10,000 idle SMTP sessions held at once: burnbox's RSS and a new session's greeting time.

    .venv/bin/python bench/idle_sessions.py [--sessions 10000] [--runs 3]

Targets (issue 2): under 150 MB RSS, and a new session greeted within 100 ms.
aiosmtpd+uvloop is measured in the same run for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import uvloop

from harness import raise_nofile, rss_kib, start_aiosmtpd, start_burnbox

CONNECT_BATCH = 500  # connections opened at once, to stay inside the listen backlog


async def open_idle(port: int, count: int) -> list[asyncio.StreamWriter]:
    writers: list[asyncio.StreamWriter] = []

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        greeting = await reader.readline()
        assert greeting.startswith(b"220"), greeting
        writers.append(writer)

    for start in range(0, count, CONNECT_BATCH):
        await asyncio.gather(*(one() for _ in range(min(CONNECT_BATCH, count - start))))
    return writers


async def greeting_time(port: int) -> float:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    elapsed = time.perf_counter() - started
    writer.close()
    return elapsed


async def measure(port: int, pid: int, sessions: int) -> tuple[float, float, float]:
    before = rss_kib(pid) / 1024
    writers = await open_idle(port, sessions)
    held = rss_kib(pid) / 1024
    waits = [await greeting_time(port) for _ in range(20)]
    for writer in writers:
        writer.close()
    return before, held, statistics.median(waits) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    raise_nofile()
    for name, starter in (("burnbox", start_burnbox), ("aiosmtpd", start_aiosmtpd)):
        rows = []
        for _ in range(arguments.runs):
            server = starter()
            try:
                rows.append(
                    uvloop.run(measure(server.port, server.process.pid, arguments.sessions))
                )
            finally:
                server.stop()
        before, held, wait = (statistics.median(column) for column in zip(*rows, strict=True))
        print(
            f"{name:9} {arguments.sessions} idle sessions: RSS {before:.0f} MiB at start, "
            f"{held:.0f} MiB holding them; new session greeted in {wait:.1f} ms (median)",
            flush=True,
        )


if __name__ == "__main__":
    main()
