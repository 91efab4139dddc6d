"""Faults, each on resources of the test's own: a private PostgreSQL cluster, a full disk."""

from __future__ import annotations

import asyncio
import base64
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.helpers import STORED, Cluster, Conversation, metric, serve
from tests.postgres import postgres_url, reset
from tests.process import Node, free_port, start_node

__all__ = ["postgres_url"]  # a fixture, used through request.getfixturevalue


def retry_until_stored(conversation: Conversation, stored: list[str]) -> list[str]:
    """A sender's retries (no sleep: each is a transaction) until one is stored, whose id
    goes in `stored`; the reply codes, in order."""
    answers = []
    for attempt in range(2, 60):
        reply = deliver(conversation, attempt)
        answers.append(reply[:3])
        if reply.startswith("250"):
            stored.append(STORED.search(reply.encode()).group(1).decode())  # type: ignore[union-attr]
            break
    return answers


async def client_backends(url: str) -> list[tuple[int, str]]:
    """The database's other client sessions: (pid, application name)."""
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT pid, application_name FROM pg_stat_activity WHERE backend_type = "
            "'client backend' AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    return [(row[0], row[1]) for row in rows]


async def until_refusing(url: str) -> None:
    """Until PostgreSQL refuses new sessions as it shuts down (each try answers at once)."""
    while True:
        try:
            connection = await asyncpg.connect(url)
        except asyncpg.CannotConnectNowError:
            return
        await connection.close()


def said_first(node: Node, markers: tuple[str, ...]) -> str:
    """The first of `markers` the node writes to stderr (read line by line as it comes)."""
    assert node.process.stderr is not None
    for line in iter(node.process.stderr.readline, ""):
        for marker in markers:
            if marker in line:
                return marker
    return "the node's stderr ended"


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    private = Cluster()
    private.start()
    yield private
    private.remove()


def deliver(conversation: Conversation, number: int, body: str = "x") -> str:
    """One transaction; the whole final reply."""
    assert conversation.command("MAIL FROM:<a@example.org>").startswith("250")
    assert conversation.command("RCPT TO:<outage@localhost>").startswith("250")
    assert conversation.command("DATA").startswith("354")
    return conversation.command(f"Subject: {number}\r\n\r\n{body}\r\n.")


