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
from burnbox.sink import RECIPIENT_SEPARATOR, SINK_ADDRESS, Envelope
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
        sink: bool = False,
    ) -> None:
        self._store = store
        self._hub = hub
        self._metrics = metrics
        self._clock = clock
        self._ids = ids
        self._ttl = timedelta(seconds=message_ttl)
        self._parse_pool = parse_pool
        self.sink = sink

    async def deliver(
        self, addresses: list[str], raw: bytes, envelope: Envelope | None = None
    ) -> list[str]:
        """Store one copy of `raw` per distinct inbox address (and in sink mode one more,
        with its envelope, in the shared view: sink.py); returns the message ids.

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
        if self.sink and envelope is not None:
            summaries.append(
                replace(
                    summaries[0],
                    id=self._ids(),
                    address=SINK_ADDRESS,
                    sender=envelope.sender,
                    to=RECIPIENT_SEPARATOR.join(envelope.recipients),
                )
            )
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
