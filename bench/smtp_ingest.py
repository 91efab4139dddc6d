"""SMTP ingest throughput and memory: burnbox vs aiosmtpd+uvloop vs Postfix smtp-sink.

Drives each server with Postfix's smtp-source over loopback, in the same run,
interleaving the servers so the machine's noise hits them alike. Prints the
median msgs/s of several runs, the ratios, peak RSS, and checks that burnbox
stored exactly what was sent.

    .venv/bin/python bench/smtp_ingest.py            # full table, 3 runs each
    .venv/bin/python bench/smtp_ingest.py --runs 5 --only 2k
"""

from __future__ import annotations

import argparse
import subprocess
import time
from dataclasses import dataclass

from harness import STARTERS, median, rss_kib, start_aiosmtpd, start_burnbox


@dataclass(frozen=True)
class Scenario:
    name: str
    size: int
    sessions: int
    messages: int
    reuse: bool  # many messages per connection (smtp-source -d)


SCENARIOS = [
    Scenario("2k-s1-many", 2000, 1, 5000, True),
    Scenario("2k-s20-many", 2000, 20, 20000, True),
    Scenario("2k-s200-many", 2000, 200, 20000, True),
    Scenario("2k-s1-one", 2000, 1, 3000, False),
    Scenario("2k-s20-one", 2000, 20, 10000, False),
    Scenario("2k-s200-one", 2000, 200, 10000, False),
    Scenario("100k-s1-many", 100_000, 1, 500, True),
    Scenario("100k-s20-many", 100_000, 20, 2000, True),
    Scenario("100k-s200-many", 100_000, 200, 2000, True),
    Scenario("100k-s20-one", 100_000, 20, 1000, False),
]


def drive(port: int, scenario: Scenario, *, spread: bool = False) -> float:
    """Send the scenario's mail; returns msgs/s."""
    command = [
        "smtp-source",
        "-s",
        str(scenario.sessions),
        "-m",
        str(scenario.messages),
        "-l",
        str(scenario.size),
        "-f",
        "bench@example.org",
        "-t",
        "bench@localhost",
        "-C",
        "5",
        f"127.0.0.1:{port}",
    ]
    if scenario.reuse:
        command.insert(1, "-d")
    if spread:  # every message to an inbox of its own (smtp-source -N)
        command.insert(1, "-N")
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return scenario.messages / (time.perf_counter() - started)


def run_scenario(
    scenario: Scenario, runs: int, servers: list[str], *, spread: bool = False
) -> dict[str, object]:
    rates: dict[str, list[float]] = {name: [] for name in servers}
    peak: dict[str, int] = {}
    exact = True
    for _ in range(runs):
        for name in servers:
            server = STARTERS[name]()
            try:
                rates[name].append(drive(server.port, scenario, spread=spread))
                peak[name] = max(peak.get(name, 0), rss_kib(server.process.pid, "VmHWM"))
                stored = server.stored()
            finally:
                reported = server.stop()
            if name.startswith("burnbox"):
                exact &= stored == scenario.messages
            if name == "aiosmtpd":
                exact &= reported == scenario.messages
    return {
        "rates": {name: median(values) for name, values in rates.items()},
        "peak": peak,
        "exact": exact,
    }


def memory_scenario(count: int, size: int) -> dict[str, float]:
    """RSS after keeping `count` messages of `size` bytes, burnbox vs aiosmtpd."""
    scenario = Scenario("mem", size, 20, count, True)
    result: dict[str, float] = {}
    for name, starter in (("burnbox", start_burnbox), ("aiosmtpd", start_aiosmtpd)):
        server = starter()
        try:
            before = rss_kib(server.process.pid)
            drive(server.port, scenario)
            after = rss_kib(server.process.pid)
            result[f"{name}_before_mib"] = before / 1024
            result[f"{name}_after_mib"] = after / 1024
        finally:
            server.stop()
    raw_mib = count * (size + 300) / 2**20  # payload plus smtp-source's headers
    result["raw_mib"] = raw_mib
    result["ratio_to_aiosmtpd"] = result["burnbox_after_mib"] / result["aiosmtpd_after_mib"]
    growth = result["burnbox_after_mib"] - result["burnbox_before_mib"]
    result["growth_per_raw"] = growth / raw_mib
    return result


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="run scenarios whose name contains this")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument(
        "--sqlite", action="store_true", help="also measure burnbox on its SQLite store"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also measure burnbox on PostgreSQL ($BURNBOX_BENCH_POSTGRES)",
    )
    parser.add_argument(
        "--spread",
        action="store_true",
        help="every message to its own inbox, as a public service sees mail",
    )
    parser.add_argument(
        "--workers",
        action="store_true",
        help="with --postgres: also burnbox --workers 2 on PostgreSQL",
    )
    return parser.parse_args()


def report(name: str, result: dict[str, object], durable: list[str]) -> None:
    """One scenario's row, and a row for each durable store measured with it."""
    rates = result["rates"]
    assert isinstance(rates, dict)
    peak = result["peak"]
    assert isinstance(peak, dict)
    print(
        f"{name:16} {rates['burnbox']:9.0f} {rates['aiosmtpd']:9.0f} "
        f"{rates['smtp-sink']:9.0f} {rates['burnbox'] / rates['aiosmtpd']:10.2f} "
        f"{100 * rates['burnbox'] / rates['smtp-sink']:6.0f}% "
        f"{peak['burnbox'] / 1024:8.0f} {result['exact']!s:>5}",
        flush=True,
    )
    for store in durable:
        print(
            f"{'  ' + store.removeprefix('burnbox-'):16} {rates[store]:9.0f} {'':9} {'':9} "
            f"{rates[store] / rates['aiosmtpd']:10.2f} "
            f"{100 * rates[store] / rates['smtp-sink']:6.0f}% "
            f"{peak[store] / 1024:8.0f} {result['exact']!s:>5}",
            flush=True,
        )


def main() -> None:
    arguments = options()
    durable = [
        *(["burnbox-sqlite"] if arguments.sqlite else []),
        *(["burnbox-postgresql"] if arguments.postgres else []),
        *(["burnbox-postgresql-2w"] if arguments.postgres and arguments.workers else []),
    ]
    servers = ["burnbox", *durable, "aiosmtpd", "smtp-sink"]
    print(f"median of {arguments.runs} runs; msgs/s")
    print(
        f"{'scenario':16} {'burnbox':>9} {'aiosmtpd':>9} {'smtp-sink':>9} {'x aiosmtpd':>10} "
        f"{'% sink':>7} {'peak MiB':>8} {'exact':>5}"
    )
    for scenario in SCENARIOS:
        if arguments.only in scenario.name:
            result = run_scenario(scenario, arguments.runs, servers, spread=arguments.spread)
            report(scenario.name, result, durable)
    if not arguments.no_memory:
        for count, size in ((10_000, 2000), (1_000, 100_000)):
            memory = memory_scenario(count, size)
            print(
                f"memory {count} x {size} B: "
                + ", ".join(f"{key}={value:.2f}" for key, value in memory.items()),
                flush=True,
            )


if __name__ == "__main__":
    main()
