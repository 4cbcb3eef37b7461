"""CPU cost of one referral through Front Door in-process (ASGI, no HTTP server, no sockets).

    python bench/intake_inprocess.py --requests 2000 [--app-dir TREE] [--cprofile out.prof]

Sends the intake bodies file's referrals one at a time through the ASGI app (httpx
ASGITransport) over a fresh PostgreSQL database and reports the process CPU time and wall time
per request. Sequential and on one connection, so it isolates Front Door's own CPU per referral
from HTTP parsing, concurrency and scheduling; useful for quick before/after comparisons of a
change on a busy machine (CPU time is far less noisy than throughput). ``--cprofile`` writes a
cProfile of the measured requests.
"""

from __future__ import annotations

if __package__ in (None, ""):  # run as a script: make ``app`` and ``bench`` importable
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import cProfile
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench import harness
from bench.generate_data import _create_database, database_dsn, migrate
from bench.intake_bench import BODIES_FILE, write_bodies


async def measure(
    database_url: str, requests: int, warmup: int, profile_path: Path | None
) -> dict[str, Any]:
    import httpx

    from app.clock import Clock
    from app.config import Settings
    from app.db import create_engine, create_session_factory
    from app.main import create_app
    from app.models import ApiClient
    from app.security import Role, generate_api_key, issue_staff_token

    settings = Settings(
        database_url=database_url, jwt_secret=harness.BENCH_JWT_SECRET, environment="production"
    )
    engine = create_engine(settings)
    key = generate_api_key()
    async with create_session_factory(engine)() as session:
        session.add(
            ApiClient(
                name="Bench",
                ods_code="D82001",
                key_prefix=key.prefix,
                key_hash=key.key_hash,
                created_at=Clock().now(),
            )
        )
        await session.commit()
    await engine.dispose()
    token = issue_staff_token(
        settings, subject="bench-user", role=Role.CALL_HANDLER, now=Clock().now()
    )
    lines = BODIES_FILE.read_bytes().splitlines()
    app = create_app(settings)
    statuses: dict[int, int] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            async def send(i: int) -> None:
                kind, _, body = lines[i % len(lines)].partition(b"\t")
                headers = {"Content-Type": "application/json"}
                if kind == b"system":
                    headers["X-API-Key"] = key.key
                    headers["Idempotency-Key"] = f"inproc-{i}"
                else:
                    headers["Authorization"] = f"Bearer {token}"
                response = await client.post("/v1/referrals", content=body, headers=headers)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

            for i in range(warmup):
                await send(i)
            profiler = cProfile.Profile() if profile_path else None
            cpu0, wall0 = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            for i in range(warmup, warmup + requests):
                await send(i)
            if profiler:
                profiler.disable()
                profiler.dump_stats(str(profile_path))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "requests": requests,
        "statuses": statuses,
        "cpu_ms_per_request": round(cpu * 1000 / requests, 3),
        "wall_ms_per_request": round(wall * 1000 / requests, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--db", default="frontdoor_bench_inproc")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--cprofile", type=Path, default=None)
    parser.add_argument("--bodies-count", type=int, default=60_000)
    parser.add_argument(
        "--app-dir",
        type=Path,
        default=None,
        help="import ``app`` from this source tree (to compare patched copies)",
    )
    args = parser.parse_args(argv)
    if args.app_dir is not None:
        sys.path.insert(0, str(args.app_dir.resolve()))
    if not BODIES_FILE.exists():
        write_bodies(BODIES_FILE, args.bodies_count, 11)
    asyncio.run(_create_database(args.dsn, args.db, recreate=True))
    dsn = database_dsn(args.dsn, args.db)
    migrate(dsn)
    import uvloop  # as uvicorn uses

    result = uvloop.run(measure(dsn, args.requests, args.warmup, args.cprofile))
    result["load_average"] = harness.load_average()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
