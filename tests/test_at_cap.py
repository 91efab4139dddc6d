"""PostgreSQL at its byte cap, with several workers: no deadlock, no 451, the cap kept within
its documented overshoot, and every message answered 250 either still there or evicted
oldest first. Before eviction left the delivery batch this deadlocked within seconds (2
workers, a 20 MB cap, 60 sessions: 66 deadlocks in 15 s, and 451s for their senders)."""

from __future__ import annotations

import asyncio
import subprocess
import threading

import asyncpg
import pytest

from burnbox.storage.batching import MAX_BATCH
from tests.postgres import postgres_url, reset
from tests.process import start_node
from tests.tools import require

__all__ = ["postgres_url"]

CAP = 2_000_000  # bytes: the load below sends about seven times this
SIZE = 2000  # bytes of each message's body (smtp-source -l)
SPREAD = (24, 250)  # sessions, messages each: every message to an inbox of its own
HOT = (6, 250)  # sessions, messages each: all to one inbox
ENVELOPE = 600  # bytes a stored message adds to its body (headers, our Received: line)

AUDIT = """
CREATE TABLE audit_evicted (address text, id text);
CREATE FUNCTION audit_evicted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit_evicted SELECT address, id FROM gone; RETURN NULL; END $$;
CREATE TRIGGER audit_evicted AFTER DELETE ON messages REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION audit_evicted();
"""


async def _query(url: str, sql: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(sql))
    finally:
        await connection.close()


def query(url: str, sql: str) -> list[asyncpg.Record]:
    return asyncio.run(_query(url, sql))


async def _execute(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)  # no parameters: several statements are allowed
    finally:
        await connection.close()


class HighWater:
    """The most bytes the store held, sampled from its counters while the load runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.most = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._watch()))

    async def _watch(self) -> None:
        connection = await asyncpg.connect(self.url)
        try:
            while not self._done.is_set():  # a measurement, not a wait for something
                held = await connection.fetchval("SELECT sum(bytes)::bigint FROM usage_shards")
                self.most = max(self.most, held or 0)
        finally:
            await connection.close()

    def __enter__(self) -> HighWater:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(30)


@pytest.fixture
def database(postgres_url: str) -> str:
    asyncio.run(reset(postgres_url))
    return postgres_url


def smtp_source(port: int, sessions: int, messages: int, *to: str) -> subprocess.Popen[str]:
    """Postfix's load generator; it stops at the first refusal (451 included), non-zero."""
    return subprocess.Popen(
        [
            require("smtp-source"),
            "-s",
            str(sessions),
            "-m",
            str(sessions * messages),
            "-l",
            str(SIZE),
            "-f",
            "load@example.org",
            *to,
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("workers", [2, 3])
def test_many_workers_at_the_cap_never_deadlock(database: str, workers: int) -> None:
    node = start_node(
        "--store",
        database,
        "--workers",
        str(workers),
        "--store-max-bytes",
        str(CAP),
        "--inbox-max-messages",
        "100000",
    )
    # The migrations ran at start; now the test's own record of evictions.
    asyncio.run(_execute(database, AUDIT))
    try:
        with HighWater(database) as high_water:
            loads = [
                smtp_source(node.smtp, *SPREAD, "-N", "-t", "spread@localhost"),
                smtp_source(node.smtp, *HOT, "-t", "hot@localhost"),
            ]
            outputs = [load.communicate(timeout=300)[0] for load in loads]
    finally:
        status, log = node.stop()
    assert [load.returncode for load in loads] == [0, 0], outputs  # every message: 250
    assert status == 0
    assert "Deadlock" not in log
    assert "answered 451" not in log

    sent = SPREAD[0] * SPREAD[1] + HOT[0] * HOT[1]
    kept = {tuple(row) for row in query(database, "SELECT address, id FROM messages")}
    evicted = {tuple(row) for row in query(database, "SELECT address, id FROM audit_evicted")}
    assert len(evicted) > sent // 2  # the cap was reached many times over
    assert not kept & evicted
    assert len(kept) + len(evicted) == sent  # every 250 is a row, or was evicted
    # Oldest first: no evicted message is newer than a kept one, but for those a batch was
    # committing while the eviction chose (one batch per worker at most).
    newest_kept_floor = min(message_id for _, message_id in kept)
    out_of_order = [pair for pair in evicted if pair[1] > newest_kept_floor]
    assert len(out_of_order) <= workers * MAX_BATCH
    # The documented overshoot: what the batches committing at that moment hold.
    assert high_water.most <= CAP + workers * MAX_BATCH * (SIZE + ENVELOPE)
