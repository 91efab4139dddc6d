"""`burnbox doctor` against real listeners (no DNS here: MX lookups fail, and say so)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import Running
from tests.process import free_port
from tests.tools import self_signed


@pytest.fixture(scope="module")
def lasting_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return self_signed(tmp_path_factory.mktemp("tls60"), days=60)


def doctor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "burnbox", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


def test_a_healthy_server(
    start_burnbox: Callable[..., Running], lasting_certificate: tuple[str, str], tmp_path: Path
) -> None:
    cert, key = lasting_certificate
    server = start_burnbox(tls_cert=cert, tls_key=key)
    (tmp_path / ".env").write_text("BURNBOX_DOMAINS=localhost\n")
    result = doctor(
        "localhost", "--smtp", f"127.0.0.1:{server.smtp_port}", "--ca-file", cert, cwd=tmp_path
    )
    assert "ok       localhost is in BURNBOX_DOMAINS" in result.stdout
    assert f"ok       SMTP at 127.0.0.1:{server.smtp_port} answers (EHLO 250)" in result.stdout
    assert "ok       the TLS certificate of 127.0.0.1" in result.stdout
    assert "expires in 59 days" in result.stdout
    assert result.stdout.endswith("no problems found\n")
    assert result.returncode == 0


def test_a_certificate_about_to_expire(
    start_burnbox: Callable[..., Running], certificate: tuple[str, str], tmp_path: Path
) -> None:
    cert, key = certificate  # lives two days
    server = start_burnbox(tls_cert=cert, tls_key=key)
    result = doctor(
        "localhost", "--smtp", f"127.0.0.1:{server.smtp_port}", "--ca-file", cert, cwd=tmp_path
    )
    assert "expires in 1 days: renew it soon" in result.stdout
    assert result.returncode == 1


def test_problems_are_named_in_plain_words(server: Running, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BURNBOX_DOMAINS=example.org\n")
    closed = free_port()
    result = doctor(
        "localhost",
        "--smtp",
        f"127.0.0.1:{server.smtp_port}",
        "--smtp",
        f"127.0.0.1:{closed}",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "PROBLEM  localhost is not in BURNBOX_DOMAINS (example.org)" in result.stdout
    assert "offers no STARTTLS: mail to it travels in clear text" in result.stdout
    assert f"PROBLEM  SMTP at 127.0.0.1:{closed} does not answer from here" in result.stdout


def test_untrusted_certificate_and_missing_mx(
    start_burnbox: Callable[..., Running], certificate: tuple[str, str], tmp_path: Path
) -> None:
    cert, key = certificate
    server = start_burnbox(tls_cert=cert, tls_key=key)
    untrusted = doctor("localhost", "--smtp", f"127.0.0.1:{server.smtp_port}", cwd=tmp_path)
    assert "PROBLEM  the TLS certificate of 127.0.0.1" in untrusted.stdout
    assert "not valid" in untrusted.stdout
    no_dns = doctor("nonexistent.invalid", cwd=tmp_path)
    assert no_dns.returncode == 1
    assert "PROBLEM  looking up the MX records of nonexistent.invalid failed" in no_dns.stdout
