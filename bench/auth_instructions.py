"""What the sender checks cost in instructions, not seconds: a figure the machine's noise
cannot move.

auth_ingest.py measures throughput, which on a shared machine of two cores swings by half
from one run to the next (other tenants' load, steal time, wake-ups of idle cores). Here
burnbox runs under valgrind's callgrind, which counts the instructions each process
executes whatever else the machine does: the server's, and with the checks on also its
check process's (valgrind follows the spawned child). After a warm-up (the resolver's
cache filled, as in a steady run) the counters are zeroed, `--messages` DKIM-signed 2 KB
messages are sent with smtp-source, and the counts are dumped. Prints instructions per
message by process, with the checks off and on; and the ratio of the server's own,
the bound on a loaded node whose server process is its bottleneck.

User-space instructions only: the kernel's work (the socket writes) and what the cores
lose to switching between three busy processes are not in it; auth_ingest.py shows those.
And OpenSSL picks its code by the CPU's features, some of which valgrind's CPU lacks
(AVX-512, SHA): about half the check process's count is an RSA verify and SHA-256 that
run otherwise natively. Compare that count only with itself, the server's with anything.

    .venv/bin/python bench/auth_instructions.py [--messages 2000]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from auth_ingest import SENDER, signed_message, zone
from harness import PYTHON, ROOT, burnbox_env, free_port, wait_for_port

sys.path.insert(0, str(ROOT))  # the tests' DNS server
from tests.dns import DnsServer

WARM_UP = 200  # messages before counting: keys, records and SPF results kept
STARTUP = 600.0  # seconds burnbox may take to start under valgrind (about 50x slower)


def send(port: int, message: Path, count: int) -> None:
    command = [
        "smtp-source", "-d", "-s", "5", "-m", str(count), "-F", str(message),
        "-f", SENDER, "-t", "bench@localhost", f"127.0.0.1:{port}",
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=3600)


def callgrind(action: str) -> None:
    """To every process under callgrind: the server and the check process it spawned."""
    subprocess.run(["callgrind_control", action], check=True, capture_output=True)


def instructions(folder: Path) -> dict[str, int]:
    """Instructions in each process's last dump (after the zeroing), by role."""
    found: dict[str, int] = {}
    for dump in sorted(folder.glob("cg.*.*")):  # cg.PID.N: the dumps after the first
        text = dump.read_text(errors="replace")
        command = re.search(r"^cmd: (.*)$", text, re.MULTILINE)
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
        if command is None or total is None or "resource_tracker" in command.group(1):
            continue
        role = "checks" if "spawn_main" in command.group(1) else "server"
        found[role] = int(total.group(1))
    return found


def ways(http_port: int) -> dict[str, float]:
    """How the node's messages were checked so far (/metrics): with the answers kept,
    in the background, late (the check process did not answer in time, so the message
    was checked twice), skipped."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=600) as page:
        text = page.read().decode()
    found = {
        way: float(n) for way, n in re.findall(r'auth_checks_total\{way="(\w+)"\} (\S+)', text)
    }
    late = re.search(r"^burnbox_auth_late_total (\S+)$", text, re.MULTILINE)
    found["late"] = float(late.group(1)) if late else 0.0
    return found


def settled(http_port: int, messages: int) -> dict[str, float]:
    """The ways, once `messages` have been checked: the first messages' checks go to the
    background (nothing is kept yet) and under valgrind end seconds later; counted, they
    would add their DNS queries and a second check to the figures."""
    deadline = time.monotonic() + STARTUP
    while True:
        found = ways(http_port)
        if sum(n for way, n in found.items() if way != "late") >= messages:
            return found
        if time.monotonic() > deadline:
            raise SystemExit(f"only {found} of {messages} messages checked")
        time.sleep(1)  # polling another process's metrics: nothing else tells of it


def one_run(message: Path, count: int, dns: str | None) -> dict[str, float]:
    """Instructions per message, by process; with the checks on, how many messages were
    checked each way while counting."""
    port, http_port = free_port(), free_port()
    checks = {"auth_checks": "on", "dns_server": dns} if dns else {"auth_checks": "off"}
    env = burnbox_env(port, http_port, **checks)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        command = [
            "valgrind", "--tool=callgrind", "--trace-children=yes",
            f"--callgrind-out-file={folder}/cg.%p", PYTHON, "-m", "burnbox", "serve",
            "--env-file", "/dev/null",
        ]  # fmt: skip
        server = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port, timeout=STARTUP)
            send(port, message, WARM_UP)
            before = settled(http_port, WARM_UP if dns else 0)
            callgrind("-z")
            send(port, message, count)
            settled(http_port, WARM_UP + count if dns else 0)
            callgrind("-d")
            counted = instructions(folder)
            after = ways(http_port)
        finally:
            server.terminate()
            server.wait(timeout=600)
    if "server" not in counted or (dns and "checks" not in counted):
        raise SystemExit(f"callgrind dumped {sorted(counted)}: not every process counted")
    checked = {f"way:{way}": after[way] - before.get(way, 0.0) for way in after} if dns else {}
    return {**{role: total / count for role, total in counted.items()}, **checked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    options = parser.parse_args()
    raw, record = signed_message(2048)
    dns = DnsServer(zone(record))
    try:
        with tempfile.TemporaryDirectory() as folder:
            message = Path(folder) / "signed.eml"
            message.write_bytes(raw.replace(b"\r\n", b"\n"))  # smtp-source sends CRLF
            off = one_run(message, options.messages, None)
            on = one_run(message, options.messages, dns.address)
    finally:
        dns.close()
    print(f"{len(raw)} bytes, {options.messages} messages, instructions per message:")
    print(f"  checks off: server {off['server']:,.0f}")
    print(f"  checks on:  server {on['server']:,.0f}, check process {on['checks']:,.0f}")
    print(f"  the server's own, off/on: {off['server'] / on['server']:.2f}")
    print(f"  all of burnbox's, off/on: {off['server'] / (on['server'] + on['checks']):.2f}")
    checked = ", ".join(f"{key[4:]} {value:.0f}" for key, value in on.items() if key[:4] == "way:")
    print(f"  the counted messages' checks, by way: {checked}")


if __name__ == "__main__":
    main()
