"""The Reaper: purges what is past its time and tells the hub."""

from __future__ import annotations

import asyncio
import logging

from burnbox.hub import Event, Hub
from burnbox.ids import Clock
from burnbox.metrics import Metrics
from burnbox.storage.base import Store, StoreError

log = logging.getLogger(__name__)


class Reaper:
    def __init__(
        self, store: Store, hub: Hub, metrics: Metrics, *, clock: Clock, interval: float
    ) -> None:
        self._store = store
        self._hub = hub
        self._metrics = metrics
        self._clock = clock
        self._interval = interval

    async def run_once(self) -> int:
        """Purge once; returns how many messages went."""
        with self._metrics.purge_seconds.time():
            purged = await self._store.purge_expired(self._clock())
        messages = 0
        for address, message_id in purged:
            messages += bool(message_id)
            self._hub.publish(Event("expired", address, message_id))
        self._metrics.purged.inc(messages)
        return messages

    async def run(self) -> None:
        while True:
            try:
                count = await self.run_once()
                if count:
                    log.info("purged %d expired messages", count)
            except (StoreError, OSError, TimeoutError) as error:
                # A store outage must not stop future purges. Anything else is a fault the
                # next round would meet again (mail kept past its time, silently): it ends
                # this task, and the supervisor stops the node.
                # The type only: an exception's text may carry an address.
                cause = error.__cause__ or error  # the driver's error class says what failed
                log.error("purge failed (%s); will retry", type(cause).__name__)
            await asyncio.sleep(self._interval)
