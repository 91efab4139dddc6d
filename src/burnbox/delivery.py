"""The only write path for mail: summarise, store, then publish."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

from burnbox import mime, overview
from burnbox.hub import Event, Hub
from burnbox.ids import Clock, IdSource
from burnbox.metrics import Metrics
from burnbox.model import MessageSummary
from burnbox.parsing import ParsePool
from burnbox.storage.base import Store


class Deliverer:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        metrics: Metrics,
        *,
        clock: Clock,
        ids: IdSource,
        message_ttl: float,
        parse_pool: ParsePool,
    ) -> None:
        self._store = store
        self._hub = hub
        self._metrics = metrics
        self._clock = clock
        self._ids = ids
        self._ttl = timedelta(seconds=message_ttl)
        self._parse_pool = parse_pool

    async def deliver(self, addresses: list[str], raw: bytes) -> list[str]:
        """Store one copy of `raw` per distinct inbox address; returns the message ids.

        Raises the store's errors (StoreFull, StoreError, ...) unchanged: the
        caller decides what the sender is told. Nothing is published unless
        everything was stored.
        """
        # The fast path's cost is bounded by the header block; the full parse is not.
        parsed = overview.quick(raw)
        if parsed is None:
            parsed = await self._parse_pool.run(len(raw), mime.overview, raw)
        now = self._clock()
        expires = now + self._ttl
        summaries = [
            MessageSummary(
                id=self._ids(),
                address=address,
                received_at=now,
                expires_at=expires,
                size=len(raw),
                sender=parsed.sender,
                subject=parsed.subject,
                snippet=parsed.snippet,
                attachments=parsed.attachments,
                date=parsed.date,
                message_id=parsed.message_id,
                to=parsed.to,
            )
            for address in dict.fromkeys(addresses)
        ]
        started = time.perf_counter()
        stored = await self._store.add(summaries, raw)
        self._metrics.store_seconds.observe(time.perf_counter() - started)
        self._metrics.count_received(len(summaries))
        for summary, stored_id in zip(summaries, stored.ids, strict=True):
            if stored_id != summary.id:  # a shared store moved it after another node's commit
                summary = replace(summary, id=stored_id)
            self._hub.publish(Event("message", summary.address, summary.id, summary))
        for address, message_id in stored.evicted:
            self._hub.publish(Event("deleted", address, message_id))
        return stored.ids