def test_postgres_outage_answers_451_then_recovers(cluster: Cluster) -> None:
    smtp_port, http_port = free_port(), free_port()
    node = serve(cluster.url, smtp_port, http_port)
    ready = f"http://127.0.0.1:{http_port}/readyz"
    stored: list[str] = []
    conversation = Conversation(smtp_port)
    try:
        conversation.command("EHLO outage")
        first = deliver(conversation, 0)
        assert first.startswith("250")
        stored.append(STORED.search(first.encode()).group(1).decode())  # type: ignore[union-attr]

        cluster.stop()
        during = deliver(conversation, 1)
        assert during == "451 4.3.0 Local error in processing; try again later"
        assert httpx.get(ready).status_code == 503
        assert node.poll() is None  # burnbox stays up
        # Metrics still answer, with the last totals the store gave.
        scraped = httpx.get(f"http://127.0.0.1:{http_port}/metrics")
        assert scraped.status_code == 200
        assert metric(scraped.text, "burnbox_messages_stored") == 1
        assert metric(scraped.text, 'burnbox_messages_refused_total{reason="store_error"}') == 1

        cluster.start()
        answers = retry_until_stored(conversation, stored)
        assert answers[-1] == "250", answers
        assert set(answers[:-1]) <= {"451"}  # never a 5yz on our fault
        assert httpx.get(ready).status_code == 200
        listed = httpx.get(
            f"http://127.0.0.1:{http_port}/api/inboxes/outage@localhost/messages"
        ).json()["messages"]
        assert sorted(m["id"] for m in listed) == sorted(stored)  # every 250 is there
    finally:
        conversation.close()
        node.terminate()
        node.communicate(timeout=30)


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A real, tiny filesystem (tmpfs of 1 MiB) that fills up."""
    mount_point = Path(tempfile.mkdtemp(prefix="burnbox-full-"))
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs for the disk-full test: {result.stderr}")
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)
    shutil.rmtree(mount_point, ignore_errors=True)


def fill_then_free(store: str, disk: Path, body: str, *, room: str) -> None:
    """Deliver until the disk is full (452 4.3.1, never a 5yz, burnbox stays up), give the
    disk `room`, and see the next message stored: every 250 is there, nothing else."""
    smtp_port, http_port = free_port(), free_port()
    node = serve(store, smtp_port, http_port)
    conversation = Conversation(smtp_port)
    stored: list[str] = []
    try:
        conversation.command("EHLO full")
        replies = []
        for number in range(200):  # more than can fit
            reply = deliver(conversation, number, body)
            replies.append(reply[:9])
            if not reply.startswith("250"):
                break
            stored.append(STORED.search(reply.encode()).group(1).decode())  # type: ignore[union-attr]
        assert replies[-1] == "452 4.3.1", replies
        assert set(replies[:-1]) == {"250 2.0.0"}
        assert node.poll() is None

        subprocess.run(["mount", "-o", f"remount,size={room}", str(disk)], check=True)
        after = deliver(conversation, 999, body)
        assert after.startswith("250"), after
        stored.append(STORED.search(after.encode()).group(1).decode())  # type: ignore[union-attr]
        listed = httpx.get(
            f"http://127.0.0.1:{http_port}/api/inboxes/outage@localhost/messages?limit=100"
        ).json()["messages"]
        assert sorted(m["id"] for m in listed) == sorted(stored)
    finally:
        conversation.close()
        node.terminate()
        _, log = node.communicate(timeout=30)
    # The operator hears of it in the log too (counts and the reason, no address).
    assert "the store is full: answered 452 (recipients: 1)" in log
    assert "outage@localhost" not in log


def test_disk_full_answers_452_then_recovers(small_disk: Path) -> None:
    fill_then_free(f"sqlite://{small_disk / 'burnbox.db'}", small_disk, "x" * 40_000, room="16m")


async def _admin(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def test_postgres_disk_full_answers_452_then_recovers(cluster: Cluster, small_disk: Path) -> None:
    """The database lives in a tablespace on the tiny filesystem. The cluster's WAL does not:
    a full WAL disk stops PostgreSQL altogether, which is the outage test's 451."""
    subprocess.run(["mount", "-o", "remount,size=12m", str(small_disk)], check=True)
    account = pwd.getpwnam("postgres")
    os.chown(small_disk, account.pw_uid, account.pw_gid)
    asyncio.run(
        _admin(
            cluster.url,
            f"CREATE TABLESPACE small LOCATION '{small_disk}'",
            "CREATE DATABASE burnbox TABLESPACE small",
        )
    )
    # Incompressible, so TOAST cannot shrink it: 100 KB of base64 of random bytes.
    body = "\r\n".join(base64.b64encode(os.urandom(57)).decode() for _ in range(1300))
    fill_then_free(cluster.url.rsplit("/", 1)[0] + "/burnbox", small_disk, body, room="64m")


