"""The SMTP listener: shared context, connection limits, graceful shutdown."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from burnbox.addressing import DomainPolicy
from burnbox.delivery import Deliverer
from burnbox.ids import Clock
from burnbox.metrics import Metrics
from burnbox.settings import Endpoint, Settings
from burnbox.smtp import replies
from burnbox.smtp.connection import SmtpConnection
from burnbox.smtp.session import SmtpSession


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    hostname: str
    max_message_size: int
    max_recipients: int
    max_command_line: int
    max_line_length: int
    idle_timeout: float
    min_data_rate: int
    min_data_rate_after: float
    max_errors: int
    max_bad_commands: int
    junk_limit: int
    received_client_ip: bool
    max_connections: int
    max_connections_per_ip: int
    delivery_timeout: float = 60.0
    store_max_bytes: int = 512 * 1024**2  # the store's byte cap: no message can be larger

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        return cls(
            hostname=settings.hostname or socket.getfqdn(),
            max_message_size=settings.max_message_size,
            max_recipients=settings.max_recipients,
            max_command_line=settings.max_command_line,
            max_line_length=settings.max_line_length,
            idle_timeout=settings.smtp_idle_timeout,
            min_data_rate=settings.smtp_min_data_rate,
            min_data_rate_after=settings.smtp_min_data_rate_after,
            max_errors=settings.smtp_max_errors,
            max_bad_commands=settings.smtp_max_bad_commands,
            junk_limit=settings.smtp_junk_limit,
            received_client_ip=settings.received_client_ip,
            max_connections=settings.max_connections,
            max_connections_per_ip=settings.max_connections_per_ip,
            delivery_timeout=settings.smtp_delivery_timeout,
            store_max_bytes=settings.store_max_bytes,
        )


class SessionRegistry:
    """Open sessions, per-IP counts, and the steps (tasks) they have in flight."""

    def __init__(self, max_total: int, max_per_ip: int) -> None:
        self._max_total = max_total
        self._max_per_ip = max_per_ip
        self.sessions: set[SmtpConnection] = set()
        self._per_ip: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[bytes | None]] = set()
        self.accepting = True
        self.empty = asyncio.Event()  # set while no session is open
        self.empty.set()

    def admit(self, session: SmtpConnection) -> bool:
        if (not self.accepting or len(self.sessions) >= self._max_total
                or self._per_ip[session.client_ip] >= self._max_per_ip):
            return False
        self.sessions.add(session)
        self._per_ip[session.client_ip] += 1
        self.empty.clear()
        return True

    def leave(self, session: SmtpConnection) -> None:
        if session in self.sessions:
            self.sessions.discard(session)
            self._per_ip[session.client_ip] -= 1
            if self._per_ip[session.client_ip] <= 0:
                del self._per_ip[session.client_ip]
            if not self.sessions:
                self.empty.set()

    def hold(self, task: asyncio.Task[bytes | None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def tasks(self) -> set[asyncio.Task[bytes | None]]:
        return self._tasks


class SmtpContext:
    """What every session of one listener shares."""

    def __init__(self, config: SmtpConfig, deliverer: Deliverer, domains: DomainPolicy,
                 metrics: Metrics, clock: Clock, ssl_context: ssl.SSLContext | None, *,
                 recipient_check: Callable[[str], Awaitable[bool]] | None = None) -> None:
        self.config = config
        self.deliverer = deliverer
        self.domains = domains
        self.metrics = metrics
        self.clock = clock
        self.ssl_context = ssl_context
        # With unclaimed=reject: is there a live inbox for this address? (None: accept all)
        self.recipient_check = recipient_check
        self.registry = SessionRegistry(config.max_connections, config.max_connections_per_ip)
        self.primary_domain = domains.creatable[0]
        self.greeting = replies.reply(f"220 {config.hostname} ESMTP burnbox")
        keywords = [f"{config.hostname} greets you", "PIPELINING",
                    f"SIZE {config.max_message_size}", "8BITMIME", "BINARYMIME", "SMTPUTF8",
                    "CHUNKING", "ENHANCEDSTATUSCODES"]
        self._ehlo = replies.multiline(250, [*keywords, "HELP"])
        self._date_second = -1
        self._date_text = ""
        self._ehlo_starttls = replies.multiline(250, [*keywords, "STARTTLS", "HELP"])

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


class SmtpServer:
    def __init__(self, context: SmtpContext) -> None:
        self.context = context
        self._server: asyncio.Server | None = None

    async def start(self, endpoint: Endpoint, *, shared: bool = False) -> Endpoint:
        """Listen; returns the endpoint really bound (port 0 becomes a real port).
        `shared`: other worker processes listen on the same port (SO_REUSEPORT)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SmtpSession(self.context), endpoint.host, endpoint.port,
            reuse_address=True, reuse_port=shared or None, backlog=4096)
        bound = self._server.sockets[0].getsockname()
        return Endpoint(endpoint.host, int(bound[1]))

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def stop(self, grace: float) -> None:
        """Stop accepting, say 421 to idle sessions, let transactions finish within
        `grace` seconds, then cut whatever is left."""
        registry = self.context.registry
        registry.accepting = False
        if self._server is not None:
            self._server.close()
        for session in list(registry.sessions):
            session.begin_shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        try:
            await asyncio.wait_for(registry.empty.wait(), grace)
        except TimeoutError:
            for session in list(registry.sessions):
                session.force_close()
        if registry.tasks:  # stores begun for clients that have since gone away
            await asyncio.wait(list(registry.tasks), timeout=max(deadline - loop.time(), 0.1))
        for task in list(registry.tasks):
            task.cancel()
