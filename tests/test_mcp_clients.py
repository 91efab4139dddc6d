"""Outside MCP clients, unchanged, against burnbox: the TypeScript SDK's own client (npm
@modelcontextprotocol/sdk) over stdio and streamable HTTP, and the MCP Inspector's CLI.
Each step runs in a process of its own, as one-shot clients do: an inbox made in one is
read in the next, by its handle alone. The stdio server's stderr is checked: it holds no
address, message id, handle or token."""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Running
from tests.tools import npm_install, require

HARNESS = Path(__file__).resolve().parent / "conformance" / "mcp"
BURNBOX = str(Path(sys.executable).parent / "burnbox")
INSPECTOR = Path("node_modules", "@modelcontextprotocol", "inspector", "clients", "launcher")


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return npm_install(HARNESS, tmp_path_factory.mktemp("mcp") / "harness")


def node(harness: Path, *arguments: str) -> str:
    result = subprocess.run(
        [require("node"), *arguments],
        cwd=harness,
        env={**os.environ, "BURNBOX_BIN": BURNBOX},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def send_code(server: Running, address: str) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.sendmail(
            "no-reply@acme.test",
            [address],
            b"Subject: Verify\r\n\r\nYour verification code is 482913.\r\n",
        )


def sdk_step(harness: Path, kind: str, target: str, step: str, argument: str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(node(harness, "flow.mjs", kind, target, step, argument))
    assert answer["isError"] is False, answer
    return answer


@pytest.mark.parametrize("kind", ["stdio", "http"])
def test_the_typescript_sdk_client_creates_then_waits_in_another_process(
    server: Running, harness: Path, kind: str
) -> None:
    target = server.http if kind == "stdio" else server.http + "/mcp"
    made = sdk_step(harness, kind, target, "create", f"ts-{kind}")
    handle, address = made["result"]["inbox"], made["result"]["address"]
    assert address == f"ts-{kind}@localhost"
    send_code(server, address)
    waited = sdk_step(harness, kind, target, "wait", handle)
    code = waited["result"]
    assert code["code"] == "482913"
    for step in (made, waited):  # the stdio server's stderr: quiet, and nothing private
        for private in (address, handle, code["message_id"], "bbx_", "inbox_", "HTTP Request"):
            assert private not in step["stderr"], step["stderr"]
    if kind == "stdio":
        assert made["stderr"] == waited["stderr"] == ""


def inspector(harness: Path, *target: str, tool: str, **arguments: str) -> dict[str, Any]:
    pairs = [f"{name}={value}" for name, value in arguments.items()]
    output = node(
        harness,
        str(INSPECTOR / "build" / "index.js"),
        "--cli",
        *target,
        "--method",
        "tools/call",
        "--tool-name",
        tool,
        "--tool-arg",
        *pairs,
    )
    answer: dict[str, Any] = json.loads(output)
    assert answer["isError"] is False, answer
    return dict(answer["structuredContent"])


@pytest.mark.parametrize("kind", ["http", "stdio"])
def test_the_inspector_cli_creates_in_one_invocation_and_waits_in_the_next(
    server: Running, harness: Path, kind: str
) -> None:
    target = [server.http + "/mcp"] if kind == "http" else [BURNBOX, "mcp", "--url", server.http]
    made = inspector(harness, *target, tool="create_inbox", local_part=f"inspector-{kind}")
    send_code(server, made["address"])
    code = inspector(harness, *target, tool="wait_for_code", inbox=made["inbox"], timeout_s="30")
    assert code["code"] == "482913"
    listed = inspector(harness, *target, tool="list_messages", inbox=made["inbox"])
    assert [item["subject"] for item in listed["messages"]] == ["Verify"]
