"""Where the CPU goes during PostgreSQL ingest: burnbox, PostgreSQL, smtp-source.

Starts burnbox on PostgreSQL (1 or more workers), sends 2 KB mail with smtp-source, and
prints msgs/s with the cores each part used (CPU seconds over wall seconds, from /proc and
the load generator's rusage) and how much of the time some runnable task waited for a core
(Linux pressure stall information). Shows whether a run is bound by CPU or by commit latency.

    .venv/bin/python bench/cpu_split.py --workers 1
    .venv/bin/python bench/cpu_split.py --workers 2 --sessions 200 --spread
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import time
from collections.abc import Callable

from harness import start_burnbox_postgres

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(matches: Callable[[str], bool]) -> float:
    """User plus system CPU of every live process whose command line matches."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                command = file.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        if matches(command):
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def cpu_pressure() -> float:
    """Seconds in which some runnable task waited for a CPU (Linux PSI, /proc/pressure/cpu)."""
    with open("/proc/pressure/cpu") as file:
        some = file.readline().split()
    return int(some[-1].removeprefix("total=")) / 1e6


def is_burnbox(command: str) -> bool:
    return "burnbox serve" in command


def is_postgres(command: str) -> bool:
    return command.startswith("postgres")


def send(port: int, arguments: argparse.Namespace) -> float:
    """smtp-source's whole run against burnbox; its wall time in seconds."""
    command = [
        "smtp-source", "-d", "-s", str(arguments.sessions), "-m", str(arguments.messages),
        "-l", "2000", "-f", "bench@example.org", "-t", "bench@localhost", "-C", "5",
        f"127.0.0.1:{port}",
    ]  # fmt: skip
    if arguments.spread:
        command.insert(1, "-N")
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, timeout=600, text=True)
    if finished.returncode:
        raise SystemExit(f"smtp-source failed: {finished.stdout[-2000:]} {finished.stderr[-2000:]}")
    return time.perf_counter() - started


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--spread", action="store_true", help="every message to its own inbox")
    arguments = parser.parse_args()
    server = start_burnbox_postgres(workers=arguments.workers)
    try:
        before = cpu_seconds(is_burnbox), cpu_seconds(is_postgres)
        pressure, children = cpu_pressure(), children_cpu()
        wall = send(server.port, arguments)
        waiting = cpu_pressure() - pressure
        source = children_cpu() - children
        used = cpu_seconds(is_burnbox) - before[0], cpu_seconds(is_postgres) - before[1]
        print(
            f"workers={arguments.workers} sessions={arguments.sessions} "
            f"spread={arguments.spread}: {arguments.messages / wall:.0f} msgs/s; cores used: "
            f"burnbox {used[0] / wall:.2f}, postgres {used[1] / wall:.2f}, "
            f"smtp-source {source / wall:.2f}; some task waited for a CPU "
            f"{100 * waiting / wall:.0f}% of the time"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
