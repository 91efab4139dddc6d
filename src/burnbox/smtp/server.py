"""The SMTP listener: accepting sessions, and stopping gracefully."""

from __future__ import annotations

import asyncio

from burnbox.smtp.context import SmtpContext
from burnbox.smtp.session import SmtpSession


class SmtpServer:
    def __init__(self, context: SmtpContext) -> None:
        self.context = context
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int, *, shared: bool = False) -> int:
        """Listen; returns the port really bound (port 0 becomes a real port).
        `shared`: other worker processes listen on the same port (SO_REUSEPORT)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SmtpSession(self.context),
            host,
            port,
            reuse_address=True,
            reuse_port=shared or None,
            backlog=4096,
        )
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def stop(self, grace: float) -> None:
        """Stop accepting, say 421 to idle sessions, let transactions finish within
        `grace` seconds, then cut whatever is left."""
        registry = self.context.registry
        registry.accepting = False
        if self._server is not None:
            self._server.close()
        for session in list(registry.sessions):
            session.begin_shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        try:
            await asyncio.wait_for(registry.empty.wait(), grace)
        except TimeoutError:
            for session in list(registry.sessions):
                session.force_close()
        if registry.tasks:  # stores begun for clients that have since gone away
            await asyncio.wait(list(registry.tasks), timeout=max(deadline - loop.time(), 0.1))
        for task in list(registry.tasks):
            task.cancel()
