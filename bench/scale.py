"""Multi-core ingest on PostgreSQL: workers, the byte cap, one hot inbox.

Needs only Python 3.11+ (with burnbox installed) and a PostgreSQL server: `--dsn`, or else
`initdb` and `pg_ctl` (on PATH or in /usr/lib/postgresql/*/bin) for a private cluster in a
temporary directory. Its load generator is its own (Python, one process per core it is
given, pipelining MAIL, RCPT and `BDAT … LAST` with the message in one write), so it runs
unchanged on a 2-core laptop and on a 16-core server.

Cores: a quarter (at least one) for the load generator, the rest for burnbox and the
private PostgreSQL (pinned with sched_setaffinity; an external server cannot be pinned).
Scenarios: memory ×1, then PostgreSQL × 1, 2, 4, 8 workers (as many as the server cores
allow, at least 2), below and at the byte cap, mail spread over an inbox per message and
all to one hot inbox. Each row checks that every message answered 250 is a row, or was
evicted (recorded by a trigger the benchmark adds), and counts evictions out of age order.

    .venv/bin/python bench/scale.py                    # every scenario, 20,000 messages each
    .venv/bin/python bench/scale.py --messages 5000 --only hot
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import multiprocessing
import os
import pwd
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from harness import free_port, message, raise_nofile, smtp_session

AUDIT = """
CREATE TABLE IF NOT EXISTS audit_evicted (address text, id text);
CREATE OR REPLACE FUNCTION audit_evicted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit_evicted SELECT address, id FROM gone; RETURN NULL; END $$;
CREATE OR REPLACE TRIGGER audit_evicted AFTER DELETE ON messages
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION audit_evicted();
"""
MAX_BATCH = 256  # storage/batching.py: evictions may race one batch per worker


@dataclass(frozen=True)
class Scenario:
    store: str  # "memory" or "postgresql"
    workers: int
    at_cap: bool
    hot: bool

    @property
    def name(self) -> str:
        return (
            f"{self.store} ×{self.workers} {'at cap' if self.at_cap else 'below cap'}"
            f" {'hot inbox' if self.hot else 'spread'}"
        )


@dataclass
class Outcome:
    seconds: float
    stored: list[tuple[str, str]]  # (address, id) of every 250
    refused: int  # 4yz answers
    load_cpu: float  # share of the load generator's cores it kept busy


# -- the load generator ---------------------------------------------------------------------


def _load_process(port: int, plan: list[list[str]], size: int, core: int, results: Any) -> None:
    os.sched_setaffinity(0, {core})
    stored: list[tuple[str, str]] = []
    refused: list[int] = []

    async def run() -> None:
        await asyncio.gather(
            *(smtp_session(port, recipients, message(size), stored, refused) for recipients in plan)
        )

    started = time.monotonic()
    _run_fast(run())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    busy = (usage.ru_utime + usage.ru_stime) / max(time.monotonic() - started, 1e-9)
    results.put((stored, len(refused), busy))


def _run_fast(work: Any) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(work)
    else:
        uvloop.run(work)


def load(
    port: int, scenario: Scenario, messages: int, sessions: int, size: int, cores: list[int]
) -> Outcome:
    """Send `messages` over `sessions` sessions from one process per load core."""
    per_session = max(1, messages // sessions)
    plans: list[list[list[str]]] = [[] for _ in cores]
    for session in range(sessions):
        recipients = [
            ("hot@localhost" if scenario.hot else f"s{session}-{n}@localhost")
            for n in range(per_session)
        ]
        plans[session % len(cores)].append(recipients)
    results: Any = multiprocessing.get_context("spawn").Queue()
    processes = [
        multiprocessing.get_context("spawn").Process(
            target=_load_process, args=(port, plan, size, core, results)
        )
        for plan, core in zip(plans, cores, strict=True)
        if plan
    ]
    started = time.monotonic()
    for process in processes:
        process.start()
    gathered = [results.get(timeout=1800) for _ in processes]
    seconds = time.monotonic() - started
    for process in processes:
        process.join()
    return Outcome(
        seconds,
        [pair for found, _, _ in gathered for pair in found],
        sum(refused for _, refused, _ in gathered),
        sum(busy for _, _, busy in gathered) / len(processes),
    )


# -- PostgreSQL ------------------------------------------------------------------------------


def postgres_binaries() -> Path:
    """The folder holding initdb and pg_ctl: on PATH, or Debian's."""
    installed = sorted(Path(path) for path in glob.glob("/usr/lib/postgresql/*/bin"))
    binaries = [Path(shutil.which("initdb") or "").parent, *installed]
    folder = next((path for path in binaries if (path / "pg_ctl").is_file()), None)
    if folder is None:
        raise SystemExit("no PostgreSQL: give --dsn, or put initdb and pg_ctl on PATH")
    return folder


