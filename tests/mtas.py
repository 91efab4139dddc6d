"""Real MTAs relaying to burnbox, each a private instance: its own configuration, queue and
log in a temporary directory, listening on loopback only, stopped after the test. Nothing of
the machine's own mail configuration is read or changed.

- Postfix 3.7 (Debian's package, installed for smtp-source): `postfix -c DIR`.
- Exim 4.96 (Debian's exim4-daemon-light): installing it would remove Postfix, so .ci/run
  unpacks the package (`dpkg -x`) into EXIM_ROOT. The binary insists on its compiled-in user
  Debian-exim, which the machine does not have: it runs in a private mount namespace in which
  copies of /etc/passwd and /etc/group carrying that user are bind-mounted (`unshare -m`).
"""

from __future__ import annotations

import os
import pwd
import re
import select
import shutil
import signal
import smtplib
import subprocess
import tempfile
from pathlib import Path
from typing import IO

import pytest

from tests.process import free_port

EXIM_ROOT = Path(os.environ.get("BURNBOX_TEST_EXIM_ROOT", "/opt/burnbox-ci/exim"))
EXIM = EXIM_ROOT / "usr" / "sbin" / "exim4"
EXIM_ID = 60100  # uid and gid of Debian-exim inside the namespace
STOP_TIMEOUT = 30.0


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (.ci/run provides it)")
    pytest.skip(f"{what} (.ci/run provides it)")


