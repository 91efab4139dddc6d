"""A session's phase and its mail transaction, as values: what the verbs read and change.

The phases are named (as Inbucket's are), not inferred from which fields happen to be set;
a transaction is one object, replaced whole on RSET, EHLO, STARTTLS or after a delivery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Phase(Enum):
    GREET = "greet"  # connected; EHLO or HELO comes first
    READY = "ready"  # greeted; no transaction
    MAIL = "mail"  # a sender is given; recipients follow
    BODY = "body"  # DATA or a BDAT chunk is being read
    CLOSED = "closed"


BODY_TYPES = frozenset({"7BIT", "8BITMIME", "BINARYMIME"})


@dataclass(slots=True)
class Transaction:
    """MAIL, its parameters, the recipients, and (with BDAT) the message so far."""

    sender: str | None = None  # the reverse path as given, once MAIL was accepted
    utf8: bool = False  # SMTPUTF8 was given
    body_type: str = "7BIT"
    declared_size: int = 0  # SIZE=, if given
    recipients: dict[str, None] = field(default_factory=dict)  # ordered set, normalised
    chunks: bytearray | None = None  # the message so far, during BDAT
    chunks_failed: bool = False  # a chunk was refused: the rest are read and dropped
    last_chunk: bool = False  # the chunk being read is BDAT ... LAST
