"""Bringing a store's schema up to date: the numbered SQL files in schema/<dialect>/,
each applied once, in order, when a node opens its store."""

from __future__ import annotations

from importlib import resources
from typing import Any

import aiosqlite

MIGRATION_LOCK = 0x6275726E626F78  # "burnbox": the advisory lock migrations run under


def migrations(dialect: str) -> list[tuple[int, str]]:
    """(number, SQL) of every migration for `dialect` (sqlite, postgres), in order."""
    folder = resources.files("burnbox.storage") / "schema" / dialect
    return sorted(
        (int(item.name.split("_", 1)[0]), item.read_text())
        for item in folder.iterdir()
        if item.name.endswith(".sql")
    )


async def migrate_postgres(connection: Any, settings: dict[str, int]) -> None:
    """Every pending migration, in one transaction holding the migration lock (a
    transaction's lock, so that it holds through a pooler too). `settings` are set for
    that transaction as `burnbox.<name>`, for the scripts to read (014_ring.sql records
    the ring's spans this node would choose)."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        for name, value in settings.items():
            setting = f"burnbox.{name}"
            await connection.execute("SELECT set_config($1, $2, true)", setting, str(value))
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS burnbox_migrations ("
            "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in await connection.fetch("SELECT version FROM burnbox_migrations")}
        for number, script in migrations("postgres"):
            if number not in done:
                await connection.execute(script)
                await connection.execute(
                    "INSERT INTO burnbox_migrations (version) VALUES ($1)", number
                )


async def migrate_sqlite(writer: aiosqlite.Connection) -> None:
    """Every migration past the file's user_version, each in its own transaction."""
    version = (await (await writer.execute("PRAGMA user_version")).fetchone() or (0,))[0]
    for number, script in migrations("sqlite"):
        if number > version:
            await writer.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