class Postfix:
    """A relaying Postfix: mail submitted to its smtpd goes to burnbox as its relayhost."""

    name = "postfix"

    def __init__(self, burnbox_port: int, *, tls_ca: str | None) -> None:
        if shutil.which("postfix") is None:
            _missing("Postfix is not installed")
        self.root = Path(tempfile.mkdtemp(prefix="burnbox-postfix-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.log = self.root / "maillog"
        for folder in ("conf", "queue", "data"):
            (self.root / folder).mkdir()
        postfix = pwd.getpwnam("postfix")
        os.chown(self.root / "data", postfix.pw_uid, postfix.pw_gid)
        tls = (
            (
                f"smtp_tls_security_level = encrypt\nsmtp_tls_CAfile = {tls_ca}\n"
                "smtp_tls_loglevel = 1\n"
            )
            if tls_ca
            else "smtp_tls_security_level = none\n"
        )
        (self.root / "conf" / "main.cf").write_text(
            POSTFIX_MAIN.format(root=self.root, burnbox=burnbox_port) + tls
        )
        (self.root / "conf" / "master.cf").write_text(POSTFIX_MASTER.format(port=self.port))
        self._master: int | None = None

    def _postfix(self, *command: str) -> subprocess.CompletedProcess[str]:
        # Postfix's commands write their errors to a terminal or syslog (there is none here):
        # `script` gives them a terminal, so a failure says why.
        line = " ".join(["postfix", "-c", str(self.root / "conf"), *command])
        return subprocess.run(
            ["script", "-qec", line, "/dev/null"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start(self) -> None:
        """Returns once its master process listens (postfix-script starts it with -w)."""
        result = self._postfix("start")
        assert result.returncode == 0, result.stdout + result.stderr
        self._master = int((self.root / "queue" / "pid" / "master.pid").read_text().split()[0])

    def submit(
        self, sender: str, recipients: list[str], message: bytes, options: list[str]
    ) -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=60) as client:
            return client.sendmail(sender, recipients, message, mail_options=options)

    def stop(self) -> None:
        self._postfix("stop")
        if self._master is not None:
            wait_gone(self._master)
        shutil.rmtree(self.root, ignore_errors=True)

    def queued(self) -> int:
        """Messages still in the queue (deferred or active)."""
        found = subprocess.run(
            [
                "find",
                str(self.root / "queue" / "active"),
                str(self.root / "queue" / "deferred"),
                str(self.root / "queue" / "incoming"),
                "-type",
                "f",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return len(found.split())

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def wait_gone(pid: int) -> None:
    """Until process `pid` (not our child) has exited; killed after STOP_TIMEOUT."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        exited, _, _ = select.select([handle], [], [], STOP_TIMEOUT)
        if not exited:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(handle)


POSTFIX_MAIN = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.test
mydomain = relay.test
myorigin = relay.test
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{burnbox}
smtputf8_enable = yes
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
alias_maps =
alias_database =
local_transport = error:no local delivery here
"""

POSTFIX_MASTER = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Exim:
    """Exim relaying everything to burnbox. It is no daemon: each submission is one
    `exim -bs` (SMTP on its standard input and output) that delivers in the foreground
    (`-odf`) before it takes the next command, so nothing of it runs after the test."""

    name = "exim"

    def __init__(self, burnbox_port: int, *, tls_ca: str | None) -> None:
        if not EXIM.is_file():
            _missing(f"Exim is not unpacked at {EXIM_ROOT}")
        if shutil.which("unshare") is None:
            _missing("unshare (util-linux) is not installed")
        self.root = Path(tempfile.mkdtemp(prefix="burnbox-exim-"))
        self.root.chmod(0o755)
        self.log = self.root / "log" / "mainlog"
        for folder in ("spool", "log"):
            (self.root / folder).mkdir()
            os.chown(self.root / folder, EXIM_ID, EXIM_ID)
        (self.root / "passwd").write_text(
            Path("/etc/passwd").read_text()
            + (f"Debian-exim:x:{EXIM_ID}:{EXIM_ID}::/nonexistent:/usr/sbin/nologin\n")
        )
        (self.root / "group").write_text(
            Path("/etc/group").read_text() + (f"Debian-exim:x:{EXIM_ID}:\n")
        )
        if tls_ca:  # where its delivery processes (as Debian-exim) may read it
            ca = self.root / "ca.pem"
            shutil.copy(tls_ca, ca)
            ca.chmod(0o644)
        tls = (
            f"  hosts_require_tls = *\n  tls_verify_certificates = {self.root}/ca.pem\n"
            if tls_ca
            else "  hosts_avoid_tls = *\n"
        )
        config = self.root / "exim.conf"
        config.write_text(
            EXIM_CONFIG.format(root=self.root, exim=EXIM, burnbox=burnbox_port)
            + tls
            + "begin retry\n* * F,1h,1m\n"
        )
        config.chmod(0o644)

    def command(self, *arguments: str) -> list[str]:
        mounts = (
            f"mount --bind {self.root}/passwd /etc/passwd && "
            f"mount --bind {self.root}/group /etc/group && exec"
        )
        exim = " ".join([str(EXIM), "-C", str(self.root / "exim.conf"), *arguments])
        return ["unshare", "-m", "sh", "-c", f"{mounts} {exim}"]

    def start(self) -> None:
        return None  # nothing to start: see submit()

    def submit(
        self, sender: str, recipients: list[str], message: bytes, options: list[str]
    ) -> dict[str, tuple[int, bytes]]:
        """One SMTP transaction over `exim -bs`; the refused recipients, as smtplib says."""
        with subprocess.Popen(
            self.command("-bs", "-odf"), stdin=subprocess.PIPE, stdout=subprocess.PIPE
        ) as exim:
            assert exim.stdin is not None
            assert exim.stdout is not None
            dialog = PipeDialog(exim.stdin, exim.stdout)
            refused = dialog.transaction(sender, recipients, message, options)
            exim.wait(timeout=STOP_TIMEOUT)
        return refused

    def stop(self) -> None:
        for pid in _processes_mentioning(str(self.root)):  # a delivery still running
            os.kill(pid, 9)
        shutil.rmtree(self.root, ignore_errors=True)

    def queued(self) -> int:
        result = subprocess.run(
            self.command("-bpc"), capture_output=True, text=True, timeout=60, check=True
        )
        return int(result.stdout.strip().splitlines()[-1])

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


class PipeDialog:
    """SMTP over a pair of pipes, as a client: enough for one transaction."""

    def __init__(self, to_server: IO[bytes], from_server: IO[bytes]) -> None:
        self._out = to_server
        self._in = from_server

    def _command(self, line: bytes) -> tuple[int, bytes]:
        if line:
            self._out.write(line + b"\r\n")
            self._out.flush()
        text = b""
        while True:
            reply = self._in.readline()
            assert reply, "exim closed the dialog"
            text += reply
            if reply[3:4] != b"-":
                return int(reply[:3]), text

    def transaction(
        self, sender: str, recipients: list[str], message: bytes, options: list[str]
    ) -> dict[str, tuple[int, bytes]]:
        assert self._command(b"")[0] == 220
        assert self._command(b"EHLO client.test")[0] == 250
        parameters = "".join(f" {option}" for option in options)
        assert self._command(f"MAIL FROM:<{sender}>{parameters}".encode())[0] == 250
        refused = {}
        for recipient in recipients:
            code, text = self._command(f"RCPT TO:<{recipient}>".encode())
            if code != 250:
                refused[recipient] = (code, text)
        assert self._command(b"DATA")[0] == 354
        stuffed = re.sub(rb"(?m)^\.", b"..", message)
        code, text = self._command(stuffed + (b"" if stuffed.endswith(b"\r\n") else b"\r\n") + b".")
        assert code == 250, text
        self._command(b"QUIT")
        return refused


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


EXIM_CONFIG = """\
keep_environment =
exim_path = {exim}
primary_hostname = exim.test
spool_directory = {root}/spool
log_file_path = {root}/log/%slog
never_users =
domainlist local_domains =
smtputf8_advertise_hosts = *
acl_smtp_rcpt = accept_local
begin acl
accept_local:
  accept
begin routers
to_burnbox:
  driver = manualroute
  domains = *
  transport = burnbox_smtp
  route_list = * 127.0.0.1
  self = send
  no_more
begin transports
burnbox_smtp:
  driver = smtp
  port = {burnbox}
"""
