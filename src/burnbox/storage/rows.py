"""What the SQL stores share: summary rows, pending adds, migrations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from burnbox.model import MessageSummary
from burnbox.storage.base import Stored

# The column order every SQL store selects and inserts summaries in.
SUMMARY_COLUMNS = ("address, id, received_at, expires_at, size, sender, recipients, subject, "
                   "snippet, attachments, date, message_id, seen")


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def summary_values(summary: MessageSummary) -> tuple[Any, ...]:
    return (summary.address, summary.id, to_ms(summary.received_at),
            to_ms(summary.expires_at), summary.size, summary.sender, summary.to, summary.subject,
            summary.snippet, summary.attachments, summary.date, summary.message_id,
            summary.seen)


def summary_of(row: Sequence[Any]) -> MessageSummary:
    return MessageSummary(
        address=row[0], id=row[1], received_at=from_ms(row[2]), expires_at=from_ms(row[3]),
        size=row[4], sender=row[5], to=row[6], subject=row[7], snippet=row[8],
        attachments=row[9], date=row[10], message_id=row[11], seen=bool(row[12]))


@dataclass(frozen=True)
class PendingAdd:
    """One delivery waiting for its group commit."""

    summaries: list[MessageSummary]
    raw: bytes

    def stored(self, evicted: list[tuple[str, str]], ids: list[str] | None = None) -> Stored:
        """Its answer: the ids it got (as proposed unless given) and what was evicted."""
        return Stored(ids or [summary.id for summary in self.summaries], evicted)


def migrations(dialect: str) -> list[tuple[int, str]]:
    """(number, SQL) of every migration for `dialect` (sqlite, postgres), in order."""
    folder = resources.files("burnbox.storage") / "schema" / dialect
    return sorted((int(item.name.split("_", 1)[0]), item.read_text())
                  for item in folder.iterdir() if item.name.endswith(".sql"))
