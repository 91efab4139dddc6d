"""burnbox through a real PgBouncer in transaction pooling mode: two node processes store
and read through it, and push crosses between them over a channel that does not pass
through it (LISTEN needs a session: a direct PostgreSQL connection, or Redis). The store's
own contract runs through it too (test_store_contract.py, backend "pgbouncer")."""

from __future__ import annotations

import asyncio
import json
import smtplib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from burnbox.settings import SettingsError, load
from tests.helpers import auth, inbox_feed
from tests.pgbouncer import pgbouncer_url
from tests.postgres import postgres_url, reset
from tests.process import Node, nodes_running

__all__ = ["pgbouncer_url", "postgres_url"]  # fixtures, used through request.getfixturevalue


@pytest.fixture(params=["direct", "redis"])
def nodes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    direct = str(request.getfixturevalue("postgres_url"))
    pooled = str(request.getfixturevalue("pgbouncer_url"))
    asyncio.run(reset(direct))
    hub = direct if request.param == "direct" else "redis://127.0.0.1:6379/0"
    options = ["--store", pooled, "--store-pooler", "transaction", "--hub", hub]
    with nodes_running(2, *options, cwd=tmp_path, banner_lines=6) as (a, b):
        yield a, b


def test_two_nodes_through_pgbouncer_store_read_and_push(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    with inbox_feed(a.http, b.http) as (inbox, events):  # made on A, subscribed on B
        for number in range(20):  # more sessions than PgBouncer has server connections
            with smtplib.SMTP("127.0.0.1", a.smtp, timeout=10) as sender:
                sender.sendmail(
                    "a@example.org", [inbox["address"]], f"Subject: n{number}\r\n\r\nx\r\n".encode()
                )
        messages = (event for event in events if event.event == "message" and event.data)
        pushed = [next(messages) for _ in range(20)]
        assert [json.loads(event.data)["subject"] for event in pushed] == [
            f"n{number}" for number in range(20)
        ]
    headers = auth(inbox)
    listed = httpx.get(f"{b.http}/api/inboxes/{inbox['address']}/messages", headers=headers)
    assert len(listed.json()["messages"]) == 20
    raw = httpx.get(
        f"{b.http}/api/inboxes/{inbox['address']}/messages/{pushed[0].id}/raw", headers=headers
    )
    assert b"Subject: n0" in raw.content


def test_listen_notify_through_a_transaction_pooler_is_refused_at_start() -> None:
    with pytest.raises(SettingsError, match="BURNBOX_HUB"):
        load(
            environ={
                "BURNBOX_STORE": "postgresql://postgres@127.0.0.1:6432/db",
                "BURNBOX_STORE_POOLER": "transaction",
                "BURNBOX_HUB": "postgres",
            },
            env_file=None,
        )
