"""`burnbox serve` and friends: argv → Settings → app."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import resource
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence

from burnbox import __version__
from burnbox import settings as settings_module
from burnbox.cli_client import add_commands
from burnbox.cli_client import run as run_client
from burnbox.settings import Settings, SettingsError


def _raise_open_file_limit() -> None:
    """Many idle SMTP sessions need many descriptors: go as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1_048_576 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="burnbox", description="Disposable email service.")
    parser.add_argument("--version", action="version", version=f"burnbox {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the SMTP and HTTP servers")
    serve.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    for item in dataclasses.fields(Settings):
        serve.add_argument(
            "--" + item.name.replace("_", "-"),
            dest=item.name,
            default=None,
            metavar="VALUE",
            help=item.metadata["help"].replace("%", "%%"),
        )
    doctor = commands.add_parser("doctor", help="check DNS, SMTP reachability, TLS and settings")
    doctor.add_argument("domain", help="a domain burnbox should receive mail for")
    doctor.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    doctor.add_argument(
        "--smtp",
        action="append",
        metavar="HOST:PORT",
        help="check this SMTP server instead of the domain's MX hosts",
    )
    doctor.add_argument("--ca-file", help="trust this CA (PEM) for the TLS check")
    add_commands(commands)
    return parser


def _run_serve(arguments: argparse.Namespace) -> int:
    flags = {item.name: getattr(arguments, item.name) for item in dataclasses.fields(Settings)}
    try:
        settings = settings_module.load(flags=flags, env_file=arguments.env_file)
    except SettingsError as error:
        print(f"burnbox: configuration error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # uvicorn's own lines repeat what our banner says (and access logs carry addresses).
    logging.getLogger("uvicorn").setLevel(max(logging.WARNING, logging.root.level))
    # The MCP tools call the API in process with httpx, whose request lines carry addresses;
    # the SDK logs each call's arguments: neither belongs in our logs.
    for noisy in ("httpx", "httpcore", "mcp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.root.level))
    _raise_open_file_limit()
    settings = settings_module.with_workers_hub(settings)
    if settings.workers > 1:
        return _run_workers(settings)
    return _run_worker(settings, 0)


def _run_worker(settings: Settings, worker: int) -> int:
    """Serve until stopped; the exit status (0 stopped by a signal, 1 a part failed)."""
    # The heavy imports, only once the settings are good. A web stack that cannot even be
    # imported is a failed start like any other, said in one line.
    try:
        from burnbox.app import StartFailed, serve
    except Exception as error:
        print(
            f"burnbox: cannot start: the server failed to load ({type(error).__name__}: {error})",
            file=sys.stderr,
        )
        return 1
    try:
        import uvloop
    except ImportError:
        runner = asyncio.Runner()
    else:
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    try:
        with runner:
            return runner.run(serve(settings, worker=worker))
    except StartFailed as error:
        print(f"burnbox: cannot start: {error}", file=sys.stderr)
        return 1


def _run_workers(settings: Settings) -> int:
    """Fork the workers before any event loop exists; pass SIGTERM/SIGINT on; wait."""
    # Where every worker writes its metrics, so that any worker's /metrics shows the whole
    # node (burnbox.metrics). Set before the workers import prometheus-client, which reads
    # it once; private to this run, and removed with it.
    folder = tempfile.mkdtemp(prefix="burnbox-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    try:
        return _fork_workers(settings, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _fork_workers(settings: Settings, metrics_folder: str) -> int:
    workers = _Workers([_fork_worker(settings, worker) for worker in range(settings.workers)])
    signal.signal(signal.SIGTERM, workers.forward)
    signal.signal(signal.SIGINT, workers.forward)
    return workers.wait(metrics_folder)


def _fork_worker(settings: Settings, worker: int) -> int:
    """A worker process serving `settings`; its pid (in the parent)."""
    pid = os.fork()
    if pid == 0:
        code = 1  # unless the worker ran and stopped cleanly
        try:
            code = _run_worker(settings, worker)
        except OSError as error:
            print(
                f"burnbox: worker {worker} cannot start: {error.strerror or error}", file=sys.stderr
            )
        finally:
            os._exit(code)  # a forked child never returns into the parent's code
    return pid


class _Workers:
    """The parent's view of its workers: signals passed on, exits waited for."""

    def __init__(self, children: list[int]) -> None:
        self.children = children
        self.stopping = False

    def forward(self, signum: int, _frame: object) -> None:
        self.stopping = True
        for child in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    def wait(self, metrics_folder: str) -> int:
        """Until every worker has exited; the node's exit status."""
        # Only now, in the parent: imported before the fork, it would have fixed the
        # workers' metrics to one process each.
        from prometheus_client.multiprocess import mark_process_dead

        status = 0
        for _ in self.children:
            child, code = os.wait()
            exited = _exit_status(os.waitstatus_to_exitcode(code))
            if not self.stopping:
                # A worker that ends unasked leaves the node half up: stop the others too,
                # so that whatever supervises the node restarts it whole.
                print(
                    f"burnbox: a worker stopped unexpectedly (exit status {exited}); "
                    "stopping the node",
                    file=sys.stderr,
                )
                self.forward(signal.SIGTERM, None)
                exited = exited or 1
            status = status or exited
            # A worker that is gone has no sessions or streams open: its gauges stop.
            mark_process_dead(child, metrics_folder)  # type: ignore[no-untyped-call]
        return status


def _exit_status(code: int) -> int:
    """os.waitstatus_to_exitcode's answer as a shell reports it (a signal N is 128 + N)."""
    return 128 - code if code < 0 else code


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "serve":
        try:
            return _run_serve(arguments)
        except SettingsError as error:
            print(f"burnbox: configuration error: {error}", file=sys.stderr)
            return 2
        except OSError as error:
            print(f"burnbox: cannot start: {error.strerror or error}", file=sys.stderr)
            return 1
    if arguments.command == "mcp":
        from burnbox.agents.stdio import serve as serve_mcp  # the MCP SDK, only here

        serve_mcp(arguments.url, arguments.log_level)
        return 0
    if arguments.command == "doctor":
        from burnbox.doctor import run as run_doctor

        return run_doctor(arguments.domain, arguments.env_file, arguments.smtp, arguments.ca_file)
    return run_client(arguments)
