"""The only write path for mail: summarise, store, then publish; and, with the sender
checks on, record who really sent it (trust/, in a process of their own: trust/worker.py):
with the message when the resolver's kept answers are all the checks need, else in the
background after the 250, then pushed as an "updated" event like any other change."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import timedelta

from burnbox import mime, overview
from burnbox.hub import Event, Hub
from burnbox.ids import Clock, IdSource
from burnbox.metrics import Metrics
from burnbox.model import MessageSummary
from burnbox.parsing import ParsePool
from burnbox.sink import RECIPIENT_SEPARATOR, SINK_ADDRESS, Envelope, SinkStats
from burnbox.storage.base import Store, StoreError
from burnbox.trust.checker import Arrival, Checked, checked, timed_out
from burnbox.trust.results import untrust
from burnbox.trust.worker import CheckProcess

log = logging.getLogger(__name__)
MAX_CHECKING = 5000  # background checks at once; more are recorded as temperror at once


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
        hostname: str = "",
        checker: CheckProcess | None = None,
    ) -> None:
        self._store = store
        self._hub = hub
        self._metrics = metrics
        self._clock = clock
        self._ids = ids
        self._ttl = timedelta(seconds=message_ttl)
        self._parse_pool = parse_pool
        self.sink = sink
        self.sink_stats = SinkStats()
        self._hostname = hostname
        self._checker = checker
        self._checking: set[asyncio.Task[None]] = set()

    async def deliver(
        self,
        addresses: list[str],
        raw: bytes,
        envelope: Envelope | None = None,
        arrival: Arrival | None = None,
    ) -> list[str]:
        """Store one copy of `raw` per distinct inbox address (and in sink mode one more,
        with its envelope, in the shared view: sink.py); returns the message ids. With the
        checks on and an `arrival` to check, who sent it is recorded too.

        Raises the store's errors (StoreFull, StoreError, ...) unchanged: the
        caller decides what the sender is told. Nothing is published unless
        everything was stored.
        """
        # Stored with any field claiming to be our Authentication-Results renamed, but
        # checked as it arrived: a signature may cover such a field (RFC 6376 verifies
        # the message as received). Without one, both are the same object.
        received, raw = raw, untrust(raw, self._hostname)
        asked = None
        if self._checker is not None and arrival is not None:
            asked = self._checker.now(arrival, received)  # worked out while this summarises
        summaries = await self._summaries(addresses, raw, envelope, asked)
        started = time.perf_counter()
        stored = await self._store.add(summaries, raw)
        self._metrics.store_seconds.observe(time.perf_counter() - started)
        self._metrics.count_received(len(summaries))
        if self.sink and envelope is not None:
            self.sink_stats.accepted += 1
            self.sink_stats.accepted_bytes += len(raw)
        for summary, stored_id in zip(summaries, stored.ids, strict=True):
            if stored_id != summary.id:  # a shared store moved it after another node's commit
                summary = replace(summary, id=stored_id)
            self._hub.publish(Event("message", summary.address, summary.id, summary))
        for address, message_id in stored.evicted:
            self._hub.publish(Event("deleted", address, message_id))
        if asked is not None and arrival is not None:  # asked is done: _summaries awaited it
            copies = [(s.address, i) for s, i in zip(summaries, stored.ids, strict=True)]
            self._record_checks(arrival, received, copies, asked.result())
        return stored.ids

    async def _summaries(
        self,
        addresses: list[str],
        raw: bytes,
        envelope: Envelope | None,
        asked: asyncio.Future[Checked | None] | None,
    ) -> list[MessageSummary]:
        # The fast path's cost is bounded by the header block; the full parse is not.
        parsed = overview.quick(raw)
        if parsed is None:
            parsed = await self._parse_pool.run(len(raw), mime.overview, raw)
        found = await asked if asked is not None else None
        auth = found.auth if found is not None else ""
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
                auth=auth,
            )
            for address in dict.fromkeys(addresses)
        ]
        if self.sink and envelope is not None:
            summaries.append(self._sink_copy(summaries[0], envelope))
        return summaries

    def _sink_copy(self, summary: MessageSummary, envelope: Envelope) -> MessageSummary:
        """Sink mode's shared view keeps one more copy, with its SMTP envelope (sink.py)."""
        return replace(
            summary,
            id=self._ids(),
            address=SINK_ADDRESS,
            sender=envelope.sender,
            to=RECIPIENT_SEPARATOR.join(envelope.recipients),
        )

    # -- who sent it ----------------------------------------------------------

    def _record_checks(
        self, arrival: Arrival, raw: bytes, copies: list[tuple[str, str]], found: Checked | None
    ) -> None:
        """Count results stored with the message, or check it in the background."""
        if found is not None:
            self._metrics.count_checked("cached", found.results)
            return
        if len(self._checking) >= MAX_CHECKING:
            checking = self._settle(copies, checked(timed_out(arrival)), "skipped")
        else:
            checking = self._check(arrival, raw, copies)
        task = asyncio.ensure_future(checking)
        self._checking.add(task)
        task.add_done_callback(self._checking.discard)

    async def _check(self, arrival: Arrival, raw: bytes, copies: list[tuple[str, str]]) -> None:
        assert self._checker is not None
        await self._settle(copies, await self._checker.check(arrival, raw), "background")

    async def _settle(self, copies: list[tuple[str, str]], found: Checked, way: str) -> None:
        """Record the results on every copy still held, and tell their watchers."""
        self._metrics.count_checked(way, found.results)
        try:
            updated = await self._store.set_auth(copies, found.auth)
        except (StoreError, OSError) as error:  # the results are lost; the mail is not
            log.warning("could not record a message's sender checks (%s)", type(error).__name__)
            return
        for summary in updated:
            self._hub.publish(Event("updated", summary.address, summary.id, summary))

    async def start(self) -> None:
        if self._checker is not None:
            await self._checker.start()

    async def stop(self) -> None:
        """Background checks end with the node (their mail is stored; its results are not)."""
        for task in list(self._checking):
            task.cancel()
        await asyncio.gather(*self._checking, return_exceptions=True)
        if self._checker is not None:
            await self._checker.close()
