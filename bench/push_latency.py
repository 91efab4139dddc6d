"""Push latency: from the 250 reply to DATA until an SSE client has the event.

    .venv/bin/python bench/push_latency.py [--probes 300]

Runs idle, then under a paced background SMTP load of 500 msgs/s (a separate
process, other inboxes). Prints p50 and p99 in milliseconds. Targets (issue 3):
p99 under 10 ms idle, under 50 ms loaded.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import socket
import statistics
import threading
import time
from typing import Any

import httpx

from harness import start_burnbox

STORED = re.compile(rb"250 2\.0\.0 OK: stored as (\w+)")


def smtp_session(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.recv(1000)
    sock.sendall(b"EHLO bench\r\n")
    sock.recv(1000)
    return sock


def transaction(to: str, body: bytes) -> bytes:
    return (
        b"MAIL FROM:<bench@example.org>\r\nRCPT TO:<"
        + to.encode()
        + b">\r\nDATA\r\n"
        + body
        + b"\r\n.\r\n"
    )


def read_replies(sock: socket.socket, count: int) -> bytes:
    data = b""
    while data.count(b"\r\n") < count:
        data += sock.recv(4096)
    return data


def background_load(port: int, rate: float, sent: Any, seconds: float) -> None:
    """Send `rate` msgs/s (pipelined, one write per message) for `seconds`; counts in `sent`."""
    sock = smtp_session(port)
    message = transaction("load@localhost", b"Subject: load\r\n\r\n" + b"x" * 2000)
    interval = 1.0 / rate
    next_send = time.perf_counter()
    end = next_send + seconds
    while next_send < end:
        sock.sendall(message)
        read_replies(sock, 4)
        sent.value += 1
        next_send += interval
        pause = next_send - time.perf_counter()
        if pause > 0:
            time.sleep(pause)  # pacing is what this process is for
    sock.close()


def measure(port: int, http_port: int, probes: int) -> list[float]:
    base = f"http://127.0.0.1:{http_port}"
    inbox = httpx.post(base + "/api/inboxes").json()
    arrived: dict[str, float] = {}
    ready = threading.Event()

    def listen() -> None:
        headers = {"Authorization": f"Bearer {inbox['token']}"}
        with httpx.stream(
            "GET", f"{base}/api/inboxes/{inbox['address']}/events", headers=headers, timeout=60
        ) as response:
            for line in response.iter_lines():
                if line.startswith("retry:"):
                    ready.set()
                elif line.startswith("data: {"):
                    arrived[json.loads(line[6:])["id"]] = time.perf_counter()
                    if len(arrived) == probes:
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    ready.wait(10)
    sock = smtp_session(port)
    replied: dict[str, float] = {}
    for number in range(probes):
        sock.sendall(transaction(inbox["address"], f"Subject: probe {number}\r\n\r\nx".encode()))
        replies = read_replies(sock, 4)
        replied[STORED.search(replies).group(1).decode()] = time.perf_counter()  # type: ignore[union-attr]
        time.sleep(0.01)  # spacing between probes, so each is measured on its own
    listener.join(30)
    sock.close()
    return [(arrived[key] - replied[key]) * 1000 for key in replied if key in arrived]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--rate", type=float, default=500.0)
    arguments = parser.parse_args()
    server = start_burnbox(inbox_create_rate="1000/s")
    try:
        idle = measure(server.port, server.http_port, arguments.probes)
        sent = multiprocessing.Value("q", 0)
        load = multiprocessing.Process(
            target=background_load,
            args=(server.port, arguments.rate, sent, arguments.probes * 0.02 + 10),
        )
        load.start()
        time.sleep(1.0)  # let the load reach its pace before measuring under it
        before, started = sent.value, time.perf_counter()
        loaded = measure(server.port, server.http_port, arguments.probes)
        achieved = (sent.value - before) / (time.perf_counter() - started)
        load.terminate()
        load.join()
    finally:
        server.stop()
    print(f"background load achieved {achieved:.0f} msgs/s while measuring")
    for name, values in (("idle", idle), (f"{arguments.rate:.0f} msgs/s load", loaded)):
        print(
            f"{name:18} n={len(values)} p50 {statistics.median(values):.2f} ms  "
            f"p99 {percentile(values, 0.99):.2f} ms  max {max(values):.2f} ms"
        )


if __name__ == "__main__":
    main()
