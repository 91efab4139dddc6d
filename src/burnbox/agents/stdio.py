"""`burnbox mcp --url URL`: the MCP server on stdio, a client of a running burnbox's API
(an agent's host starts it as a subprocess).

stderr is the host's log of this process, and it is quiet: warnings and errors only, never
a request line (httpx logs each URL, which names the inbox's address, at INFO), an address,
a message id or a handle. `--log-level` raises it for debugging, and those lines still
leave out the libraries' request lines.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx

from burnbox.agents.tools import LONG_POLL, build_server

QUIET_LIBRARIES = ("httpx", "httpcore", "mcp", "anyio")  # what logs URLs or arguments


def quiet_logging(level: str = "warning") -> None:
    """Our own lines at `level` on stderr; the libraries' never below WARNING."""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="burnbox mcp: %(levelname)s %(message)s",
        force=True,  # before the SDK's own basicConfig (rich, at INFO) can take root
    )
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.root.level))


def serve(url: str, log_level: str = "warning") -> None:
    @contextlib.asynccontextmanager
    async def connect(ctx: Any) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=LONG_POLL + 15) as http:
            yield http

    quiet_logging(log_level)
    build_server(connect).run("stdio")
