"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.migrate import current_revision
from app.responses import errors_for

router = APIRouter(tags=["health"])

READY_TIMEOUT_SECONDS = 5.0


async def _current_revision(request: Request) -> str | None:
    async with request.app.state.session_factory() as session:
        await session.execute(text("SELECT 1"))
        revision: str | None = await session.run_sync(lambda s: current_revision(s.connection()))
        return revision


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and migrations are current",
    responses=errors_for(503),
)
async def readyz(request: Request) -> JSONResponse:
    head = request.app.state.migration_head
    try:
        current = await asyncio.wait_for(_current_revision(request), READY_TIMEOUT_SECONDS)
    except Exception:  # any failure to reach the database in time means "not ready"
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    if current != head:
        return JSONResponse(
            {
                "status": "unavailable",
                "database": "ok",
                "migrations": "behind",
                "current": current,
                "head": head,
            },
            status_code=503,
        )
    return JSONResponse(
        {"status": "ready", "database": "ok", "migrations": "current", "revision": current}
    )
