"""Liveness and readiness."""

from __future__ import annotations

import asyncio

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from app.errors import RETRY_AFTER_SECONDS, problem
from app.migrate import current_revision
from app.responses import errors_for

log = structlog.get_logger(__name__)

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
async def readyz(request: Request) -> Response:
    head = request.app.state.migration_head
    retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    try:
        current = await asyncio.wait_for(_current_revision(request), READY_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure to reach the database in time means "not ready"
        log.warning("not_ready", error_type=type(exc).__name__)
        return problem(
            request,
            status=503,
            type_="database_unavailable",
            title="Not ready",
            detail="The database cannot be reached.",
            headers=retry,
            extra={"database": "unreachable"},
        )
    if current != head:
        return problem(
            request,
            status=503,
            type_="migrations_pending",
            title="Not ready",
            detail="The database schema is not at the current migration: run `frontdoor migrate`.",
            headers=retry,
            extra={"database": "ok", "migrations": "behind", "current": current, "head": head},
        )
    return JSONResponse(
        {"status": "ready", "database": "ok", "migrations": "current", "revision": current}
    )
