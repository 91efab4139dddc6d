"""Prometheus metrics: one registry per app instance, numbers only.

No label ever carries an address, subject or client IP: refusal reasons are
a fixed vocabulary (see RefusalReason).

With several workers (`serve --workers N`) a scrape reaches whichever worker the kernel
hands the connection to, so each worker's own numbers would be a random part of the
node's. The parent therefore sets PROMETHEUS_MULTIPROC_DIR before forking: every worker
writes its counters, gauges and histograms to files there (prometheus-client's
multiprocess mode), and any worker's /metrics sums them. The store's figures come from
the shared store, so the answering worker's view of it is the node's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from burnbox.model import StoreStats

RefusalReason = Literal[
    "relay",
    "bad_address",
    "too_big",
    "too_many_recipients",
    "line_too_long",
    "store_full",
    "store_error",
    "unclaimed",
    "shutdown",
    "rate_limited",
    "blocked_sender",
    "dnsbl",
]


RECEIVED = "burnbox_messages_received", "Messages accepted and stored (one per inbox)."


AUTH_METHODS = ("spf", "dkim", "dmarc", "arc")


class Restarting(Protocol):
    """A helper process that says when it was replaced (the parse pool)."""

    on_restart: Callable[[], None] | None


class Lapsing(Restarting, Protocol):
    """One that also says how many messages went on without its answer (the checks)."""

    on_late: Callable[[int], None] | None


class _StoreCollector(Collector):
    def __init__(self, stats: Callable[[], StoreStats], received: Callable[[], int] | None) -> None:
        self._stats = stats
        self._received = received  # None: a shared Counter exports it

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        if self._received is not None:
            yield CounterMetricFamily(*RECEIVED, value=self._received())
        stats = self._stats()
        yield GaugeMetricFamily("burnbox_messages_stored", "Messages held now.", stats.messages)
        yield GaugeMetricFamily("burnbox_bytes_stored", "Bytes of mail held now.", stats.bytes)
        yield GaugeMetricFamily("burnbox_inboxes", "Inboxes created and live now.", stats.inboxes)


class _Tallies(Collector):
    """Adds what was tallied to its counters when a scrape begins (registered before
    them, so that the scrape sees the sums); yields nothing of its own."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily]:
        self._metrics.flush_checked()
        yield from ()