@contextmanager
def private_cluster(cores: set[int]) -> Any:
    """A PostgreSQL cluster of our own, pinned to `cores`; yields its DSN prefix."""
    folder = postgres_binaries()
    root = Path(tempfile.mkdtemp(prefix="burnbox-scale-pg-"))
    root.chmod(0o755)
    data, port = root / "data", free_port()
    as_postgres = os.geteuid() == 0  # initdb refuses to run as root
    prefix = ["runuser", "-u", "postgres", "--"] if as_postgres else []
    data.mkdir()
    if as_postgres:
        account = pwd.getpwnam("postgres")
        for owned in (root, data):  # its socket and log go in root
            os.chown(owned, account.pw_uid, account.pw_gid)
    initdb = [str(folder / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
    subprocess.run([*prefix, *initdb, "--no-sync"], check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=400"
    start = [str(folder / "pg_ctl"), "-D", str(data), "-w", "-o", options]
    subprocess.run(
        [*prefix, *start, "-l", str(root / "log"), "start"], check=True, capture_output=True
    )
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    os.sched_setaffinity(postmaster, cores)  # its backends, forked later, inherit this
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*prefix, str(folder / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


async def _admin(dsn: str, sql: str) -> None:
    connection = await asyncpg.connect(f"{dsn}/postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _fetch(url: str, sql: str) -> list[tuple[str, str]]:
    connection = await asyncpg.connect(url)
    try:
        return [(row[0], row[1]) for row in await connection.fetch(sql)]
    finally:
        await connection.close()


async def _execute(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


# -- one scenario ----------------------------------------------------------------------------


def start_burnbox(
    scenario: Scenario, store: str, cap: int, cores: set[int], sessions: int
) -> tuple[subprocess.Popen[str], int]:
    port, http = free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "burnbox",
        "serve",
        "--env-file",
        "/dev/null",
        "--smtp-listen",
        f"127.0.0.1:{port}",
        "--http-listen",
        f"127.0.0.1:{http}",
        "--store",
        store,
        "--workers",
        str(scenario.workers),
        "--store-max-bytes",
        str(cap),
        "--inbox-max-messages",
        "10000000",
        "--max-connections-per-ip",
        str(sessions * 2),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, cores),
    )
    assert process.stdout is not None
    if not process.stdout.readline().startswith("burnbox "):
        raise SystemExit(f"burnbox did not start: {process.communicate()[1]}")
    return process, port


def check(url: str | None, outcome: Outcome, workers: int) -> str:
    """Every 250 a row or an eviction, evictions in age order (within the batches that
    raced them)."""
    if url is None:
        return "n/a"
    kept = set(asyncio.run(_fetch(url, "SELECT address, id FROM messages")))
    evicted = set(asyncio.run(_fetch(url, "SELECT address, id FROM audit_evicted")))
    lost = [pair for pair in outcome.stored if pair not in kept and pair not in evicted]
    if lost:
        return f"{len(lost)} LOST"
    floor = min((message_id for _, message_id in kept), default="")
    late = sum(message_id > floor for _, message_id in evicted)
    if late > workers * MAX_BATCH:
        return f"{late} evicted out of order"
    return f"ok ({len(evicted)} evicted)"


def run(
    scenario: Scenario,
    dsn: str | None,
    args: argparse.Namespace,
    server: set[int],
    load_cores: list[int],
) -> tuple[Outcome, str]:
    total = args.messages * (args.size + 600)
    cap = total // 5 if scenario.at_cap else total * 10
    url = None
    if scenario.store == "postgresql":
        assert dsn is not None
        asyncio.run(_admin(dsn, "DROP DATABASE IF EXISTS burnbox_scale WITH (FORCE)"))
        asyncio.run(_admin(dsn, "CREATE DATABASE burnbox_scale"))
        url = f"{dsn}/burnbox_scale"
    process, port = start_burnbox(scenario, url or "memory://", cap, server, args.sessions)
    try:
        if url is not None:
            asyncio.run(_execute(url, AUDIT))  # burnbox has migrated: it said ready
        outcome = load(port, scenario, args.messages, args.sessions, args.size, load_cores)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=120)
    return outcome, check(url, outcome, scenario.workers)


def scenarios(server_cores: int, only: str) -> list[Scenario]:
    found = [Scenario("memory", 1, False, hot) for hot in (False, True)]
    counts = [w for w in (1, 2, 4, 8) if w <= max(2, server_cores)]
    found += [
        Scenario("postgresql", workers, at_cap, hot)
        for hot in (False, True)
        for at_cap in (False, True)
        for workers in counts
    ]
    return [scenario for scenario in found if only in scenario.name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dsn",
        default=os.environ.get("BURNBOX_BENCH_POSTGRES"),
        help="a PostgreSQL server (postgresql://user@host:port) instead of "
        "a private cluster (which can be pinned to cores)",
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--sessions", type=int, default=60)
    parser.add_argument("--size", type=int, default=2048, help="bytes of each message")
    parser.add_argument("--only", default="", help="scenarios whose name contains this")
    parser.add_argument("--runs", type=int, default=3, help="runs of each; the median is shown")
    args = parser.parse_args()
    raise_nofile()
    cores = sorted(os.sched_getaffinity(0))
    load_cores = cores[: max(1, len(cores) // 4)]
    server = set(cores[len(load_cores) :]) or set(cores)
    print(
        f"{len(cores)} cores: load generator on {load_cores}, burnbox and PostgreSQL on "
        f"{sorted(server)}; {args.messages} messages of {args.size} bytes, "
        f"{args.sessions} sessions"
    )
    with private_cluster(server) if args.dsn is None else nullcontext(args.dsn) as dsn:
        print(
            f"{'scenario':<40} {'msgs/s':>8} {'4yz':>5} {'load CPU':>9}  check "
            f"(median of {args.runs} runs; 4yz, load CPU and checks of every run)"
        )
        for scenario in scenarios(len(server), args.only):
            runs = [run(scenario, dsn, args, server, load_cores) for _ in range(args.runs)]
            rate = statistics.median(len(o.stored) / o.seconds for o, _ in runs)
            refused = sum(outcome.refused for outcome, _ in runs)
            busy = max(outcome.load_cpu for outcome, _ in runs)
            verdicts = sorted({verdict.split(" (")[0] for _, verdict in runs})
            print(
                f"{scenario.name:<40} {rate:>8.0f} {refused:>5} {busy:>8.0%}  "
                f"{', '.join(verdicts)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
