"""SMTP command lines → verbs and arguments. Pure; no session state."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from burnbox.smtp.transaction import BODY_TYPES

MAX_SIZE_DIGITS = 18  # a SIZE value longer than this is malformed, not merely large
# The MAIL FROM parameters we implement, each with the test its value must pass.
_MAIL_PARAMETERS: dict[str, Callable[[str | None], bool]] = {
    "SIZE": lambda value: (
        value is not None and value.isascii() and value.isdigit() and len(value) <= MAX_SIZE_DIGITS
    ),
    "BODY": lambda value: value is not None and value.upper() in BODY_TYPES,
    "SMTPUTF8": lambda value: value is None,
}

# A path is anything in angle brackets without spaces, or (leniently, as Postfix
# does) a bare token; the parameters follow after white space.
_PATH_ARGS = re.compile(r"\s*(<[^<>\s]*>|[^<>\s]+)((?:\s+\S+)*)\s*", re.ASCII)
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_HELO_SAFE = re.compile(r"[^A-Za-z0-9.\-\[\]:_]")
HTTP_VERBS = frozenset({"GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "CONNECT", "PATCH"})


class CommandError(ValueError):
    """A malformed argument: answered with 501."""


@dataclass(frozen=True, slots=True)
class PathCommand:
    """MAIL FROM / RCPT TO: the path as given and its ESMTP parameters (upper-case keys)."""

    path: str
    params: dict[str, str | None] = field(default_factory=dict)


def split_verb(line: str) -> tuple[str, str]:
    verb, _, rest = line.partition(" ")
    return verb.upper(), rest


def parse_path_command(argument: str, keyword: str) -> PathCommand:
    """`argument` is what follows the verb, e.g. `FROM:<a@b> SIZE=10` for MAIL."""
    head, colon, rest = argument.partition(":")
    if not colon or head.strip().upper() != keyword:
        raise CommandError(f"syntax: {keyword}:<address>")
    match = _PATH_ARGS.fullmatch(rest)
    if not match:
        raise CommandError("malformed address")
    path = match.group(1)
    if not path.startswith("<"):
        path = f"<{path}>"
    params: dict[str, str | None] = {}
    for item in match.group(2).split():
        name, eq, value = item.partition("=")
        if not _KEYWORD.fullmatch(name) or (eq and not value):
            raise CommandError("malformed parameter")
        params[name.upper()] = value if eq else None
    return PathCommand(path, params)


def parse_bdat(argument: str) -> tuple[int, bool]:
    """`BDAT <size> [LAST]` → (size, last)."""
    parts = argument.split()
    if not 1 <= len(parts) <= 2 or not parts[0].isdigit() or len(parts[0]) > 18:
        raise CommandError("syntax: BDAT <size> [LAST]")
    if len(parts) == 2 and parts[1].upper() != "LAST":
        raise CommandError("syntax: BDAT <size> [LAST]")
    return int(parts[0]), len(parts) == 2


def clean_helo(argument: str) -> str:
    """The client's EHLO name, made safe for a Received: header."""
    return _HELO_SAFE.sub("", argument.strip())[:255]


def mail_parameter_fault(params: dict[str, str | None]) -> str | None:
    """The first MAIL FROM parameter at fault: "" for one we do not implement, else the
    name of one whose value is malformed; None if every one is good."""
    for name, value in params.items():
        if name not in _MAIL_PARAMETERS:
            return ""
        if not _MAIL_PARAMETERS[name](value):
            return name
    return None
