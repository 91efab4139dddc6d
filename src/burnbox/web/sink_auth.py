"""Basic auth for sink mode's web side, its APIs and its event streams, from an htpasswd
file of bcrypt hashes (BURNBOX_SINK_AUTH_FILE, as Mailpit's --ui-auth-file reads it:
`user:$2y$...` lines, as `htpasswd -B` writes them). Probes (/healthz, /readyz, /metrics)
stay open.

bcrypt is slow on purpose (tens of milliseconds a check): a check runs off the event loop,
a pair that passed is remembered (by a SHA-256 of it, bounded) so that a suite's thousands
of requests cost one check, and wrong answers count against the client's failed-read
budget, past which it is refused before any hash is computed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import bcrypt
from starlette.types import ASGIApp, Receive, Scope, Send

from burnbox.ratelimit import RateLimiter

OPEN = frozenset({"/healthz", "/readyz", "/metrics"})
REMEMBERED = 1024  # passing pairs kept
MAX_USERS = 10_000


class AuthFileError(ValueError):
    pass


def read_users(path: str) -> dict[str, bytes]:
    """`user:hash` per line; blank lines and `#` comments skipped; bcrypt hashes only."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AuthFileError(f"cannot read {path}: {type(error).__name__}") from None
    users: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, colon, hashed = line.partition(":")
        if not colon or not user or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise AuthFileError(f"{path} line {number}: expected user:bcrypt-hash")
        users[user] = hashed.encode()
    if not users or len(users) > MAX_USERS:
        raise AuthFileError(f"{path}: expected 1 to {MAX_USERS} users")
    return users


class SinkAuth:
    """ASGI middleware: HTTP and WebSocket requests need a user of the file."""

    def __init__(
        self,
        app: ASGIApp,
        users: dict[str, bytes],
        failures: RateLimiter,
        clock: Callable[[], float],
    ) -> None:
        self.app = app
        self._users = users
        self._failures = failures
        self._clock = clock  # seconds, the app's clock: the guessers' budget refills by it
        self._passed: OrderedDict[bytes, str] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in OPEN:
            await self.app(scope, receive, send)
            return
        user = await self._user(scope)
        if user is None:
            await _refuse(scope, receive, send)
            return
        scope.setdefault("state", {})["sink_user"] = user
        await self.app(scope, receive, send)

    async def _user(self, scope: Scope) -> str | None:
        header = dict(scope.get("headers", [])).get(b"authorization", b"")
        kind, _, encoded = header.partition(b" ")
        if kind.lower() != b"basic":
            return None
        key = hashlib.sha256(encoded.strip()).digest()
        if key in self._passed:
            self._passed.move_to_end(key)
            return self._passed[key]
        client = scope.get("client") or ("", 0)
        now = self._clock()
        if self._failures.blocked(f"auth:{client[0]}", now) is not None:
            return None
        user = await asyncio.to_thread(self._check, encoded.strip())
        if user is None:
            self._failures.take(f"auth:{client[0]}", now)
            return None
        self._passed[key] = user
        while len(self._passed) > REMEMBERED:
            self._passed.popitem(last=False)
        return user

    def _check(self, encoded: bytes) -> str | None:
        try:
            user, colon, password = base64.b64decode(encoded, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return None
        hashed = self._users.get(user.decode("utf-8", "replace"))
        if not colon or hashed is None:
            return None
        try:
            return user.decode() if bcrypt.checkpw(password, hashed) else None
        except ValueError:
            return None


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await receive()  # the connect
        await send({"type": "websocket.close", "code": 1008})  # answered 403 at the upgrade
        return
    body = b"Unauthorized\n"
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Basic realm="burnbox sink"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
