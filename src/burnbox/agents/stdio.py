"""`burnbox mcp --url URL`: the MCP server on stdio, a client of a running burnbox's API
(an agent's host starts it as a subprocess)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from burnbox.agents.tools import LONG_POLL, build_server


def serve(url: str) -> None:
    @contextlib.asynccontextmanager
    async def connect(ctx: Any) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=LONG_POLL + 15) as http:
            yield http

    # One agent per process: every call is in the same session.
    build_server(connect, lambda ctx: "stdio").run("stdio")
