"""Who may read an inbox (the token from `Authorization: Bearer` or the inbox's cookie) and
which requests come from a page of ours (the Origin, or the Referer without one)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from urllib.parse import urlsplit

MAX_TOKEN = 2048  # characters read of a bearer token: an inbox token is 36, an account JWT ~300
_ASCII_SPACE = " \t"  # only these surround a token: not NBSP, NEL or other Unicode space
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_WS_SCHEMES = {"ws": "http", "wss": "https"}


def cookie_name(address: str) -> str:
    """One cookie per inbox; the name hides the address."""
    return "burnbox_" + hashlib.sha256(address.lower().encode()).hexdigest()[:20]


def presented_token(
    headers: Mapping[str, str], cookies: Mapping[str, str], address: str
) -> tuple[str | None, bool]:
    """(token, whether it came from a cookie)."""
    header = headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip(_ASCII_SPACE)[:MAX_TOKEN], False
    cookie = cookies.get(cookie_name(address))
    return (cookie[:MAX_TOKEN], True) if cookie else (None, False)


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of a URL, lower-case, the scheme's default port left out.
    None for one with user information (`http://evil.example@host`): no browser sends an
    origin with it, and read as a URL its host is the part after the `@`."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if "@" in parts.netloc:
        return None
    scheme = _WS_SCHEMES.get(parts.scheme.lower(), parts.scheme.lower())
    if not scheme or not parts.hostname:
        return None
    shown = "" if port is None or str(port) == _DEFAULT_PORTS.get(scheme) else f":{port}"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}{shown}"


def cross_site(headers: Mapping[str, str], own_scheme: str, allowed: tuple[str, ...]) -> bool:
    """Whether a browser sent this from a page that is neither ours nor allowed. The Origin
    says where from (scheme, host and port all count); without one, the Referer does; with
    neither, it is no browser's cross-site request."""
    claimed = headers.get("origin") or headers.get("referer")
    if claimed is None:
        return headers.get("sec-fetch-site") == "cross-site"
    source = origin_of(claimed)
    own = origin_of(f"{own_scheme}://{headers.get('host', '')}")
    return source is None or (source != own and source not in {origin_of(item) for item in allowed})
