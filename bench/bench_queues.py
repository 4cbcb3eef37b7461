"""Benchmark: queue worklists and claiming on PostgreSQL with 1,000,000 cases (50,000 open).

    python bench/bench_queues.py --dsn postgresql://postgres@127.0.0.1:5432/postgres

1. Creates the database ``frontdoor_bench_queues`` on that server (``--reuse`` keeps a loaded
   one), migrates it with the application's migrations and syncs the default directory.
2. Loads 1,000,000 people, their cases (50,000 open, spread unevenly over the 15 queues; the
   rest closed), one referral and triage decision per case and the case timelines, with asyncpg
   COPY (``copy_records_to_table``), then ``VACUUM ANALYZE``.
3. Saves ``EXPLAIN (ANALYZE, BUFFERS)`` of the worklist first page, a deep keyset page and the
   claim query (the exact SQL the service builds) to ``bench/out/queues_explain.txt`` and checks
   that they walk the partial indexes.
4. Serves the API with ``frontdoor serve`` (uvicorn, a real process on a loopback port) and
   drives it over raw keep-alive connections (bench/loadgen.py's client, on uvloop; bounded
   request counts): a same-run baseline
   (``GET /healthz``), the worklist first page, and claims with 20 concurrent workers, with the
   server's CPU per claim. ``--server-workers 1 2`` repeats the claims with 2 uvicorn workers;
   ``--before-app-root PATH`` first serves the same measurements from another checkout (the
   code before a change) against the same database: a before/after in one run.
5. The database alone: a bare ``SELECT 1`` round trip, and the claim transaction's own SQL on
   20 asyncpg connections. Prints the figures and writes ``bench/out/queues_results.json``.

``--reuse`` keeps a loaded database: it is migrated to head and earlier claims are undone.

Targets (issue 4): worklist first page p99 ≤ 20 ms; claim p99 ≤ 30 ms with 20 concurrent workers.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # runnable from a checkout without installing the package

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Awaitable, Callable, Sequence  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, date, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from sqlalchemy import make_url  # noqa: E402

from app.config import Settings  # noqa: E402
from app.security import Role, issue_staff_token  # noqa: E402
from bench import loadgen  # noqa: E402

OUT = REPO / "bench" / "out"
DEFAULT_DB = "frontdoor_bench_queues"
BENCH_JWT_SECRET = "bench-queues-only-secret-not-for-production-0123456789"
CHUNK_ROWS = 50_000
SEED = 2026

# Open cases per queue, relative: the city sites and the duty line are busiest.
QUEUE_WEIGHTS = {
    "crisis": 1,
    "duty": 3,
    "looked-after": 2,
    "access-hub": 4,
    "cb-norwich": 12,
    "cb-north-walsham": 6,
    "cb-great-yarmouth": 6,
    "cb-lowestoft": 6,
    "cb-kings-lynn": 6,
    "cb-thetford": 6,
    "oss-norwich": 8,
    "oss-cromer": 4,
    "oss-great-yarmouth": 4,
    "oss-kings-lynn": 4,
    "oss-thetford": 4,
}
URGENCY_WEIGHTS = {"A": 1, "B": 3, "C": 6, "D": 20, "E": 60, "G": 8, "F": 2}
URGENCY_RANK = {"A": 0, "B": 1, "C": 2, "D": 3, "E": 4, "G": 5, "F": 6}
RESPOND_WITHIN_HOURS = {"A": 0, "B": 4, "C": 24, "D": 72, "E": 672, "G": 168, "F": None}
THRIVE = {
    "A": "getting_risk_support",
    "B": "getting_risk_support",
    "C": "getting_risk_support",
    "D": "getting_more_help",
    "E": "getting_help",
    "F": "getting_advice",
    "G": "getting_advice",
}
ROUTE_KIND = {
    "crisis": "crisis",
    "duty": "duty",
    "looked-after": "looked_after",
    "access-hub": "access_hub",
}
OPEN_STATUS_WEIGHTS = {"waiting": 40, "allocated": 20, "contacted": 15, "active": 20, "on_hold": 5}
OUTCOMES = ("returned_to_thriving", "signposted", "moved_to_adult_services", "declined")
GIVEN = ("Alex", "Sam", "Jo", "Charlie", "Riley", "Jordan", "Casey", "Morgan", "Taylor", "Robin")
FAMILY = ("Benchley", "Testwood", "Loadman", "Sampleton", "Queueford", "Claimer", "Pager")


# Loading -----------------------------------------------------------------------------------------


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


@dataclass
class Chunk:
    persons: list[tuple[Any, ...]]
    cases: list[tuple[Any, ...]]
    referrals: list[tuple[Any, ...]]
    decisions: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]


PERSON_COLUMNS = (
    "id",
    "given_name",
    "family_name",
    "given_name_key",
    "family_name_key",
    "date_of_birth",
    "send",
    "looked_after",
    "created_at",
    "updated_at",
)
CASE_COLUMNS = (
    "id",
    "person_id",
    "queue_id",
    "status",
    "urgency_code",
    "urgency_rank",
    "received_at",
    "respond_by_at",
    "first_contact_at",
    "first_contact_type",
    "key_worker_id",
    "allocated_at",
    "thrive_grouping_proposed",
    "outcome",
    "closed_at",
    "version",
    "last_event_seq",
    "created_at",
    "updated_at",
)
REFERRAL_COLUMNS = (
    "id",
    "reference",
    "person_id",
    "case_id",
    "channel",
    "referrer_type",
    "request",
    "received_at",
    "disposition",
    "submitted_by_kind",
    "submitted_by_id",
    "raw_payload",
    "normalised",
    "created_at",
)
DECISION_COLUMNS = (
    "id",
    "referral_id",
    "ruleset_version",
    "input_snapshot",
    "output",
    "eligibility_outcome",
    "urgency_code",
    "thrive_grouping",
    "route_kind",
    "queue_id",
    "respond_by_at",
    "decided_at",
)
EVENT_COLUMNS = (
    "id",
    "case_id",
    "seq",
    "type",
    "actor_kind",
    "actor_id",
    "actor_role",
    "from_status",
    "to_status",
    "data",
    "created_at",
)


def generate_chunk(
    start: int, count: int, *, open_every: int, now: datetime, ruleset_version: str
) -> Chunk:
    """Rows for cases ``start … start+count-1``; every ``open_every``-th case is open."""
    rng = random.Random(SEED * 1_000_003 + start)
    chunk = Chunk([], [], [], [], [])
    for index in range(start, start + count):
        is_open = index % open_every == 0
        person_id, case_id, referral_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        born = date(2004, 1, 1) + timedelta(days=rng.randrange(20 * 365))
        urgency = _pick(rng, URGENCY_WEIGHTS)
        queue_id = _pick(rng, QUEUE_WEIGHTS)
        if is_open:
            received = now - timedelta(minutes=rng.randrange(60 * 24 * 60))
            status = _pick(rng, OPEN_STATUS_WEIGHTS)
        else:
            received = now - timedelta(minutes=rng.randrange(60 * 24 * 365 * 5))
            status = "closed"
        hours = RESPOND_WITHIN_HOURS[urgency]
        respond_by = None if hours is None else received + timedelta(hours=hours)
        contacted = status in ("contacted", "active", "on_hold") or (
            status == "closed" and rng.random() < 0.9
        )
        first_contact = received + timedelta(hours=rng.randrange(1, 200)) if contacted else None
        held = status != "waiting"
        key_worker = f"worker-{rng.randrange(400)}" if held else None
        closed_at = (
            received + timedelta(days=rng.randrange(10, 300)) if status == "closed" else None
        )
        chunk.persons.append(
            (
                person_id,
                given,
                family,
                given.lower(),
                family.lower(),
                born,
                False,
                False,
                received,
                received,
            )
        )
        chunk.cases.append(
            (
                case_id,
                person_id,
                queue_id,
                status,
                urgency,
                URGENCY_RANK[urgency],
                received,
                respond_by,
                first_contact,
                "assessment" if first_contact else None,
                key_worker,
                received + timedelta(minutes=30) if held else None,
                THRIVE[urgency],
                rng.choice(OUTCOMES) if status == "closed" else None,
                closed_at,
                1 if status == "waiting" else 3,
                1 if status == "waiting" else 2,  # the timeline events written below
                received,
                closed_at or received,
            )
        )
        chunk.referrals.append(
            (
                referral_id,
                f"FB-{index >> 16:04X}-{index & 0xFFFF:04X}",
                person_id,
                case_id,
                "phone",
                "gp",
                "help",
                received,
                "case_opened",
                "staff",
                "bench",
                "{}",
                "{}",
                received,
            )
        )
        chunk.decisions.append(
            (
                uuid.uuid4(),
                referral_id,
                ruleset_version,
                "{}",
                "{}",
                "eligible",
                urgency,
                THRIVE[urgency],
                ROUTE_KIND.get(
                    queue_id, "community_base" if queue_id[:3] == "cb-" else "one_stop_shop"
                ),
                queue_id,
                respond_by,
                received,
            )
        )
        chunk.events.append(
            (
                uuid.uuid4(),
                case_id,
                1,
                "case_opened",
                "system",
                None,
                None,
                None,
                "waiting",
                "{}",
                received,
            )
        )
        if closed_at is not None:
            closed_event = ("closed", "staff", key_worker, "practitioner", "active", "closed")
            chunk.events.append((uuid.uuid4(), case_id, 2, *closed_event, "{}", closed_at))
        elif held:
            claimed_event = ("claimed", "staff", key_worker, "practitioner", "waiting", "allocated")
            chunk.events.append(
                (uuid.uuid4(), case_id, 2, *claimed_event, "{}", received + timedelta(minutes=30))
            )
    return chunk


def admin_dsn(dsn: str) -> str:
    return make_url(dsn).set(drivername="postgresql").render_as_string(hide_password=False)


def bench_dsn(dsn: str, database: str) -> str:
    url = make_url(dsn).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


async def database_ready(dsn: str, database: str, cases: int) -> bool:
    """The bench database exists, is migrated and holds the expected number of cases."""
    try:
        conn = await asyncpg.connect(bench_dsn(dsn, database))
    except asyncpg.InvalidCatalogNameError:
        return False
    try:
        found = await conn.fetchval("SELECT count(*) FROM cases")
    except asyncpg.UndefinedTableError:
        return False
    finally:
        await conn.close()
    return bool(found == cases)


async def create_database(dsn: str, database: str) -> None:
    conn = await asyncpg.connect(admin_dsn(dsn))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()


def migrate(dsn: str, database: str) -> None:
    from app.migrate import upgrade

    upgrade(Settings(database_url=bench_dsn(dsn, database)))


async def sync_queues(dsn: str, database: str) -> str:
    """The default directory's queues and ruleset record, as the app writes them at start-up."""
    from app.db import create_engine, create_session_factory
    from app.services.directory import sync_directory
    from app.triage import load_ruleset

    ruleset = load_ruleset(None)
    engine = create_engine(Settings(database_url=bench_dsn(dsn, database)))
    try:
        async with create_session_factory(engine)() as session:
            await sync_directory(session, ruleset, datetime.now(UTC))
            await session.commit()
    finally:
        await engine.dispose()
    return ruleset.version


