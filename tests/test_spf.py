"""SPF against the RFC 7208 test suite (openspf.org, release 2014.04), as pyspf's source
distribution ships it, unchanged: every scenario's zone served by a real DNS server on
loopback, every test's result compared."""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from burnbox.trust.resolver import Lookups, Resolver
from burnbox.trust.spf import Evaluation, PermError, check_domain_spec, parse
from tests.dns import DnsServer, Zone

PYSPF = "pyspf==2.0.14"
SUITE = "test/rfc7208-tests.yml"


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The suite's YAML documents, from pyspf's sdist (PyPI)."""
    folder = tmp_path_factory.mktemp("pyspf")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
         ":all:", "--dest", str(folder), PYSPF],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    (archive,) = folder.glob("pyspf-*.tar.gz")
    with tarfile.open(archive) as sdist:
        member = next(m for m in sdist.getmembers() if m.name.endswith(SUITE))
        extracted = sdist.extractfile(member)
        assert extracted is not None
        return list(yaml.safe_load_all(extracted.read()))


def zone_from(zonedata: dict[str, list[Any]]) -> Zone:
    """The suite's zone: SPF-type records also as TXT where a name has no TXT of its own
    (its drivers do this: RFC 7208 uses TXT alone), `TXT: NONE` for none, TIMEOUT for a
    name or a type that never answers."""
    zone = Zone()
    for name, entries in zonedata.items():
        spf_only: list[Any] = []
        has_txt = False
        answered: set[str] = set()  # types listed before a TIMEOUT still answer
        key = name.lower().rstrip(".")
        zone.known.add(key)  # the name exists, whatever its records
        for entry in entries:
            if entry == "TIMEOUT":
                kinds = {"A", "AAAA", "MX", "PTR", "TXT", "CNAME"} - answered
                zone.timeouts.update((key, kind) for kind in kinds)
                continue
            ((kind, value),) = entry.items()
            if kind != "SPF" and value != "NONE":  # the generated TXT comes after all
                answered.add(kind)
            if kind in ("TXT", "SPF") and value == []:
                continue  # no character-strings: a real zone cannot hold it (RFC 1035)
            if kind == "TXT":
                has_txt = True
                if value != "NONE":
                    zone.add(name, "TXT", value)
            elif kind == "SPF":
                spf_only.append(value)
            elif value == "TIMEOUT":
                zone.timeouts.add((name.lower().rstrip("."), kind))
            elif kind == "MX":
                zone.add(name, "MX", (value[0], value[1]))
            else:
                zone.add(name, kind, value)
        if not has_txt:
            for value in spf_only:
                zone.add(name, "TXT", value)
    for name in list(zone.names()):
        if name.startswith("error."):
            zone.timeouts.add(name)
    return zone


def cases(documents: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], Zone]]:
    for document in documents:
        zone = zone_from(document.get("zonedata") or {})
        for name, test in document["tests"].items():
            yield name, test, zone


async def evaluate(server: DnsServer, test: dict[str, Any]) -> str:
    sender = test.get("mailfrom") or ""
    helo = test["helo"]
    domain = sender.rpartition("@")[2] if "@" in sender else helo
    lookups = Lookups(Resolver(server.address, timeout=0.5), cache_only=False)
    ip = ipaddress.ip_address(test["host"])
    evaluation = Evaluation(lookups, ip, sender or f"postmaster@{helo}", helo)
    return await evaluation.check_host(domain)


def test_the_rfc_7208_suite_passes(scenarios: list[dict[str, Any]]) -> None:
    failures: list[str] = []
    count = 0
    for document in scenarios:
        server = DnsServer(zone_from(document.get("zonedata") or {}))
        try:
            for name, test in document["tests"].items():
                count += 1
                expected = test["result"]
                wanted = expected if isinstance(expected, list) else [expected]
                got = asyncio.run(evaluate(server, test))
                if got not in wanted:
                    failures.append(f"{name}: {got}, expected {wanted} ({test.get('spec')})")
        finally:
            server.close()
    assert count > 180  # the whole suite ran
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize(
    "record",
    ["v=spf1 a:foo.1", "v=spf1 ip4:1.2.3.4/33", "v=spf1 mx//129", "v=spf1 redirect=a redirect=b",
     "v=spf1 exists:%{x}.test", "v=spf1 include:", "v=spf1 foo", "v=spf1 a/024"],
)  # fmt: skip
def test_a_broken_record_is_a_permerror(record: str) -> None:
    with pytest.raises(PermError):
        parse(record)


def test_a_good_domain_spec_is_taken() -> None:
    check_domain_spec("%{ir}.%{v}._spf.%{d2}")
    check_domain_spec("_spf.example.org.")
