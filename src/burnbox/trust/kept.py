"""What was worked out from DNS answers, kept until the first of those answers expires."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class Kept(Generic[Value]):
    """At most `size` values, the most recently used; each until its `expires`
    (time.monotonic)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._values: OrderedDict[Hashable, tuple[float, Value]] = OrderedDict()

    def get(self, key: Hashable) -> Value | None:
        found = self._values.get(key)
        if found is None:
            return None
        if found[0] <= time.monotonic():
            del self._values[key]
            return None
        self._values.move_to_end(key)
        return found[1]

    def put(self, key: Hashable, expires: float, value: Value) -> None:
        if expires <= time.monotonic():
            return
        self._values[key] = (expires, value)
        self._values.move_to_end(key)
        while len(self._values) > self._size:
            self._values.popitem(last=False)
