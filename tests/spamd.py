"""A real SpamAssassin spamd (Debian's `spamd`) on a loopback port of its own, with the
rules Debian ships and no network tests (`--local`: nothing here may ask the internet);
stopped after the session."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from burnbox.settings_values import Endpoint
from tests.process import free_port, until_said
from tests.tools import require


@pytest.fixture(scope="session")
def spamd() -> Iterator[Endpoint]:
    binary = require("spamd")
    folder = Path(tempfile.mkdtemp(prefix="burnbox-spamd-"))
    port = free_port()
    command = [binary, f"--listen=127.0.0.1:{port}", "--max-children=2", "--local"]
    command += ["--nouser-config", "--syslog=stderr", f"--pidfile={folder / 'spamd.pid'}"]
    if os.geteuid() == 0:
        command.append("--username=nobody")  # it will not run its children as root
    process = subprocess.Popen(command, stderr=subprocess.PIPE, cwd=folder)
    until_said(process, b"server started on", "spamd")
    yield Endpoint("127.0.0.1", port)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    if process.stderr:
        process.stderr.close()
    shutil.rmtree(folder, ignore_errors=True)
