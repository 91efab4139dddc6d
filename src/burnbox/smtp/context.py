"""What every SMTP session of one listener shares: its configuration, the open sessions and
their limits, the deliverer, and the replies it makes once (greeting, EHLO)."""

from __future__ import annotations

import asyncio
import email.utils
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from burnbox.addressing import DomainPolicy
from burnbox.delivery import Deliverer
from burnbox.ids import Clock
from burnbox.metrics import Metrics
from burnbox.qa.chaos import Chaos
from burnbox.smtp import replies
from burnbox.trust.abuse import Abuse


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """The settings the SMTP side reads, under the settings' own names (the composition
    root copies them field by field)."""

    hostname: str
    max_message_size: int
    max_recipients: int
    max_command_line: int
    max_line_length: int
    smtp_idle_timeout: float
    smtp_min_data_rate: int
    smtp_min_data_rate_after: float
    smtp_max_errors: int
    smtp_max_bad_commands: int
    smtp_junk_limit: int
    received_client_ip: bool
    max_connections: int
    max_connections_per_ip: int
    smtp_delivery_timeout: float
    store_max_bytes: int  # no message larger than the whole store can ever be kept


class Session(Protocol):
    """What the registry needs of a session."""

    client_ip: str

    @property
    def idle(self) -> bool: ...

    def begin_shutdown(self) -> None: ...

    def force_close(self) -> None: ...


class SessionRegistry:
    """Open sessions, per-IP counts, and the steps (tasks) they have in flight."""

    def __init__(self, max_total: int, max_per_ip: int) -> None:
        self._max_total = max_total
        self._max_per_ip = max_per_ip
        self.sessions: set[Session] = set()
        self._per_ip: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[bytes | None]] = set()
        self.accepting = True
        self.empty = asyncio.Event()  # set while no session is open
        self.empty.set()

    def admit(self, session: Session) -> bool:
        if (
            not self.accepting
            or len(self.sessions) >= self._max_total
            or self._per_ip[session.client_ip] >= self._max_per_ip
        ):
            return False
        self.sessions.add(session)
        self._per_ip[session.client_ip] += 1
        self.empty.clear()
        return True

    def leave(self, session: Session) -> None:
        if session in self.sessions:
            self.sessions.discard(session)
            self._per_ip[session.client_ip] -= 1
            if self._per_ip[session.client_ip] <= 0:
                del self._per_ip[session.client_ip]
            if not self.sessions:
                self.empty.set()

    def hold(self, task: asyncio.Task[bytes | None]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


def _ehlo_keywords(config: SmtpConfig) -> list[str]:
    """EHLO's greeting line and the extensions every session offers."""
    return [
        f"{config.hostname} greets you",
        "PIPELINING",
        f"SIZE {config.max_message_size}",
        "8BITMIME",
        "BINARYMIME",
        "SMTPUTF8",
        "CHUNKING",
        "ENHANCEDSTATUSCODES",
    ]


class SmtpContext:
    """What every session of one listener shares."""

    def __init__(
        self,
        config: SmtpConfig,
        deliverer: Deliverer,
        domains: DomainPolicy,
        metrics: Metrics,
        clock: Clock,
        ssl_context: ssl.SSLContext | None,
        *,
        recipient_check: Callable[[str], Awaitable[bool]] | None = None,
        abuse: Abuse | None = None,
        checks: bool = False,
        chaos: Chaos | None = None,
    ) -> None:
        self.config = config
        self.deliverer = deliverer
        self.domains = domains
        self.metrics = metrics
        self.clock = clock
        self.ssl_context = ssl_context
        # With unclaimed=reject: is there a live inbox for this address? (None: accept all)
        self.recipient_check = recipient_check
        self.abuse = abuse  # rate, blocklists and refused senders (None: none of them)
        self.checks = checks  # the deliverer checks who sent each message: tell it
        self.chaos = chaos  # sink mode's faults on request (BURNBOX_SINK_CHAOS), or None
        self.registry = SessionRegistry(config.max_connections, config.max_connections_per_ip)
        self.primary_domain = domains.creatable[0]
        self.greeting = replies.reply(f"220 {config.hostname} ESMTP burnbox")
        keywords = _ehlo_keywords(config)
        self._ehlo = replies.multiline(250, [*keywords, "HELP"])
        self._ehlo_starttls = replies.multiline(250, [*keywords, "STARTTLS", "HELP"])
        self._date_second = -1
        self._date_text = ""

    def received_date(self) -> str:
        """The Received: header's date, formatted once a second (it cost 2% of ingest)."""
        now = self.clock()
        second = int(now.timestamp())
        if second != self._date_second:
            self._date_second, self._date_text = second, email.utils.format_datetime(now)
        return self._date_text

    def ehlo_reply(self, *, tls_active: bool) -> bytes:
        return self._ehlo_starttls if self.ssl_context and not tls_active else self._ehlo


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
