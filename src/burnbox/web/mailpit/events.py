"""Mailpit's live feed, `GET /api/events` (a WebSocket), over the same hub as every other
push in burnbox: JSON frames `{Type, Data}`.

- `new`: a message arrived (its list item, as /api/v1/messages shows it);
- `update`: `{ID, Read}` when a message's read flag changed, `{ID, Tags}` when its tags were
  set;
- `delete`: `{ID}` when a message was deleted (or pushed out by the cap); `truncate` (null)
  once the mailbox is empty after a delete (Mailpit sends it when everything is deleted);
- `prune` (null) when messages passed their TTL and were purged, once for a run of them, and
  when a tag was renamed or deleted: Mailpit sends it then, and its clients list again;
- `stats`: `{Total, Unread, Version}`, STATS_AFTER seconds after a change, covering every
  change meanwhile: a burst of mail gives one every STATS_AFTER seconds, not one a message.
"""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket

from burnbox import __version__
from burnbox.hub import Event, SubscriberDropped, Subscription
from burnbox.sink import SINK
from burnbox.web.live import WS_CATCH_UP, serve_sink_feed
from burnbox.web.mailpit.common import WHOLE, Failed, summary_json
from burnbox.web.mailpit.tagging import tags_of
from burnbox.web.services import WebServices

router = APIRouter(tags=["Mailpit"])
STATS_AFTER = 0.25  # seconds, as Mailpit


@router.websocket("/api/events")
async def events(socket: WebSocket) -> None:
    await serve_sink_feed(socket, _pump)


async def _pump(socket: WebSocket, services: WebServices, subscription: Subscription) -> None:
    changed = asyncio.Event()
    stats = asyncio.create_task(_stats_after_changes(socket, services, changed))
    empty = False  # truncate was sent, and nothing has come since: once per emptying
    last = ""  # the last frame's type: a prune again before the next stats is the same run
    try:
        while True:
            try:
                event = await subscription.next()
            except SubscriberDropped:
                await socket.close(code=WS_CATCH_UP)  # it fell behind: reconnect, list again
                return
            for frame in await _frames(services, event):
                kind = frame["Type"]
                again = kind == "prune" and last == "prune" and changed.is_set()
                if (kind == "truncate" and empty) or again:
                    continue
                empty = kind == "truncate" or (empty and kind != "new")
                last = kind
                await socket.send_text(json.dumps(frame))
            changed.set()
    finally:
        stats.cancel()


async def _frames(services: WebServices, event: Event) -> list[dict[str, Any]]:
    if event.kind == "message" and event.summary is not None:
        with contextlib.suppress(Failed):  # deleted or evicted meanwhile
            return [{"Type": "new", "Data": await summary_json(services, event.summary)}]
        return []
    if event.kind == "updated" and not event.message_id:  # a tag renamed or deleted
        return [{"Type": "prune", "Data": None}]
    if event.kind == "updated":  # its tags were set (tags.py)
        return [
            {
                "Type": "update",
                "Data": {"ID": event.message_id, "Tags": tags_of(services, event.message_id)},
            }
        ]
    if event.kind == "seen" and event.summary is not None:
        return [{"Type": "update", "Data": {"ID": event.message_id, "Read": event.summary.seen}}]
    if event.kind == "expired" and event.message_id:
        return [{"Type": "prune", "Data": None}]
    if event.kind == "deleted" and event.message_id:
        frames: list[dict[str, Any]] = [{"Type": "delete", "Data": {"ID": event.message_id}}]
        if (await services.inboxes.usage(SINK))[0] == 0:
            frames.append({"Type": "truncate", "Data": None})
        return frames
    return []


async def _stats_after_changes(
    socket: WebSocket, services: WebServices, changed: asyncio.Event
) -> None:
    """`stats` STATS_AFTER seconds after a change, covering every change meanwhile: at
    most one every STATS_AFTER seconds however fast mail comes."""
    while True:
        await changed.wait()
        await asyncio.sleep(STATS_AFTER)
        changed.clear()
        every = await services.inboxes.messages(SINK, limit=WHOLE)
        unread = sum(1 for summary in every if not summary.seen)
        data = {"Total": len(every), "Unread": unread, "Version": __version__}
        with contextlib.suppress(RuntimeError):  # the client left meanwhile
            await socket.send_text(json.dumps({"Type": "stats", "Data": data}))
