"""The client commands as subprocesses against a running burnbox."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import Running, send


def burnbox(
    server: Running, *args: str, token: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    extra = [f"--token={token}"] if token else []
    return subprocess.run(
        [sys.executable, "-m", "burnbox", *args, "--url", server.http, *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_new_show_ls_get_rm(server: Running) -> None:
    created = burnbox(server, "inbox", "new", "--local-part", "cli-user")
    assert created.returncode == 0, created.stderr
    inbox = json.loads(created.stdout)
    assert inbox["address"] == "cli-user@localhost"
    token = inbox["token"]
    send(server, inbox["address"], b"Subject: via cli\r\n\r\nYour code is 902113\r\n")
    shown = json.loads(burnbox(server, "inbox", "show", inbox["address"], token=token).stdout)
    assert shown["messages"] == 1
    [summary] = json.loads(burnbox(server, "inbox", "ls", inbox["address"], token=token).stdout)
    assert summary["subject"] == "via cli"
    view = json.loads(
        burnbox(server, "msg", "get", inbox["address"], summary["id"], token=token).stdout
    )
    assert view["codes"] == ["902113"]
    raw = burnbox(server, "msg", "get", inbox["address"], summary["id"], "--raw", token=token)
    assert raw.stdout.startswith("Received: from ")
    assert burnbox(server, "inbox", "rm", inbox["address"], token=token).returncode == 0
    gone = burnbox(server, "inbox", "show", inbox["address"], token=token)
    assert gone.returncode == 2
    assert json.loads(gone.stderr)["error"]["code"] == "not_found"


def test_wait_blocks_until_mail_then_moves_on(server: Running) -> None:
    inbox = json.loads(burnbox(server, "inbox", "new").stdout)
    waiting = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "burnbox",
            "wait",
            inbox["address"],
            "--token",
            inbox["token"],
            "--timeout",
            "30",
            "--url",
            server.http,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    send(server, inbox["address"], b"Subject: Verify\r\n\r\nYour verification code: 4417\r\n")
    out, _ = waiting.communicate(timeout=40)
    assert waiting.returncode == 0
    result = json.loads(out)
    assert result["subject"] == "Verify"
    assert result["codes"] == ["4417"]
    # It was marked seen: the next wait has nothing new and times out with exit code 1.
    again = burnbox(server, "wait", inbox["address"], "--timeout", "0.5", token=inbox["token"])
    assert again.returncode == 1
    assert json.loads(again.stderr)["error"]["code"] == "timeout"


def test_wrong_token_and_unreachable_server(server: Running) -> None:
    inbox = json.loads(burnbox(server, "inbox", "new").stdout)
    wrong = burnbox(server, "inbox", "ls", inbox["address"], token="nope")
    assert wrong.returncode == 2
    unreachable = subprocess.run(
        [sys.executable, "-m", "burnbox", "inbox", "new", "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert unreachable.returncode == 2
    assert json.loads(unreachable.stderr)["error"]["code"] == "unreachable"
