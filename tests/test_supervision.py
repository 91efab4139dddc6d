"""A part that stops is never silent: each fault in a real `burnbox serve` process ends in
one clear log line and a non-zero exit, never a hang and never a node that looks healthy.

The faults are real: a broken package shadowing `websockets`, uvicorn's own main loop
failing (through Python's standard `sitecustomize` hook, which patches uvicorn and nothing
of burnbox), a database row burnbox cannot read, a parse worker killed with SIGKILL, a
worker process killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import smtplib
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.helpers import Running
from tests.postgres import postgres_url
from tests.process import free_port, start_node

__all__ = ["postgres_url"]

EXIT_DEADLINE = 15.0  # seconds a failed node may take to exit ("within a few seconds")


def serve_command(*flags: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "burnbox",
        "serve",
        "--env-file",
        "/dev/null",
        "--smtp-listen",
        f"127.0.0.1:{free_port()}",
        "--http-listen",
        f"127.0.0.1:{free_port()}",
        *flags,
    ]


def with_path(folder: Path) -> dict[str, str]:
    """The environment, with `folder` first on the module path."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }


def run_to_exit(command: list[str], env: dict[str, str]) -> tuple[int, str, str, float]:
    """(exit status, stdout, stderr, seconds it took)."""
    started = time.monotonic()
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=EXIT_DEADLINE + 30
    )
    return result.returncode, result.stdout, result.stderr, time.monotonic() - started


def test_a_web_stack_that_cannot_load_stops_the_start_with_a_clear_line(tmp_path: Path) -> None:
    shadow = tmp_path / "websockets"
    shadow.mkdir()
    (shadow / "__init__.py").write_text('raise RuntimeError("a broken websockets install")\n')
    status, out, err, took = run_to_exit(serve_command(), with_path(tmp_path))
    assert status == 1
    assert "ready" not in out
    assert (
        "burnbox: cannot start: http failed to start (RuntimeError at websockets/__init__.py" in err
    ), err
    assert "a broken websockets install" not in err.replace("RuntimeError: a broken", "")
    assert took < EXIT_DEADLINE


UVICORN_FAULT = """
# Fault injection for tests/test_supervision.py: uvicorn's main loop fails at its first tick
# after the server has answered two requests (burnbox's own check that it answers, then the
# test's); the loop itself, and its pace, are uvicorn's.
import uvicorn

_on_tick = uvicorn.Server.on_tick


async def on_tick(self, counter):
    if self.server_state.total_requests >= 2:
        raise RuntimeError("injected")
    return await _on_tick(self, counter)


uvicorn.Server.on_tick = on_tick
"""


def test_the_http_server_failing_stops_the_node(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(UVICORN_FAULT)
    node = start_node(env=with_path(tmp_path))
    assert httpx.get(node.http + "/healthz").status_code == 200  # the second request
    status, err = wait_exit(node.process)
    assert status == 1
    assert "http stopped unexpectedly (RuntimeError at" in err, err
    with pytest.raises(ConnectionRefusedError):  # it stopped taking mail too
        smtplib.SMTP("127.0.0.1", node.smtp, timeout=5)


def wait_exit(process: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = process.communicate(timeout=EXIT_DEADLINE)
    return process.returncode, err


def corrupt(database: Path) -> None:
    """A row the store cannot account for: its size is text. The reaper meets it at once."""
    with sqlite3.connect(database, timeout=30) as connection:
        connection.execute(
            "INSERT INTO messages (address, id, received_at, expires_at, size, sender, "
            "recipients, subject, snippet, attachments, date, message_id, seen, stored) "
            "VALUES ('x@localhost', '0', 0, 0, 1, '', '', '', '', 0, '', '', 0, 'not a number')"
        )


def test_a_reaper_that_fails_stops_the_node(tmp_path: Path) -> None:
    database = tmp_path / "mail.db"
    node = start_node("--store", f"sqlite://{database}", "--reap-interval", "100ms")
    corrupt(database)
    status, err = wait_exit(node.process)
    assert status == 1
    assert "reaper stopped unexpectedly (TypeError at" in err, err
    assert "x@localhost" not in err


def test_a_failed_part_turns_readiness_false(
    start_burnbox: Callable[..., Running], tmp_path: Path
) -> None:
    """In process, where the node does not exit: /readyz says which part is down."""
    database = tmp_path / "mail.db"
    server = start_burnbox(store=f"sqlite://{database}", reap_interval=0.1)
    assert httpx.get(server.http + "/readyz").status_code == 200
    corrupt(database)
    failure = server.call(server.app.supervisor.failed())
    assert failure.part == "reaper"
    ready = httpx.get(server.http + "/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["reaper"] is False


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def spawned(pid: int) -> set[int]:
    """The processes multiprocessing started for it (spawn)."""
    return {child for child in children(pid) if "spawn_main" in command_line(child)}


def test_a_killed_parse_worker_is_replaced_and_nothing_is_lost() -> None:
    node = start_node("--ingest-parse-inline-max", "1k")
    mail = EmailMessage()
    mail["Subject"] = "multipart, so its summary needs the full parser"
    mail.set_content("see the attachment\n")
    mail.add_attachment(b"x" * 4000, maintype="application", subtype="octet-stream")
    large = mail.as_bytes()
    try:
        checks = spawned(node.process.pid)  # the sender checks' process, started with the node
        with smtplib.SMTP("127.0.0.1", node.smtp, timeout=10) as client:
            client.sendmail("a@example.org", ["big@localhost"], large)  # starts the worker
            [worker] = spawned(node.process.pid) - checks
            os.kill(worker, signal.SIGKILL)
            client.sendmail("a@example.org", ["big@localhost"], large)
        ready = httpx.get(node.http + "/readyz")
        assert ready.status_code == 200
        listed = httpx.get(node.http + "/metrics").text
        assert "burnbox_messages_stored 2.0" in listed
        assert 'burnbox_helper_restarts_total{helper="parse"} 1.0' in listed
    finally:
        status, err = node.stop()
    assert status == 0
    assert "the parse worker process died" in err


def test_a_killed_worker_process_stops_the_whole_node(postgres_url: str) -> None:
    node = start_node("--store", postgres_url, "--workers", "2")
    workers = children(node.process.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    status, err = wait_exit(node.process)
    assert status != 0
    assert "a worker stopped unexpectedly (exit status 137)" in err, err
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
