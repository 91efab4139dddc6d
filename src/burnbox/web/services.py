"""What the web layer is given by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from burnbox.addressing import DomainPolicy
from burnbox.hub import Hub
from burnbox.ids import Clock
from burnbox.inboxes import InboxService
from burnbox.metrics import Metrics
from burnbox.parsing import ParsePool
from burnbox.ratelimit import RateLimiter
from burnbox.storage.base import Store
from burnbox.web.live import Live

Readiness = Callable[[], Awaitable[dict[str, bool]]]


@dataclass(frozen=True)
class WebServices:
    metrics: Metrics
    readiness: Readiness
    store: Store
    hub: Hub
    inboxes: InboxService
    domains: DomainPolicy
    limiter: RateLimiter
    clock: Clock
    live: Live
    parse_pool: ParsePool
    allowed_origins: tuple[str, ...] = ()

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """Same origin as the request, or configured; absent (not a browser) is allowed."""
        if origin is None:
            return True
        if origin in self.allowed_origins:
            return True
        return host is not None and urlsplit(origin).netloc.lower() == host.lower()
