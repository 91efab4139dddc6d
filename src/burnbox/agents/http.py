"""The MCP server's streamable HTTP transport at /mcp, in front of the HTTP app.

Built on first use (the SDK costs about 20 MiB of RSS that a node whose agents never call
it does not pay), then its session manager runs until the node stops. The tools reach
the API through its own ASGI app in process, with the agent's client IP, so the API's
rules (tokens, per-IP rate limits, bounds) apply to agents as to everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

PATH = "/mcp"
MAX_SESSIONS = 1000  # MCP sessions held at once (the SDK's own bound)


class McpEndpoint:
    def __init__(self, api: ASGIApp) -> None:
        self._api = api
        self._mcp: ASGIApp | None = None
        self._starting = asyncio.Lock()
        self._stop = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != PATH:
            await self._api(scope, receive, send)
            return
        mcp = self._mcp or await self._start()
        await mcp(scope, receive, send)

    async def _start(self) -> ASGIApp:
        async with self._starting:
            if self._mcp is not None:
                return self._mcp
            from burnbox.agents.tools import build_server  # the SDK, on first use

            server = build_server(self._connect)
            app = server.streamable_http_app(
                streamable_http_path=PATH,
                max_sessions=MAX_SESSIONS,
                host="0.0.0.0",  # noqa: S104
            )
            ready = asyncio.Event()
            self._runner = asyncio.ensure_future(self._run(server, ready))
            await ready.wait()
            self._mcp = app
            return app

    async def _run(self, server: Any, ready: asyncio.Event) -> None:
        async with server.session_manager.run():
            ready.set()
            await self._stop.wait()

    async def stop(self) -> None:
        self._stop.set()
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner

    @contextlib.asynccontextmanager
    async def _connect(self, ctx: Any) -> AsyncIterator[Any]:
        # httpx on first use: importing it loads its command line's `rich` (and pygments)
        # when the MCP SDK has installed them, about 8 MiB.
        import httpx

        request = getattr(getattr(ctx, "request_context", None), "request", None)
        client = getattr(request, "client", None)
        peer = (client.host, client.port) if client is not None else ("127.0.0.1", 0)
        transport = httpx.ASGITransport(app=self._api, client=peer)
        async with httpx.AsyncClient(transport=transport, base_url="http://burnbox") as http:
            yield http
