"""Ingest with the sender checks on against off: what SPF, DKIM and DMARC cost.

In one run, alternating, burnbox (RAM-only store) takes the same DKIM-signed 2 KB message
from Postfix's smtp-source (`-F`: a message file; 20 sessions, many messages each) with
BURNBOX_AUTH_CHECKS off, then on with its resolver pointed at a DNS server on loopback that
publishes the sender's SPF, DKIM key and DMARC policy (tests/dns.py). Each run first sends
WARM_UP messages, not counted: a node's first seconds (its check process loading, the
sender's records not yet kept, their checks in the background) are not its steady rate,
and their CPU is not a message's. Each "on" run must
show every message checked, and every one passing DKIM (burnbox_auth_results), so that no
figure comes from skipped work. Prints msgs/s of each run, the medians, and their ratio;
and where the CPU went, per message: the server process, its check process
(trust/worker.py), and smtp-source. On a machine of few cores the sum is what matters.

    .venv/bin/python bench/auth_ingest.py [--runs 5] [--messages 20000]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import dkim

from harness import Server, median, start_burnbox

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' DNS server
from tests.dns import DnsServer, Zone
from tests.keys import rsa_key

SESSIONS = 20
WARM_UP = 1000  # messages before the counted ones (not counted)
SENDER = "news@acme.test"


def signed_message(size: int) -> tuple[bytes, str]:
    """A DKIM-signed message of about `size` bytes, and its key's DNS record."""
    private, record = rsa_key()
    line = b"Your weekly digest: the news you asked for, and a code: 482913.\r\n"
    message = (
        b"From: Acme News <news@acme.test>\r\nTo: bench@localhost\r\n"
        b"Subject: Weekly digest\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
        b"Message-ID: <digest@acme.test>\r\n\r\n" + line * (size // len(line))
    )
    signature = dkim.sign(
        message, b"bench", b"acme.test", private, include_headers=[b"from", b"to", b"subject"]
    )
    return bytes(signature) + message, record


def zone(record: str) -> Zone:
    found = Zone(ttl=3600)
    found.add("acme.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    found.add("_dmarc.acme.test", "TXT", "v=DMARC1; p=reject")
    found.add("bench._domainkey.acme.test", "TXT", record)
    return found


def drive(port: int, message: Path, count: int) -> float:
    command = [
        "smtp-source", "-d", "-s", str(SESSIONS), "-m", str(count), "-F", str(message),
        "-f", SENDER, "-t", "bench@localhost", "-C", "5", f"127.0.0.1:{port}",
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=900)
    return count / (time.perf_counter() - started)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def processes(server: Server) -> dict[str, int]:
    """The server's process, and its check process once it has one."""
    found = {"server": server.process.pid}
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    for pid in children.read_text().split():
        if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text():
            found.setdefault("checks", int(pid))
    return found


def metric(server: Server, pattern: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/metrics") as answer:
        text = answer.read().decode()
    return sum(float(found) for found in re.findall(pattern + r" (\S+)", text))


def one_run(message: Path, count: int, dns: str | None) -> tuple[float, dict[str, float]]:
    """msgs/s, and CPU µs per message by process, in a steady run: after WARM_UP messages
    (and, checks on, their checks) the check process has loaded and the resolver's cache
    holds the sender's records, as on a node that has been up for a while."""
    settings = {"auth_checks": "on", "dns_server": dns} if dns else {"auth_checks": "off"}
    server = start_burnbox(**settings)
    try:
        drive(server.port, message, WARM_UP)
        if dns:
            settled(server, WARM_UP)
        before_late = checked_late(server) if dns else (0.0, 0.0)
        pids = processes(server)
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        clients = os.times()
        rate = drive(server.port, message, count)
        after = os.times()
        cpu = {name: (cpu_seconds(pid) - before[name]) / count * 1e6 for name, pid in pids.items()}
        cpu["smtp-source"] = (
            after.children_user + after.children_system
            - clients.children_user - clients.children_system
        ) / count * 1e6  # fmt: skip
        if dns:
            settled(server, WARM_UP + count)
            passed = metric(server, r'burnbox_auth_results_total\{method="dkim",result="pass"\}')
            skipped = metric(server, r'burnbox_auth_checks_total\{way="skipped"\}')
            if passed != WARM_UP + count or skipped:
                raise SystemExit(f"DKIM passed {passed} of {WARM_UP + count}, {skipped} skipped")
            background, late = (
                now - then for now, then in zip(checked_late(server), before_late, strict=True)
            )
            print(f"  counted, checked after the 250: {background:.0f} (of them late: {late:.0f})")
        stored = server.stored()
        if stored != WARM_UP + count:
            raise SystemExit(f"stored {stored} of {WARM_UP + count}")
        return rate, cpu
    finally:
        server.stop()


def settled(server: Server, count: int) -> None:
    """Wait until `count` messages' checks are counted (some ran in the background)."""
    deadline = time.monotonic() + 60
    while metric(server, r"burnbox_auth_checks_total\{[^}]*\}") < count:
        if time.monotonic() > deadline:
            raise SystemExit("not every message was checked")
        time.sleep(0.2)  # polling a metric of another process


def checked_late(server: Server) -> tuple[float, float]:
    """Messages checked after their 250 so far, and of them those that waited PATIENCE."""
    background = metric(server, r'burnbox_auth_checks_total\{way="background"\}')
    return background, metric(server, r"\nburnbox_auth_late_total")  # checked twice: counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=2048)
    options = parser.parse_args()
    raw, record = signed_message(options.size)
    dns = DnsServer(zone(record))
    rates: dict[str, list[float]] = {"off": [], "on": []}
    cpus: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as folder:
        message = Path(folder) / "signed.eml"
        message.write_bytes(raw.replace(b"\r\n", b"\n"))  # smtp-source sends each line CRLF
        try:
            for run in range(options.runs):
                for name in ("off", "on") if run % 2 == 0 else ("on", "off"):
                    checks_dns = dns.address if name == "on" else None
                    rate, cpu = one_run(message, options.messages, checks_dns)
                    rates[name].append(rate)
                    cpus[name].append(cpu)
                    used = ", ".join(f"{key} {value:.0f}" for key, value in cpu.items())
                    print(f"run {run + 1} checks {name:3}: {rate:8.0f} msgs/s (CPU µs/msg: {used})")
        finally:
            dns.close()
    off, on = median(rates["off"]), median(rates["on"])
    print(
        f"{len(raw)} bytes, {options.messages} messages, {SESSIONS} sessions, median of "
        f"{options.runs}: off {off:.0f} msgs/s, on {on:.0f} msgs/s, ratio {on / off:.2f}"
    )
    for name in ("off", "on"):
        keys = cpus[name][0]
        used = ", ".join(f"{key} {median([c.get(key, 0) for c in cpus[name]]):.0f}" for key in keys)
        print(f"median CPU µs per message, checks {name}: {used}")


if __name__ == "__main__":
    main()
