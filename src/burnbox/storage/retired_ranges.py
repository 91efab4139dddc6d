"""The range partitions of the releases before the ring (010_partitions.sql), let go.

A database upgraded to the ring (014_ring.sql) keeps the mail it held in one partition more,
'-': the tables as they were, themselves partitioned by range of the id. Once all of it has
expired and been told, it is detached CONCURRENTLY (no lock that stops mail or reads), its
inboxes' counts are lowered a slice at a time, the webhooks that would have heard its
deletes are told, and it is dropped, once. A range partition that a node of the previous
release detached and did not drop (it stopped between the two) is finished the same way.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from burnbox.storage.emptying import paced

UNCOUNT_SLICE = 1_000  # inboxes whose counts a drop lowers in one transaction
RANGE = "range"  # messages_range, bodies_range: the mail held before the ring


async def retire(connection: Any, now_ms: int) -> None:
    """Finish what a node stopped in the middle of, and let the mail held before the ring
    go once it has all expired and been told (postgres_expiry.py keeps the cursor)."""
    for suffix in await leftovers(connection):
        await drop_detached(connection, suffix)
    if not await attached(connection):
        return
    latest = await connection.fetchval("SELECT max(expires_at) FROM messages_range")
    told = await connection.fetchval("SELECT expires_at FROM burnbox_told")
    if latest is None or (latest <= now_ms and latest <= told):
        await detach(connection, RANGE)
        await drop_detached(connection, RANGE)


async def attached(connection: Any) -> bool:
    """Whether the mail held before the ring is still a partition of messages."""
    return bool(
        await connection.fetchval(
            "SELECT relispartition FROM pg_class WHERE oid = to_regclass('messages_range')"
        )
    )


async def holding(connection: Any) -> bool:
    """Whether any of the mail held before the ring is left."""
    return await attached(connection) and bool(
        await connection.fetchval("SELECT EXISTS (SELECT 1 FROM messages_range)")
    )


async def detach(connection: Any, suffix: str) -> None:
    """Take it out of the tables without a lock that would stop mail or reads (not in a
    transaction); a detach cut short before (pending) is finished instead."""
    for table in ("messages", "bodies"):
        name = f"{table}_{suffix}"
        try:
            try:
                await connection.execute(
                    f"ALTER TABLE {table} DETACH PARTITION {name} CONCURRENTLY"
                )
            except asyncpg.ObjectNotInPrerequisiteStateError:  # pending: a detach cut short
                await connection.execute(f"ALTER TABLE {table} DETACH PARTITION {name} FINALIZE")
        except asyncpg.UndefinedTableError:
            continue  # not a partition (any more): another node detached it


async def drop_detached(connection: Any, suffix: str) -> int:
    """Lower the counts by what a detached partition holds, tell its webhooks, drop it;
    1 if this node dropped it. Once only: a node that finds it gone (another node listed
    it too, and got there first, while this one waited for its lock) does nothing."""
    table = f"messages_{suffix}"
    try:
        await _uncount(connection, suffix)
        async with connection.transaction():
            await connection.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            held = await connection.fetchrow(
                f"SELECT count(*) AS n, coalesce(sum(stored), 0) AS b FROM {table}"
            )
            await connection.execute("SELECT burnbox_tell_dropped($1::regclass)", table)
            await connection.execute(f"DROP TABLE {table}")
            await connection.execute(f"DROP TABLE IF EXISTS bodies_{suffix}")
            await connection.execute(  # the shard no writer uses (012_maintenance_shard.sql)
                "UPDATE usage_shards SET messages = messages - $1, bytes = bytes - $2 "
                "WHERE shard = 16",
                held["n"],
                held["b"],
            )
            await connection.execute("DELETE FROM burnbox_uncounting WHERE suffix = $1", suffix)
    except asyncpg.UndefinedTableError:
        await connection.execute(f"DROP TABLE IF EXISTS bodies_{suffix}")
        return 0
    return 1


async def _uncount(connection: Any, suffix: str) -> None:
    """Every slice, paced as the ring's drain is (emptying.paced)."""
    await paced(lambda: _uncount_slice(connection, suffix))


async def _uncount_slice(connection: Any, suffix: str) -> bool:
    """What the counting triggers would have done to the counts of the next UNCOUNT_SLICE
    inboxes of a detached partition had its rows been deleted, worked out in the database;
    False once every inbox is done. One short transaction per slice (013_uncount_progress.sql):
    a writer waits for a counter row at most one slice's time. The rows are locked in
    address order, as every writer locks them: the slice is read sorted from the
    partition's primary key and drives the update row by row through the counters' index
    (a hash join would take them in the table's order, and could deadlock with a writer)."""
    async with connection.transaction():
        await connection.execute(
            "INSERT INTO burnbox_uncounting (suffix, through) VALUES ($1, '') "
            "ON CONFLICT DO NOTHING",
            suffix,
        )
        through = await connection.fetchval(  # waits for another node's slice, if any
            "SELECT through FROM burnbox_uncounting WHERE suffix = $1 FOR UPDATE", suffix
        )
        await connection.execute("SET LOCAL enable_hashjoin = off")
        last = await connection.fetchval(
            f"WITH slice AS MATERIALIZED (SELECT address, count(*) AS n "
            f"FROM messages_{suffix} WHERE address > $1 GROUP BY address ORDER BY address "
            "LIMIT $2), lowered AS (UPDATE address_counts c SET messages = c.messages - s.n "
            "FROM slice s WHERE c.address = s.address) SELECT max(address) FROM slice",
            through,
            UNCOUNT_SLICE,
        )
        if last is None:
            return False
        await connection.execute(
            "UPDATE burnbox_uncounting SET through = $2 WHERE suffix = $1", suffix, last
        )
        return True


async def leftovers(connection: Any) -> list[str]:
    """Partitions detached but not dropped (a node stopped between the two)."""
    rows = await connection.fetch(
        "SELECT substr(relname, 10) FROM pg_class WHERE relkind = 'r' AND "
        "relname ~ '^messages_(p[0-9]+(_[0-9]+)?|legacy|range)$' AND NOT relispartition"
    )
    return [row[0] for row in rows]
