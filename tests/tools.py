"""External tools the tests drive: required in CI, skipped (with the reason) elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def require(tool: str) -> str:
    """The tool's path (a daemon's in /usr/sbin too, which a user's PATH may leave out)."""
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed; .ci/run must install it")
        pytest.skip(f"{tool} is not installed (.ci/run installs it)")
    return path


def shared(path: Path, what: str) -> Path:
    """A file that ships beside this repository in ../shared (the conformance suites):
    missing, the test fails under CI and is skipped elsewhere, saying what it is."""
    if not path.exists():
        message = f"no {what} at {path} (shared/ ships beside the repository)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def npm_install(harness: Path, target: Path) -> Path:
    """A copy of a harness folder (package.json and its lock file) at `target`, with its
    packages installed from the npm registry as the lock file pins them."""
    npm = require("npm")
    shutil.copytree(harness, target)
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=target,
        check=True,
        timeout=300,
        capture_output=True,
    )
    return target


def self_signed(folder: Path, days: int) -> tuple[str, str]:
    """A self-signed certificate for mx.test and 127.0.0.1, valid `days` days, made with
    openssl in `folder`: (certificate file, key file)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            require("openssl"),
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            str(days),
            "-subj",
            "/CN=mx.test",
            "-addext",
            "subjectAltName=DNS:mx.test,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)
