"""The signposting directory as an Open Referral UK (HSDS 3.0) feed: open, no key.

ORUK requires the feed to be open to anyone, with ``Access-Control-Allow-Origin: *`` on every
response so browser apps can read it (it carries only public service information).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import NotFound
from app.responses import errors_for
from app.signposting import SignpostingDirectory
from app.signposting.oruk import HSDS_VERSION, ORUK_PROFILE_URL, service_oruk, services_page

PER_PAGE_DEFAULT = 50
PER_PAGE_MAX = 500
PREFIX = "/oruk"


class OpenCorsMiddleware:
    """``Access-Control-Allow-Origin: *`` on every /oruk response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return

        async def send_open(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() != b"access-control-allow-origin"
                ]
                headers.append((b"access-control-allow-origin", b"*"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_open)


router = APIRouter(prefix=PREFIX, tags=["open referral uk"])


def _directory(request: Request) -> SignpostingDirectory:
    directory: SignpostingDirectory = request.app.state.signposting
    return directory


@router.get("/", summary="About this feed: HSDS version, profile and OpenAPI document")
async def oruk_root(request: Request) -> dict[str, Any]:
    openapi_url = request.app.openapi_url or "/openapi.json"
    return {
        "version": HSDS_VERSION,
        "profile": ORUK_PROFILE_URL,
        "openapi_url": str(request.base_url).rstrip("/") + openapi_url,
    }


@router.get(
    "/services",
    responses=errors_for(422),
    summary="The directory's services, paginated as the ORUK API",
)
async def oruk_services(
    request: Request,
    page: Annotated[int, Query(ge=1, description="page number, from 1")] = 1,
    per_page: Annotated[
        int, Query(ge=1, le=PER_PAGE_MAX, description="services per page")
    ] = PER_PAGE_DEFAULT,
) -> dict[str, Any]:
    return services_page(_directory(request), page=page, per_page=per_page)


@router.get(
    "/services/{service_id}",
    responses=errors_for(404, 422),
    summary="One service with its organisation, phones, schedules and areas",
)
async def oruk_service(
    request: Request, service_id: Annotated[str, Path(max_length=64)]
) -> dict[str, Any]:
    directory = _directory(request)
    service = directory.service_by_id.get(service_id)
    if service is None:
        raise NotFound("No service with this id.")
    return service_oruk(directory, service)