class Metrics:
    def __init__(self, *, shared: bool = False) -> None:
        """`shared`: one of several workers, whose numbers prometheus-client keeps in the
        folder the parent named before forking (see above)."""
        own = CollectorRegistry()
        self.shared = shared
        self._children: dict[tuple[Any, ...], Any] = {}
        self._checked: dict[tuple[str, ...], int] = {}  # tallied checks (count_checked)
        if shared:
            # Only what the workers' files hold: registering `own` too would count this
            # worker twice.
            self.registry = CollectorRegistry()
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        else:
            self.registry = own
            own.register(_Tallies(self))
        # One process: a plain integer, not a Counter: its lock cost 1% of ingest, and all
        # writes happen on the one event loop. Exported by _StoreCollector.
        self.received = 0
        self._received_total = Counter(*RECEIVED, registry=own) if shared else None
        self._mail_and_sessions(own)
        self._relay(own)
        self._push(own)
        self._trust(own)
        self._helpers(own)
        self._timings(own)

    def _mail_and_sessions(self, own: CollectorRegistry) -> None:
        self.refused = Counter(
            "burnbox_messages_refused",
            "Messages or recipients refused, by reason.",
            ["reason"],
            registry=own,
        )
        self.smtp_sessions = Gauge(
            "burnbox_smtp_sessions",
            "SMTP sessions open now.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.purged = Counter(
            "burnbox_messages_purged", "Messages removed because their time was up.", registry=own
        )

    def _relay(self, own: CollectorRegistry) -> None:
        self.relay_received = Counter(
            "burnbox_relay_received", "Events received from other nodes.", registry=own
        )
        self.relay_packets = Counter(
            "burnbox_relay_packets_sent",
            "Notifications sent to other nodes (each carries every event waiting, up to 7.9 KB).",
            registry=own,
        )
        self.relay_reconnects = Counter(
            "burnbox_relay_reconnects",
            "Times the cross-node channel was lost and reached "
            "again (local push streams are ended then, and catch up).",
            registry=own,
        )
        self.relay_dropped = Counter(
            "burnbox_relay_dropped", "Events not sent to other nodes (outbox full).", registry=own
        )

    def _push(self, own: CollectorRegistry) -> None:
        self.push_subscribers = Gauge(
            "burnbox_push_subscribers",
            "Push streams (SSE, WebSocket, long-poll) open now.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.push_refused = Counter(
            "burnbox_push_refused",
            "Push streams refused: too many from one client IP, or in all.",
            ["limit"],
            registry=own,
        )
        self.reads_refused = Counter(
            "burnbox_reads_refused",
            "Reads refused because their client IP failed too many "
            "(a wrong token, or no such inbox).",
            registry=own,
        )
        self.webhooks = Counter(
            "burnbox_webhook_deliveries",
            "Webhook deliveries by outcome: delivered, retried, given_up, and dropped (the "
            "oldest pending, beyond the outbox's bounds).",
            ["outcome"],
            registry=own,
        )

    def _trust(self, own: CollectorRegistry) -> None:
        self.auth_results = Counter(
            "burnbox_auth_results",
            "Sender checks' results (RFC 8601 words), by method: spf, dkim, dmarc, arc.",
            ["method", "result"],
            registry=own,
        )
        self.auth_checks = Counter(
            "burnbox_auth_checks",
            "Messages checked: with the answers kept (stored with the message), in the "
            "background (stored after it), or skipped (too many checks at once: temperror).",
            ["way"],
            registry=own,
        )
        self.auth_late = Counter(
            "burnbox_auth_late",
            "Messages stored without waiting longer for their checks (the check process had "
            "not answered within a second): checked in the background, as way=background.",
            registry=own,
        )
        self.dnsbl = Counter(
            "burnbox_dnsbl_lookups",
            "Client IPs looked up in the DNS blocklists: listed, clear, or failed_open (the "
            "list did not answer in time; the client was let through).",
            ["outcome"],
            registry=own,
        )

    def _helpers(self, own: CollectorRegistry) -> None:
        self.helper_restarts = Counter(
            "burnbox_helper_restarts",
            "Helper processes replaced after they died, or (checks) stopped answering: "
            "checks, the sender checks; parse, large messages' parsing.",
            ["helper"],
            registry=own,
        )

    def _timings(self, own: CollectorRegistry) -> None:
        self.store_seconds = Histogram(
            "burnbox_store_add_seconds",
            "Time to store one delivered message (to commit).",
            registry=own,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
        )
        self.purge_seconds = Histogram(
            "burnbox_purge_seconds",
            "Duration of each purge run (count: purge runs).",
            registry=own,
            buckets=(0.001, 0.01, 0.1, 1.0, 10.0, 60.0),
        )
        self.relay_lag = Histogram(
            "burnbox_relay_lag_seconds",
            "From publish on one node to arrival on this one.",
            registry=own,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0),
        )

    def watch_helpers(self, parse: Restarting, checks: Lapsing | None) -> None:
        """The helper processes' replacements, and mail that went on without its checks'
        results (each label made now, so that it reads 0 until it happens)."""
        parse.on_restart = self.helper_restarts.labels("parse").inc
        if checks is not None:
            checks.on_restart = self.helper_restarts.labels("checks").inc
            checks.on_late = self.auth_late.inc

    def watch_store(self, stats: Callable[[], StoreStats]) -> None:
        received = None if self.shared else (lambda: self.received)
        self.registry.register(_StoreCollector(stats, received))

    def count_received(self, messages: int) -> None:
        if self._received_total is None:
            self.received += messages
        else:
            self._received_total.inc(messages)

    def count_checked(self, way: str, results: dict[str, str]) -> None:
        """One message's sender checks; `results` by method (every one of AUTH_METHODS). In one
        process they are tallied in a plain dictionary and added to the counters at the
        next scrape (_Tallies): five counter increments a message, each taking a lock,
        cost the server 1.5% of its time at full load (bench/auth_ingest.py)."""
        key = (way, results["spf"], results["dkim"], results["dmarc"], results["arc"])
        self._checked[key] = self._checked.get(key, 0) + 1
        if self.shared:  # another worker may answer the scrape: into the shared files now
            self.flush_checked()

    def flush_checked(self) -> None:
        """Add the tallied checks to their counters."""
        checked, self._checked = self._checked, {}
        for (way, *results), count in checked.items():
            self._child(self.auth_checks, way).inc(count)
            for method, result in zip(AUTH_METHODS, results, strict=True):
                self._child(self.auth_results, method, result).inc(count)

    def _child(self, counter: Counter, *labels: str) -> Any:
        # prometheus_client's labels() costs microseconds a call; at every message, a
        # dictionary of the children already made is cheaper.
        key = (id(counter), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(*labels)
        return child

    def refuse(self, reason: RefusalReason) -> None:
        self.refused.labels(reason).inc()
