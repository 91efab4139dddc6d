"""Delivering webhooks: at least once, from the store's outbox, safely.

Every TICK the dispatcher drops what is beyond the outbox's bounds (the oldest first,
counted), retires the hooks of ended inboxes, claims the deliveries that are due (each held
by a lease: another worker or node skips it, and takes it over only if this one died), and
sends each. A destination is resolved and checked (destinations.py) before every attempt
and the connection goes to the checked address; no redirect is followed; connect and total
times are bounded and at most RESPONSE_READ bytes of an answer are read. One destination
has at most PER_DESTINATION sends at once, so a slow receiver holds up only its own.
A 2xx is delivered; anything else is tried again after an exponential backoff with jitter
until BURNBOX_WEBHOOK_RETRY_FOR has passed since the event, then given up (counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from burnbox import webhooks
from burnbox.destinations import IpNetwork, RefusedDestination, resolve
from burnbox.ids import Clock
from burnbox.metrics import Metrics
from burnbox.model import Delivery
from burnbox.parsing import ParsePool
from burnbox.storage.base import NotFound, Store, StoreError
from burnbox.trust.checker import BUDGET
from burnbox.trust.results import authentication

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)
TICK = 0.5  # seconds between looks at the outbox
CLAIM = 32  # deliveries claimed at a time
LEASE = timedelta(minutes=5)  # a claimed delivery is this one's for this long
IN_FLIGHT = 64  # sends at once and waiting for their turn, in all
PER_DESTINATION = 2  # sends at once to one host
QUEUED_PER_DESTINATION = 8  # claimed and waiting for a host; its sends take at most
# QUEUED / PER_DESTINATION * TOTAL_TIMEOUT = 40 s, well within the lease
CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 10.0
RESPONSE_READ = 4096  # bytes of an answer read at most
FIRST_RETRY = 5.0  # seconds; doubles per attempt, with jitter
LAST_RETRY = 3600.0
CHECKS_PENDING = timedelta(seconds=1)  # how long a delivery waiting for sender checks waits


class NotYet(Exception):
    """A received message whose sender checks have not finished: its event waits."""


def backoff(attempts: int, rng: random.Random) -> float:
    """Seconds before the next try: exponential, capped, with full jitter around it."""
    base: float = min(FIRST_RETRY * 2.0**attempts, LAST_RETRY)
    return base * rng.uniform(0.5, 1.5)


class Dispatcher:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        metrics: Metrics,
        parse_pool: ParsePool,
        *,
        allow: tuple[IpNetwork, ...],
        retry_for: float,
        max_pending: int,
        max_pending_total: int,
        checks: bool = False,
    ) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._parse_pool = parse_pool
        self._allow = allow
        self._retry_for = timedelta(seconds=retry_for)
        self._max_pending = max_pending
        self._max_pending_total = max_pending_total
        self._checks = checks  # the sender checks run: a received message waits for them
        self._rng = random.Random()
        self._queued: Counter[str] = Counter()
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self.attempts = 0  # attempts settled so far (what an operator's test can wait on)
        self._settled = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.tick()
                except (StoreError, OSError, TimeoutError) as error:  # the store's outage
                    cause = error.__cause__ or error  # the driver's class says what failed
                    log.warning("webhook dispatch paused (%s)", type(cause).__name__)
                await asyncio.sleep(TICK)  # a poll: the outbox is shared by every node
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._client is not None:
                await self._client.aclose()

    def _http(self) -> httpx.AsyncClient:
        """The HTTP client, made at the first send: importing httpx loads its command
        line's `rich` when installed (about 8 MiB a node without webhooks never needs)."""
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,  # no proxy from the environment: the checked address is called
                timeout=httpx.Timeout(TOTAL_TIMEOUT, connect=CONNECT_TIMEOUT),
                limits=httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=0),
            )
        return self._client

    async def tick(self) -> None:
        now = self._clock()
        dropped = await self._store.trim_outbox(self._max_pending, self._max_pending_total)
        if dropped:
            self._metrics.webhooks.labels("dropped").inc(dropped)
        await self._store.end_webhooks(now)
        if len(self._tasks) >= IN_FLIGHT:
            return
        for delivery in await self._store.claim_deliveries(now, now + LEASE, CLAIM):
            host = _host(delivery.url)
            if self._queued[host] >= QUEUED_PER_DESTINATION:
                # A busy host: given back untried, due again at the next look (any node's).
                await self._store.release_delivery(delivery, now)
                continue
            self._queued[host] += 1
            task = asyncio.ensure_future(self._attempt(delivery, host))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _attempt(self, delivery: Delivery, host: str) -> None:
        turn = self._hosts.setdefault(host, asyncio.Semaphore(PER_DESTINATION))
        try:
            async with turn:
                status = await self._send(delivery)
        except NotYet:  # its sender checks are still running: given back, untried
            self._queued[host] -= 1
            if not self._queued[host]:
                del self._queued[host]
            await self._store.release_delivery(delivery, self._clock() + CHECKS_PENDING)
            return
        except Exception as error:  # the type only: a message may carry the URL
            status = f"error ({type(error).__name__})"
        finally:
            self._queued[host] -= 1
            if not self._queued[host]:
                del self._queued[host]
                self._hosts.pop(host, None)
        now = self._clock()
        delivered = status.isdigit() and 200 <= int(status) < 300
        retry_at = None
        if not delivered:
            retry_at = now + timedelta(seconds=backoff(delivery.attempts, self._rng))
            # An event's time is its first attempt's (the store's triggers leave it unset).
            first = delivery.created_at if delivery.attempts else now
            if retry_at - first > self._retry_for:
                retry_at = None
        outcome = "delivered" if delivered else "retried" if retry_at else "given_up"
        self._metrics.webhooks.labels(outcome).inc()
        await self._store.settle_delivery(
            delivery, status, now, delivered=delivered, retry_at=retry_at
        )
        async with self._settled:
            self.attempts += 1
            self._settled.notify_all()

    async def wait_attempts(self, count: int) -> None:
        """Until `count` attempts have been settled."""
        async with self._settled:
            await self._settled.wait_for(lambda: self.attempts >= count)

    async def _send(self, delivery: Delivery) -> str:
        try:
            destination = await resolve(delivery.url, self._allow)
        except RefusedDestination:
            return "refused destination"
        content = webhooks.body(delivery, self._clock(), await self._extra(delivery))
        # The receiver checks this against its own clock (Standard Webhooks allows 5 min):
        # the wall clock, not the service's (which tests may move).
        sent_at = int(time.time())
        headers = {
            **webhooks.headers(delivery, sent_at, content),
            "host": destination.host_header,
        }
        url = destination.url_for(destination.addresses[0])
        extensions: dict[str, Any] = (
            {"sni_hostname": destination.host} if destination.scheme == "https" else {}
        )
        import httpx

        client = self._http()
        try:
            async with asyncio.timeout(TOTAL_TIMEOUT):
                request = client.build_request(
                    "POST", url, content=content, headers=headers, extensions=extensions
                )
                response = await client.send(request, stream=True)
                try:
                    await _read_some(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            return "timeout"
        except httpx.HTTPError as error:
            return f"error ({type(error).__name__})"
        return str(response.status_code)

    async def _extra(self, delivery: Delivery) -> dict[str, Any]:
        """Codes, links (and text, if asked) of a received message still held, and who
        sent it: a message whose sender checks still run is not sent yet (NotYet), for a
        while (the checks' budget and a second)."""
        if delivery.kind != "message.received":
            return {}
        subject = str(json.loads(delivery.payload).get("subject", ""))
        try:
            summary = await self._store.summary(delivery.address, delivery.message_id)
            raw = await self._store.raw(delivery.address, delivery.message_id)
        except NotFound:
            return {}
        waited = (self._clock() - summary.received_at).total_seconds()
        if self._checks and not summary.auth and waited < BUDGET + CHECKS_PENDING.seconds:
            raise NotYet(delivery.message_id)
        found: dict[str, Any] = await self._parse_pool.run(
            len(raw), webhooks.found_in, raw, subject, delivery.include_body
        )
        found["authentication"] = authentication(summary.auth)
        return found


async def _read_some(response: httpx.Response) -> None:
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read >= RESPONSE_READ:
            return


def _host(url: str) -> str:
    """The destination a send counts against: scheme, host and port."""
    with contextlib.suppress(ValueError):
        parsed = urlsplit(url)
        return f"{parsed.scheme}://{parsed.hostname}:{parsed.port}"
    return url
