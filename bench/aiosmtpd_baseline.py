"""The baseline: aiosmtpd on uvloop, keeping each message's bytes in a list.

Run by bench/smtp_ingest.py; prints `stored N` when it gets SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import uvloop
from aiosmtpd.smtp import SMTP, Envelope, Session


class KeepInList:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(envelope.content)
        return "250 OK"


async def main(port: int) -> None:
    handler = KeepInList()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, data_size_limit=64 * 1024 * 1024), "127.0.0.1", port, backlog=4096
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    print(f"stored {len(handler.messages)}", flush=True)


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
