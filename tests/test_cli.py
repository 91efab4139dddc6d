"""`burnbox serve` as a real subprocess: banner, configuration errors, SIGTERM."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import Conversation


def serve(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "burnbox",
            "serve",
            "--smtp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def read_banner(process: subprocess.Popen[str]) -> tuple[str, int, int]:
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(5)]
    banner = "".join(lines)
    smtp = re.search(r"SMTP\s+127\.0\.0\.1:(\d+)", banner)
    http = re.search(r"HTTP\s+http://127\.0\.0\.1:(\d+)/", banner)
    assert smtp, banner
    assert http, banner
    return banner, int(smtp.group(1)), int(http.group(1))


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, int, int]]:
    process = serve("--domains", "example.test,localhost", "--log-level", "debug", cwd=tmp_path)
    banner, smtp_port, http_port = read_banner(process)
    yield process, banner, smtp_port, http_port
    if process.poll() is None:
        process.kill()
        process.communicate()


def test_banner_says_where_and_what(running: tuple[subprocess.Popen[str], str, int, int]) -> None:
    _, banner, smtp_port, http_port = running
    assert banner.startswith("burnbox ")
    assert "domains  example.test, localhost" in banner
    assert "store    memory:// (RAM only" in banner
    assert httpx.get(f"http://127.0.0.1:{http_port}/healthz").status_code == 200
    assert smtp_port != http_port


def test_sigterm_stops_gracefully_and_logs_nothing_private(
    running: tuple[subprocess.Popen[str], str, int, int],
) -> None:
    process, _, smtp_port, _ = running
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
        client.sendmail(
            "hidden.sender@example.org",
            ["hidden.rcpt@example.test"],
            b"Subject: Hidden Subject\r\n\r\nhidden body\r\n",
        )
        with contextlib.suppress(smtplib.SMTPRecipientsRefused):
            client.sendmail("a@example.org", ["x@elsewhere.test"], b"x")
    idle = Conversation(smtp_port)
    try:
        process.send_signal(signal.SIGTERM)
        assert idle.reply().startswith("421 4.3.2")
    finally:
        idle.close()
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0
    for private in ("hidden", "Hidden", "elsewhere", "127.0.0.1", "example.org"):
        assert private not in stderr, stderr


def test_bad_setting_exits_2_naming_the_key() -> None:
    process = serve(env={"BURNBOX_MAX_MESSAGE_SIZE": "huge"})
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 2
    assert "BURNBOX_MAX_MESSAGE_SIZE: 'huge' is not valid" in stderr


def test_port_in_use_is_a_clear_error() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "burnbox",
                "serve",
                "--smtp-listen",
                f"127.0.0.1:{port}",
                "--http-listen",
                "127.0.0.1:0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 1
    assert "burnbox: cannot start:" in stderr
    assert "Traceback" not in stderr
