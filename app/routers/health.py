"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.migrate import current_revision
from app.responses import errors_for

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and migrations are current",
    responses=errors_for(503),
)
async def readyz(request: Request) -> JSONResponse:
    engine = request.app.state.engine
    head = request.app.state.migration_head
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            current = await conn.run_sync(current_revision)
    except Exception:  # any failure to reach the database means "not ready"
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
