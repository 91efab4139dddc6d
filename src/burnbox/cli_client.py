"""`burnbox inbox|wait|msg`: automation against a running server, JSON on stdout."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

import httpx

from burnbox.client import ApiError, Client
from burnbox.settings import client_defaults

DEFAULT_URL = "http://127.0.0.1:8025"


def add_commands(commands: Any) -> None:
    """Register the client subcommands on the top-level subparsers."""
    _add_inbox_commands(commands)
    wait = _with_connection(
        commands.add_parser(
            "wait", help="wait for the oldest unseen message; print it with its codes and links"
        )
    )
    wait.add_argument("address")
    wait.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    wait.add_argument(
        "--keep-unseen",
        action="store_true",
        help="do not mark the message seen (by default the next wait moves on)",
    )
    mcp = _with_connection(
        commands.add_parser(
            "mcp", help="serve the MCP tools on stdio, over a running server (for AI agents)"
        ),
        token=False,
    )
    mcp.add_argument(
        "--log-level",
        default="warning",
        choices=("debug", "info", "warning", "error"),
        help="what this process writes to stderr (default: warnings and errors only)",
    )
    _add_message_commands(commands)


def _add_inbox_commands(commands: Any) -> None:
    inbox = commands.add_parser("inbox", help="create and manage inboxes on a running server")
    inbox_commands = inbox.add_subparsers(dest="action", required=True)
    new = _with_connection(inbox_commands.add_parser("new", help="create an inbox"), token=False)
    new.add_argument("--local-part", help="a chosen name (random if absent)")
    new.add_argument("--domain", help="one of the server's domains")
    for action, text in (
        ("show", "an inbox's state"),
        ("ls", "list its messages"),
        ("extend", "extend its life"),
        ("rm", "burn it and its mail now"),
    ):
        parser = _with_connection(inbox_commands.add_parser(action, help=text))
        parser.add_argument("address")
        if action == "ls":
            parser.add_argument("--limit", type=int, default=50)


def _add_message_commands(commands: Any) -> None:
    message = commands.add_parser("msg", help="read messages")
    message_commands = message.add_subparsers(dest="action", required=True)
    get = _with_connection(message_commands.add_parser("get", help="one message as JSON"))
    get.add_argument("address")
    get.add_argument("id")
    get.add_argument("--raw", action="store_true", help="the message as received, on stdout")


def _with_connection(
    parser: argparse.ArgumentParser, *, token: bool = True
) -> argparse.ArgumentParser:
    url, presented = client_defaults(DEFAULT_URL)
    parser.add_argument(
        "--url", default=url, help=f"the server (default $BURNBOX_URL or {DEFAULT_URL})"
    )
    if token:
        parser.add_argument(
            "--token", default=presented, help="the inbox's token (default $BURNBOX_TOKEN)"
        )
    return parser


def run(arguments: argparse.Namespace) -> int:
    client = Client(arguments.url, getattr(arguments, "token", None))
    try:
        return _COMMANDS[(arguments.command, getattr(arguments, "action", None))](client, arguments)
    except ApiError as error:
        print(json.dumps(error.body), file=sys.stderr)
        return 2
    except (OSError, httpx.TransportError) as error:
        print(
            json.dumps({"error": {"code": "unreachable", "message": str(error)}}), file=sys.stderr
        )
        return 2
    finally:
        client.close()


def _print(value: Any) -> int:
    print(json.dumps(value, indent=2, ensure_ascii=False))
    return 0


def _wait(client: Client, arguments: argparse.Namespace) -> int:
    summary = client.wait_unseen(arguments.address, arguments.timeout)
    if summary is None:
        print(
            json.dumps({"error": {"code": "timeout", "message": "No new message."}}),
            file=sys.stderr,
        )
        return 1
    view = client.message(arguments.address, summary["id"])
    if not arguments.keep_unseen:
        client.mark_seen(arguments.address, summary["id"])
    return _print({**summary, "codes": view["codes"], "links": view["links"]})


def _get(client: Client, arguments: argparse.Namespace) -> int:
    if arguments.raw:
        sys.stdout.buffer.write(client.raw(arguments.address, arguments.id))
        return 0
    return _print(client.message(arguments.address, arguments.id))


def _burn(client: Client, arguments: argparse.Namespace) -> int:
    client.burn(arguments.address)
    return 0


_COMMANDS: dict[tuple[str, str | None], Callable[[Client, argparse.Namespace], int]] = {
    ("inbox", "new"): lambda c, a: _print(c.create_inbox(a.local_part, a.domain)),
    ("inbox", "show"): lambda c, a: _print(c.inbox(a.address)),
    ("inbox", "ls"): lambda c, a: _print(c.messages(a.address, a.limit)),
    ("inbox", "extend"): lambda c, a: _print(c.extend(a.address)),
    ("inbox", "rm"): _burn,
    ("wait", None): _wait,
    ("msg", "get"): _get,
}
