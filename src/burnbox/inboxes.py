"""Inboxes and who may read them: creation, capability tokens, extension, burning, and
every read and change of an inbox's mail.

A token is 192 random bits, given once at creation and stored only as its
SHA-256. Whoever may not read an inbox is told exactly what they would be
told if it did not exist (NotFound), and the token's hash is computed either
way, so the two cases cost the same.

An inbox's mail is what reached its address while it was the inbox there (from its
`claims_from` on, see model.Inbox): every read here asks the store for that, and every
change is stored first, then published, so each API surface gets the same events.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import TypeVar

from burnbox import accounts, handles
from burnbox.addressing import (
    Address,
    AddressError,
    DomainPolicy,
    normalise_domain,
    normalise_local,
    parse_address,
    random_local_part,
)
from burnbox.hub import Event, Hub
from burnbox.ids import Clock
from burnbox.model import Inbox, MessageSummary
from burnbox.storage.base import AddressTaken, NotFound, Store
from burnbox.trust import results

T = TypeVar("T")

TOKEN_BYTES = 24  # 192 bits
# A fixed prefix: a token never starts with "-" (which a command line would take for an
# option), and secret scanners can recognise a leaked burnbox token.
TOKEN_PREFIX = "bbx_"  # noqa: S105 - a prefix, not a secret
RANDOM_ATTEMPTS = 8  # random addresses tried before giving up (all taken is near impossible)
CATCH_UP_PAGE = 100  # messages read at a time while catching up
# Password hashes computed at once (each 16 MiB and ~75 ms of a core, in a thread): more
# sign-ins wait their turn instead of taking the node's memory and cores.
HASHING_AT_ONCE = 2
_NO_TOKEN = hashlib.sha256(b"").digest()


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class InboxService:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        domains: DomainPolicy,
        *,
        clock: Clock,
        ttl: float,
        max_lifetime: float,
        public: bool,
        hostname: str = "",
        new_local_part: Callable[[], str] = random_local_part,
        new_token: Callable[[], str] = lambda: TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES),
    ) -> None:
        self._store = store
        self._hub = hub
        self._domains = domains
        self._clock = clock
        self._ttl = timedelta(seconds=ttl)
        self._max_lifetime = timedelta(seconds=max_lifetime)
        self.public = public
        self._hostname = hostname  # whose Authentication-Results a served message carries
        self._new_local_part = new_local_part
        self._new_token = new_token
        self._hashing = asyncio.Semaphore(HASHING_AT_ONCE)
        self._handle_key_value: bytes | None = None

    async def create(self, local_part: str | None, domain: str | None) -> tuple[Inbox, str]:
        """A new inbox and its token. Raises AddressError (bad or foreign address) or
        AddressTaken (a chosen local part held by a live inbox)."""
        chosen_domain = self._domain(domain)
        token = self._new_token()
        for _ in range(1 if local_part is not None else RANDOM_ATTEMPTS):
            local = normalise_local(
                local_part if local_part is not None else self._new_local_part()
            )
            now = self._clock()
            inbox = Inbox(
                str(Address(local, chosen_domain)), token_hash(token), now, now + self._ttl
            )
            try:
                stored = await self._store.create_inbox(inbox)
            except AddressTaken:
                if local_part is not None:
                    raise
                continue
            return stored, token
        raise AddressTaken("no free random address")

    async def open(self, address: str, token: str | None) -> Inbox:
        """The inbox if `token` may read it; NotFound otherwise, whatever the reason."""
        presented = token_hash(token) if token is not None else _NO_TOKEN
        try:
            normal = str(parse_address(address))
        except AddressError:
            raise NotFound(address) from None
        now = self._clock()
        try:
            inbox = await self._store.inbox(normal)
        except NotFound:
            if self.public and self._domains.accepts(normal.rpartition("@")[2]):
                return Inbox(normal, None, now, now + self._ttl)  # mail kept for anyone
            raise
        if inbox.expires_at <= now:
            if self.public:  # open to anyone, but not the ended inbox's mail
                return Inbox(normal, None, now, now + self._ttl, claims_from=inbox.expires_at)
            raise NotFound(normal)
        if self.public:
            return inbox
        if token is not None and handles.is_handle(token):
            return self._checked_handle(await self._unseal(token), inbox)
        if token is not None and inbox.password_hash is not None and token.count(".") == 2:
            return self._checked_account(token, inbox)
        if (
            token is None
            or inbox.token_hash is None
            or not hmac.compare_digest(presented, inbox.token_hash)
        ):
            raise NotFound(normal)
        return inbox

    async def exists(self, address: str) -> bool:
        """A live inbox holds this (normalised) address: for unclaimed=reject."""
        try:
            inbox = await self._store.inbox(address)
        except NotFound:
            return False
        return inbox.expires_at > self._clock()

    async def extend(self, inbox: Inbox) -> Inbox:
        now = self._clock()
        limit = inbox.created_at + self._max_lifetime
        extended = replace(inbox, expires_at=max(inbox.expires_at, min(now + self._ttl, limit)))
        await self._store.update_inbox(extended)
        return extended

    # -- handles: capabilities that reveal nothing (handles.py) ------------------

    async def handle(self, inbox: Inbox) -> str:
        """A handle that opens `inbox` for as long as it lives."""
        return handles.seal(await self._handle_key(), inbox)

    async def open_handle(self, handle: str) -> Inbox:
        """The live inbox a handle opens; NotFound for a forged one or an ended inbox."""
        sealed = await self._unseal(handle)
        try:
            inbox = await self._store.inbox(sealed[0])
        except NotFound:
            raise NotFound("") from None
        if inbox.expires_at <= self._clock():
            raise NotFound("")
        return self._checked_handle(sealed, inbox)

    async def _unseal(self, handle: str) -> tuple[str, bytes]:
        try:
            return handles.unseal(await self._handle_key(), handle)
        except handles.BadHandle:
            raise NotFound("") from None

    def _checked_handle(self, sealed: tuple[str, bytes], inbox: Inbox) -> Inbox:
        if not handles.opens(sealed, inbox):
            raise NotFound(inbox.address)  # another inbox's, or this address's earlier one
        return inbox

    async def _handle_key(self) -> bytes:
        if self._handle_key_value is None:  # read once: every node's store has the same
            self._handle_key_value = await self._store.key(handles.KEY_NAME, handles.new_key())
        return self._handle_key_value

    # -- mail.tm accounts: inboxes with a password ----------------------------

    async def create_account(self, address: str, password: str) -> Inbox:
        """An inbox at a chosen address whose owner signs in with `password`. Raises
        AddressError (bad or foreign address), accounts.BadPassword or AddressTaken."""
        wanted = parse_address(address)
        accounts.check_password(password)
        normal = str(Address(normalise_local(wanted.local), self._domain(wanted.domain)))
        password_hash = await self._off_loop(accounts.hash_password, password)
        now = self._clock()
        inbox = Inbox(normal, None, now, now + self._ttl, password_hash=password_hash)
        return await self._store.create_inbox(inbox)

    async def sign_in(self, address: str, password: str) -> tuple[Inbox, str]:
        """The account's inbox and a new account token. NotFound for a wrong password, an
        unknown or ended account, alike (and at the same cost)."""
        try:
            inbox: Inbox | None = await self._store.inbox(str(parse_address(address)))
        except (AddressError, NotFound):
            inbox = None
        live = inbox is not None and inbox.expires_at > self._clock()
        stored = inbox.password_hash if inbox is not None and live else None
        if accounts.password_fits(password) and await self._off_loop(
            accounts.password_matches, password, stored
        ):
            assert inbox is not None  # a hash matched
            return inbox, accounts.issue_token(inbox, int(self._clock().timestamp()))
        raise NotFound(address)

    async def open_account(self, token: str) -> Inbox:
        """The inbox an account token belongs to, if both are still good; NotFound
        otherwise."""
        try:
            address = accounts.claims_of(token).address
        except accounts.BadToken:
            raise NotFound("") from None
        inbox = await self._store.inbox(address)
        if inbox.expires_at <= self._clock():
            raise NotFound(address)
        return self._checked_account(token, inbox)

    def _checked_account(self, token: str, inbox: Inbox) -> Inbox:
        try:
            accounts.verify_token(token, inbox)
        except accounts.BadToken:
            raise NotFound(inbox.address) from None
        return inbox

    async def _off_loop(self, work: Callable[..., T], *args: object) -> T:
        async with self._hashing:
            return await asyncio.to_thread(work, *args)

    async def burn(self, inbox: Inbox) -> int:
        """End the inbox and delete all its mail at once. Its webhooks (and the node-wide
        one) are told by the store, in the same transaction."""
        gone = await self._store.burn_inbox(inbox.address, self._clock())
        self._hub.publish(Event("expired", inbox.address, ""))
        return len(gone)

    def announce_update(self, summary: MessageSummary) -> None:
        """Tell the message's listeners that something about it changed (sink mode's
        tags, which live beside the store)."""
        self._hub.publish(Event("updated", summary.address, summary.id, summary))

    def announce_reload(self, address: str) -> None:
        """Tell an address's listeners that much of its mail changed at once (a sink tag
        renamed or deleted): an "updated" event naming no message, read as "list again"."""
        self._hub.publish(Event("updated", address, ""))

    async def clear(self, inbox: Inbox) -> int:
        """Delete all mail of an address that has no inbox record (sink mode's shared
        view), leaving it open for more."""
        gone = await self._store.burn_inbox(inbox.address, self._clock())
        for message_id in gone:
            self._hub.publish(Event("deleted", inbox.address, message_id))
        return len(gone)

    async def still_open(self, inbox: Inbox) -> Inbox:
        """The inbox as stored now, if it is still the same one and live; NotFound if it has
        ended (burned, expired, or made again by someone else)."""
        if inbox.token_hash is None and self.public:
            return inbox
        try:
            current = await self._store.inbox(inbox.address)
        except NotFound:
            raise NotFound(inbox.address) from None
        if current.created_at != inbox.created_at or current.expires_at <= self._clock():
            raise NotFound(inbox.address)
        return current

    # -- its mail ------------------------------------------------------------

    async def messages(
        self, inbox: Inbox, *, before: str | None = None, limit: int = 50
    ) -> list[MessageSummary]:
        """Newest first."""
        return await self._store.summaries(
            inbox.address, before=before, limit=limit, since=inbox.claims_from
        )

    async def newer(
        self, inbox: Inbox, after: str, limit: int | None
    ) -> tuple[list[MessageSummary], bool]:
        """Up to `limit` (None: all) messages right after `after`, oldest first, and
        whether more follow them."""
        found: list[MessageSummary] = []
        before: str | None = None
        while True:
            page = await self.messages(inbox, before=before, limit=CATCH_UP_PAGE)
            fresh = [summary for summary in page if summary.id > after]
            found.extend(fresh)
            if len(fresh) < len(page) or len(page) < CATCH_UP_PAGE:
                break
            before = page[-1].id
        found.reverse()
        if limit is None:
            return found, False
        return found[:limit], len(found) > limit

    async def usage(self, inbox: Inbox) -> tuple[int, int]:
        return await self._store.usage(inbox.address, since=inbox.claims_from)

    async def message(self, inbox: Inbox, message_id: str) -> tuple[MessageSummary, bytes]:
        """A message's summary and raw bytes, beginning with our Authentication-Results
        field once its sender checks are recorded (trust/). Raises NotFound."""
        summary = await self._store.summary(inbox.address, message_id, since=inbox.claims_from)
        raw = await self._store.raw(inbox.address, message_id, since=inbox.claims_from)
        if summary.auth:
            raw = results.header(self._hostname, summary.auth) + raw
        return summary, raw

    async def delete_message(self, inbox: Inbox, message_id: str) -> None:
        await self._store.delete(inbox.address, message_id, since=inbox.claims_from)
        self._hub.publish(Event("deleted", inbox.address, message_id))

    async def mark_seen(self, inbox: Inbox, message_id: str, seen: bool) -> MessageSummary:
        updated = await self._store.mark_seen(
            inbox.address, message_id, seen, since=inbox.claims_from
        )
        self._hub.publish(Event("seen", updated.address, updated.id, updated))
        return updated

    def _domain(self, domain: str | None) -> str:
        if domain is None:
            return self._domains.creatable[0]
        normal = normalise_domain(domain)
        if not self._domains.accepts(normal):
            raise AddressError("that domain is not served here")
        return normal
