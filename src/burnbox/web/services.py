"""What the composition root hands the web layer (kept on `app.state`, read by deps.py)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from burnbox.addressing import DomainPolicy
from burnbox.feeds import Feeds
from burnbox.ids import Clock
from burnbox.inboxes import InboxService
from burnbox.metrics import Metrics
from burnbox.parsing import ParsePool
from burnbox.qa.chaos import Chaos
from burnbox.qa.release import SinkRelay
from burnbox.ratelimit import RateLimiter
from burnbox.settings_values import Endpoint
from burnbox.sink import Envelope, SinkStats
from burnbox.storage.base import Store
from burnbox.web.limits import StreamLimits
from burnbox.webhooks import WebhookService

Readiness = Callable[[], Awaitable[dict[str, bool]]]


@dataclass(frozen=True)
class SinkAccess:
    """What the sink's APIs need beyond reading the shared view: delivering a released
    message to this node's own SMTP side (never anywhere else), knowing that side, and
    which API owns the paths where Mailpit's and MailHog's clash."""

    deliver: Callable[[list[str], bytes, Envelope], Awaitable[list[str]]]
    smtp_port: Callable[[], int]
    hostname: str
    api: str = "mailpit"  # whose API answers GET and DELETE /api/v1/messages
    max_message: int = 10 * 1024 * 1024  # bytes a message made by Mailpit's send may have
    users: dict[str, bytes] | None = None  # BURNBOX_SINK_AUTH_FILE's, when set
    stats: SinkStats = field(default_factory=SinkStats)  # this process's, as the Deliverer counts
    store_kind: str = "memory"  # what /api/v1/info names as its database
    started: float = field(default_factory=time.monotonic)
    link_check_allow: tuple[str, ...] = ()  # hosts the link check may ask beyond loopback
    # Who sent each message made through Mailpit's send (its `Username`), by the shared
    # view's id: kept by this node, bounded (USERNAMES_KEPT).
    usernames: OrderedDict[str, str] = field(default_factory=OrderedDict)
    tags: OrderedDict[str, list[str]] = field(default_factory=OrderedDict)  # the same way
    chaos: Chaos | None = None  # BURNBOX_SINK_CHAOS's triggers, shared with the SMTP side
    relay: SinkRelay | None = None  # where Mailpit's release may send (BURNBOX_SINK_RELAY)
    spamd: Endpoint | None = None  # SpamAssassin's spamd for `sa-check`


@dataclass(frozen=True)
class WebServices:
    metrics: Metrics
    readiness: Readiness
    store: Store  # for the operators' totals only: mail is read through `inboxes`
    inboxes: InboxService
    feeds: Feeds
    domains: DomainPolicy
    creations: RateLimiter  # inboxes one client IP may create
    failed_reads: RateLimiter  # reads one client IP may get wrong
    streams: StreamLimits
    clock: Clock
    parse_pool: ParsePool
    allowed_origins: tuple[str, ...] = ()
    # The mail.tm listener's: requests one client IP may make, and an account's quota.
    account_requests: RateLimiter = field(default_factory=lambda: RateLimiter(8, 1 / 8))
    per_account_requests: RateLimiter = field(default_factory=lambda: RateLimiter(8, 1 / 8))
    account_quota: int = 40_000_000
    sink: SinkAccess | None = None  # sink mode: the MailHog API is served
    webhooks: WebhookService | None = None
