"""What a sender is told when its message could not be stored: each way a delivery fails,
as the reply that says truly what became of the message (4yz: the sender retries; 552:
it never fits), counted by reason and logged by type and count, never by address."""

from __future__ import annotations

import logging

from burnbox.metrics import Metrics, RefusalReason
from burnbox.smtp import replies
from burnbox.storage.base import StoreFull, TooLargeForStore

log = logging.getLogger(__name__)


def overdue(metrics: Metrics) -> bytes:
    """The delivery outlived its timeout (the session watchdog cancelled it)."""
    return _refused(metrics, "delivery took too long; answered 451", "store_error")


def failed(error: Exception, recipients: int, metrics: Metrics) -> bytes:
    """The store (or anything on the way to it) raised `error`."""
    if isinstance(error, TooLargeForStore):
        log.warning("a message too big for the store: answered 552 (recipients: %d)", recipients)
        metrics.refuse("too_big")
        return replies.TOO_BIG_FOR_STORE
    if isinstance(error, StoreFull):
        why = f"the store is full: answered 452 (recipients: {recipients})"
        return _refused(metrics, why, "store_full", replies.STORE_FULL)
    why = f"delivery failed ({type(error).__name__}); answered 451"
    return _refused(metrics, why, "store_error")


def _refused(
    metrics: Metrics, why: str, reason: RefusalReason, answer: bytes = replies.LOCAL_ERROR
) -> bytes:
    log.error("%s", why)  # counts and types only: never an address or a subject
    metrics.refuse(reason)
    return answer
