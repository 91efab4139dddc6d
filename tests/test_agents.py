"""The MCP server, driven by the MCP SDK's own client over both transports: streamable HTTP
at /mcp (in process) and stdio (`burnbox mcp --url`, a client of a running burnbox)."""

from __future__ import annotations

import base64
import dataclasses
import json
import smtplib
import sys
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from burnbox import handles
from burnbox.agents.shapes import UNTRUSTED, html_as_text
from burnbox.model import Inbox
from tests.helpers import Running, real_now
from tests.postgres import postgres_url, reset

__all__ = ["postgres_url"]

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def send(server: Running, to: str, subject: str, text: str, html: str | None = None) -> None:
    message = EmailMessage()
    message["From"] = "Acme <no-reply@acme.test>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    message.add_attachment(b"%PDF-1", "application", "pdf", filename="terms.pdf")
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.send_message(message)


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def error_of(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    return str(getattr(result.content[0], "text", ""))


async def check_the_verify_message(client: Client, inbox: str, message_id: str) -> None:
    """The verification mail read whole: its code, link, HTML as text, attachment, sender."""
    full = await call(client, "get_message", inbox=inbox, message_id=message_id)
    assert full["codes"] == ["482913"]
    assert full["links"] == ["https://acme.test/verify?t=abc"]
    assert "Confirm my account" in full["html_as_text"]
    attachment = {"filename": "terms.pdf", "content_type": "application/pdf", "size": 6}
    assert full["attachments"] == [attachment]
    assert full["from"] == "Acme <no-reply@acme.test>"
    assert full["untrusted"] == UNTRUSTED


async def the_flow(client: Client, server: Running) -> None:
    names = {tool.name for tool in (await client.list_tools()).tools}
    assert names == {
        "create_inbox", "open_inbox", "wait_for_message", "wait_for_code", "wait_for_link",
        "get_message", "list_messages", "burn_inbox",
    }  # fmt: skip
    made = await call(client, "create_inbox", local_part="agent")
    assert set(made) == {"inbox", "address", "expires_at"}  # no token in what an agent sees
    assert made["address"] == "agent@localhost"
    inbox = made["inbox"]
    send(server, made["address"], "Welcome", "Thanks for joining.")
    send(
        server,
        made["address"],
        "Verify your account",
        "Your verification code is 482913.",
        "<p>Your verification code is <b>482913</b>. "
        "<a href='https://acme.test/verify?t=abc'>Confirm my account</a></p>",
    )
    code = await call(client, "wait_for_code", inbox=inbox, timeout_s=30)
    assert code["code"] == "482913"
    assert code["subject"] == "Verify your account"
    assert code["untrusted"] == UNTRUSTED
    link = await call(client, "wait_for_link", inbox=inbox, timeout_s=0)
    assert link == {"timed_out": True}  # each message is handed out once: none left
    await check_the_verify_message(client, inbox, code["message_id"])
    listed = await call(client, "list_messages", inbox=inbox)
    assert [item["subject"] for item in listed["messages"]] == ["Verify your account", "Welcome"]
    send(server, made["address"], "Reset", "Reset here: https://acme.test/reset?k=9")
    reset = await call(client, "wait_for_link", inbox=inbox, timeout_s=30)
    assert reset["link"] == "https://acme.test/reset?k=9"
    nothing = await call(client, "wait_for_message", inbox=inbox, timeout_s=0)
    assert nothing == {"timed_out": True}
    assert "Unknown inbox handle" in await error_of(client, "list_messages", inbox="inbox_x")
    assert await call(client, "burn_inbox", inbox=inbox) == {
        "burned": True,
        "address": "agent@localhost",
    }
    assert "Unknown inbox handle" in await error_of(client, "wait_for_code", inbox=inbox)


async def test_the_tools_over_streamable_http(server: Running) -> None:
    async with Client(server.http + "/mcp") as client:
        await the_flow(client, server)


async def test_the_tools_over_stdio(server: Running) -> None:
    command = StdioServerParameters(
        command=sys.executable, args=["-m", "burnbox", "mcp", "--url", server.http]
    )
    async with Client(command) as client:
        await the_flow(client, server)


async def test_an_ended_inbox_and_an_inbox_opened_with_its_token(
    start_burnbox: Callable[..., Running],
) -> None:
    server = start_burnbox()
    async with Client(server.http + "/mcp") as client, httpx.AsyncClient() as http:
        made = (await http.post(server.http + "/api/inboxes", json={"local_part": "mine"})).json()
        opened = await call(client, "open_inbox", address=made["address"], token=made["token"])
        assert opened["address"] == "mine@localhost"
        assert made["token"] not in json.dumps(opened)
        wrong = await error_of(client, "open_inbox", address=made["address"], token="bbx_wrong")
        assert "No such inbox" in wrong
        await http.delete(
            server.http + "/api/inboxes/mine@localhost",
            headers={"Authorization": f"Bearer {made['token']}"},
        )
        ended = await error_of(client, "wait_for_message", inbox=opened["inbox"], timeout_s=0)
        assert "ended" in ended


async def test_a_handle_works_in_any_later_session_and_on_another_node(
    start_burnbox: Callable[..., Running], postgres_url: str
) -> None:
    """One-shot clients (a new session, or a new process, per call) and load balancers
    without sticky sessions: the handle is a capability the store's key opens anywhere."""
    await reset(postgres_url)
    first, second = (start_burnbox(store=postgres_url) for _ in range(2))
    async with Client(first.http + "/mcp") as client:
        made = await call(client, "create_inbox", local_part="oneshot")
    send(first, made["address"], "Verify", "Your verification code is 482913.")
    async with Client(second.http + "/mcp") as client:  # another session, another node
        code = await call(client, "wait_for_code", inbox=made["inbox"], timeout_s=30)
        assert code["code"] == "482913"
        nothing = await call(client, "wait_for_code", inbox=made["inbox"], timeout_s=0)
        assert nothing == {"timed_out": True}  # handed out once, across sessions and nodes
    command = StdioServerParameters(
        command=sys.executable, args=["-m", "burnbox", "mcp", "--url", first.http]
    )
    async with Client(command) as client:  # a new process
        listed = await call(client, "list_messages", inbox=made["inbox"])
        assert [item["subject"] for item in listed["messages"]] == ["Verify"]
        await call(client, "burn_inbox", inbox=made["inbox"])
    async with Client(second.http + "/mcp") as client:
        assert "Unknown inbox handle" in await error_of(
            client, "list_messages", inbox=made["inbox"]
        )


def test_a_handle_reveals_nothing_and_cannot_be_forged(server: Running) -> None:
    made = httpx.post(server.http + "/api/inboxes", json={"local_part": "sealed"}).json()
    auth = {"Authorization": f"Bearer {made['token']}"}
    url = server.http + "/api/inboxes/sealed@localhost"
    handle = httpx.post(url + "/handle", headers=auth).json()["handle"]
    other = httpx.post(url + "/handle", headers=auth).json()["handle"]
    assert handle != other  # a fresh nonce each time
    text = handle.removeprefix("inbox_")
    decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    for secret in (b"sealed", b"localhost", made["token"].encode()):
        assert secret not in decoded
        assert secret.decode() not in handle
    opened = {"Authorization": f"Bearer {handle}"}
    assert httpx.get(server.http + "/api/handle", headers=opened).json()["address"] == (
        "sealed@localhost"
    )
    assert httpx.get(url + "/messages", headers=opened).status_code == 200  # as the token
    for forged in (handle[:-2] + ("AA" if handle[-2:] != "AA" else "BB"), "inbox_" + "A" * 80):
        bad = {"Authorization": f"Bearer {forged}"}
        assert httpx.get(server.http + "/api/handle", headers=bad).status_code == 404
        assert httpx.get(url + "/messages", headers=bad).status_code == 404
    assert httpx.delete(url, headers=auth).status_code == 204
    assert httpx.get(server.http + "/api/handle", headers=opened).status_code == 404
    again = httpx.post(server.http + "/api/inboxes", json={"local_part": "sealed"}).json()
    assert again["address"] == "sealed@localhost"  # the address made again: a new inbox
    assert httpx.get(url + "/messages", headers=opened).status_code == 404


def test_handles_seal_and_open_with_their_key_only() -> None:
    key, created = handles.new_key(), real_now()
    inbox = Inbox("a@localhost", b"token hash", created, created + timedelta(hours=1))
    handle = handles.seal(key, inbox)
    assert handles.opens(handles.unseal(key, handle), inbox)
    # The same address made again, in the same millisecond: another lifetime.
    again = dataclasses.replace(inbox, token_hash=b"another token hash")
    assert not handles.opens(handles.unseal(key, handle), again)
    for wrong_key, text in (
        (handles.new_key(), handle),
        (key, handle + "A"),
        (key, "inbox_"),
        (key, "bbx_token"),
        (key, "inbox_" + "é" * 10),
        (key, "inbox_" + "A" * 2000),
    ):
        with pytest.raises(handles.BadHandle):
            handles.unseal(wrong_key, text)


def test_sanitised_html_reads_as_text() -> None:
    html = "<style>p{color:red}</style><h1>Hi</h1><p>Your <b>code</b>:   1234</p><br>Bye"
    assert html_as_text(html) == "Hi\nYour code: 1234\nBye"
