"""PostgreSQL being away (stopping, restarting, failing over, out of connections) as the
store's own StoreError, which the background loops wait out.

The webhook dispatcher polls the database twice a second. While PostgreSQL shuts down it
refuses new sessions with "the database system is shutting down" (CannotConnectNowError,
SQLSTATE 57P03), which is neither a StoreError nor an OSError: the dispatcher took it for a
defect, ended, and the supervisor stopped the whole node (CI met it once in a stopped-
database test). Only the classes that mean "the server is away or out of room" are
translated; a wrong statement stays a defect that stops the node, as the reaper's does.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import asyncpg

from burnbox.storage.base import StoreError

_P = ParamSpec("_P")
_R = TypeVar("_R")
OUTAGES = (
    asyncpg.InterfaceError,  # the connection is closed (on our side)
    asyncpg.PostgresConnectionError,  # class 08: the connection failed or is gone
    asyncpg.OperatorInterventionError,  # class 57: shutting down, starting, cancelled
    asyncpg.InsufficientResourcesError,  # class 53: disk full, too many connections
    asyncpg.PostgresSystemError,  # class 58: the server's I/O failed
)


def outage_is_store_error(
    method: Callable[_P, Awaitable[_R]],
) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """A store method whose outage raises StoreError (named by the driver's class)."""

    @functools.wraps(method)
    async def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(*args, **kwargs)
        except OUTAGES as error:
            raise StoreError(type(error).__name__) from error

    return guarded
