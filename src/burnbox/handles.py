"""Inbox handles: capabilities that open one inbox for as long as it lives, and reveal
nothing. No I/O.

A handle is `inbox_` and the base64url of an AES-GCM sealed (address, lifetime), under a
key the store keeps (one per deployment, shared by every node; the RAM-only store's dies
with its inboxes). The lifetime is a digest of what makes one inbox at an address unlike
every other: its creation time and its token's (or password's) hash, which is random.
Whoever holds a handle may read the inbox, as with its token, but the token never
appears: the MCP tools give agents handles. Nothing is stored per handle, so a handle
works in any session, on any node, in a new process, and stops working when its inbox
ends (burned, expired, or the address made again, even within the same millisecond).
Without the key a handle can be neither read nor made: the sealed text is
authenticated, and its 96-bit nonce is random.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from burnbox.model import Inbox, ms_of

PREFIX = "inbox_"
KEY_NAME = "inbox-handles"  # the store's key for them
KEY_BYTES = 32
NONCE_BYTES = 12
LIFETIME_BYTES = 16
MAX_HANDLE = 1024  # characters: an address is at most 320 bytes
_CONTEXT = b"burnbox inbox handle v1"  # bound into every seal (AES-GCM's associated data)
_CREATED = struct.Struct(">q")


class BadHandle(Exception):
    """Not a handle made with this key (forged, damaged, or from another deployment)."""


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def is_handle(text: str) -> bool:
    return text.startswith(PREFIX)


def lifetime(inbox: Inbox) -> bytes:
    """What tells this inbox from any other ever made at its address."""
    secret = inbox.token_hash or inbox.password_hash or b""
    digest = hashlib.sha256(_CREATED.pack(ms_of(inbox.created_at)) + secret).digest()
    return digest[:LIFETIME_BYTES]


def seal(key: bytes, inbox: Inbox) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    plain = lifetime(inbox) + inbox.address.encode("utf-8")
    sealed = AESGCM(key).encrypt(nonce, plain, _CONTEXT)
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")


def unseal(key: bytes, handle: str) -> tuple[str, bytes]:
    """(address, lifetime) of the inbox a handle opens. Raises BadHandle."""
    if not is_handle(handle) or len(handle) > MAX_HANDLE:
        raise BadHandle("not a handle")
    text = handle[len(PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _CONTEXT)
        address = plain[LIFETIME_BYTES:].decode("utf-8")
    except (binascii.Error, ValueError, InvalidTag):
        raise BadHandle("not a handle of this deployment") from None
    return address, plain[:LIFETIME_BYTES]


def opens(sealed: tuple[str, bytes], inbox: Inbox) -> bool:
    return sealed[0] == inbox.address and hmac.compare_digest(sealed[1], lifetime(inbox))
