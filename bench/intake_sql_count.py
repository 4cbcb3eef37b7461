"""Count the SQL statements (database round trips) one POST /v1/referrals costs, by kind.

    python bench/intake_sql_count.py [--app-dir /path/to/tree]

Runs Front Door in-process (ASGI, no HTTP) over a fresh PostgreSQL database, sends a few
referrals of each shape (staff phone call for a new person, a referring system with API key and
Idempotency-Key, the same person again) and prints the statements each one issued, grouped
(``SELECT persons``, ``INSERT referrals``, ``SAVEPOINT`` ...). BEGIN and COMMIT are issued by
the driver outside SQLAlchemy's cursor events and are added to the total.
"""

from __future__ import annotations

if __package__ in (None, ""):  # run as a script: make ``app`` and ``bench`` importable
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import re
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import harness, synth
from bench.generate_data import _create_database, database_dsn, migrate

_VERB = re.compile(
    r"^\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM|SAVEPOINT|RELEASE SAVEPOINT|"
    r"ROLLBACK TO SAVEPOINT)\s*(\S*)",
    re.I,
)
_FROM = re.compile(r"\bFROM\s+(\w+)", re.I)


def label(statement: str) -> str:
    """``SELECT persons``, ``INSERT referrals``, ``SAVEPOINT`` ..."""
    match = _VERB.match(statement)
    if not match:
        return statement.split(None, 1)[0].upper()
    verb = match[1].upper()
    if verb == "SELECT":
        table = _FROM.search(statement)
        return f"SELECT {table[1] if table else '?'}"
    if verb in ("INSERT INTO", "DELETE FROM", "UPDATE"):
        return f"{verb.split()[0]} {match[2]}"
    return verb


async def count(database_url: str) -> list[tuple[str, int, Counter[str]]]:
    import httpx
    from sqlalchemy import event

    from app.clock import Clock
    from app.config import Settings
    from app.db import create_engine, create_session_factory
    from app.main import create_app
    from app.models import ApiClient
    from app.security import Role, generate_api_key, issue_staff_token

    settings = Settings(
        database_url=database_url, jwt_secret=harness.BENCH_JWT_SECRET, log_level="WARNING"
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
    bodies = synth.intake_bodies(400, seed=5, on=datetime.now(UTC).date())
    phone = next(b for b in bodies if b["channel"] == "phone" and b["person"]["nhs_number"])
    system = next(b for b in bodies if b["channel"] == "system")
    drop_in = next(b for b in bodies if b["channel"] == "drop_in")
    cases: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("phone, new person", phone, {"Authorization": f"Bearer {token}"}),
        ("system, new person", system, {"X-API-Key": key.key, "Idempotency-Key": "k-1"}),
        (
            "system, same key again (replay)",
            system,
            {"X-API-Key": key.key, "Idempotency-Key": "k-1"},
        ),
        ("phone, same person again (joins case)", phone, {"Authorization": f"Bearer {token}"}),
        ("drop-in, new person", drop_in, {"Authorization": f"Bearer {token}"}),
    ]
    app = create_app(settings)
    results = []
    async with app.router.lifespan_context(app):
        captured: list[str] = []

        def capture(_c: Any, _cur: Any, statement: str, _p: Any, _ctx: Any, _m: bool) -> None:
            captured.append(statement)

        event.listen(app.state.engine.sync_engine, "before_cursor_execute", capture)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for name, body, headers in cases:
                captured.clear()
                response = await client.post("/v1/referrals", json=body, headers=headers)
                if response.status_code != 201:
                    raise RuntimeError(f"{name}: {response.status_code} {response.text[:200]}")
                kinds = Counter(label(s) for s in captured)
                results.append((name, len(captured) + 2, kinds))  # + BEGIN, COMMIT
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--db", default="frontdoor_bench_sqlcount")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--app-dir",
        type=Path,
        default=None,
        help="import ``app`` from this source tree (to compare patched copies)",
    )
    args = parser.parse_args(argv)
    if args.app_dir is not None:
        sys.path.insert(0, str(args.app_dir.resolve()))
    asyncio.run(_create_database(args.dsn, args.db, recreate=True))
    dsn = database_dsn(args.dsn, args.db)
    migrate(dsn)
    try:
        for name, total, kinds in asyncio.run(count(dsn)):
            detail = ", ".join(f"{k} x{n}" if n > 1 else k for k, n in sorted(kinds.items()))
            print(f"{name:40s} {total:3d} round trips: BEGIN, {detail}, COMMIT")
    finally:
        if not args.keep:
            asyncio.run(_drop(args.dsn, args.db))
    return 0


async def _drop(admin_dsn: str, db: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    finally:
        await conn.close()


if __name__ == "__main__":
    raise SystemExit(main())
