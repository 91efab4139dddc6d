"""A real DNS server on loopback for the tests (UDP and TCP, dnslib for the wire format):
zones given as records, names that never answer, names that answer SERVFAIL."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSRecord

TTL = 300


@dataclass
class Zone:
    """Records by (name, type): TXT as a list of character-strings, MX as (preference,
    exchange), the others as text. `timeouts` never answer (a name, or a (name, type));
    `failures` answer SERVFAIL."""

    records: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    timeouts: set[str | tuple[str, str]] = field(default_factory=set)
    failures: set[str] = field(default_factory=set)
    known: set[str] = field(default_factory=set)  # names that exist, records or not
    ttl: int = TTL
    asked: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, kind: str, *values: Any) -> None:
        self.records.setdefault((_key(name), kind), []).extend(values)
        self.known.add(_key(name))

    def names(self) -> set[str]:
        return set(self.known)


def _key(name: str) -> str:
    return name.lower().rstrip(".")


_RDATA = {
    "A": lambda value: A(value),
    "AAAA": lambda value: AAAA(value),
    "TXT": lambda value: TXT(
        [part.encode() if isinstance(part, str) else part for part in _strings(value)]
    ),
    "MX": lambda value: MX(value[1], value[0]),
    "PTR": lambda value: PTR(value),
    "CNAME": lambda value: CNAME(value),
}


def _strings(value: Any) -> list[str | bytes]:
    """A TXT value: one string, or its character-strings (each at most 255 bytes)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    text = value.encode() if isinstance(value, str) else value
    return [text[start : start + 255] for start in range(0, max(len(text), 1), 255)]


def answer(zone: Zone, data: bytes) -> bytes | None:
    """The reply to one query, or None to stay silent (a timeout)."""
    request = DNSRecord.parse(data)
    labels = request.q.qname.label  # as sent: a label may hold spaces or dots escaped
    name = _key(b".".join(labels).decode("utf-8", "replace"))
    kind = QTYPE[request.q.qtype]
    zone.asked.append((name, kind))
    if name in zone.timeouts or (name, kind) in zone.timeouts:
        return None
    reply = request.reply()
    if name in zone.failures:
        reply.header.rcode = RCODE.SERVFAIL
        return bytes(reply.pack())
    found = zone.records.get((name, kind))
    alias = zone.records.get((name, "CNAME"))
    if found is None and alias and kind != "CNAME":  # one level, as the suites expect
        reply.add_answer(RR(request.q.qname, QTYPE.CNAME, rdata=CNAME(alias[0]), ttl=zone.ttl))
        name, found = _key(alias[0]), zone.records.get((_key(alias[0]), kind))
    for value in found or ():
        rdata = _RDATA[kind](value)
        reply.add_answer(RR(name + ".", getattr(QTYPE, kind), rdata=rdata, ttl=zone.ttl))
    if found is None and name not in zone.known:
        reply.header.rcode = RCODE.NXDOMAIN
    return bytes(reply.pack())


class DnsServer:
    """Serves `zone` on 127.0.0.1 (an ephemeral port, UDP and TCP) until closed."""

    def __init__(self, zone: Zone | None = None) -> None:
        self.zone = zone or Zone()
        server = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = answer(server.zone, data)
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(OSError, struct.error):
                    (length,) = struct.unpack("!H", self.rfile.read(2))
                    reply = answer(server.zone, self.rfile.read(length))
                    if reply is not None:
                        self.wfile.write(struct.pack("!H", len(reply)) + reply)

        self._udp, self._tcp = _pair(Udp, Tcp)
        self.port = self._udp.server_address[1]
        self._threads = [
            threading.Thread(target=server.serve_forever, daemon=True)
            for server in (self._udp, self._tcp)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def address(self) -> str:
        """What BURNBOX_DNS_SERVER takes."""
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        for server in (self._udp, self._tcp):
            server.shutdown()
            server.server_close()


def _pair(
    udp: type[socketserver.BaseRequestHandler], tcp: type[socketserver.BaseRequestHandler]
) -> tuple[socketserver.ThreadingUDPServer, socketserver.ThreadingTCPServer]:
    """A UDP and a TCP server on one port: a free UDP port whose TCP twin is free too."""
    for _ in range(50):
        datagrams = socketserver.ThreadingUDPServer(("127.0.0.1", 0), udp)
        try:
            stream = socketserver.ThreadingTCPServer(
                ("127.0.0.1", datagrams.server_address[1]), tcp
            )
        except OSError:
            datagrams.server_close()
            continue
        return datagrams, stream
    raise OSError("no port free for both UDP and TCP")


def zone_of(entries: Iterable[tuple[str, str, Any]]) -> Zone:
    zone = Zone()
    for name, kind, value in entries:
        zone.add(name, kind, value)
    return zone


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
