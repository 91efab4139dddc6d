"""Every setting burnbox has, declared once: its type, default, how its text is parsed
and its help (docs/configuration.md is written from these). settings.py reads them from the
flags, the environment and `.env`, and checks that they agree."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from burnbox.settings_values import (
    Endpoint,
    parse_bool,
    parse_choice,
    parse_dns_server,
    parse_duration,
    parse_endpoint,
    parse_list,
    parse_optional_endpoint,
    parse_optional_rate,
    parse_positive_int,
    parse_rate,
    parse_size,
)


def _setting(default: Any, parse: Callable[[str], Any], help_text: str) -> Any:
    return field(default=default, metadata={"parse": parse, "help": help_text})


@dataclass(frozen=True, slots=True)
class Settings:
    smtp_listen: Endpoint = _setting(
        Endpoint("127.0.0.1", 2525),
        parse_endpoint,
        "Where the SMTP server listens, host:port. Port 0 picks a free port (printed at start).",
    )
    http_listen: Endpoint = _setting(
        Endpoint("127.0.0.1", 8025),
        parse_endpoint,
        "Where the HTTP server (web UI, API, health, metrics) listens, host:port; 0 picks a port.",
    )
    mailtm_listen: Endpoint | None = _setting(
        None,
        parse_optional_endpoint,
        "Where the mail.tm-compatible API listens, host:port (e.g. `127.0.0.1:8026`, which "
        "scripts/serve uses); empty: off. See docs/mailtm.md.",
    )
    mailtm_rate: str = _setting(
        "8/s",
        parse_rate,
        "Requests one client IP may make to the mail.tm API: `N/s`, `N/m` or `N/h` (more are "
        "answered 429, as mail.tm does).",
    )
    mailtm_account_rate: str = _setting(
        "8/s",
        parse_rate,
        "Requests one mail.tm account may make, from however many client IPs: `N/s`, `N/m` "
        "or `N/h` (more are answered 429).",
    )
    mcp: bool = _setting(
        True,
        parse_bool,
        "Serve the MCP server for AI agents at /mcp on the HTTP listener (streamable HTTP; "
        "loaded on first use). See docs/agents.md.",
    )
    domains: tuple[str, ...] = _setting(
        ("localhost",),
        parse_list,
        "Comma-separated domains whose mail is accepted; `*.example.org` accepts every "
        "subdomain of example.org. Mail for any other domain is refused (never an open relay).",
    )
    store: str = _setting(
        "memory://",
        str,
        "Where mail is kept: `memory://` (RAM only, wiped at restart) or "
        "`sqlite:///var/lib/burnbox/mail.db` (durable, one node; the path follows `sqlite://`) "
        "or `postgresql://user@host/db` (production, shared by every node).",
    )
    store_pooler: str = _setting(
        "none",
        parse_choice("none", "transaction"),
        "`transaction` when BURNBOX_STORE points at a connection pooler in transaction "
        "pooling mode (PgBouncer `pool_mode = transaction`): no statement is prepared by name "
        "and nothing outlives a transaction. LISTEN cannot pass through such a pooler: set "
        "BURNBOX_HUB to a direct `postgresql://` URL or to Redis.",
    )
    hub: str = _setting(
        "local",
        str,
        "How push reaches the other nodes: `local` (one node), `postgres` (LISTEN/NOTIFY on "
        "the store's database), or a `postgresql://...` or `redis://...` URL.",
    )
    workers: int = _setting(
        1,
        parse_positive_int,
        "Processes sharing the listeners (SO_REUSEPORT). More than one needs a PostgreSQL "
        "store and explicit ports; push then crosses them by BURNBOX_HUB (`postgres` unless "
        "set).",
    )
    hostname: str = _setting(
        "",
        str,
        "The name this server gives in its SMTP greeting and Received: headers "
        "(default: the machine's fully qualified name).",
    )
    message_ttl: float = _setting(
        86400.0, parse_duration, "How long a message is kept before it is purged (e.g. 24h, 30m)."
    )
    reap_interval: float = _setting(60.0, parse_duration, "How often expired mail is purged.")
    max_message_size: int = _setting(
        25 * 1024**2, parse_size, "Largest message accepted, in bytes (advertised as SIZE)."
    )
    max_recipients: int = _setting(
        100, parse_positive_int, "Most recipients in one SMTP transaction (more get 452 4.5.3)."
    )
    max_command_line: int = _setting(
        2048, parse_size, "Longest SMTP command line, in bytes, CRLF included."
    )
    max_line_length: int = _setting(
        1024**2,
        parse_size,
        "Longest text line inside a message, in bytes; longer lines are kept unchanged up to this.",
    )
    max_connections: int = _setting(
        5000, parse_positive_int, "Most SMTP sessions open at once (more get 421 4.7.0)."
    )
    max_connections_per_ip: int = _setting(
        100, parse_positive_int, "Most SMTP sessions open at once from one client IP."
    )
    smtp_idle_timeout: float = _setting(
        300.0,
        parse_duration,
        "An SMTP session that makes no progress for this long is closed (NOOP/RSET do not count).",
    )
    smtp_min_data_rate: int = _setting(
        256,
        parse_size,
        "Slowest accepted DATA/BDAT transfer, bytes per second (see smtp_min_data_rate_after).",
    )
    smtp_min_data_rate_after: float = _setting(
        30.0, parse_duration, "How long DATA/BDAT may run before the minimum data rate applies."
    )
    smtp_delivery_timeout: float = _setting(
        60.0,
        parse_duration,
        "A delivery the store has not confirmed in this long is answered 451 (the sender "
        "retries); checked by the session watchdog, so it may take up to one idle timeout more.",
    )
    smtp_max_errors: int = _setting(
        20, parse_positive_int, "Errors one SMTP session may make before it is disconnected."
    )
    smtp_max_bad_commands: int = _setting(
        5,
        parse_positive_int,
        "Unrecognised or malformed commands (500, 501) one SMTP session may send before it is "
        "disconnected with 421: attack traffic and other protocols get no more room.",
    )
    smtp_junk_limit: int = _setting(
        100,
        parse_positive_int,
        "NOOP, RSET, VRFY, HELP and EHLO commands allowed between two delivered messages.",
    )
    tls_cert: str = _setting(
        "", str, "PEM certificate (chain) file; with tls_key, enables STARTTLS."
    )
    tls_key: str = _setting("", str, "PEM private key file for tls_cert.")
    received_client_ip: bool = _setting(
        False,
        parse_bool,
        "Whether the Received: header names the client's IP address (off: privacy).",
    )
    auth_checks: bool = _setting(
        True,
        parse_bool,
        "Check who really sent each message (SPF, DKIM, DMARC, ARC) against DNS and record it "
        "on the message (`Authentication-Results:`, the API's `authentication`, the page's "
        "mark): `on` or `off`. See docs/public.md.",
    )
    dns_server: str = _setting(
        "",
        parse_dns_server,
        "The DNS server the sender checks and the blocklists ask: `host`, `host:port` or "
        "`[v6]:port`; empty: the system's resolvers.",
    )
    smtp_rate_per_ip: str = _setting(
        "",
        parse_optional_rate,
        "Messages one client may send: `N/s`, `N/m` or `N/h` (an IPv6 client counted by its "
        "/64); past it MAIL is answered 450 4.7.1 and other clients are unaffected; empty: "
        "no limit.",
    )
    dnsbl: tuple[str, ...] = _setting(
        (),
        parse_list,
        "DNS blocklist zones (e.g. `zen.spamhaus.org`) the client's IP is looked up in, "
        "through BURNBOX_DNS_SERVER: a listed client is refused 554 5.7.1 at RCPT, before "
        "anything is stored; a list that does not answer in 2 s lets it through (counted).",
    )
    block_senders: tuple[str, ...] = _setting(
        (),
        parse_list,
        "Sender domains (`example.org`; `*.example.org` with its subdomains) and addresses "
        "refused at MAIL with 550 5.7.1.",
    )
    inbox_max_messages: int = _setting(
        1000, parse_positive_int, "Most messages one inbox keeps; the oldest is evicted first."
    )
    store_max_bytes: int = _setting(
        512 * 1024**2,
        parse_size,
        "Most bytes of mail the store holds (every store: memory, SQLite, PostgreSQL); the oldest "
        "mail is evicted first. A message whose copies (one per recipient) exceed it is refused "
        "for good (552 5.3.4).",
    )
    ingest_parse_inline_max: int = _setting(
        64 * 1024,
        parse_size,
        "Messages up to this size are parsed on the event loop (ingest summary, API views); "
        "larger ones in a worker process.",
    )
    shutdown_grace: float = _setting(
        10.0, parse_duration, "How long transactions in flight may take to finish at shutdown."
    )
    unclaimed: str = _setting(
        "keep",
        parse_choice("keep", "reject"),
        "Mail to an address nobody created: `keep` it for its TTL (whoever creates that inbox "
        "sees it) or `reject` it at RCPT with 550 5.1.1.",
    )
    sink: bool = _setting(
        False,
        parse_bool,
        "Sink mode for QA: accept mail for every recipient at every domain and keep each "
        "message once more in one shared view, read through Mailpit's API (docs/mailpit.md) "
        "and MailHog's (/api/v1, /api/v2; docs/mailhog.md). Needs BURNBOX_ACCESS=public and "
        "loopback or private listen addresses. Nothing is ever relayed.",
    )
    sink_api: str = _setting(
        "mailpit",
        parse_choice("mailpit", "mailhog"),
        "In sink mode, whose API answers `GET` and `DELETE /api/v1/messages`, the only paths "
        "where Mailpit's API (docs/mailpit.md) and MailHog's clash: `mailpit` or `mailhog`. "
        "Every other path of both is served either way.",
    )
    sink_auth_file: str = _setting(
        "",
        str,
        "In sink mode, an htpasswd file of bcrypt hashes (`htpasswd -B`, as Mailpit's "
        "--ui-auth-file): its users' basic auth is then needed for the web side, both APIs "
        "and the event streams; /healthz, /readyz and /metrics stay open.",
    )
    sink_link_check_allow: tuple[str, ...] = _setting(
        (),
        parse_list,
        "Host patterns (`*.qa.internal`, `app`) whose links Mailpit's link check may ask "
        "beyond loopback: by default only hosts that resolve to loopback addresses are asked, "
        "so a message cannot make burnbox probe the network it sits in.",
    )
    sink_chaos: bool = _setting(
        False,
        parse_bool,
        "In sink mode, let tests set Mailpit's chaos triggers (`/api/v1/chaos`): SMTP then "
        "answers the error code they chose, at the rate they chose, at MAIL or RCPT.",
    )
    sink_relay: Endpoint | None = _setting(
        None,
        parse_optional_endpoint,
        "In sink mode, the SMTP server (host:port) that Mailpit's release sends a message "
        "through, to recipients BURNBOX_SINK_RELAY_ALLOW allows; empty: release is off.",
    )
    sink_relay_allow: tuple[str, ...] = _setting(
        (),
        parse_list,
        "Glob patterns over the addresses a message may be released to (`*@example.test`; "
        "`*` for any): required with BURNBOX_SINK_RELAY, so a sink never relays to anyone "
        "by default.",
    )
    spamassassin: Endpoint | None = _setting(
        None,
        parse_optional_endpoint,
        "In sink mode, a SpamAssassin spamd (host:port) that Mailpit's `sa-check` asks for "
        "its score and rules; empty: the check is off.",
    )
    sink_any_listen: bool = _setting(
        False,
        parse_bool,
        "Let sink mode listen on a public or unspecified address (0.0.0.0, e.g. inside a "
        "container whose ports are published only to the host): an open catch-all on the "
        "internet is a spam sink, so this must be said explicitly.",
    )
    webhook_url: str = _setting(
        "",
        str,
        "A URL told of every inbox's events (message.received, message.deleted, "
        "inbox.expired, inbox.burned), signed with BURNBOX_WEBHOOK_SECRET; empty: none. "
        "See docs/webhooks.md.",
    )
    webhook_secret: str = _setting(
        "", str, "The node-wide webhook's signing secret: `whsec_` and base64 (24+ bytes)."
    )
    webhook_allow: tuple[str, ...] = _setting(
        (),
        parse_list,
        "CIDRs (e.g. `10.0.0.0/8,127.0.0.1/32`) webhooks may be sent to although they are not "
        "public; empty: only public addresses (loopback, private, link-local, metadata "
        "addresses are refused).",
    )
    webhook_retry_for: float = _setting(
        6 * 3600.0,
        parse_duration,
        "How long a webhook event is retried (exponential backoff with jitter) before it is "
        "given up.",
    )
    webhook_max_pending: int = _setting(
        1000,
        parse_positive_int,
        "Events pending for one webhook at most; beyond it the oldest are dropped (counted).",
    )
    webhook_max_pending_total: int = _setting(
        100_000, parse_positive_int, "Webhook events pending in all at most (the oldest go)."
    )
    access: str = _setting(
        "token",
        parse_choice("token", "public"),
        "`token`: an inbox is read only with the token returned when it was created. "
        "`public`: anyone may read any inbox by its address (QA teams on a private network).",
    )
    inbox_ttl: float = _setting(
        86400.0, parse_duration, "How long a new inbox lives, and how much an extend adds."
    )
    inbox_max_lifetime: float = _setting(
        7 * 86400.0, parse_duration, "The longest an inbox can be extended to, from its creation."
    )
    inbox_create_rate: str = _setting(
        "20/m",
        parse_rate,
        "Inboxes one client IP may create: `N/s`, `N/m` or `N/h` (a token bucket of N).",
    )
    failed_read_rate: str = _setting(
        "30/m",
        parse_rate,
        "Failed reads (a wrong token or no such inbox, which look alike) one client IP may "
        "make: `N/s`, `N/m` or `N/h`. Beyond it, every read from that IP is answered 429.",
    )
    push_max_streams: int = _setting(
        10_000,
        parse_positive_int,
        "Push streams (SSE, WebSocket, long-poll) open at once on this node; more are refused "
        "(429, or WebSocket close 4429).",
    )
    push_max_streams_per_ip: int = _setting(
        40, parse_positive_int, "Push streams one client IP may hold open at once."
    )
    trusted_proxies: tuple[str, ...] = _setting(
        (),
        parse_list,
        "Comma-separated IPs of reverse proxies whose X-Forwarded-For is believed for the "
        "client IP (rate limits); empty: the socket's peer is the client.",
    )
    allowed_origins: tuple[str, ...] = _setting(
        (),
        parse_list,
        "Origins (e.g. `https://mail.example.org`) allowed to open the WebSocket and to use "
        "cookie sessions; empty: only the origin the request itself was sent to.",
    )
    log_level: str = _setting(
        "info", parse_choice("debug", "info", "warning", "error"), "Log level."
    )

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_cert and self.tls_key)
