"""Push streams held open at once, per client IP and in all: each costs a connection, a
hub subscription and its queue, so an attacker's thousands of streams are refused."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Literal

Limit = Literal["per_ip", "total"]


class TooManyStreams(Exception):
    def __init__(self, limit: Limit) -> None:
        super().__init__(limit)
        self.limit = limit


class StreamLimits:
    def __init__(
        self, total: int, per_ip: int, on_refusal: Callable[[Limit], None] = lambda limit: None
    ) -> None:
        self._total = total
        self._per_ip = per_ip
        self._held: Counter[str] = Counter()
        self._count = 0
        self._on_refusal = on_refusal

    def take(self, client: str) -> Callable[[], None]:
        """Hold one stream for `client`; returns its release (call it exactly once).
        Raises TooManyStreams."""
        limit: Limit | None = (
            "total"
            if self._count >= self._total
            else "per_ip"
            if self._held[client] >= self._per_ip
            else None
        )
        if limit is not None:
            self._on_refusal(limit)
            raise TooManyStreams(limit)
        self._held[client] += 1
        self._count += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._count -= 1
                self._held[client] -= 1
                if self._held[client] <= 0:
                    del self._held[client]

        return release

    def held(self, client: str) -> int:
        return self._held[client]