def load_chunk(
    database_dsn: str,
    start: int,
    count: int,
    open_every: int,
    now: datetime,
    ruleset_version: str,
) -> int:
    """Build and COPY one chunk, in one transaction (runs in a worker process)."""

    async def run() -> int:
        chunk = generate_chunk(
            start, count, open_every=open_every, now=now, ruleset_version=ruleset_version
        )
        conn = await asyncpg.connect(database_dsn)
        try:
            # Rows are consistent by construction: skip per-row foreign-key triggers.
            await conn.execute("SET session_replication_role = replica")
            async with conn.transaction():
                for table, columns, rows in (
                    ("persons", PERSON_COLUMNS, chunk.persons),
                    ("cases", CASE_COLUMNS, chunk.cases),
                    ("referrals", REFERRAL_COLUMNS, chunk.referrals),
                    ("triage_decisions", DECISION_COLUMNS, chunk.decisions),
                    ("case_events", EVENT_COLUMNS, chunk.events),
                ):
                    await conn.copy_records_to_table(table, records=rows, columns=columns)
        finally:
            await conn.close()
        return len(chunk.cases)

    return asyncio.run(run())


async def load(
    dsn: str, database: str, *, cases: int, open_cases: int, loader_processes: int = 2
) -> dict[str, float]:
    """Create, migrate and fill the bench database; returns timings in seconds."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    await create_database(dsn, database)
    await asyncio.to_thread(migrate, dsn, database)
    ruleset_version = await sync_queues(dsn, database)
    timings["create_and_migrate_s"] = time.perf_counter() - started

    now = datetime.now(UTC).replace(microsecond=0)
    open_every = cases // open_cases
    copy_started = time.perf_counter()
    # Each worker process builds a chunk's rows and COPYs them on its own connection, so
    # Python's row building and PostgreSQL's COPY overlap across the cores.
    jobs = [
        (
            bench_dsn(dsn, database),
            start,
            min(CHUNK_ROWS, cases - start),
            open_every,
            now,
            ruleset_version,
        )
        for start in range(0, cases, CHUNK_ROWS)
    ]
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=loader_processes) as pool:
        done = 0
        for finished in asyncio.as_completed(
            [loop.run_in_executor(pool, load_chunk, *job) for job in jobs]
        ):
            done += await finished
            rate = done / (time.perf_counter() - copy_started)
            print(f"  loaded {done:,} cases ({rate:,.0f} cases/s)", file=sys.stderr)
    conn = await asyncpg.connect(bench_dsn(dsn, database))
    try:
        timings["copy_s"] = time.perf_counter() - copy_started
        vacuum_started = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze_s"] = time.perf_counter() - vacuum_started
        opened = await conn.fetchval("SELECT count(*) FROM cases WHERE status <> 'closed'")
        assert opened == open_cases, opened
    finally:
        await conn.close()
    timings["total_s"] = time.perf_counter() - started
    return timings


# EXPLAIN -----------------------------------------------------------------------------------------

BUSIEST_QUEUE = "cb-norwich"


async def explain_plans(dsn: str, database: str) -> tuple[str, dict[str, bool]]:
    """EXPLAIN (ANALYZE, BUFFERS) of the service's own statements, rolled back afterwards."""
    from app.db import create_engine
    from app.services.queues import (
        CLAIM_STATEMENT_POSTGRESQL,
        Cursor,
        queue_overview_statement,
        worklist_statement,
    )

    engine = create_engine(Settings(database_url=bench_dsn(dsn, database)))
    now = datetime.now(UTC)
    sections: list[str] = []
    checks: dict[str, bool] = {}
    try:
        async with engine.connect() as conn:
            open_in_queue = (
                await conn.exec_driver_sql(
                    "SELECT count(*) FROM cases WHERE queue_id = $1 AND status <> 'closed'",
                    (BUSIEST_QUEUE,),
                )
            ).scalar_one()
            depth = min(5000, open_in_queue // 2)
            deep: Any = (
                await conn.exec_driver_sql(
                    "SELECT urgency_rank, respond_by_sort_at, id FROM cases "
                    "WHERE queue_id = $1 AND status <> 'closed' "
                    "ORDER BY urgency_rank, respond_by_sort_at, id OFFSET $2 LIMIT 1",
                    (BUSIEST_QUEUE, depth),
                )
            ).one()
            statements: dict[str, tuple[Any, dict[str, Any]]] = {
                "worklist first page": (worklist_statement(BUSIEST_QUEUE, now=now), {}),
                f"worklist page after {depth:,} rows (keyset cursor)": (
                    worklist_statement(
                        BUSIEST_QUEUE,
                        now=now,
                        cursor=Cursor(deep[0], deep[1], uuid.UUID(str(deep[2]))),
                    ),
                    {},
                ),
                "claim (one statement: FOR UPDATE SKIP LOCKED, update, event, audit, with "
                "person and referrals)": (
                    CLAIM_STATEMENT_POSTGRESQL,
                    {
                        "claim_queue_id": BUSIEST_QUEUE,
                        "claim_key_worker_id": "bench-explain",
                        "claim_now": now,
                        "claim_event_id": uuid.uuid4(),
                        "claim_audit_id": uuid.uuid4(),
                        "claim_request_id": None,
                        "claim_actor_kind": "staff",
                        "claim_actor_id": "bench-explain",
                        "claim_actor_role": "practitioner",
                        "claim_actor_organisation": None,
                    },
                ),
                "queue overview (counts)": (queue_overview_statement(now), {}),
            }
            for title, (statement, bound) in statements.items():
                compiled = statement.compile(dialect=conn.dialect)
                params = compiled.construct_params(bound)
                args = tuple(params[name] for name in compiled.positiontup or ())
                try:
                    rows = await conn.exec_driver_sql(
                        "EXPLAIN (ANALYZE, BUFFERS) " + compiled.string, args
                    )
                    plan = "\n".join(row[0] for row in rows)
                finally:
                    # The claim's EXPLAIN ANALYZE really claims a case: undo it.
                    await conn.rollback()
                if title.startswith("claim"):
                    expected = "Index Scan using ix_cases_unallocated"
                elif title.startswith("queue overview"):
                    expected = "Index Only Scan using ix_cases_open_worklist"
                else:
                    expected = "Index Scan using ix_cases_open_worklist"
                checks[title] = expected in plan and "Sort" not in plan
                sections.append(f"-- {title}\n{compiled.string}\n\n{plan}\n")
    finally:
        await engine.dispose()
    return "\n".join(sections), checks


# HTTP --------------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summary(latencies_s: list[float], errors: int, elapsed_s: float) -> dict[str, float]:
    values = sorted(x * 1000 for x in latencies_s)
    return {
        "requests": len(values),
        "errors": errors,
        "throughput_per_s": round(len(values) / elapsed_s, 1),
        "p50_ms": round(percentile(values, 0.50), 2),
        "p90_ms": round(percentile(values, 0.90), 2),
        "p99_ms": round(percentile(values, 0.99), 2),
        "max_ms": round(values[-1], 2),
    }


async def closed_loop(
    concurrency: int,
    requests_per_worker: int,
    send: Callable[[int, int], Awaitable[bool]],
) -> dict[str, float]:
    """``concurrency`` workers, each sending ``requests_per_worker`` requests back to back."""
    latencies: list[float] = []
    errors = 0

    async def worker(worker_index: int) -> None:
        nonlocal errors
        for request_index in range(requests_per_worker):
            started = time.perf_counter()
            ok = await send(worker_index, request_index)
            latencies.append(time.perf_counter() - started)
            errors += 0 if ok else 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return summary(latencies, errors, time.perf_counter() - started)


async def paced_loop(
    workers: int,
    requests_per_worker: int,
    think_ms: float,
    send: Callable[[int, int], Awaitable[bool]],
) -> dict[str, float]:
    """``workers`` people, each sending a request, then pausing (exponential think time with
    mean ``think_ms``) before the next: concurrent users below saturation, not a flood."""
    latencies: list[float] = []
    errors = 0
    rng = random.Random(SEED)

    async def worker(worker_index: int) -> None:
        nonlocal errors
        # Start spread out over one think time, as people do.
        await asyncio.sleep(rng.random() * think_ms / 1000)
        for request_index in range(requests_per_worker):
            started = time.perf_counter()
            ok = await send(worker_index, request_index)
            latencies.append(time.perf_counter() - started)
            errors += 0 if ok else 1
            await asyncio.sleep(rng.expovariate(1000 / think_ms))

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(workers)))
    return summary(latencies, errors, time.perf_counter() - started)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str


