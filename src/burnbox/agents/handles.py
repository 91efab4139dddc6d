"""Inbox handles: what an agent passes back to the MCP tools instead of an inbox's token.

A handle is 128 random bits, kept only in this process, bound to the MCP session that
made it (when the transport has sessions), and bounded in number: the token itself never
appears in a tool's output, so an agent cannot paste it anywhere. Each handle also keeps
the agent's place (`cursor`): the wait tools hand out each message once, oldest first.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass

MAX_HANDLES = 10_000  # the least recently used goes first
HANDLE_PREFIX = "inbox_"
START = "0"  # sorts before every message id: "from the first message"


class UnknownHandle(Exception):
    """Not a handle of this session (never made, made elsewhere, or forgotten)."""


@dataclass
class Held:
    address: str
    token: str
    cursor: str = START


class Handles:
    def __init__(self, limit: int = MAX_HANDLES) -> None:
        self._held: OrderedDict[tuple[str, str], Held] = OrderedDict()
        self._limit = limit

    def add(self, session: str, address: str, token: str) -> str:
        handle = HANDLE_PREFIX + secrets.token_urlsafe(16)
        self._held[(session, handle)] = Held(address, token)
        while len(self._held) > self._limit:
            self._held.popitem(last=False)
        return handle

    def get(self, session: str, handle: str) -> Held:
        try:
            held = self._held[(session, handle)]
        except KeyError:
            raise UnknownHandle(handle) from None
        self._held.move_to_end((session, handle))
        return held

    def forget(self, session: str, handle: str) -> None:
        self._held.pop((session, handle), None)
