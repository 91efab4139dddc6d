"""What the SQL stores share: summary rows and pending adds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from burnbox.model import SUMMARY_FIELDS, MessageSummary, at_ms, from_plain, ms_of, to_plain
from burnbox.storage.base import Stored

_COLUMN_NAMES = {"to": "recipients"}  # a summary field whose column is named otherwise
# The columns of a summary, in the order of its fields: every SQL store selects and inserts
# them in this order.
SUMMARY_COLUMNS = ", ".join(_COLUMN_NAMES.get(name, name) for name in SUMMARY_FIELDS)
ID = SUMMARY_FIELDS.index("id")  # where the id stands among them


def to_ms(moment: datetime) -> int:
    return ms_of(moment)


def from_ms(value: int) -> datetime:
    return at_ms(value)


def summary_values(summary: MessageSummary) -> tuple[Any, ...]:
    return tuple(to_plain(summary))


def summary_of(row: Sequence[Any]) -> MessageSummary:
    return from_plain(list(row)[: len(SUMMARY_FIELDS)])


@dataclass(frozen=True)
class PendingAdd:
    """One delivery waiting for its group commit."""

    summaries: list[MessageSummary]
    raw: bytes

    def stored(self, evicted: list[tuple[str, str]], ids: list[str] | None = None) -> Stored:
        """Its answer: the ids it got (as proposed unless given) and what was evicted."""
        return Stored(ids or [summary.id for summary in self.summaries], evicted)
