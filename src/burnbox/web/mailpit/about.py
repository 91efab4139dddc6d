"""Mailpit's `GET /api/v1/info` (the server and its mailbox) and `GET /api/v1/webui` (what
its web UI may offer). Every feature is reported on only when it is configured here."""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

import resource
import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from burnbox import __version__
from burnbox.sink import SINK
from burnbox.web.deps import Services
from burnbox.web.downloads import PRIVATE
from burnbox.web.mailpit import tagging
from burnbox.web.mailpit.common import WHOLE
from burnbox.web.services import WebServices

router = APIRouter(tags=["Mailpit"])


@router.get("/api/v1/info", summary="Mailpit: the server, its mailbox and this process's figures.")
async def info(services: Services) -> JSONResponse:
    assert services.sink is not None  # these routes exist in sink mode only
    every = await services.inboxes.messages(SINK, limit=WHOLE)
    sink = services.sink
    body = {
        "Database": sink.store_kind,
        "DatabaseSize": services.store.stats().bytes,
        "LatestVersion": __version__,  # burnbox asks no one what the latest release is
        "Messages": len(every),
        "RuntimeStats": {
            "Memory": _resident_bytes(),
            "MessagesDeleted": sink.stats.deleted,
            "SMTPAccepted": sink.stats.accepted,
            "SMTPAcceptedSize": sink.stats.accepted_bytes,
            "SMTPIgnored": 0,  # duplicates are never ignored here
            "SMTPRejected": int(_refused(services)),
            "Uptime": int(time.monotonic() - sink.started),
        },
        "Tags": tagging.counts(services, [summary.id for summary in every]),
        "Unread": sum(1 for summary in every if not summary.seen),
        "Version": __version__,
    }
    return JSONResponse(body, headers=PRIVATE)


@router.get("/api/v1/webui", summary="Mailpit: what its web UI may offer here.")
async def webui(services: Services) -> JSONResponse:
    sink = services.sink
    relay = sink.relay if sink is not None else None
    allowed = ", ".join(relay.allow) if relay is not None else ""  # glob patterns, not a regexp
    body = {
        "ChaosEnabled": sink is not None and sink.chaos is not None,
        "DuplicatesIgnored": False,
        "HideDeleteAllButton": False,
        "Label": "",
        "MessageRelay": {
            "AllowedRecipients": allowed,
            "BlockedRecipients": "",
            "Enabled": relay is not None,
            "OverrideFrom": "",
            "PreserveMessageIDs": True,  # released as stored (qa/release.py)
            "RecipientAllowlist": allowed,  # the deprecated name of the same
            "ReturnPath": "",
            "SMTPServer": f"{relay.server.host}:{relay.server.port}" if relay is not None else "",
        },
        "SpamAssassin": sink is not None and sink.spamd is not None,
    }
    return JSONResponse(body, headers=PRIVATE)


def _resident_bytes() -> int:
    """This process's resident memory (Linux's statm; elsewhere its peak)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _refused(services: WebServices) -> float:
    """Messages and recipients refused at SMTP, as /metrics counts them."""
    return sum(
        sample.value
        for family in services.metrics.registry.collect()
        if family.name == "burnbox_messages_refused"
        for sample in family.samples
        if sample.name == "burnbox_messages_refused_total"
    )
