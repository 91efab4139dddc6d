"""mail.tm accounts over burnbox inboxes: password hashes, account ids and account tokens.
No I/O and no HTTP.

A password is kept only as a slow scrypt hash (mail.tm clients sign in with one). An account
token is a JWT (HS256, as mail.tm's are, so clients that read its claims keep working)
signed with a key derived from the inbox's password hash and creation time: nothing of the
token is stored, any number can be live at once, every node can check one, and all of them
die with their inbox (burned, expired, or the address made again).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from burnbox.model import Inbox, ms_of

# scrypt at n=2^14, r=8, p=1 (RFC 7914's interactive setting): 16 MiB and about 75 ms of
# one core per hash here (2^15 took 155 ms, too much for sign-up bursts on 2 cores). The
# hashing runs off the event loop (InboxService), a few at a time.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCRYPT_MAXMEM = 32 * 1024**2
HASH_VERSION = b"\x01"  # the parameters above; a later change adds a version
SALT_BYTES, KEY_BYTES = 16, 32
MAX_PASSWORD = 1024  # bytes hashed at most: a longer password is refused, not truncated
MIN_PASSWORD = 6
TOKEN_ALGORITHM = "HS256"  # noqa: S105 - an algorithm name, not a secret
MAX_ACCOUNT_TOKEN = 2048


class BadPassword(ValueError):
    """A new account's password out of bounds; `reason` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadToken(Exception):
    """Not an account token of a live inbox."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    address: str
    created_ms: int


def password_fits(password: str) -> bool:
    return len(password.encode("utf-8", "surrogateescape")) <= MAX_PASSWORD


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise BadPassword(
            f"This value is too short. It should have {MIN_PASSWORD} characters or more."
        )
    if not password_fits(password):
        raise BadPassword(f"This value is too long. It should have {MAX_PASSWORD} bytes or less.")


def hash_password(password: str, salt: bytes | None = None) -> bytes:
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    key = hashlib.scrypt(
        password.encode("utf-8", "surrogateescape"),
        salt=salt,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=SCRYPT_MAXMEM,
        dklen=KEY_BYTES,
    )
    return HASH_VERSION + salt + key


def password_matches(password: str, stored: bytes | None) -> bool:
    """Compared in constant time; a missing hash costs a hash too (no timing tell)."""
    if stored is None or len(stored) != 1 + SALT_BYTES + KEY_BYTES or stored[:1] != HASH_VERSION:
        hash_password(password)
        return False
    candidate = hash_password(password, stored[1 : 1 + SALT_BYTES])
    return hmac.compare_digest(candidate, stored)


def account_id(inbox: Inbox) -> str:
    """A stable id for one inbox's lifetime (24 hex digits, as mail.tm's ids): the same
    address made again is another account, even within the same millisecond (the password
    hash's salt is new)."""
    seed = f"{inbox.address}\0{ms_of(inbox.created_at)}\0".encode() + (inbox.password_hash or b"")
    return hashlib.sha256(seed).hexdigest()[:24]


def _signing_key(inbox: Inbox) -> bytes:
    if inbox.password_hash is None:
        raise BadToken("no account")
    return hashlib.sha256(
        b"burnbox account token\0" + inbox.password_hash + str(ms_of(inbox.created_at)).encode()
    ).digest()


def _jwt() -> Any:
    """PyJWT, on first use: with `cryptography` installed (the MCP SDK brings it) it loads
    that too, about 10 MiB a node that serves no mail.tm account never needs."""
    import jwt

    return jwt


def issue_token(inbox: Inbox, now_s: int) -> str:
    claims = {
        "iat": now_s,
        "roles": ["ROLE_USER"],
        "username": inbox.address,
        "id": account_id(inbox),
        "ct": ms_of(inbox.created_at),
    }
    token: str = _jwt().encode(claims, _signing_key(inbox), algorithm=TOKEN_ALGORITHM)
    return token


def claims_of(token: str) -> TokenClaims:
    """Who a token says it is, not yet checked: the inbox to check it against."""
    if len(token) > MAX_ACCOUNT_TOKEN or token.count(".") != 2:
        raise BadToken("not a token")
    jwt = _jwt()
    try:
        header = jwt.get_unverified_header(token)
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise BadToken("not a token") from None
    address, created = claims.get("username"), claims.get("ct")
    if header.get("alg") != TOKEN_ALGORITHM or not isinstance(address, str):
        raise BadToken("not ours")
    if not isinstance(created, int):
        raise BadToken("not ours")
    return TokenClaims(address, created)


def verify_token(token: str, inbox: Inbox) -> None:
    """Raises BadToken unless `token` was issued for this very inbox."""
    if claims_of(token).created_ms != ms_of(inbox.created_at):
        raise BadToken("another inbox")
    jwt = _jwt()
    try:
        jwt.decode(token, _signing_key(inbox), algorithms=[TOKEN_ALGORITHM])
    except jwt.PyJWTError:
        raise BadToken("bad signature") from None
