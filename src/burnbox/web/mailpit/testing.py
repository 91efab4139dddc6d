"""Mailpit's testing routes: `GET` and `PUT /api/v1/chaos`, the SMTP side's faults on
request (qa/chaos.py). Without BURNBOX_SINK_CHAOS both answer 400, as Mailpit's do when
chaos is off. The triggers are this process's (with BURNBOX_WORKERS > 1, each worker's)."""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from burnbox.qa.chaos import Chaos, ChaosError
from burnbox.web.deps import Services
from burnbox.web.downloads import PRIVATE
from burnbox.web.mailpit.common import Failed, SameSite, body_of
from burnbox.web.services import WebServices

router = APIRouter(tags=["Mailpit"])  # included in sink mode only


@router.get("/api/v1/chaos", summary="Mailpit: the chaos triggers in force.")
async def triggers(services: Services) -> JSONResponse:
    return JSONResponse(_chaos(services).shape(), headers=PRIVATE)


@router.put(
    "/api/v1/chaos",
    summary="Mailpit: set the chaos triggers (those left out go back to 0%).",
    dependencies=[SameSite],
)
async def set_triggers(request: Request, services: Services) -> JSONResponse:
    chaos = _chaos(services)
    try:
        chaos.set(await body_of(request, strict=True))
    except ChaosError as error:
        raise Failed(400, str(error)) from None
    return JSONResponse(chaos.shape(), headers=PRIVATE)


def _chaos(services: WebServices) -> Chaos:
    chaos = services.sink.chaos if services.sink is not None else None
    if chaos is None:
        raise Failed(400, "Chaos is not enabled")
    return chaos