def test_a_store_stalled_past_the_delivery_timeout_stores_each_message_once(
    request: pytest.FixtureRequest,
) -> None:
    """A real stall: another session holds the messages table locked. Message A's batch is
    already committing (blocked in PostgreSQL), so it cannot be withdrawn: its sender waits
    for the outcome. Message B is still queued behind it when the delivery timeout comes: it
    is withdrawn and its sender told 451, which is true. Then the lock goes: A is answered
    250, B's retry is stored, and each is stored once (before, A was told 451 and committed
    anyway, so a real sender's retry stored it twice)."""
    url = str(request.getfixturevalue("postgres_url"))
    asyncio.run(reset(url))
    node = start_node("--store", url, "--smtp-delivery-timeout", "0.5", "--smtp-idle-timeout", "30")
    locking = "BEGIN; LOCK TABLE messages IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT;"
    lock_holder = subprocess.Popen(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-c", locking],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first, second = Conversation(node.smtp), Conversation(node.smtp)
    try:
        for conversation in (first, second):
            conversation.command("EHLO stall")
        wait_for_lock(url)
        assert begin_data(first) == "354"
        first.send(b"Subject: A\r\n\r\nx\r\n.\r\n")
        wait_for_blocked_insert(url)  # A's batch is committing, stuck behind the lock
        assert deliver(second, 2) == "451 4.3.0 Local error in processing; try again later"
        release(url)
        lock_holder.wait()
        assert first.reply().startswith("250 2.0.0 OK: stored as ")
        assert deliver(second, 2).startswith("250")  # B, as its sender retries it
        assert stored_subjects(url) == ["2", "A"]
    finally:
        first.close()
        second.close()
        lock_holder.kill()
        lock_holder.communicate()
        node.stop()


def begin_data(conversation: Conversation) -> str:
    assert conversation.command("MAIL FROM:<a@example.org>").startswith("250")
    assert conversation.command("RCPT TO:<outage@localhost>").startswith("250")
    return conversation.command("DATA")[:3]


def release(url: str) -> None:
    """End the lock holder's backend (killing psql would leave it sleeping with the lock)."""
    subprocess.run(
        [
            "psql",
            url,
            "-tAc",
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l "
            "JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'messages' "
            "AND l.mode = 'AccessExclusiveLock' AND l.granted",
        ],
        check=True,
        capture_output=True,
    )


def wait_for_blocked_insert(url: str) -> None:
    """Until burnbox's batch waits on the lock (a query, answered at once, repeated)."""
    for _ in range(500):
        waiting = subprocess.run(
            [
                "psql",
                url,
                "-tAc",
                "SELECT count(*) FROM pg_stat_activity WHERE "
                "wait_event_type = 'Lock' AND query LIKE '%burnbox_add%'",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        if waiting.stdout.strip() == "1":
            return
    raise AssertionError("the batch never blocked on the lock")


def stored_subjects(url: str) -> list[str]:
    rows = subprocess.run(
        ["psql", url, "-tAc", "SELECT subject FROM messages ORDER BY subject"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return rows.split()


def wait_for_lock(url: str) -> None:
    """Until the lock is held (a query, answered at once, repeated: no sleep)."""
    for _ in range(500):
        held = subprocess.run(
            [
                "psql",
                url,
                "-tAc",
                "SELECT count(*) FROM pg_locks l JOIN pg_class c "
                "ON c.oid = l.relation WHERE c.relname = 'messages' AND l.mode = "
                "'AccessExclusiveLock' AND l.granted",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        if held.stdout.strip() == "1":
            return
    pytest.fail("the lock was never taken")


def test_a_database_shutting_down_pauses_the_node_and_never_stops_it(cluster: Cluster) -> None:
    """While PostgreSQL shuts down it refuses new sessions with "the database system is
    shutting down" (CannotConnectNowError) until its last one ends. The node's sessions
    are ended meanwhile, as a shutdown ends them: every loop that reconnects meets that
    refusal and must wait it out. The webhook dispatcher once took it for a defect and the
    node stopped (421 to every sender) instead of answering 451 until the database came
    back."""
    node = start_node("--store", cluster.url, "--access", "public")
    conversation = Conversation(node.smtp)
    holder = subprocess.Popen(["psql", cluster.url], stdin=subprocess.PIPE)  # one idle session
    stopping: subprocess.Popen[bytes] | None = None
    try:
        conversation.command("EHLO shutdown")
        assert deliver(conversation, 0).startswith("250")
        while "psql" not in {name for _, name in asyncio.run(client_backends(cluster.url))}:
            pass  # until the holding session is in
        nodes = [pid for pid, name in asyncio.run(client_backends(cluster.url)) if name != "psql"]
        stopping = cluster.begin_smart_stop()
        asyncio.run(until_refusing(cluster.url))
        for pid in nodes:
            os.kill(pid, signal.SIGTERM)  # what the shutdown does to a session it ends
        stopped = "stopping this node"
        assert said_first(node, ("webhook dispatch paused", stopped)) != stopped
        assert node.process.poll() is None
        assert deliver(conversation, 1) == "451 4.3.0 Local error in processing; try again later"
        holder.communicate(timeout=30)  # its session ends: the shutdown finishes
        assert stopping.wait(timeout=60) == 0
        cluster.start()
        stored: list[str] = []
        assert retry_until_stored(conversation, stored)[-1] == "250"
    finally:
        conversation.close()
        holder.kill()
        holder.communicate()
        if stopping is not None:
            stopping.wait(timeout=60)  # it ends with the holding session
        node.stop()
