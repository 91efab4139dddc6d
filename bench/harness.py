"""Shared benchmark plumbing: start a server as a subprocess, measure, stop it."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
sys.path.insert(0, str(ROOT))  # the tests' free_port: never the same port twice
from tests.process import free_port as free_port  # noqa: E402

STORED = re.compile(rb"^250 2\.0\.0 OK: stored as ([0-9A-Z]+)")
BODY = b"x" * 76 + b"\r\n"


def message(size: int) -> bytes:
    """A message of about `size` bytes."""
    head = b"From: load@example.org\r\nSubject: scale\r\n\r\n"
    return head + BODY * max(1, (size - len(head)) // len(BODY))


async def smtp_session(
    port: int, recipients: list[str], raw: bytes, stored: list[tuple[str, str]], refused: list[int]
) -> None:
    """One session sending `raw` to each recipient in turn (MAIL, RCPT and BDAT LAST in one
    write); (recipient, id) of each stored, and a count of each refused with 4yz."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(b"EHLO load.test\r\n")
    while (await reader.readline())[3:4] == b"-":
        pass
    chunk = b"BDAT %d LAST\r\n" % len(raw) + raw
    for recipient in recipients:
        writer.write(
            b"MAIL FROM:<load@example.org>\r\nRCPT TO:<" + recipient.encode() + b">\r\n" + chunk
        )
        answers = [await reader.readline() for _ in range(3)]
        found = STORED.match(answers[2])
        if found:
            stored.append((recipient, found.group(1).decode()))
        elif answers[2][:1] == b"4" or answers[1][:1] == b"4":
            refused.append(1)
        else:
            raise RuntimeError(f"unexpected answer: {answers!r}")
    writer.write(b"QUIT\r\n")
    await reader.readline()
    writer.close()


async def send_all(port: int, recipients: list[str], raw: bytes, sessions: int = 20) -> int:
    """`raw` to each recipient over `sessions` concurrent sessions, dealt out in turn; how
    many were stored (each refusal with 4yz is counted out)."""
    plans: list[list[str]] = [recipients[start::sessions] for start in range(sessions)]
    stored: list[tuple[str, str]] = []
    refused: list[int] = []
    await asyncio.gather(*(smtp_session(port, plan, raw, stored, refused) for plan in plans))
    return len(stored)


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.recv(64)
                return
        except OSError:
            time.sleep(0.05)  # polling a port that is not yet bound: nothing to wait on
    raise TimeoutError(f"port {port} did not open")


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Server:
    name: str
    process: subprocess.Popen[str]
    port: int
    http_port: int = 0

    def stored(self) -> int | None:
        if self.name.startswith("burnbox-postgresql"):
            return stored_in_postgres()
        if self.name.startswith("burnbox"):
            url = f"http://127.0.0.1:{self.http_port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                text = response.read().decode()
            match = re.search(r"^burnbox_messages_stored (\S+)", text, re.MULTILINE)
            return int(float(match.group(1))) if match else None
        return None

    def stop(self) -> int | None:
        """Stop; for aiosmtpd returns the count it reports."""
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        match = re.search(r"stored (\d+)", out or "")
        return int(match.group(1)) if match else None


def burnbox_env(port: int, http_port: int, **settings: str) -> dict[str, str]:
    """The environment a benchmarked burnbox runs with: loopback listeners, limits out of
    the way, and `settings` as BURNBOX_* variables."""
    return {
        **os.environ,
        "BURNBOX_SMTP_LISTEN": f"127.0.0.1:{port}",
        "BURNBOX_HTTP_LISTEN": f"127.0.0.1:{http_port}",
        "BURNBOX_LOG_LEVEL": "warning",
        "BURNBOX_MAX_CONNECTIONS": "20000",
        "BURNBOX_MAX_CONNECTIONS_PER_IP": "20000",
        "BURNBOX_INBOX_MAX_MESSAGES": "1000000",
        "BURNBOX_STORE_MAX_BYTES": "8GiB",
        **{f"BURNBOX_{key.upper()}": value for key, value in settings.items()},
    }


def start_burnbox(**settings: str) -> Server:
    port, http_port = free_port(), free_port()
    env = burnbox_env(port, http_port, **settings)
    process = subprocess.Popen(
        [PYTHON, "-m", "burnbox", "serve", "--env-file", "/dev/null"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    wait_for_port(port)
    return Server(
        "burnbox-" + settings["store"].split(":")[0] if "store" in settings else "burnbox",
        process,
        port,
        http_port,
    )


def start_aiosmtpd() -> Server:
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, str(ROOT / "bench" / "aiosmtpd_baseline.py"), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    wait_for_port(port)
    return Server("aiosmtpd", process, port)


def start_smtp_sink() -> Server:
    port = free_port()
    process = subprocess.Popen(
        ["smtp-sink", "-u", "nobody", f"127.0.0.1:{port}", "1024"],
        stdout=subprocess.PIPE,
        text=True,
    )
    wait_for_port(port)
    return Server("smtp-sink", process, port)


def start_burnbox_sqlite() -> Server:
    folder = tempfile.mkdtemp(prefix="burnbox-bench-")
    return start_burnbox(store=f"sqlite://{folder}/bench.db")


POSTGRES = os.environ.get("BURNBOX_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


BENCH_DATABASE = "burnbox_bench"


def start_burnbox_postgres(workers: int = 1) -> Server:
    """A fresh database per run (dropped when the next run starts)."""
    for sql in (
        f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)",
        f"CREATE DATABASE {BENCH_DATABASE}",
    ):
        subprocess.run(
            ["psql", f"{POSTGRES}/postgres", "-qc", sql], check=True, capture_output=True
        )
    server = start_burnbox(store=f"{POSTGRES}/{BENCH_DATABASE}", workers=str(workers))
    server.name = "burnbox-postgresql" + (f"-{workers}w" if workers > 1 else "")
    return server


def stored_in_postgres() -> int:
    """The shared count, straight from the database (each worker's metrics see one worker)."""
    result = subprocess.run(
        ["psql", f"{POSTGRES}/{BENCH_DATABASE}", "-tAc", "SELECT messages FROM usage"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(result.stdout.strip())


STARTERS = {
    "burnbox": start_burnbox,
    "burnbox-sqlite": start_burnbox_sqlite,
    "burnbox-postgresql": start_burnbox_postgres,
    "burnbox-postgresql-2w": lambda: start_burnbox_postgres(workers=2),
    "aiosmtpd": start_aiosmtpd,
    "smtp-sink": start_smtp_sink,
}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
