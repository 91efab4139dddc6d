"""The sender checks' results as RFC 8601 writes them, and back: what a stored summary
keeps (`auth`), the `Authentication-Results:` field a served message begins with, the
API's `authentication` object and the mark a reader sees. No I/O.

Also what happens to an `Authentication-Results` field that arrived with the mail and
claims to be ours: renamed, never trusted (RFC 8601 5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

METHODS = ("spf", "dkim", "dmarc", "arc")
MAX_RESINFO = 1000  # characters kept: a few signatures' worth
VERDICTS = {
    "verified": "Verified sender",
    "unverified": "Sender could not be verified",
    "failed": "Failed: possibly forged",
}
_RESULT = re.compile(r"^\s*([a-z]+)=([a-z]+)", re.IGNORECASE)
_FROM = re.compile(r"header\.from=([^\s;]+)", re.IGNORECASE)
_UNTRUSTED = b"X-Untrusted-Authentication-Results"
_FIELD = re.compile(rb"(?im)^authentication-results[ \t]*:(?:[ \t]|\r\n[ \t])*([^\s;]*)")


@dataclass(frozen=True, slots=True)
class Results:
    """One message's checks. Each text is an RFC 8601 resinfo (`spf=pass smtp.mailfrom=
    example.org`); `dkim` holds one per signature (none: no signature)."""

    spf: str
    helo: str = ""
    dkim: tuple[str, ...] = ()
    dmarc: str = "dmarc=none"
    arc: str = "arc=none"
    extra: tuple[str, ...] = field(default=())

    def resinfo(self) -> str:
        parts = [self.spf, *filter(None, [self.helo]), *(self.dkim or ("dkim=none",))]
        text = "; ".join([*parts, self.dmarc, self.arc, *self.extra])
        if len(text) > MAX_RESINFO:  # fewer signatures, never the other methods
            text = "; ".join([self.spf, self.dkim[0] if self.dkim else "dkim=none", self.dmarc,
                              self.arc])[:MAX_RESINFO]  # fmt: skip
        return text


def header(hostname: str, resinfo: str) -> bytes:
    """The field a served message begins with (ASCII; folded after each result)."""
    folded = ";\r\n\t".join(part.strip() for part in resinfo.split(";"))
    return f"Authentication-Results: {hostname};\r\n\t{folded}\r\n".encode("ascii", "replace")


def authentication(resinfo: str) -> dict[str, str] | None:
    """The API's object: each method's result (method_results), the From domain, and the
    verdict. None while unchecked."""
    if not resinfo:
        return None
    overall = method_results(resinfo)
    domain = _FROM.search(resinfo)
    overall["from_domain"] = domain.group(1).lower() if domain else ""
    overall["verdict"] = verdict(overall, "aligned" in resinfo)
    return overall


def method_results(resinfo: str) -> dict[str, str]:
    """Each method's first result (dkim: pass if any signature passed, else fail if any
    failed), "none" for a method not there: all the metrics count of a message."""
    seen: dict[str, str] = {}
    dkim: list[str] = []
    for part in resinfo.split(";"):
        found = _RESULT.match(part)
        if found:
            method, result = found.group(1).lower(), found.group(2).lower()
            if method == "dkim":
                dkim.append(result)
            seen.setdefault(method, result)
    return {
        "spf": seen.get("spf", "none"),
        "dkim": next((w for w in ("pass", "fail") if w in dkim), seen.get("dkim", "none")),
        "dmarc": seen.get("dmarc", "none"),
        "arc": seen.get("arc", "none"),
    }


def verdict(results: dict[str, str], aligned: bool) -> str:
    """verified: the From domain is vouched for (DMARC passes, or without a policy an SPF
    or DKIM pass is aligned with it); failed: DMARC fails, or SPF or a signature fails;
    unverified: anything else (no records, errors)."""
    if results["dmarc"] == "pass" or (results["dmarc"] != "fail" and aligned):
        return "verified"
    if results["dmarc"] == "fail" or "fail" in (results["spf"], results["dkim"]):
        return "failed"
    return "unverified"


def untrust(raw: bytes, hostname: str) -> bytes:
    """`raw` with every Authentication-Results field of its header section that names our
    host renamed: only ours, added when it is served, may say it is ours."""
    section, separator, body = raw.partition(b"\r\n\r\n")
    if b"uthentication-" not in section.lower():
        return raw
    own = hostname.lower().encode()

    def rename(found: re.Match[bytes]) -> bytes:
        if found.group(1).lower().rstrip(b".") != own:
            return found.group(0)
        return _UNTRUSTED + b": " + found.group(1)

    return _FIELD.sub(rename, section) + separator + body
