"""The composition root: builds every part from Settings, starts and stops them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator

import uvicorn

from burnbox import __version__
from burnbox.addressing import AddressError, DomainPolicy
from burnbox.delivery import Deliverer
from burnbox.hub import Hub
from burnbox.ids import Clock, IdSource, MessageIds, system_clock
from burnbox.inboxes import InboxService
from burnbox.metrics import Metrics
from burnbox.parsing import ParsePool
from burnbox.ratelimit import RateLimiter
from burnbox.relay import Channel, PostgresChannel, RedisChannel, Relay
from burnbox.retention import Reaper
from burnbox.settings import (
    POSTGRES_SCHEMES,
    Endpoint,
    Settings,
    SettingsError,
    rate_limit,
    sqlite_path,
)
from burnbox.smtp.server import SmtpConfig, SmtpContext, SmtpServer, tls_context
from burnbox.storage.base import Store
from burnbox.storage.memory import MemoryStore
from burnbox.web.app import create_app
from burnbox.web.live import Live
from burnbox.web.services import WebServices

log = logging.getLogger(__name__)
WS_MAX_MESSAGE = 64 * 1024  # bytes of one WebSocket frame from a client (we expect none)


def build_store(settings: Settings) -> Store:
    limits = {"max_bytes": settings.store_max_bytes,
              "inbox_max_messages": settings.inbox_max_messages}
    # The durable backends are imported only when chosen: their drivers (asyncpg, aiosqlite)
    # cost about 8 MiB of RSS that the RAM-only default does not need.
    if settings.store.startswith("sqlite://"):
        from burnbox.storage.sqlite import SqliteStore

        return SqliteStore(sqlite_path(settings.store), **limits)
    if settings.store.startswith(POSTGRES_SCHEMES):
        from burnbox.storage.postgres import PostgresStore

        return PostgresStore(settings.store, **limits)
    return MemoryStore(**limits)


def build_relay(settings: Settings, hub: Hub, metrics: Metrics) -> Relay | None:
    if settings.hub == "local":
        return None
    url = settings.store if settings.hub == "postgres" else settings.hub
    channel: Channel = (RedisChannel(url) if url.startswith(("redis://", "rediss://"))
                        else PostgresChannel(url))
    return Relay(hub, channel, metrics)


def build_domains(settings: Settings) -> DomainPolicy:
    try:
        return DomainPolicy(settings.domains)
    except AddressError as error:
        raise SettingsError(f"BURNBOX_DOMAINS: {error.reason}") from None


class _EmbeddedHttpServer(uvicorn.Server):
    """uvicorn inside our loop: the process's signals are ours, not uvicorn's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listening_socket(endpoint: Endpoint, *, shared: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    return socket.create_server((endpoint.host, endpoint.port), family=family, backlog=4096,
                                reuse_port=shared)


class App:
    """One burnbox: store, hub, deliverer, reaper, SMTP and HTTP listeners."""

    def __init__(self, settings: Settings, *, clock: Clock = system_clock,
                 ids: IdSource | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics()
        self.store = build_store(settings)
        self.metrics.watch_store(self.store.stats)
        self.hub = Hub()
        self.relay = build_relay(settings, self.hub, self.metrics)
        self.hub.on_count = self.metrics.push_subscribers.set
        self.domains = build_domains(settings)
        self.parse_pool = ParsePool(settings.ingest_parse_inline_max)
        self.deliverer = Deliverer(
            self.store, self.hub, self.metrics, clock=clock, ids=ids or MessageIds(clock),
            message_ttl=settings.message_ttl, parse_pool=self.parse_pool)
        self.reaper = Reaper(self.store, self.hub, self.metrics, clock=clock,
                             interval=settings.reap_interval)
        self.inboxes = InboxService(
            self.store, self.hub, self.domains, clock=clock, ttl=settings.inbox_ttl,
            max_lifetime=settings.inbox_max_lifetime, public=settings.access == "public")
        ssl_context = (tls_context(settings.tls_cert, settings.tls_key)
                       if settings.tls_enabled else None)
        self.smtp = SmtpServer(SmtpContext(
            SmtpConfig.from_settings(settings), self.deliverer, self.domains, self.metrics,
            clock, ssl_context,
            recipient_check=self.inboxes.exists if settings.unclaimed == "reject" else None))
        self.web = create_app(WebServices(
            metrics=self.metrics, readiness=self.readiness, store=self.store, hub=self.hub,
            inboxes=self.inboxes, domains=self.domains,
            limiter=RateLimiter(*rate_limit(settings.inbox_create_rate)), clock=clock,
            live=Live(self.store, self.hub), parse_pool=self.parse_pool,
            allowed_origins=settings.allowed_origins))
        self.smtp_endpoint = settings.smtp_listen
        self.http_endpoint = settings.http_listen
        self._http: _EmbeddedHttpServer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def readiness(self) -> dict[str, bool]:
        try:
            store_ok = await asyncio.wait_for(self.store.ping(), 2.0)
        except Exception:
            store_ok = False
        http_ok = self._http is not None and self._http.started
        return {"store": store_ok, "smtp": self.smtp.listening, "http": http_ok}

    async def start(self) -> None:
        await self.store.open()
        if self.relay is not None:
            await self.relay.start()
        shared = self.settings.workers > 1
        self.smtp_endpoint = await self.smtp.start(self.settings.smtp_listen, shared=shared)
        sock = _listening_socket(self.settings.http_listen, shared=shared)
        self.http_endpoint = Endpoint(self.settings.http_listen.host, sock.getsockname()[1])
        grace = max(1, round(self.settings.shutdown_grace))
        config = uvicorn.Config(self.web, log_config=None, access_log=False, lifespan="off",
                                server_header=False, ws="websockets-sansio",
                                ws_max_size=WS_MAX_MESSAGE,
                                timeout_graceful_shutdown=grace,
                                proxy_headers=bool(self.settings.trusted_proxies),
                                forwarded_allow_ips=list(self.settings.trusted_proxies) or None)
        self._http = _EmbeddedHttpServer(config)
        self._tasks = [asyncio.create_task(self._http.serve(sockets=[sock])),
                       asyncio.create_task(self.reaper.run())]

    async def stop(self) -> None:
        await self.smtp.stop(self.settings.shutdown_grace)
        if self._http is not None:
            self._http.should_exit = True
        reaper = self._tasks[1:] if self._tasks else []
        for task in reaper:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.relay is not None:
            await self.relay.stop()
        self.parse_pool.close()
        await self.store.close()

    def banner(self) -> str:
        store = self.settings.store
        note = " (RAM only: a restart wipes all mail)" if store.startswith("memory:") else ""
        tls = " (STARTTLS on)" if self.settings.tls_enabled else ""
        via = self.settings.hub.split(":")[0]
        via = self.settings.hub.split(":")[0]
        hub = "" if self.relay is None else f"\n  push     across nodes via {via}"
        return "\n".join([
            f"burnbox {__version__} ready",
            f"  SMTP     {self.smtp_endpoint}{tls}",
            f"  HTTP     http://{self.http_endpoint}/",
            f"  domains  {', '.join(self.domains.patterns)}",
            f"  store    {_redacted(store)}{note}{hub}",
            *([f"  workers  {self.settings.workers}"] if self.settings.workers > 1 else []),
        ])


def _redacted(url: str) -> str:
    """A store URL as printed: without its password."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':')[0]}@{tail}"


async def serve(settings: Settings, *, worker: int = 0) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully."""
    app = App(settings)
    await app.start()
    if worker == 0:
        print(app.banner(), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("stopping")
    await app.stop()
