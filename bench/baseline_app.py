"""The bare baseline for the intake benchmark: what the stack itself costs.

``POST /v1/referrals`` validates the body with FastAPI against the same pydantic model as Front
Door (``app.schemas.referral.ReferralCreate``) and stores the raw JSON with one asyncpg INSERT
(autocommit). No auth, no triage, no person matching, no logging. It is served by uvicorn with the
same options as ``frontdoor serve`` (uvloop + httptools where installed, access log off, no server
header) so the ratio Front Door / baseline measures Front Door's own cost per referral.

    python bench/baseline_app.py \\
        --dsn postgresql://postgres@127.0.0.1:5432/frontdoor_bench_intake \\
        --port 8101
"""

from __future__ import annotations

if __package__ in (None, ""):  # run as a script: make ``app`` and ``bench`` importable
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
from fastapi import Body, FastAPI, Request

from app.schemas.referral import ReferralCreate

BASELINE_TABLE = "bench_baseline_referrals"
DSN_ENV = "BENCH_BASELINE_DSN"
# The same ceiling as Front Door's SQLAlchemy pool (pool_size 10 + max_overflow 10).
POOL_MAX_SIZE = 20


def create_app() -> FastAPI:
    """The baseline ASGI app; reads its DSN (plain ``postgresql://``) from BENCH_BASELINE_DSN."""
    dsn = os.environ[DSN_ENV]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=POOL_MAX_SIZE)
        await pool.execute(
            f"CREATE TABLE IF NOT EXISTS {BASELINE_TABLE} ("
            "id uuid PRIMARY KEY, received_at timestamptz NOT NULL DEFAULT now(), "
            "payload jsonb NOT NULL)"
        )
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(title="Front Door intake baseline", lifespan=lifespan)

    @app.post("/v1/referrals", status_code=201)
    async def create_referral(
        request: Request, body: Annotated[ReferralCreate, Body()]
    ) -> dict[str, str]:
        raw = await request.body()  # already read by FastAPI; cached
        referral_id = uuid.uuid4()
        await request.app.state.pool.execute(
            f"INSERT INTO {BASELINE_TABLE} (id, payload) VALUES ($1, $2::jsonb)",
            referral_id,
            raw.decode(),
        )
        return {"id": str(referral_id), "channel": body.channel}

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", required=True, help="plain postgresql:// DSN")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    import uvicorn

    os.environ[DSN_ENV] = args.dsn
    uvicorn.run(
        "bench.baseline_app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_config=None,
        log_level="warning",
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
