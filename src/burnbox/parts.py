"""Each part of a node built from Settings: the store its URL names, the cross-node relay
for push, the SMTP side's settings and abuse controls, the domains, the sink's users.
app.py puts them together; this module only chooses and configures them."""

from __future__ import annotations

import dataclasses
import socket

from burnbox.addressing import AddressError, DomainPolicy
from burnbox.hub import Hub
from burnbox.ids import Clock, system_clock
from burnbox.metrics import Metrics
from burnbox.relay import Channel, PostgresChannel, RedisChannel, Relay
from burnbox.settings import POSTGRES_SCHEMES, Settings, SettingsError, sqlite_path
from burnbox.settings_values import rate_limit
from burnbox.smtp.context import SmtpConfig
from burnbox.storage.base import Store
from burnbox.storage.memory import MemoryStore
from burnbox.trust.abuse import Abuse
from burnbox.trust.resolver import Resolver
from burnbox.web.sink_auth import AuthFileError, read_users


def build_store(settings: Settings, clock: Clock = system_clock) -> Store:
    limits = {
        "max_bytes": settings.store_max_bytes,
        "inbox_max_messages": settings.inbox_max_messages,
    }
    # The durable backends are imported only when chosen: their drivers (asyncpg, aiosqlite)
    # cost about 8 MiB of RSS that the RAM-only default does not need.
    if settings.store.startswith("sqlite://"):
        from burnbox.storage.sqlite import SqliteStore

        return SqliteStore(sqlite_path(settings.store), **limits, clock=clock)
    if settings.store.startswith(POSTGRES_SCHEMES):
        from burnbox.storage.postgres import PostgresStore

        return PostgresStore(
            settings.store,
            **limits,
            message_ttl=settings.message_ttl,
            maintain_every=settings.reap_interval,
            clock=clock,
            pooler=settings.store_pooler,
        )
    return MemoryStore(**limits, clock=clock)


def build_relay(settings: Settings, hub: Hub, metrics: Metrics) -> Relay | None:
    if settings.hub == "local":
        return None
    url = settings.store if settings.hub == "postgres" else settings.hub
    channel: Channel = (
        RedisChannel(url) if url.startswith(("redis://", "rediss://")) else PostgresChannel(url)
    )
    return Relay(hub, channel, metrics)


def smtp_config(settings: Settings) -> SmtpConfig:
    """The SMTP side's settings, copied under their own names."""
    config = SmtpConfig(
        **{item.name: getattr(settings, item.name) for item in dataclasses.fields(SmtpConfig)}
    )
    return dataclasses.replace(config, hostname=settings.hostname or socket.getfqdn())


def build_abuse(settings: Settings, resolver: Resolver) -> Abuse | None:
    """The SMTP side's abuse controls, or None when none is configured."""
    if not (settings.smtp_rate_per_ip or settings.dnsbl or settings.block_senders):
        return None
    rate = rate_limit(settings.smtp_rate_per_ip) if settings.smtp_rate_per_ip else None
    return Abuse(
        resolver, rate=rate, blocklists=settings.dnsbl, blocked_senders=settings.block_senders
    )


def sink_users(settings: Settings) -> dict[str, bytes] | None:
    """BURNBOX_SINK_AUTH_FILE's users; a file that cannot be used stops the start."""
    if not settings.sink_auth_file:
        return None
    try:
        return read_users(settings.sink_auth_file)
    except AuthFileError as error:
        raise SettingsError(f"BURNBOX_SINK_AUTH_FILE: {error}") from None


def build_domains(settings: Settings) -> DomainPolicy:
    try:
        return DomainPolicy(settings.domains, catch_all=settings.sink)
    except AddressError as error:
        raise SettingsError(f"BURNBOX_DOMAINS: {error.reason}") from None
