"""A real PgBouncer (Debian's `pgbouncer`) in transaction pooling mode, in front of the
tests' PostgreSQL database, on a port of its own; stopped afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.process import free_port, until_said
from tests.tools import require

SERVER_CONNECTIONS = 4  # per database and user: fewer than the clients, so they share


def _config(folder: Path, port: int, target: str) -> Path:
    parts = urlsplit(target)
    config = folder / "pgbouncer.ini"
    (folder / "users.txt").write_text(f'"{parts.username or "postgres"}" ""\n')
    config.write_text(
        "[databases]\n"
        f"* = host={parts.hostname} port={parts.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        "pool_mode = transaction\nmax_client_conn = 500\n"
        f"default_pool_size = {SERVER_CONNECTIONS}\n"
        "ignore_startup_parameters = extra_float_digits\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
    )
    return config


@pytest.fixture(scope="session")
def pgbouncer_url(postgres_url: str) -> Iterator[str]:
    """The tests' database, through PgBouncer."""
    binary = require("pgbouncer")
    folder = Path(tempfile.mkdtemp(prefix="burnbox-pgbouncer-"))
    folder.chmod(0o777)  # it runs as postgres when we are root (it refuses to run as root)
    port = free_port()
    config = _config(folder, port, postgres_url)
    user = "postgres" if os.geteuid() == 0 else None
    process = subprocess.Popen([binary, str(config)], user=user, stderr=subprocess.PIPE)
    until_said(process, b"listening on", "pgbouncer")
    name = urlsplit(postgres_url).path
    yield f"postgresql://postgres@127.0.0.1:{port}{name}"
    process.send_signal(signal.SIGINT)
    process.wait(timeout=10)
    if process.stderr:
        process.stderr.close()
    shutil.rmtree(folder, ignore_errors=True)
