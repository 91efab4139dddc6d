"""The API's JSON shapes. Requests refuse unknown fields; every field is bounded."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from burnbox.model import SUMMARY_FIELDS, MessageSummary
from burnbox.trust.results import authentication


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewInbox(Strict):
    local_part: str | None = Field(
        None, min_length=1, max_length=64, description="A chosen local part; random if absent."
    )
    domain: str | None = Field(
        None, min_length=1, max_length=253, description="One of GET /api/domains."
    )
    cookie: bool = Field(
        False,
        description="Also set the token as an HttpOnly, SameSite=Strict cookie "
        "(for browsers, which cannot send headers on EventSource).",
    )


EXPIRES_IN = (
    "Seconds left, by the server's clock: count down from this rather than from "
    "`expires_at`, which is right only if your clock agrees with the server's."
)


class InboxCreated(BaseModel):
    address: str
    token: str = Field(description="The capability to read this inbox; shown once.")
    expires_at: datetime
    expires_in: int = Field(description=EXPIRES_IN)


class InboxInfo(BaseModel):
    address: str
    created_at: datetime
    expires_at: datetime
    expires_in: int = Field(description=EXPIRES_IN)
    messages: int
    bytes: int


class Domains(BaseModel):
    domains: list[str]


class Authentication(BaseModel):
    """Who really sent it, as burnbox's sender checks found: RFC 8601 words (pass, fail,
    softfail, neutral, none, temperror, permerror)."""

    spf: str = Field(description="SPF for the MAIL FROM identity (the HELO one for a bounce).")
    dkim: str = Field(description="pass if a signature passed, else fail if one failed...")
    dmarc: str
    arc: str
    from_domain: str = Field(description='The From domain DMARC judged ("" for none).')
    verdict: str = Field(
        description="What the page shows: verified (the From domain sent it), unverified "
        "(could not be told), failed (possibly forged)."
    )

    @classmethod
    def of(cls, auth: str) -> Authentication | None:
        found = authentication(auth)
        return None if found is None else cls(**found)


class Summary(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    received_at: datetime
    expires_at: datetime
    sender: str = Field(alias="from")
    to: str
    subject: str
    date: str
    message_id: str
    snippet: str
    size: int
    attachments: int
    seen: bool
    authentication: Authentication | None = Field(
        None,
        description="The sender checks' results; null while not checked (checks off, or "
        "still running: an `updated` event follows).",
    )

    @classmethod
    def of(cls, summary: MessageSummary) -> Summary:
        """Every field of the summary this shape has (all but the address), by name."""
        fields = {
            name: getattr(summary, name) for name in SUMMARY_FIELDS if name in cls.model_fields
        }
        return cls(**fields, authentication=Authentication.of(summary.auth))


class SummaryPage(BaseModel):
    messages: list[Summary]
    next_before: str | None = Field(
        None, description="Pass as `before` for the next (older) page; null on the last."
    )
    next_after: str | None = Field(
        None,
        description="With `after`: more messages follow this page; pass this as "
        "`after` for them. Null when none follow yet.",
    )


class AttachmentOut(BaseModel):
    index: int
    filename: str
    content_type: str
    size: int
    content_id: str
    inline: bool
    url: str


class LinkOut(BaseModel):
    url: str
    text: str


class MessageOut(BaseModel):
    summary: Summary
    authentication: Authentication | None = Field(
        None, description="Who really sent it (as in `summary`); null while not checked."
    )
    headers: list[tuple[str, str]]
    text: str
    html: str = Field(description="Sanitised HTML; show it in a sandboxed frame.")
    remote_blocked: list[str] = Field(description="Remote content that was not kept.")
    styles_removed: int = Field(
        0, description="CSS rules and declarations removed as unsafe (the rest of the CSS is kept)."
    )
    attachments: list[AttachmentOut]
    codes: list[str] = Field(description="Likely one-time codes, best first.")
    links: list[LinkOut] = Field(description="Likely action links (verify, confirm...).")


class SeenPatch(Strict):
    seen: bool


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail
