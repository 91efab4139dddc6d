"""Prometheus metrics: one registry per app instance, numbers only.

No label ever carries an address, subject or client IP: refusal reasons are
a fixed vocabulary (see RefusalReason).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from burnbox.model import StoreStats

RefusalReason = Literal[
    "relay", "bad_address", "too_big", "too_many_recipients", "line_too_long",
    "store_full", "store_error", "unclaimed", "shutdown",
]


class _StoreCollector(Collector):
    def __init__(self, stats: Callable[[], StoreStats], received: Callable[[], int]) -> None:
        self._stats = stats
        self._received = received

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield CounterMetricFamily("burnbox_messages_received",
                                  "Messages accepted and stored (one per inbox).",
                                  value=self._received())
        stats = self._stats()
        yield GaugeMetricFamily("burnbox_messages_stored", "Messages held now.", stats.messages)
        yield GaugeMetricFamily("burnbox_bytes_stored", "Bytes of mail held now.", stats.bytes)
        yield GaugeMetricFamily("burnbox_inboxes", "Inboxes created and live now.", stats.inboxes)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # A plain integer, not a Counter: its lock cost 1% of ingest, and all writes happen
        # on the one event loop. Exported by _StoreCollector.
        self.received = 0
        self.refused = Counter(
            "burnbox_messages_refused", "Messages or recipients refused, by reason.",
            ["reason"], registry=self.registry)
        self.smtp_sessions = Gauge(
            "burnbox_smtp_sessions", "SMTP sessions open now.", registry=self.registry)
        self.purged = Counter(
            "burnbox_messages_purged", "Messages removed because their time was up.",
            registry=self.registry)

        self.relay_received = Counter(
            "burnbox_relay_received", "Events received from other nodes.",
            registry=self.registry)
        self.relay_packets = Counter(
            "burnbox_relay_packets_sent", "Notifications sent to other nodes (each carries "
            "every event waiting, up to 7.9 KB).", registry=self.registry)
        self.relay_reconnects = Counter(
            "burnbox_relay_reconnects", "Times the cross-node channel was lost and reached "
            "again (local push streams are ended then, and catch up).", registry=self.registry)
        self.relay_dropped = Counter(
            "burnbox_relay_dropped", "Events not sent to other nodes (outbox full).",
            registry=self.registry)
        self.push_subscribers = Gauge(
            "burnbox_push_subscribers", "Push streams (SSE, WebSocket, long-poll) open now.",
            registry=self.registry)

        self.store_seconds = Histogram(
            "burnbox_store_add_seconds", "Time to store one delivered message (to commit).",
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0))
        self.purge_seconds = Histogram(
            "burnbox_purge_seconds", "Duration of each purge run (count: purge runs).",
            registry=self.registry, buckets=(0.001, 0.01, 0.1, 1.0, 10.0, 60.0))
        self.relay_lag = Histogram(
            "burnbox_relay_lag_seconds", "From publish on one node to arrival on this one.",
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0))

    def watch_store(self, stats: Callable[[], StoreStats]) -> None:
        self.registry.register(_StoreCollector(stats, lambda: self.received))

    def refuse(self, reason: RefusalReason) -> None:
        self.refused.labels(reason).inc()