def start_server(
    dsn: str, database: str, port: int, workers: int, log_path: Path, app_root: Path = REPO
) -> Server:
    """``frontdoor serve`` from ``app_root`` against the bench database, in its own process
    group."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": bench_dsn(dsn, database),
            "FRONTDOOR_JWT_SECRET": BENCH_JWT_SECRET,
            "FRONTDOOR_ENVIRONMENT": "production",
            "FRONTDOOR_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(app_root),
        }
    )
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        cwd=app_root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Server(process=process, url=f"http://127.0.0.1:{port}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


async def wait_ready(client: httpx.AsyncClient, server: Server, path: str = "/readyz") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError("the server exited; see its log in bench/out/")
        try:
            if (await client.get(path)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the server did not become ready within 60 s")


def staff_token(subject: str, role: Role) -> str:
    settings = Settings(jwt_secret=BENCH_JWT_SECRET)
    return issue_staff_token(
        settings,
        subject=subject,
        role=role,
        queue_ids=list(QUEUE_WEIGHTS),
        now=datetime.now(UTC),
        lifetime=timedelta(hours=2),
    )


def server_cpu_seconds(server: Server) -> float:
    """User + system CPU of the server's processes (its session: uvicorn and any workers)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        # After the command name: state, ppid, pgrp, session (index 3), …, utime (11), stime (12).
        if int(fields[3]) == server.process.pid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class RawClient:
    """One keep-alive connection per worker over bench/loadgen.py's raw HTTP/1.1 client.

    httpx costs the client about 2.5 ms of CPU a request on this VM; at 20 concurrent workers
    its own event loop then saturates (``GET /healthz`` p99 over 400 ms while the server spent
    0.8 ms on each), so the figures measured the client. This one is a write and two reads.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.netloc = parts.netloc
        self.connections: dict[int, loadgen.Connection] = {}

    def request(self, method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
        return loadgen.http_request(method, self.netloc, path, headers or {})

    async def send(self, worker: int, request: bytes) -> tuple[int, bytes]:
        """(status, body) on the worker's own connection, reconnecting if the server closed it."""
        conn = self.connections.get(worker)
        if conn is not None and time.monotonic() - conn.last_used >= loadgen.MAX_IDLE_SECONDS:
            conn.close()  # the server may close it as we write (uvicorn's keep-alive timeout)
            conn = None
        if conn is None:
            conn = self.connections[worker] = await loadgen.Connection.open(self.host, self.port)
        status, keep_alive, body = await conn.exchange(request)
        if not keep_alive:
            conn.close()
            del self.connections[worker]
        return status, body

    def close(self) -> None:
        for conn in self.connections.values():
            conn.close()


