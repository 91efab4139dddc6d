"""Setting values from text: endpoints, sizes, durations, booleans, lists, choices, rates.
Pure; settings.py declares which setting takes which, and reads the text."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoint(text: str) -> Endpoint:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected host:port with a port from 0 to 65535")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - an empty host means every interface
    return Endpoint(host, int(port))


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
}
_DURATION_UNITS = {"": 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _number_with_unit(text: str, units: Mapping[str, float]) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in units:
        names = ", ".join(unit for unit in units if unit)
        raise ValueError(f"expected a number with an optional unit ({names})")
    return float(match.group(1)) * units[match.group(2).lower()]


def parse_optional_endpoint(text: str) -> Endpoint | None:
    """host:port, or empty for "off"."""
    return parse_endpoint(text) if text.strip() else None


def parse_size(text: str) -> int:
    """Bytes: `25MiB`, `64k`, `1048576`."""
    return int(_number_with_unit(text, _SIZE_UNITS))


def parse_duration(text: str) -> float:
    """Seconds: `24h`, `30s`, `500ms`, `90`."""
    return _number_with_unit(text, _DURATION_UNITS)


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def parse_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("expected a whole number of at least 1")
    return value


def parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.strip().lower() not in choices:
            raise ValueError(f"expected one of: {', '.join(choices)}")
        return text.strip().lower()

    return parse


def parse_rate(text: str) -> str:
    """`N/s`, `N/m` or `N/h`; kept as text, read by rate_limit()."""
    rate_limit(text)
    return text.strip()


def rate_limit(text: str) -> tuple[int, float]:
    """(burst, seconds per token) of a rate such as `20/m`."""
    count, slash, unit = text.strip().partition("/")
    periods = {"s": 1.0, "m": 60.0, "h": 3600.0}
    if not slash or not count.strip().isdigit() or int(count) < 1 or unit.strip() not in periods:
        raise ValueError("expected N/s, N/m or N/h with N at least 1")
    return int(count), periods[unit.strip()] / int(count)


def parse_optional_rate(text: str) -> str:
    """A rate (`N/s`, `N/m`, `N/h`), or empty for no limit."""
    return parse_rate(text) if text.strip() else ""


def parse_dns_server(text: str) -> str:
    """`host`, `host:port`, `[v6]:port` or a bare IPv6 address, as `host:port` (`[v6]:port`);
    empty for the system's resolvers."""
    text = text.strip()
    if not text:
        return ""
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    elif text.count(":") > 1:  # a bare IPv6 address
        host, port = text, ""
    else:
        host, _, port = text.partition(":")
    port = port or "53"
    if not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError("expected host, host:port or [v6]:port")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
