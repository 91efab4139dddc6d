"""What one transaction may take by the listener's limits: the size MAIL FROM declares, and
one more recipient. Pure: each says the refusal's reply, or None."""

from __future__ import annotations

from burnbox.smtp import replies
from burnbox.smtp.context import SmtpConfig


def size_refusal(size: int, config: SmtpConfig) -> bytes | None:
    """A declared SIZE larger than a message, or than the whole store, may ever be."""
    if size > config.max_message_size:
        return replies.MESSAGE_TOO_BIG
    if size > config.store_max_bytes:
        return replies.TOO_BIG_FOR_STORE
    return None


def recipient_refusal(recipients: int, declared_size: int, config: SmtpConfig) -> bytes | None:
    """Why a transaction of `recipients` (counting the new one) cannot be taken: a 452, so
    the sender sends to the rest later, in a transaction of its own."""
    if recipients > config.max_recipients:
        return replies.TOO_MANY_RECIPIENTS
    # One copy per inbox: with SIZE declared, refuse the recipient that would make the
    # copies larger than the store could ever hold.
    if declared_size * recipients > config.store_max_bytes:
        return replies.TOO_MANY_FOR_SIZE
    return None
