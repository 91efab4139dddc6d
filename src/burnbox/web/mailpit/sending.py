"""Mailpit's `POST /api/v1/send`: a message made from JSON (compose.py) and delivered to its
recipients as SMTP mail is, through the sink (so it is in the shared view, and in each
recipient's inbox). Errors are 400 with JSON `{"Error": "..."}`, as Mailpit's."""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from burnbox.sink import Envelope
from burnbox.web.deps import Services
from burnbox.web.downloads import PRIVATE
from burnbox.web.mailpit.common import SameSite
from burnbox.web.mailpit.compose import Refused, compose

PATH = "/api/v1/send"
USERNAMES_KEPT = 100_000
router = APIRouter(tags=["Mailpit"])


@router.post(
    PATH,
    summary="Mailpit: make a message from JSON and deliver it; answers its `ID`.",
    dependencies=[SameSite],
)
async def send(request: Request, services: Services) -> JSONResponse:
    assert services.sink is not None  # these routes exist in sink mode only
    try:
        found = json.loads(await request.body())
        if not isinstance(found, dict):
            raise Refused("the request must be a JSON object")
        made = compose(found, services.sink.hostname)
    except ValueError as error:  # Refused, or not JSON
        text = str(error) if isinstance(error, Refused) else "invalid JSON"
        return JSONResponse({"Error": text}, status_code=400, headers=PRIVATE)
    if len(made.raw) > services.sink.max_message:
        return JSONResponse({"Error": "message too large"}, status_code=400, headers=PRIVATE)
    ids = await services.sink.deliver(
        made.recipients, made.raw, Envelope(made.sender, tuple(made.recipients))
    )
    user = request.scope.get("state", {}).get("sink_user")
    if user:  # Mailpit records who sent it through the API
        services.sink.usernames[ids[-1]] = user
        while len(services.sink.usernames) > USERNAMES_KEPT:
            services.sink.usernames.popitem(last=False)
    return JSONResponse({"ID": ids[-1]}, headers=PRIVATE)  # the shared view's copy is last
