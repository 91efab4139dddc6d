"""Verification codes and action links: what a temp-mail reader usually came for.

Pure heuristics, tuned on tests/data/codes (a labelled set with newsletters,
receipts and notices that must yield nothing). A code is a 4-8 character
token with at least one digit, near a keyword such as "code" or "OTP" in one of
several languages, and not near words that mark order, invoice or tracking
numbers, prices or dates. An action link is one whose text or URL says verify,
confirm, activate, reset or sign in.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from html.parser import HTMLParser

import nh3

MAX_CODES = 3
MAX_LINKS = 3
SCAN_CHARS = 20_000  # of the text we look at: codes sit near the top
BEFORE = 80  # chars before a candidate in which a keyword counts
AFTER = 50  # chars after it
NEGATIVE_BEFORE = 30

_KEYWORDS = re.compile(
    "|".join(
        [
            r"\bcode\b",
            r"\bcodes\b",
            r"verification",
            r"\bverify\b",
            r"\botp\b",
            r"one[- ]time",
            r"pass ?code",
            r"\bpin\b",
            r"security code",
            r"confirmation",
            r"authenticat",
            r"\b2fa\b",
            r"two[- ]factor",
            r"\bcódigo",
            r"verificaci[oó]n",
            r"confirmaci[oó]n",
            r"\bclave\b",
            r"\bcodice\b",
            r"\bverifica\b",
            r"verifica[çc][ãa]o",
            r"bestätigungscode",
            r"verifizierungscode",
            r"sicherheitscode",
            r"einmal(?:passwort|code)",
            r"\bcode de\b",
            r"vérification",
            r"\bkod\b",
            r"weryfikac",
            r"verificatiecode",
            r"bevestigingscode",
            r"verifieringskod",
            r"doğrulama",
            r"\bкод\b",
            r"подтвержд",
            r"проверочн",
            "验证码",
            "驗證碼",
            "校验码",
            "动态码",
            "認証コード",
            "確認コード",
            "認証番号",
            "인증번호",
            "인증 ?코드",
            "확인 ?코드",
        ]
    ),
    re.IGNORECASE,
)
_NEGATIVE = re.compile(
    "|".join(
        [
            r"order",
            r"invoice",
            r"receipt",
            r"ticket",
            r"tracking",
            r"shipment",
            r"reference",
            r"\bref\b",
            r"account (?:no|number)",
            r"customer",
            r"\bphone\b",
            r"\btel\b",
            r"\bfax\b",
            r"\bzip\b",
            r"postal",
            r"postcode",
            r"\bitem\b",
            r"\bsku\b",
            r"booking",
            r"bestellnummer",
            r"rechnung",
            r"sendungsnummer",
            r"commande",
            r"facture",
            r"pedido",
            r"factura",
            r"заказ",
            "订单",
            r"\bn[°º]",
            r"#\s*$",
            r"\bno\.\s*$",
            r"\btotal\b",
            r"\bprice\b",
            r"\$\s*$",
            r"€\s*$",
            r"£\s*$",
            r"\bunit\b",
            r"\broom\b",
            r"\bsuite\b",
            r"\bflight\b",
        ]
    ),
    re.IGNORECASE,
)
_CANDIDATE = re.compile(
    r"(?<![\w/#$€£.,:+\[-])(?:[A-Z]-)?"  # "G-384756": the letter and hyphen are not the code
    r"(\d{3}[ -]\d{3}|\d{4,8}|(?-i:(?=(?:[A-Z]*\d){2})(?=[A-Z0-9]*[A-Z])[A-Z0-9]{4,8}))"
    r"(?![\w/,:#\]-]|\.\d|\s?(?:%|€|\$|usd|eur|gbp|kr|zł|руб|元|円)|[.]\w)",
    re.IGNORECASE,
)
_DIGIT_GROUP_NEAR = re.compile(r"\d[ .]$")  # "+49 30 5555 0100": part of a phone number
_URL = re.compile(r"https?://[^\s<>\"')\]]+", re.IGNORECASE)
_YEAR = re.compile(r"(?:19|20)\d\d")
_ACTION = re.compile(
    "|".join(
        [
            r"verif",
            r"confirm",
            r"activat",
            r"validat",
            r"reset",
            r"sign[- ]?in",
            r"log[- ]?in",
            r"magic",
            r"password",
            r"bestätig",
            r"aktivier",
            r"confirmer",
            r"vérifi",
            r"activer",
            r"réinitialis",
            r"confirmar",
            r"activar",
            r"\bativ",
            r"restablec",
            r"conferma",
            r"attiva",
            r"bevestig",
            r"potwierd",
            r"подтверд",
            r"验证",
            r"确认",
            r"認証",
            r"確認",
            r"인증",
            r"onboard",
        ]
    ),
    re.IGNORECASE,
)
_NOT_ACTION = re.compile(
    r"unsubscribe|opt[- ]?out|preferences|privacy|terms|facebook|twitter|instagram|linkedin|"
    r"youtube|view (?:it |this )?in (?:your )?browser|abmelden|désabonner|darse de baja|help|"
    r"support|faq",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ActionLink:
    url: str
    text: str


@dataclass(frozen=True, slots=True)
class Extracted:
    codes: list[str]
    links: list[ActionLink]


def extract(subject: str, text: str, html: str) -> Extracted:
    body = text or _html_text(html)
    scanned = _URL.sub(" ", f"{subject}\n{body[:SCAN_CHARS]}")
    return Extracted(_codes(scanned), _links(text, html))


def _codes(text: str) -> list[str]:
    scored: dict[str, int] = {}
    for match in _CANDIDATE.finditer(text):
        token = match.group(1)
        code = re.sub(r"[ -]", "", token)
        if not _plausible(code, text, match):
            continue
        distance = _keyword_distance(text, match.start(), match.end())
        if distance is None:
            continue
        score = distance - (20 if len(code) == 6 else 0)
        scored[code] = min(score, scored.get(code, score))
    return sorted(scored, key=scored.__getitem__)[:MAX_CODES]


def _plausible(code: str, text: str, match: re.Match[str]) -> bool:
    if code.isdigit() and len(code) == 4 and _YEAR.fullmatch(code):
        return False
    if code.isalpha() or len(set(code)) == 1:
        return False
    before = text[max(match.start() - NEGATIVE_BEFORE, 0) : match.start()]
    after = text[match.end() : match.end() + 2]
    if _DIGIT_GROUP_NEAR.search(before) or re.match(r"[ .]\d", after):
        return False
    return not _NEGATIVE.search(before)


def _keyword_distance(text: str, start: int, end: int) -> int | None:
    window_start = max(start - BEFORE, 0)
    best: int | None = None
    for keyword in _KEYWORDS.finditer(text, window_start, min(end + AFTER, len(text))):
        if keyword.start() < start:
            distance = start - keyword.end()
        elif keyword.start() >= end:
            distance = (keyword.start() - end) * 2  # "123456 is your code" is less usual
        else:
            continue
        best = distance if best is None else min(best, distance)
    return best


def _links(text: str, html: str) -> list[ActionLink]:
    candidates: list[tuple[int, ActionLink]] = []
    seen: set[str] = set()
    anchors = _Anchors.collect(html) if html else []
    for url in _URL.findall(text):
        anchors.append((url.rstrip(".,;"), ""))
    for url, label in anchors:
        if url in seen or not url.lower().startswith(("http://", "https://")):
            continue
        seen.add(url)
        if _NOT_ACTION.search(label) or _NOT_ACTION.search(url):
            continue
        if _ACTION.search(label):
            candidates.append((0, ActionLink(url, label)))
        elif _ACTION.search(url.split("?", 1)[0]) or _ACTION.search(url):
            candidates.append((1, ActionLink(url, label)))
    candidates.sort(key=lambda item: item[0])
    return [link for _, link in candidates[:MAX_LINKS]]


def _html_text(html: str) -> str:
    if not html:
        return ""
    blocks = re.sub(r"(?i)<(?:br|/p|/div|/tr|/h\d|/li)[^>]*>", "\n", html[: SCAN_CHARS * 5])
    return html_lib.unescape(nh3.clean(blocks, tags=set()))


class _Anchors(HTMLParser):
    """(href, visible text) of each <a> in an HTML part."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    @classmethod
    def collect(cls, html: str) -> list[tuple[str, str]]:
        parser = cls()
        parser.feed(html[: SCAN_CHARS * 10])
        parser.close()
        return parser.found[:500]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or None
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.found.append((self._href.strip(), " ".join("".join(self._text).split())))
            self._href = None