async def run_http(
    args: argparse.Namespace, *, app_root: Path, server_workers: int, claims_only: bool
) -> dict[str, Any]:
    """Baselines, worklist first page and claims through the real HTTP path, served from
    ``app_root`` with ``server_workers`` uvicorn workers."""
    log_path = OUT / f"queues_server_{server_workers}w.log"
    server = start_server(args.dsn, args.db, args.port, server_workers, log_path, app_root)
    results: dict[str, Any] = {}
    raw = RawClient(server.url)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            # Another checkout may predate the current migration head: wait for liveness only
            # (every measured request's status is still checked).
            await wait_ready(client, server, "/readyz" if app_root == REPO else "/healthz")
        reader = {"Authorization": f"Bearer {staff_token('bench-reader', Role.PRACTITIONER)}"}
        claim_requests = [
            raw.request(
                "POST",
                f"/v1/queues/{BUSIEST_QUEUE}/claim",
                {"Authorization": f"Bearer {staff_token(f'bench-worker-{n}', Role.PRACTITIONER)}"},
            )
            for n in range(args.concurrency)
        ]
        healthz_request = raw.request("GET", "/healthz")
        page_requests = [raw.request("GET", f"/v1/queues/{q}/cases", reader) for q in QUEUE_WEIGHTS]
        busiest_request = raw.request("GET", f"/v1/queues/{BUSIEST_QUEUE}/cases", reader)
        overview_request = raw.request("GET", "/v1/queues", reader)

        async def healthz(worker: int, _index: int) -> bool:
            return (await raw.send(worker, healthz_request))[0] == 200

        async def first_page(worker: int, index: int) -> bool:
            request = page_requests[(worker + index) % len(page_requests)]
            status, body = await raw.send(worker, request)
            return status == 200 and len(json.loads(body)["items"]) == 50

        async def busiest_first_page(worker: int, _index: int) -> bool:
            return (await raw.send(worker, busiest_request))[0] == 200

        async def overview(worker: int, _index: int) -> bool:
            return (await raw.send(worker, overview_request))[0] == 200

        async def claim(worker: int, _index: int) -> bool:
            return (await raw.send(worker, claim_requests[worker]))[0] == 200

        # Warm up connections, the pool, the plan cache and the OS caches (every worker
        # process: 20 concurrent requests spread over them).
        await closed_loop(args.concurrency, 20, first_page)
        await closed_loop(args.concurrency, 20, healthz)
        await closed_loop(args.concurrency, 2, claim)

        n, c, think = args.requests, args.concurrency, args.think_ms
        results["baseline_healthz_c1"] = await closed_loop(1, n // 4, healthz)
        results[f"baseline_healthz_{c}_workers_paced"] = await paced_loop(c, n // c, think, healthz)
        results[f"baseline_healthz_c{c}"] = await closed_loop(c, n // c, healthz)
        if not claims_only:
            results["worklist_first_page_c1"] = await closed_loop(1, n // 4, first_page)
            results["worklist_first_page_busiest_c1"] = await closed_loop(
                1, n // 4, busiest_first_page
            )
            results[f"worklist_first_page_{c}_workers_paced"] = await paced_loop(
                c, n // c, think, first_page
            )
            results[f"worklist_first_page_c{c}"] = await closed_loop(c, n // c, first_page)
            results["queue_overview_c1"] = await closed_loop(1, n // 10, overview)
        cpu_before = server_cpu_seconds(server)
        results["claim_c1"] = await closed_loop(1, args.claims // 10, claim)
        results["claim_c1"]["server_cpu_ms_per_request"] = round(
            (server_cpu_seconds(server) - cpu_before) * 1000 / (args.claims // 10), 2
        )
        results[f"claim_{c}_workers_paced"] = await paced_loop(
            c, args.claims // 2 // c, think, claim
        )
        results[f"claim_c{c}"] = await closed_loop(c, args.claims // c, claim)
    finally:
        raw.close()
        stop_server(server)
    return results


async def run_database_baselines(args: argparse.Namespace) -> dict[str, Any]:
    """What the database alone does: a bare round trip, and the claim transaction's SQL."""
    c = args.concurrency
    return {
        "select_1_c1": await select_one(args, 1),
        f"select_1_c{c}": await select_one(args, c),
        f"claim_sql_only_{c}_workers_paced": await sql_claims(args, c, paced=True),
        f"claim_sql_only_c{c}": await sql_claims(args, c),
    }


async def select_one(args: argparse.Namespace, concurrency: int) -> dict[str, float]:
    """The floor: a bare ``SELECT 1`` round trip on a pool of asyncpg connections."""
    pool = await asyncpg.create_pool(
        bench_dsn(args.dsn, args.db), min_size=concurrency, max_size=concurrency
    )
    assert pool is not None

    async def one(_worker: int, _index: int) -> bool:
        return bool(await pool.fetchval("SELECT 1") == 1)

    try:
        await closed_loop(concurrency, 50, one)
        return await closed_loop(concurrency, args.requests // concurrency, one)
    finally:
        await pool.close()


SQL_CLAIM_QUEUE = "oss-norwich"


async def sql_claims(
    args: argparse.Namespace, concurrency: int, *, paced: bool = False
) -> dict[str, float]:
    """The claim transaction alone, as the service issues it (the service's own claim SELECT,
    then the case UPDATE, the timeline INSERT, the audit INSERT and COMMIT), on ``concurrency``
    connections at once: what SKIP LOCKED contention costs in the database, without Python
    web-stack CPU in the way."""
    from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

    from app.services.queues import CLAIM_STATEMENT

    compiled = CLAIM_STATEMENT.compile(dialect=PGDialect_asyncpg())  # type: ignore[no-untyped-call]
    params = compiled.construct_params({"queue_id": SQL_CLAIM_QUEUE})
    claim_args = tuple(params[name] for name in compiled.positiontup or ())
    pool = await asyncpg.create_pool(
        bench_dsn(args.dsn, args.db), min_size=concurrency, max_size=concurrency
    )
    assert pool is not None

    async def claim(worker: int, _index: int) -> bool:
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(compiled.string, *claim_args)
            if row is None:
                return False
            case_id, person_id, version = row["id"], row["person_id"], row["version"]
            seq = row["last_event_seq"] + 1
            worker_id = f"bench-sql-{worker}"
            await conn.execute(
                "UPDATE cases SET status = 'allocated', key_worker_id = $2, allocated_at = now(), "
                "version = $3, last_event_seq = $4, updated_at = now() "
                "WHERE id = $1 AND version = $5",
                case_id,
                worker_id,
                version + 1,
                seq,
                version,
            )
            await conn.execute(
                "INSERT INTO case_events (id, case_id, seq, type, actor_kind, actor_id, "
                "actor_role, from_status, to_status, data, created_at) VALUES ($1, $2, $3, "
                "'claimed', 'staff', $4, 'practitioner', 'waiting', 'allocated', '{}', now())",
                uuid.uuid4(),
                case_id,
                seq,
                worker_id,
            )
            await conn.execute(
                "INSERT INTO audit_events (id, occurred_at, actor_kind, actor_id, actor_role, "
                "action, resource_type, resource_id, person_id, outcome, details) VALUES ($1, "
                "now(), 'staff', $2, 'practitioner', 'claim', 'case', $3, $4, 'success', '{}')",
                uuid.uuid4(),
                worker_id,
                str(case_id),
                person_id,
            )
        return True

    try:
        if paced:
            return await paced_loop(
                concurrency, args.claims // 2 // concurrency, args.think_ms, claim
            )
        return await closed_loop(concurrency, args.claims // concurrency, claim)
    finally:
        await pool.close()


# Reporting ---------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    with Path("/proc/cpuinfo").open() as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    with Path("/proc/meminfo").open() as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal"):
                memory_kb = int(line.split()[1])
    return {
        "cpu": cpu,
        "nproc": str(os.cpu_count()),
        "ram_gib": f"{memory_kb / 1024 / 1024:.1f}",
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


async def postgres_version(dsn: str) -> str:
    conn = await asyncpg.connect(admin_dsn(dsn))
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--db", default=DEFAULT_DB, help="the bench database (recreated)")
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--open", dest="open_cases", type=int, default=50_000)
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded database")
    parser.add_argument("--loader-processes", type=int, default=2)
    parser.add_argument("--port", type=int, default=8131)
    parser.add_argument(
        "--server-workers",
        type=int,
        nargs="+",
        default=[1],
        help="uvicorn worker processes; several values: one HTTP run for each",
    )
    parser.add_argument(
        "--before-app-root",
        type=Path,
        help="first serve the API from this checkout (e.g. `git worktree add /tmp/before HEAD`), "
        "then from this one: a before/after in the same run",
    )
    parser.add_argument(
        "--claims-only",
        action="store_true",
        help="measure only the healthz baseline and claims (not worklists and the overview)",
    )
    parser.add_argument("--concurrency", type=int, default=20, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=2000, help="requests per measurement")
    parser.add_argument("--claims", type=int, default=1000, help="claims at full concurrency")
    parser.add_argument(
        "--think-ms", type=float, default=200, help="mean pause between a paced worker's requests"
    )
    return parser.parse_args(argv)


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": machine(),
        "postgres": await postgres_version(args.dsn),
        "command": "python bench/bench_queues.py " + " ".join(sys.argv[1:]),
        "cases": args.cases,
        "open_cases": args.open_cases,
    }
    if args.reuse and await database_ready(args.dsn, args.db, args.cases):
        print(f"reusing {args.db}", file=sys.stderr)
        # A database loaded before the latest migrations: bring it to head first.
        await asyncio.to_thread(migrate, args.dsn, args.db)
        # Claims from earlier runs used up waiting cases: put them back.
        await reset_claims(args.dsn, args.db)
    else:
        print(f"loading {args.cases:,} cases into {args.db}", file=sys.stderr)
        report["load"] = await load(
            args.dsn,
            args.db,
            cases=args.cases,
            open_cases=args.open_cases,
            loader_processes=args.loader_processes,
        )
        print(f"  {report['load']}", file=sys.stderr)
    plans, checks = await explain_plans(args.dsn, args.db)
    (OUT / "queues_explain.txt").write_text(plans)
    report["explain_uses_index_without_sort"] = checks
    print(f"EXPLAIN: {checks} (plans in bench/out/queues_explain.txt)", file=sys.stderr)
    report["loadavg_before"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    # (label, checkout to serve, uvicorn workers, claims only): the first worker count gets
    # every measurement, further ones claims only (what more workers are meant to help).
    roots = [("after", REPO)]
    if args.before_app_root is not None:
        roots.insert(0, (f"before ({args.before_app_root})", args.before_app_root))
    runs = [
        (f"{name}, {w} server worker(s)", root, w, args.claims_only or index > 0)
        for name, root in roots
        for index, w in enumerate(args.server_workers)
    ]
    report["http"] = {}
    for label, app_root, workers, claims_only in runs:
        print(f"HTTP: {label}", file=sys.stderr)
        report["http"][label] = await run_http(
            args, app_root=app_root, server_workers=workers, claims_only=claims_only
        )
        await reset_claims(args.dsn, args.db)
    report["database"] = await run_database_baselines(args)
    report["loadavg_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    (OUT / "queues_results.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))
    return 0


async def reset_claims(dsn: str, database: str) -> None:
    """Return cases claimed by earlier bench runs to waiting (events stay: append-only).

    Each case's event counter is set from its timeline again: a checkout from before the
    counter (``--before-app-root``) appends events without bumping it.
    """
    conn = await asyncpg.connect(bench_dsn(dsn, database))
    try:
        await conn.execute(
            "UPDATE cases SET status = 'waiting', key_worker_id = NULL, allocated_at = NULL, "
            "last_event_seq = (SELECT max(seq) FROM case_events WHERE case_id = cases.id) "
            "WHERE key_worker_id LIKE 'bench-worker-%' OR key_worker_id LIKE 'bench-sql-%'"
        )
        await conn.execute("VACUUM ANALYZE cases")
    finally:
        await conn.close()


if __name__ == "__main__":
    raise SystemExit(loadgen.run(main()))
