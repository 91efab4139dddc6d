"""Message ids and the clock: the two things tests may fake.

A message id is 26 characters of Crockford base32: 48 bits of milliseconds
then 80 random bits (the ULID layout), so ids sort by arrival and serve as
cursors and SSE event ids. Within one millisecond the random part counts up,
so ids from one process are strictly increasing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
IdSource = Callable[[], str]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80


def system_clock() -> datetime:
    return datetime.now(UTC)


def encode(value: int, length: int = 26) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


class MessageIds:
    """Monotonic ULID-style ids from a clock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._last_ms = -1
        self._last_random = 0

    def __call__(self) -> str:
        ms = int(self._clock().timestamp() * 1000)
        if ms <= self._last_ms:
            ms = self._last_ms
            self._last_random += 1
        else:
            self._last_ms = ms
            self._last_random = int.from_bytes(os.urandom(10)) >> 1  # room to count up
        return encode((ms << _RANDOM_BITS) | (self._last_random & ((1 << _RANDOM_BITS) - 1)))
