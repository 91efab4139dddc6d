"""A real `burnbox serve` process for the tests that need one (restarts, kill -9, nodes)."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def until_said(process: subprocess.Popen[bytes], marker: bytes, name: str) -> None:
    """Read a helper's stderr until it says `marker` (then keep its pipe drained); fail
    with what it said if it stops first."""
    assert process.stderr is not None
    said = []
    for line in iter(process.stderr.readline, b""):
        said.append(line)
        if marker in line:
            drain = threading.Thread(target=lambda: process.stderr and process.stderr.read())
            drain.daemon = True
            drain.start()
            return
    pytest.fail(f"{name} did not start: {b''.join(said).decode(errors='replace')[-2000:]}")


_GIVEN: set[int] = set()
_EPHEMERAL_LOW = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
_PORTS = random.Random()


def free_port() -> int:
    """A port nothing listens on, never one this process gave out before, and below the
    kernel's ephemeral range: a port the kernel picks for bind(0) may be picked again
    (a node was given one port for SMTP and HTTP and could not bind), and may be taken
    by a client's outgoing connection before the server binds it."""
    while True:
        port = _PORTS.randrange(max(1024, _EPHEMERAL_LOW - 12000), _EPHEMERAL_LOW)
        if port in _GIVEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:  # in use
                continue
        _GIVEN.add(port)
        return port


@dataclass
class Node:
    process: subprocess.Popen[str]
    smtp: int
    http_port: int
    banner: str

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        """Signal it, wait for it; (exit code, what it wrote to stderr). Stopping a node
        that has already stopped (and been waited for) is a no-op."""
        if self.process.returncode is not None:
            return self.process.returncode, ""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        _, stderr = self.process.communicate(timeout=30)
        return self.process.wait(), stderr


def start_node(
    *flags: str,
    smtp: int | None = None,
    http: int | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    banner_lines: int = 1,
    serve: Sequence[str] = (sys.executable, "-m", "burnbox", "serve"),
) -> Node:
    """Start `burnbox serve` with `flags` (no .env); returns once its banner is printed,
    which it prints when both listeners answer. `serve` is the command that runs it (an
    installed copy's `burnbox serve`, or `scripts/serve`)."""
    smtp = smtp or free_port()
    http = http or free_port()
    listen = ["--smtp-listen", f"127.0.0.1:{smtp}", "--http-listen", f"127.0.0.1:{http}"]
    process = subprocess.Popen(
        [*serve, "--env-file", "/dev/null", *listen, *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
    )
    assert process.stdout is not None
    try:
        banner = "".join(process.stdout.readline() for _ in range(banner_lines))
    except BaseException:  # the test's time ran out first: leave nothing running or open
        process.kill()
        process.communicate(timeout=30)
        raise
    if not banner.startswith("burnbox "):
        process.kill()
        _, stderr = process.communicate(timeout=30)
        raise AssertionError(f"burnbox did not start: {stderr}")
    return Node(process, smtp, http, banner)


@contextmanager
def nodes_running(count: int, *flags: str, **options: Any) -> Iterator[list[Node]]:
    """`count` nodes started in turn with the same flags and options, every one stopped
    on the way out, also when a later one fails to start (else the first runs on,
    orphaned)."""
    started: list[Node] = []
    try:
        for _ in range(count):
            started.append(start_node(*flags, **options))
        yield started
    finally:
        for node in started:
            node.stop()
