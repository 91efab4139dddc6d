"""The composition root: builds every part from Settings, starts and stops them together."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from burnbox import __version__, selfcheck
from burnbox.agents.http import McpEndpoint
from burnbox.delivery import Deliverer
from burnbox.destinations import IpNetwork, parse_allow
from burnbox.dispatch import Dispatcher
from burnbox.feeds import Feeds
from burnbox.hub import Hub
from burnbox.ids import Clock, IdSource, MessageIds, system_clock
from burnbox.inboxes import InboxService
from burnbox.metrics import Metrics
from burnbox.parsing import ParsePool
from burnbox.parts import (
    build_abuse,
    build_domains,
    build_relay,
    build_store,
    sink_users,
    smtp_config,
)
from burnbox.qa.chaos import Chaos
from burnbox.qa.release import SinkRelay
from burnbox.ratelimit import RateLimiter
from burnbox.retention import Reaper
from burnbox.settings import Settings, check_sink
from burnbox.settings_values import Endpoint, rate_limit
from burnbox.smtp.context import SmtpContext, tls_context
from burnbox.smtp.server import SmtpServer
from burnbox.supervisor import Supervisor
from burnbox.trust.resolver import Resolver
from burnbox.trust.worker import CheckProcess
from burnbox.web.app import create_app
from burnbox.web.limits import StreamLimits
from burnbox.web.mailtm.app import create_mailtm_app
from burnbox.web.services import SinkAccess, WebServices
from burnbox.webhooks import EVENTS as WEBHOOK_EVENTS
from burnbox.webhooks import WebhookService

log = logging.getLogger(__name__)
WS_MAX_MESSAGE = 64 * 1024  # bytes of one WebSocket frame from a client (we expect none)
# After a part fails, what is in flight gets this long at most (seconds) before the node
# exits: long enough to finish a delivery, short enough for a supervisor to restart it soon.
FAILURE_GRACE = 3.0
EXIT_PART_FAILED = 1


class StartFailed(Exception):
    """A part could not start; the node does not say ready."""

    def __init__(self, part: str, reason: str) -> None:
        super().__init__(f"{part} failed to start ({reason})")
        self.part = part
        self.reason = reason


class _EmbeddedHttpServer(uvicorn.Server):
    """uvicorn inside our loop: the process's signals are ours, not uvicorn's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listening_socket(endpoint: Endpoint, *, shared: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    return socket.create_server(
        (endpoint.host, endpoint.port), family=family, backlog=4096, reuse_port=shared
    )


class App:
    """One burnbox: store, hub, deliverer, reaper, SMTP and HTTP listeners."""

    def __init__(
        self, settings: Settings, *, clock: Clock = system_clock, ids: IdSource | None = None
    ) -> None:
        check_sink(settings)  # also when built without load(): never an open catch-all
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics(shared=settings.workers > 1)
        self.store = build_store(settings, clock)
        self.metrics.watch_store(self.store.stats)
        self.hub = Hub()
        self.relay = build_relay(settings, self.hub, self.metrics)
        self.hub.on_count = self.metrics.push_subscribers.set
        self.domains = build_domains(settings)
        self.parse_pool = ParsePool(settings.ingest_parse_inline_max)
        self.resolver = Resolver(settings.dns_server or None)
        self.checks = CheckProcess(settings.dns_server or None) if settings.auth_checks else None
        self.metrics.watch_helpers(self.parse_pool, self.checks)
        self.deliverer = self._deliverer(ids or MessageIds(clock))
        self.reaper = Reaper(
            self.store, self.hub, self.metrics, clock=clock, interval=settings.reap_interval
        )
        self.inboxes = self._inbox_service()
        allow = parse_allow(settings.webhook_allow)
        self.webhooks = WebhookService(self.store, clock, allow)
        self.dispatcher = self._dispatcher(allow)
        self.chaos = Chaos() if settings.sink and settings.sink_chaos else None
        self.smtp = self._smtp_server()
        services = self._web_services()
        self.web = create_app(services)
        self.agents = McpEndpoint(self.web) if settings.mcp else None
        self.mailtm = create_mailtm_app(services) if settings.mailtm_listen else None
        self.smtp_endpoint = settings.smtp_listen
        self.http_endpoint = settings.http_listen
        self.mailtm_endpoint = settings.mailtm_listen
        self._http: _EmbeddedHttpServer | None = None
        self._mailtm_http: _EmbeddedHttpServer | None = None
        self.supervisor = Supervisor()

    def _web_services(self) -> WebServices:
        settings = self.settings
        return WebServices(
            metrics=self.metrics,
            readiness=self.readiness,
            store=self.store,
            inboxes=self.inboxes,
            feeds=Feeds(self.inboxes, self.hub, self.clock),
            domains=self.domains,
            creations=RateLimiter(*rate_limit(settings.inbox_create_rate)),
            failed_reads=RateLimiter(*rate_limit(settings.failed_read_rate)),
            streams=StreamLimits(
                settings.push_max_streams,
                settings.push_max_streams_per_ip,
                lambda limit: self.metrics.push_refused.labels(limit).inc(),
            ),
            clock=self.clock,
            parse_pool=self.parse_pool,
            allowed_origins=settings.allowed_origins,
            account_requests=RateLimiter(*rate_limit(settings.mailtm_rate)),
            per_account_requests=RateLimiter(*rate_limit(settings.mailtm_account_rate)),
            sink=self._sink_access() if settings.sink else None,
            webhooks=self.webhooks,
            account_quota=min(
                settings.store_max_bytes, settings.inbox_max_messages * settings.max_message_size
            ),
        )

    async def readiness(self) -> dict[str, bool]:
        try:
            store_ok = await asyncio.wait_for(self.store.ping(), 2.0)
        except Exception:
            store_ok = False
        return {"store": store_ok, **self.supervisor.alive()}

    async def start(self) -> None:
        """Start every part; returns once both listeners answer as a client would see them.
        Raises StartFailed (naming the part) if one cannot start."""
        await self.store.open()
        await self.deliverer.start()
        if self.relay is not None:
            await self.relay.start()
            self.supervisor.start("relay", self.relay.run())
        shared = self.settings.workers > 1
        listen = self.settings.smtp_listen
        self.smtp_endpoint = Endpoint(
            listen.host, await self.smtp.start(listen.host, listen.port, shared=shared)
        )
        self.supervisor.check("smtp", lambda: self.smtp.listening)
        sock = _listening_socket(self.settings.http_listen, shared=shared)
        self.http_endpoint = Endpoint(self.settings.http_listen.host, sock.getsockname()[1])
        self._http = _EmbeddedHttpServer(self._http_config(self.agents or self.web))
        self.supervisor.start("http", self._http.serve(sockets=[sock]))
        if self.mailtm is not None and self.settings.mailtm_listen is not None:
            listen = self.settings.mailtm_listen
            sock = _listening_socket(listen, shared=shared)
            self.mailtm_endpoint = Endpoint(listen.host, sock.getsockname()[1])
            self._mailtm_http = _EmbeddedHttpServer(self._http_config(self.mailtm))
            self.supervisor.start("mailtm", self._mailtm_http.serve(sockets=[sock]))
        self.supervisor.start("reaper", self.reaper.run())
        hooks = self.settings
        await self.webhooks.node_wide(hooks.webhook_url, hooks.webhook_secret, WEBHOOK_EVENTS)
        self.supervisor.start("webhooks", self.dispatcher.run())
        self.parse_pool.on_failure = functools.partial(self.supervisor.fail, "parse pool")
        await self._until_answering()

    def _http_config(self, web: ASGIApp) -> uvicorn.Config:
        grace = max(1, round(self.settings.shutdown_grace))
        return uvicorn.Config(
            web,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            ws="websockets-sansio",
            ws_max_size=WS_MAX_MESSAGE,
            timeout_graceful_shutdown=grace,
            proxy_headers=bool(self.settings.trusted_proxies),
            forwarded_allow_ips=list(self.settings.trusted_proxies) or None,
        )

    async def _until_answering(self) -> None:
        """Both listeners answer, or the part that failed meanwhile is named."""
        checks = asyncio.ensure_future(self._answering())
        failed = asyncio.ensure_future(self.supervisor.failed())
        try:
            await asyncio.wait([checks, failed], return_when=asyncio.FIRST_COMPLETED)
        finally:
            failed.cancel()
        if self.supervisor.failure is not None:
            checks.cancel()
            await asyncio.gather(checks, return_exceptions=True)
            raise StartFailed(self.supervisor.failure.part, self.supervisor.failure.reason)
        try:
            checks.result()
        except (OSError, TimeoutError, selfcheck.NotAnswering) as error:
            raise StartFailed("listeners", type(error).__name__) from None

    async def _answering(self) -> None:
        smtp, http, mailtm = self.smtp_endpoint, self.http_endpoint, self.mailtm_endpoint
        await asyncio.gather(
            selfcheck.smtp_answers(smtp.host, smtp.port),
            selfcheck.http_answers(http.host, http.port),
            *([selfcheck.http_answers(mailtm.host, mailtm.port)] if mailtm else []),
        )

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let what is in flight finish (up to `grace` seconds, the
        configured shutdown grace by default), then stop every part."""
        self.supervisor.stopping()
        try:
            await self.smtp.stop(self.settings.shutdown_grace if grace is None else grace)
            for server in (self._http, self._mailtm_http):
                if server is not None:
                    server.should_exit = True
                    if grace is not None:
                        server.config.timeout_graceful_shutdown = max(1, round(grace))
            if self.agents is not None:
                await self.agents.stop()
            await self.supervisor.stop_all(finishing=("http", "mailtm"))  # uvicorn ends itself
            if self.relay is not None:
                await self.relay.stop()
            await self.deliverer.stop()
            await self.resolver.close()
        finally:  # whatever failed above, the store's threads (SQLite's) must not outlive us
            self.parse_pool.close()
            await self.store.close()

    def _deliverer(self, ids: IdSource) -> Deliverer:
        settings = self.settings
        return Deliverer(
            self.store,
            self.hub,
            self.metrics,
            clock=self.clock,
            ids=ids,
            message_ttl=settings.message_ttl,
            parse_pool=self.parse_pool,
            sink=settings.sink,
            hostname=smtp_config(settings).hostname,
            checker=self.checks,
        )

    def _inbox_service(self) -> InboxService:
        settings = self.settings
        return InboxService(
            self.store,
            self.hub,
            self.domains,
            clock=self.clock,
            ttl=settings.inbox_ttl,
            max_lifetime=settings.inbox_max_lifetime,
            public=settings.access == "public",
            hostname=smtp_config(settings).hostname,
        )

    def _dispatcher(self, allow: tuple[IpNetwork, ...]) -> Dispatcher:
        """Webhook deliveries from the store's outbox."""
        settings = self.settings
        return Dispatcher(
            self.store,
            self.clock,
            self.metrics,
            self.parse_pool,
            allow=allow,
            retry_for=settings.webhook_retry_for,
            max_pending=settings.webhook_max_pending,
            max_pending_total=settings.webhook_max_pending_total,
            checks=settings.auth_checks,
        )

    def _smtp_server(self) -> SmtpServer:
        settings = self.settings
        ssl_context = (
            tls_context(settings.tls_cert, settings.tls_key) if settings.tls_enabled else None
        )
        recipient_check = self.inboxes.exists if settings.unclaimed == "reject" else None
        return SmtpServer(
            SmtpContext(
                smtp_config(settings),
                self.deliverer,
                self.domains,
                self.metrics,
                self.clock,
                ssl_context,
                recipient_check=recipient_check,
                abuse=build_abuse(settings, self.resolver),
                checks=settings.auth_checks,
                chaos=self.chaos,
            )
        )

    def _sink_access(self) -> SinkAccess:
        """What sink mode's APIs need of this node (web/services.py)."""
        settings = self.settings
        return SinkAccess(
            self.deliverer.deliver,
            lambda: self.smtp_endpoint.port,
            smtp_config(settings).hostname,
            settings.sink_api,
            settings.max_message_size,
            sink_users(settings),
            self.deliverer.sink_stats,
            settings.store.split(":", 1)[0] or "memory",
            link_check_allow=tuple(host.lower() for host in settings.sink_link_check_allow),
            chaos=self.chaos,
            relay=SinkRelay(settings.sink_relay, settings.sink_relay_allow)
            if settings.sink_relay is not None
            else None,
            spamd=settings.spamassassin,
        )

    def banner(self) -> str:
        store = self.settings.store
        note = " (RAM only: a restart wipes all mail)" if store.startswith("memory:") else ""
        tls = " (STARTTLS on)" if self.settings.tls_enabled else ""
        via = self.settings.hub.split(":")[0]
        hub = "" if self.relay is None else f"\n  push     across nodes via {via}"
        return "\n".join(
            [
                f"burnbox {__version__} ready",
                f"  SMTP     {self.smtp_endpoint}{tls}",
                f"  HTTP     http://{self.http_endpoint}/",
                *([f"  mail.tm  http://{self.mailtm_endpoint}/"] if self.mailtm_endpoint else []),
                f"  domains  {', '.join(self.domains.patterns)}",
                *(
                    [
                        "  sink     ON: mail for every domain is kept and shown to anyone "
                        "(Mailpit's API at /api/v1, MailHog's at /api/v2); nothing is relayed"
                    ]
                    if self.settings.sink
                    else []
                ),
                f"  store    {_redacted(store)}{note}{hub}",
                *([f"  workers  {self.settings.workers}"] if self.settings.workers > 1 else []),
            ]
        )


def _redacted(url: str) -> str:
    """A store URL as printed: without its password."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':')[0]}@{tail}"


async def serve(settings: Settings, *, worker: int = 0) -> int:
    """Run until SIGTERM or SIGINT, then stop gracefully (exit status 0); or until a part
    fails, then stop within FAILURE_GRACE (exit status 1). Raises StartFailed."""
    app = App(settings)
    try:
        await app.start()
    except BaseException:
        await app.stop(grace=0)
        raise
    if worker == 0:
        print(app.banner(), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    failed = asyncio.ensure_future(app.supervisor.failed())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({failed, stopped}, return_when=asyncio.FIRST_COMPLETED)
    failed.cancel()
    stopped.cancel()
    if app.supervisor.failure is not None:
        await app.stop(grace=min(FAILURE_GRACE, settings.shutdown_grace))
        return EXIT_PART_FAILED
    log.info("stopping")
    await app.stop()
    return 0
