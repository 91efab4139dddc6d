"""A token bucket per key (client IP), with a bounded number of keys."""

from __future__ import annotations

from collections import OrderedDict

MAX_KEYS = 100_000  # buckets kept; the least recently used goes first


class RateLimiter:
    def __init__(self, burst: int, seconds_per_token: float, max_keys: int = MAX_KEYS) -> None:
        self._max_keys = max_keys
        self._burst = float(burst)
        self._interval = seconds_per_token
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def blocked(self, key: str, now: float) -> float | None:
        """Whether `key` has no token now (seconds until it has one), without taking one."""
        tokens, stamp = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + max(now - stamp, 0.0) / self._interval)
        return None if tokens >= 1.0 else (1.0 - tokens) * self._interval

    def take(self, key: str, now: float) -> float | None:
        """Take a token: None when allowed, else seconds until one is free."""
        tokens, stamp = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + max(now - stamp, 0.0) / self._interval)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            allowed = None
        else:
            self._buckets[key] = (tokens, now)
            allowed = (1.0 - tokens) * self._interval
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return allowed
