"""Typed, frozen settings: the only reader of the environment and of `.env`.

Precedence: command-line flags, then `BURNBOX_*` environment variables, then the
`.env` file, then the defaults (settings_fields.py declares each setting with its help
text; the documentation test fails when one is missing from docs/configuration.md). Then
the settings are checked against each other.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from burnbox.settings_fields import Settings as Settings  # declared there; read here

ENV_PREFIX = "BURNBOX_"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class SettingsError(ValueError):
    """A setting has a bad value; the message names the key."""


def describe() -> list[tuple[str, str, str]]:
    """(environment key, default, help) for every setting, in declaration order."""
    rows = []
    for item in dataclasses.fields(Settings):
        default = item.default
        shown = (
            ",".join(default)
            if isinstance(default, tuple)
            else ""
            if default is None
            else str(default)
        )
        rows.append((env_key(item.name), shown, item.metadata["help"]))
    return rows


def env_key(name: str) -> str:
    return ENV_PREFIX + name.upper()


def load(
    flags: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: str | os.PathLike[str] | None = ".env",
) -> Settings:
    """Build Settings from flags > environment > .env file > defaults."""
    environ = os.environ if environ is None else environ
    file_values: dict[str, str | None] = {}
    if env_file is not None and Path(env_file).is_file():
        file_values = dict(dotenv_values(env_file))
    values: dict[str, Any] = {}
    for item in dataclasses.fields(Settings):
        key = env_key(item.name)
        raw = (flags or {}).get(item.name)
        source = "flag --" + item.name.replace("_", "-")
        if raw is None:
            raw, source = environ.get(key), key
        if raw is None:
            raw, source = file_values.get(key), f"{key} (in {env_file})"
        if raw is None:
            continue
        try:
            values[item.name] = item.metadata["parse"](raw)
        except ValueError as error:
            raise SettingsError(f"{source}: {raw!r} is not valid: {error}") from None
    _check_known_keys(environ, file_values)
    settings = Settings(**values)
    _check_consistency(settings)
    return settings


def _check_known_keys(*sources: Mapping[str, Any]) -> None:
    # BURNBOX_URL and BURNBOX_TOKEN belong to the client commands, not to the server.
    known = {env_key(item.name) for item in dataclasses.fields(Settings)} | {
        "BURNBOX_ENV_FILE",
        "BURNBOX_URL",
        "BURNBOX_TOKEN",
    }
    for source in sources:
        for key in source:
            if key.startswith(ENV_PREFIX) and key not in known:
                raise SettingsError(f"{key}: unknown setting (see docs/configuration.md)")


def check_sink(settings: Settings) -> None:
    """Sink mode is an open catch-all: only for a public (token-free) node on loopback or a
    private network, unless told otherwise."""
    if not settings.sink:
        _check_sink_only(settings)
        return
    if settings.sink_relay is not None and not settings.sink_relay_allow:
        raise SettingsError(
            "BURNBOX_SINK_RELAY_ALLOW: name the addresses a message may be released to "
            "(`*@example.test`, or `*` for any); a sink never relays to anyone by default"
        )
    if settings.access != "public":
        raise SettingsError(
            "BURNBOX_SINK: sink mode shows all mail to anyone, so it needs BURNBOX_ACCESS=public"
        )
    if settings.sink_any_listen:
        return
    listens = [
        ("BURNBOX_SMTP_LISTEN", settings.smtp_listen),
        ("BURNBOX_HTTP_LISTEN", settings.http_listen),
    ]
    if settings.mailtm_listen is not None:
        listens.append(("BURNBOX_MAILTM_LISTEN", settings.mailtm_listen))
    for key, endpoint in listens:
        if not _private_host(endpoint.host):
            raise SettingsError(
                f"{key}: sink mode listens only on loopback or private addresses "
                f"({endpoint.host} is neither); BURNBOX_SINK_ANY_LISTEN=true overrides this"
            )


def _check_sink_only(settings: Settings) -> None:
    named = {
        "BURNBOX_SINK_CHAOS": settings.sink_chaos,
        "BURNBOX_SINK_RELAY": settings.sink_relay is not None,
        "BURNBOX_SPAMASSASSIN": settings.spamassassin is not None,
    }
    for key, on in named.items():
        if on:
            raise SettingsError(f"{key}: a sink mode setting; set BURNBOX_SINK=true as well")


def _private_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name may resolve anywhere
    return not address.is_unspecified and (address.is_loopback or address.is_private)


def _check_webhooks(settings: Settings) -> None:
    for cidr in settings.webhook_allow:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise SettingsError(f"BURNBOX_WEBHOOK_ALLOW: {cidr!r} is not a CIDR") from None
    if not settings.webhook_url:
        return
    secret = settings.webhook_secret
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except ValueError:
        key = b""
    if not secret.startswith("whsec_") or len(key) < 24:
        raise SettingsError(
            "BURNBOX_WEBHOOK_SECRET: the node-wide webhook needs a secret: `whsec_` and the "
            "base64 of 24 or more random bytes"
        )


def _check_consistency(settings: Settings) -> None:
    check_sink(settings)
    _check_webhooks(settings)
    if not settings.domains:
        raise SettingsError("BURNBOX_DOMAINS: at least one domain is needed")
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise SettingsError("BURNBOX_TLS_CERT/BURNBOX_TLS_KEY: give both or neither")
    for path_key in ("tls_cert", "tls_key"):
        path = getattr(settings, path_key)
        if path and not Path(path).is_file():
            raise SettingsError(f"{env_key(path_key)}: no such file: {path}")
    if settings.store.startswith("sqlite://") and not sqlite_path(settings.store):
        raise SettingsError("BURNBOX_STORE: a SQLite URL names a file: sqlite:///path/to/file.db")
    if not settings.store.startswith(("memory://", "sqlite://", *POSTGRES_SCHEMES)):
        raise SettingsError(
            f"BURNBOX_STORE: unsupported store URL {settings.store!r} "
            "(memory://, sqlite:///path or postgresql://...)"
        )
    _check_hub(settings)
    _check_workers(settings)


def _check_hub(settings: Settings) -> None:
    if settings.hub == "postgres" and not settings.store.startswith(POSTGRES_SCHEMES):
        raise SettingsError(
            "BURNBOX_HUB: `postgres` uses the store's database, but "
            "BURNBOX_STORE is not a PostgreSQL URL"
        )
    if settings.hub == "postgres" and settings.store_pooler == "transaction":
        raise SettingsError(
            "BURNBOX_HUB: LISTEN/NOTIFY cannot pass through a transaction pooler "
            "(BURNBOX_STORE_POOLER=transaction): give BURNBOX_HUB a direct postgresql:// URL "
            "to the database, or a redis:// URL"
        )
    if settings.hub not in {"local", "postgres"} and not settings.hub.startswith(
        (*POSTGRES_SCHEMES, "redis://", "rediss://")
    ):
        raise SettingsError(
            f"BURNBOX_HUB: {settings.hub!r} is not local, postgres, "
            "a postgresql:// URL or a redis:// URL"
        )


def _check_workers(settings: Settings) -> None:
    if settings.workers == 1:
        return
    # SQLite is a one-process store: it keeps its totals (for the byte cap) in memory and
    # keeps ids in commit order by having one writer, so two processes on one file would
    # each enforce the cap on half the truth and could commit ids out of order.
    if not settings.store.startswith(POSTGRES_SCHEMES):
        raise SettingsError(
            "BURNBOX_WORKERS: several workers need a PostgreSQL store "
            "(postgresql://...); memory:// and sqlite:// belong to one process"
        )
    mailtm = settings.mailtm_listen
    if 0 in (settings.smtp_listen.port, settings.http_listen.port, mailtm.port if mailtm else 1):
        raise SettingsError("BURNBOX_WORKERS: several workers need explicit ports, not 0")


def with_workers_hub(settings: Settings) -> Settings:
    """Several workers on PostgreSQL push through its LISTEN/NOTIFY unless told otherwise."""
    if settings.workers > 1 and settings.hub == "local":
        return dataclasses.replace(settings, hub="postgres")
    return settings


def client_defaults(
    default_url: str, environ: Mapping[str, str] | None = None
) -> tuple[str, str | None]:
    """What the client commands (`burnbox inbox`, `wait`, `msg`) take from the environment:
    the server's URL and an inbox token."""
    environ = os.environ if environ is None else environ
    return environ.get("BURNBOX_URL", default_url), environ.get("BURNBOX_TOKEN")


def sqlite_path(url: str) -> str:
    """Everything after `sqlite://`: `sqlite:///var/lib/b.db` is absolute, `sqlite://b.db`
    relative to the working directory."""
    return url.removeprefix("sqlite://")
