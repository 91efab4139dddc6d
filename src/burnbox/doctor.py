"""`burnbox doctor DOMAIN`: what stands between the internet and this burnbox, in plain words.

Checks the settings, the domain's MX records, that each MX answers SMTP from
here, and its STARTTLS certificate (trusted, for the right name, not expiring).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass

import dns.exception
import dns.resolver

from burnbox import settings as settings_module
from burnbox.addressing import AddressError, DomainPolicy, normalise_domain
from burnbox.settings import Settings, SettingsError

TIMEOUT = 10.0  # seconds for each lookup and connection
EXPIRY_WARNING_DAYS = 14


@dataclass(frozen=True)
class Finding:
    ok: bool
    text: str

    def __str__(self) -> str:
        return f"{'ok     ' if self.ok else 'PROBLEM'}  {self.text}"


def examine(
    domain: str, env_file: str, smtp: list[tuple[str, int]] | None, ca_file: str | None
) -> Iterator[Finding]:
    try:
        settings: Settings | None = settings_module.load(env_file=env_file)
    except SettingsError as error:
        settings = None
        yield Finding(False, f"settings: {error}")
    try:
        domain = normalise_domain(domain)
    except AddressError as error:
        yield Finding(False, f"{domain!r} is not a domain name: {error.reason}")
        return
    if settings is not None:
        yield Finding(True, "settings load without errors")
        if DomainPolicy(settings.domains).accepts(domain):
            yield Finding(True, f"{domain} is in BURNBOX_DOMAINS")
        else:
            yield Finding(
                False,
                f"{domain} is not in BURNBOX_DOMAINS "
                f"({', '.join(settings.domains)}): its mail would be refused",
            )
    targets = smtp if smtp is not None else list(_mx_targets(domain))
    if smtp is None and not targets:
        yield Finding(
            False,
            f"no MX record for {domain} could be found: senders cannot "
            "reach burnbox (add `MX 10 your-mx-host.` to the zone)",
        )
    for finding_or_target in targets:
        if isinstance(finding_or_target, Finding):
            yield finding_or_target
            continue
        host, port = finding_or_target
        yield from _check_smtp(host, port, ca_file)


def _mx_targets(domain: str) -> Iterator[tuple[str, int] | Finding]:
    resolver = dns.resolver.Resolver()
    resolver.lifetime = TIMEOUT
    try:
        answer = resolver.resolve(domain, "MX")
    except (dns.exception.DNSException, OSError) as error:
        yield Finding(
            False,
            f"looking up the MX records of {domain} failed "
            f"({type(error).__name__}): check the zone and this host's DNS",
        )
        return
    for record in sorted(answer, key=lambda r: r.preference):
        host = str(record.exchange).rstrip(".")
        yield Finding(True, f"MX {record.preference} {host}")
        yield host, 25


def _check_smtp(host: str, port: int, ca_file: str | None) -> Iterator[Finding]:
    where = f"{host}:{port}"
    try:
        client = smtplib.SMTP(host, port, timeout=TIMEOUT)
    except (OSError, smtplib.SMTPException) as error:
        yield Finding(
            False,
            f"SMTP at {where} does not answer from here "
            f"({type(error).__name__}): check the firewall and that burnbox "
            "listens on that port",
        )
        return
    with client:
        code, _ = client.ehlo(socket.getfqdn())
        yield Finding(code == 250, f"SMTP at {where} answers (EHLO {code})")
        if not client.has_extn("starttls"):
            yield Finding(
                False,
                f"{where} offers no STARTTLS: mail to it travels in clear "
                "text (set BURNBOX_TLS_CERT and BURNBOX_TLS_KEY)",
            )
            return
        yield from _check_certificate(client, host, where, ca_file)


def _check_certificate(
    client: smtplib.SMTP, host: str, where: str, ca_file: str | None
) -> Iterator[Finding]:
    """STARTTLS with the name checked, then how long the certificate has left."""
    context = ssl.create_default_context(cafile=ca_file)
    try:
        client.starttls(context=context)
    except (ssl.SSLError, ssl.CertificateError, OSError) as error:
        yield Finding(
            False,
            f"the TLS certificate of {where} is not valid for {host}: "
            f"{getattr(error, 'verify_message', None) or error}",
        )
        return
    secure = client.sock
    certificate = secure.getpeercert() if isinstance(secure, ssl.SSLSocket) else None
    if certificate:
        expires = ssl.cert_time_to_seconds(str(certificate["notAfter"]))
        days = int((expires - time.time()) // 86400)
        soon = days < EXPIRY_WARNING_DAYS
        yield Finding(
            not soon,
            f"the TLS certificate of {where} is valid and expires in "
            f"{days} days" + (": renew it soon" if soon else ""),
        )


def run(domain: str, env_file: str, smtp: list[str] | None, ca_file: str | None) -> int:
    targets = None
    if smtp:
        targets = []
        for item in smtp:
            host, _, port = item.rpartition(":")
            targets.append((host or item, int(port) if port.isdigit() else 25))
    problems = 0
    for finding in examine(domain, env_file, targets, ca_file):
        print(finding, flush=True)
        problems += not finding.ok
    print("no problems found" if not problems else f"{problems} problem(s) found")
    return 1 if problems else 0
