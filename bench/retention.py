"""Mail churning through a short TTL, cycle after cycle: does anything grow?

burnbox runs with BURNBOX_MESSAGE_TTL=--ttl and purges every second; each cycle (one TTL
long) sends --messages messages of --size bytes over 20 SMTP sessions to --addresses
fresh addresses (kept for whoever makes the inbox: unclaimed mail), then waits out the
rest of the TTL. At the end of each cycle it records:

- PostgreSQL (--workers processes): the database's size, rows deleted in it (all of it:
  pg_stat_database, catalog rows included; and in burnbox's tables, counted per table as
  they come and go), dead tuples, partitions, ingest rate;
- SQLite: the database file's size (with its WAL), and the same rates;
- memory: the server's RSS.

Targets (docs/scaling.md): rows deleted at most 2% of the messages sent, size at cycle 9
at most 1.3x cycle 3, ingest at cycle 9 at least 0.9x cycle 3. The sender checks are off:
this measures the store.

    .venv/bin/python bench/retention.py                       # all three stores, 9 cycles
    .venv/bin/python bench/retention.py --stores postgres --cycles 12 --ttl 10
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from harness import (
    BENCH_DATABASE,
    POSTGRES,
    Server,
    message,
    raise_nofile,
    rss_kib,
    send_all,
    start_burnbox,
)

SESSIONS = 20


@dataclass
class Cycle:
    number: int
    rate: float  # msgs/s while sending
    size: int  # bytes: database (with WAL) or RSS
    deleted: int = 0  # rows deleted in the cycle, all of the database's
    deleted_ours: int = 0  # of those, in burnbox's tables
    dead: int = 0  # dead tuples at the cycle's end
    partitions: int = 0


@dataclass
class Watch:
    """What PostgreSQL said last: the database's deletes, and each table's (by its oid,
    so that a partition dropped since still counts what it deleted)."""

    database: int = 0
    tables: dict[int, int] = field(default_factory=dict)


async def send(port: int, cycle: int, count: int, addresses: int, size: int) -> float:
    recipients = [f"c{cycle}-{number % addresses}@localhost" for number in range(count)]
    started = time.monotonic()
    stored = await send_all(port, recipients, message(size), SESSIONS)
    elapsed = time.monotonic() - started
    if stored != count:
        raise SystemExit(f"cycle {cycle}: {stored} of {count} stored, the rest refused (4yz)")
    return count / elapsed


async def postgres_figures(url: str, watch: Watch) -> dict[str, int]:
    connection = await asyncpg.connect(url)
    try:
        size = await connection.fetchval("SELECT pg_database_size(current_database())")
        deleted = await connection.fetchval(
            "SELECT tup_deleted FROM pg_stat_database WHERE datname = current_database()"
        )
        rows = await connection.fetch(
            "SELECT relid, n_tup_del, n_dead_tup FROM pg_stat_user_tables"
        )
        partitions = await connection.fetchval(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'messages'::regclass"
        )
    finally:
        await connection.close()
    ours = sum(max(0, row[1] - watch.tables.get(row[0], 0)) for row in rows)
    figures = {
        "size": size,
        "deleted": deleted - watch.database,
        "deleted_ours": ours,
        "dead": sum(row[2] for row in rows),
        "partitions": partitions,
    }
    watch.database = deleted
    watch.tables.update({row[0]: row[1] for row in rows})
    return figures


def new_database() -> str:
    for sql in (
        f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)",
        f"CREATE DATABASE {BENCH_DATABASE}",
    ):
        subprocess.run(
            ["psql", f"{POSTGRES}/postgres", "-qc", sql], check=True, capture_output=True
        )
    return f"{POSTGRES}/{BENCH_DATABASE}"


def start(store: str, options: argparse.Namespace) -> tuple[Server, str]:
    """The server, and where its store is (a URL, a file, or "" for RAM)."""
    where = ""
    settings = {
        "message_ttl": f"{options.ttl}s",
        "reap_interval": "1s",
        "auth_checks": "off",
        "store_max_bytes": "16GiB",
    }
    if store == "postgres":
        where = new_database()
        settings.update(store=where, workers=str(options.workers))
    elif store == "sqlite":
        where = str(Path(tempfile.mkdtemp(prefix="burnbox-retention-")) / "mail.db")
        settings.update(store=f"sqlite://{where}")
    return start_burnbox(**settings), where


def file_size(path: str) -> int:
    return sum(Path(name).stat().st_size for name in (path, path + "-wal") if Path(name).exists())


def server_rss(server: Server) -> int:
    return rss_kib(server.process.pid) * 1024


async def run_store(store: str, options: argparse.Namespace) -> list[Cycle]:
    server, where = start(store, options)
    watch = Watch()
    cycles: list[Cycle] = []
    try:
        if store == "postgres":
            await postgres_figures(where, watch)  # from here on
        for number in range(1, options.cycles + 1):
            began = time.monotonic()
            rate = await send(
                server.port, number, options.messages, options.addresses, options.size
            )
            await asyncio.sleep(max(0.0, options.ttl - (time.monotonic() - began)))
            cycle = Cycle(number, rate, 0)
            if store == "postgres":
                figures = await postgres_figures(where, watch)
                cycle = Cycle(number, rate, **figures)
            else:
                cycle.size = file_size(where) if store == "sqlite" else server_rss(server)
            cycles.append(cycle)
            print_cycle(store, cycle, options.messages)
    finally:
        server.stop()
    return cycles


def print_cycle(store: str, cycle: Cycle, sent: int) -> None:
    extra = ""
    if store == "postgres":
        extra = (
            f"  deleted {cycle.deleted:6} ({cycle.deleted / sent:6.1%}; ours "
            f"{cycle.deleted_ours / sent:6.1%})  dead {cycle.dead:6}  partitions {cycle.partitions}"
        )
    print(
        f"{store:8} cycle {cycle.number:2}: {cycle.rate:7.0f} msgs/s  "
        f"size {cycle.size / 2**20:7.1f} MiB{extra}",
        flush=True,
    )


def verdict(store: str, cycles: list[Cycle], sent: int, ttl: float) -> list[str]:
    third, last = cycles[2], cycles[-1]
    lines = [
        f"{store}: size cycle {last.number} / cycle 3 = {last.size / third.size:.2f} "
        f"(target <= 1.3); ingest = {last.rate / third.rate:.2f} (target >= 0.9)"
    ]
    if store == "postgres":
        measured = cycles[2:]  # after the first TTL: mail has begun to expire
        deleted = sum(cycle.deleted for cycle in measured) / (sent * len(measured))
        ours = sum(cycle.deleted_ours for cycle in measured) / (sent * len(measured))
        lines.append(
            f"{store}: rows deleted from cycle 3 on = {deleted:.1%} of messages sent "
            f"(burnbox's tables: {ours:.1%}; target <= 2%)"
        )
        catalog = sum(cycle.deleted - cycle.deleted_ours for cycle in measured) / len(measured)
        lines.append(
            f"{store}: the rest, {catalog:.0f} a cycle, are system catalog rows; partitions "
            f"{cycles[2].partitions} at cycle 3, {last.partitions} at the last (storage/ring.py)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="postgres,sqlite,memory")
    parser.add_argument("--cycles", type=int, default=9)
    parser.add_argument("--ttl", type=float, default=10.0)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--addresses", type=int, default=200)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    if options.cycles < 3:
        parser.error("at least 3 cycles: cycle 3 is the baseline")
    raise_nofile()
    summary: list[str] = []
    for store in options.stores.split(","):
        cycles = asyncio.run(run_store(store, options))
        summary += verdict(store, cycles, options.messages, options.ttl)
    print("\n".join(summary))


if __name__ == "__main__":
    main()
