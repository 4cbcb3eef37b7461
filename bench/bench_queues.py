"""Benchmark: queue worklists and claiming on PostgreSQL with 1,000,000 cases (50,000 open).

    python bench/bench_queues.py --dsn postgresql://postgres@127.0.0.1:5432/postgres
    python bench/bench_queues.py --smoke --dsn "$PG_URL"     # 4,000 cases, seconds

1. Creates the database ``frontdoor_bench_queues`` on that server (``--reuse`` keeps a loaded
   one), migrates it with the application's migrations and syncs the default directory.
2. Loads 1,000,000 people, their cases (50,000 open, spread unevenly over the 15 queues; the
   rest closed), one referral and triage decision per case and the case timelines, with asyncpg
   COPY (``copy_records_to_table``), then ``VACUUM ANALYZE``.
3. Saves ``EXPLAIN (ANALYZE, BUFFERS)`` of the worklist first page, a deep keyset page and the
   claim query (the exact SQL the service builds) to ``bench/out/queues_explain.txt`` and checks
   that they walk the partial indexes.
4. Serves the API with ``frontdoor serve`` (bench/harness.py: a real process on a loopback
   port) and drives it over raw keep-alive connections (bench/loadgen.py's client and worker
   loops, on uvloop; bounded request counts): a same-run baseline (``GET /healthz``), the
   worklist first page, and claims with 20 concurrent workers, with the server's CPU per claim.
   ``--server-workers 1 2`` repeats the claims with 2 uvicorn workers; ``--before-app-root
   PATH`` first serves the same measurements from another checkout (the code before a change)
   against the same database: a before/after in one run.
5. The database alone: a bare ``SELECT 1`` round trip, and the claim transaction's own SQL on
   20 asyncpg connections. Prints the figures and writes ``bench/out/queues_results.json``.

``--reuse`` keeps a loaded database: it is migrated to head and earlier claims are undone.
Exits 1 if any request failed (or, at full size, a plan does not use its index).

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
import os  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, date, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import asyncpg  # noqa: E402
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg  # noqa: E402

from app.config import Settings  # noqa: E402
from app.db import create_engine  # noqa: E402
from app.security import Role, issue_staff_token  # noqa: E402
from app.services.claims import CLAIM_STATEMENT, CLAIM_STATEMENT_POSTGRESQL  # noqa: E402
from app.services.queues import (  # noqa: E402
    Cursor,
    queue_overview_statement,
    worklist_statement,
)
from bench import generate_data, harness, loadgen  # noqa: E402

OUT = harness.OUT
DEFAULT_DB = "frontdoor_bench_queues"
CHUNK_ROWS = 50_000
SEED = 2026
PAGE_SIZE = 50
# --smoke: every step on 4,000 cases (2,000 open), 4 workers, a few dozen requests.
SMOKE = {
    "cases": 4_000,
    "open_cases": 2_000,
    "chunk_rows": 1_000,
    "concurrency": 4,
    "requests": 40,
    "claims": 20,
    "think_ms": 20.0,
}

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
DECISION_COLUMNS = generate_data.COLUMNS["triage_decisions"]  # the same decision columns
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


async def database_ready(dsn: str, cases: int) -> bool:
    """The bench database exists, is migrated and holds the expected number of cases."""
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        return False
    try:
        found = await conn.fetchval("SELECT count(*) FROM cases")
    except asyncpg.UndefinedTableError:
        return False
    finally:
        await conn.close()
    return bool(found == cases)


def load_chunk(
    dsn: str, start: int, count: int, open_every: int, now: datetime, ruleset_version: str
) -> int:
    """Build and COPY one chunk, in one transaction (runs in a worker process)."""

    async def run() -> int:
        chunk = generate_chunk(
            start, count, open_every=open_every, now=now, ruleset_version=ruleset_version
        )
        conn = await asyncpg.connect(dsn)
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


async def load(args: argparse.Namespace, dsn: str) -> dict[str, float]:
    """Create, migrate and fill the bench database; returns timings in seconds."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    await harness.create_database(args.dsn, args.db)
    ruleset_version = await asyncio.to_thread(harness.migrate, dsn)
    timings["create_and_migrate_s"] = time.perf_counter() - started

    now = datetime.now(UTC).replace(microsecond=0)
    open_every = args.cases // args.open_cases
    copy_started = time.perf_counter()
    # Each worker process builds a chunk's rows and COPYs them on its own connection, so
    # Python's row building and PostgreSQL's COPY overlap across the cores.
    size = args.chunk_rows
    jobs = [
        (dsn, start, min(size, args.cases - start), open_every, now, ruleset_version)
        for start in range(0, args.cases, size)
    ]
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=args.loader_processes) as pool:
        done = 0
        for finished in asyncio.as_completed(
            [loop.run_in_executor(pool, load_chunk, *job) for job in jobs]
        ):
            done += await finished
            rate = done / (time.perf_counter() - copy_started)
            print(f"  loaded {done:,} cases ({rate:,.0f} cases/s)", file=sys.stderr)
    conn = await asyncpg.connect(dsn)
    try:
        timings["copy_s"] = time.perf_counter() - copy_started
        vacuum_started = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze_s"] = time.perf_counter() - vacuum_started
        opened = await conn.fetchval("SELECT count(*) FROM cases WHERE status <> 'closed'")
        if opened != args.open_cases:
            raise RuntimeError(f"{opened} open cases loaded, not {args.open_cases}")
    finally:
        await conn.close()
    timings["total_s"] = time.perf_counter() - started
    return timings


async def reset_claims(dsn: str) -> None:
    """Return cases claimed by earlier bench runs to waiting (events stay: append-only).

    Each case's event counter is set from its timeline again: a checkout from before the
    counter (``--before-app-root``) appends events without bumping it.
    """
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE cases SET status = 'waiting', key_worker_id = NULL, allocated_at = NULL, "
            "last_event_seq = (SELECT max(seq) FROM case_events WHERE case_id = cases.id) "
            "WHERE key_worker_id LIKE 'bench-worker-%' OR key_worker_id LIKE 'bench-sql-%'"
        )
        await conn.execute("VACUUM ANALYZE cases")
    finally:
        await conn.close()


# EXPLAIN -----------------------------------------------------------------------------------------

BUSIEST_QUEUE = "cb-norwich"


async def explain_plans(dsn: str) -> tuple[str, dict[str, bool]]:
    """EXPLAIN (ANALYZE, BUFFERS) of the service's own statements, rolled back afterwards."""
    engine = create_engine(Settings(database_url=dsn))
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


async def measure(
    results: dict[str, Any],
    key: str,
    workers: int,
    per_worker: int,
    send: loadgen.Send,
    think_ms: float | None = None,
) -> dict[str, Any]:
    """One measurement (bench/loadgen.py's worker loop) into ``results[key]``; printed too."""
    outcome = await loadgen.worker_loop(workers, per_worker, send, think_ms=think_ms, seed=SEED)
    figures = results[key] = outcome.summary()
    latency = figures["latency_ms"]
    print(
        f"  {key:40s} p50 {latency.get('p50', 0):7.2f} ms  p99 {latency.get('p99', 0):7.2f} ms  "
        f"{figures['achieved_rps']:7.1f}/s  errors {figures['errors']}",
        file=sys.stderr,
    )
    return figures


def staff_token(subject: str, role: Role) -> str:
    settings = Settings(jwt_secret=harness.BENCH_JWT_SECRET)
    return issue_staff_token(
        settings,
        subject=subject,
        role=role,
        queue_ids=list(QUEUE_WEIGHTS),
        now=datetime.now(UTC),
        lifetime=timedelta(hours=2),
    )


def full_page(status: int, body: bytes) -> bool:
    """A worklist first page: 50 cases, or every open case of a queue with fewer."""
    if status != 200:
        return False
    page = json.loads(body)
    return bool(page["items"]) and (len(page["items"]) == PAGE_SIZE or not page["next_cursor"])


async def run_http(
    args: argparse.Namespace,
    dsn: str,
    *,
    app_root: Path,
    server_workers: int,
    claims_only: bool,
) -> dict[str, Any]:
    """Baselines, worklist first page and claims through the real HTTP path, served from
    ``app_root`` with ``server_workers`` uvicorn workers."""
    server = harness.start_frontdoor(
        dsn,
        args.port,
        app_dir=app_root,
        workers=server_workers,
        log_path=OUT / f"queues_server_{server_workers}w.log",
        # Another checkout may predate the current migration head: wait for liveness only
        # (every measured request's status is still checked).
        ready_path="/readyz" if app_root == REPO else "/healthz",
    )
    results: dict[str, Any] = {}
    parts = urlsplit(server.url)
    pool = loadgen.Pool(parts.hostname or "127.0.0.1", parts.port or 80, args.concurrency)

    def request(path: str, token: str | None = None, method: str = "GET") -> bytes:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return loadgen.http_request(method, parts.netloc, path, headers)

    try:
        reader = staff_token("bench-reader", Role.PRACTITIONER)
        claim_requests = [
            request(
                f"/v1/queues/{BUSIEST_QUEUE}/claim",
                staff_token(f"bench-worker-{n}", Role.PRACTITIONER),
                "POST",
            )
            for n in range(args.concurrency)
        ]
        healthz_request = request("/healthz")
        page_requests = [request(f"/v1/queues/{q}/cases", reader) for q in QUEUE_WEIGHTS]
        busiest_request = request(f"/v1/queues/{BUSIEST_QUEUE}/cases", reader)
        overview_request = request("/v1/queues", reader)

        async def healthz(_worker: int, _index: int) -> bool:
            return (await pool.exchange(healthz_request))[0] == 200

        async def first_page(worker: int, index: int) -> bool:
            return full_page(
                *await pool.exchange(page_requests[(worker + index) % len(QUEUE_WEIGHTS)])
            )

        async def busiest_first_page(_worker: int, _index: int) -> bool:
            return full_page(*await pool.exchange(busiest_request))

        async def overview(_worker: int, _index: int) -> bool:
            return (await pool.exchange(overview_request))[0] == 200

        async def claim(worker: int, _index: int) -> bool:
            return (await pool.exchange(claim_requests[worker]))[0] == 200

        # Warm up connections, the pool, the plan cache and the OS caches (every worker
        # process: 20 concurrent requests spread over them).
        warm: dict[str, Any] = {}
        await measure(warm, "warm-up: worklist first page", args.concurrency, 20, first_page)
        await measure(warm, "warm-up: healthz", args.concurrency, 20, healthz)
        await measure(warm, "warm-up: claim", args.concurrency, 2, claim)
        results["warm_up_errors"] = sum(figures["errors"] for figures in warm.values())

        n, c, think = args.requests, args.concurrency, args.think_ms
        await measure(results, "baseline_healthz_c1", 1, n // 4, healthz)
        await measure(results, f"baseline_healthz_{c}_workers_paced", c, n // c, healthz, think)
        await measure(results, f"baseline_healthz_c{c}", c, n // c, healthz)
        if not claims_only:
            await measure(results, "worklist_first_page_c1", 1, n // 4, first_page)
            await measure(results, "worklist_first_page_busiest_c1", 1, n // 4, busiest_first_page)
            await measure(
                results, f"worklist_first_page_{c}_workers_paced", c, n // c, first_page, think
            )
            await measure(results, f"worklist_first_page_c{c}", c, n // c, first_page)
            await measure(results, "queue_overview_c1", 1, n // 10, overview)
        cpu_before = server.cpu_seconds()
        claim_c1 = await measure(results, "claim_c1", 1, args.claims // 10, claim)
        claim_c1["server_cpu_ms_per_request"] = round(
            (server.cpu_seconds() - cpu_before) * 1000 / (args.claims // 10), 2
        )
        await measure(results, f"claim_{c}_workers_paced", c, args.claims // 2 // c, claim, think)
        await measure(results, f"claim_c{c}", c, args.claims // c, claim)
    finally:
        pool.close()
        harness.stop_server(server)
    return results


# The database alone ------------------------------------------------------------------------------


async def run_database_baselines(args: argparse.Namespace, dsn: str) -> dict[str, Any]:
    """What the database alone does: a bare round trip, and the claim transaction's SQL."""
    c = args.concurrency
    results: dict[str, Any] = {}
    await select_one(args, dsn, results, 1)
    await select_one(args, dsn, results, c)
    await sql_claims(args, dsn, results, c, paced=True)
    await sql_claims(args, dsn, results, c)
    return results


async def select_one(
    args: argparse.Namespace, dsn: str, results: dict[str, Any], concurrency: int
) -> None:
    """The floor: a bare ``SELECT 1`` round trip on a pool of asyncpg connections."""
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    assert pool is not None

    async def one(_worker: int, _index: int) -> bool:
        return bool(await pool.fetchval("SELECT 1") == 1)

    try:
        await loadgen.worker_loop(concurrency, 50, one)
        per_worker = args.requests // concurrency
        await measure(results, f"select_1_c{concurrency}", concurrency, per_worker, one)
    finally:
        await pool.close()


SQL_CLAIM_QUEUE = "oss-norwich"


async def sql_claims(
    args: argparse.Namespace,
    dsn: str,
    results: dict[str, Any],
    concurrency: int,
    *,
    paced: bool = False,
) -> None:
    """The claim transaction alone, as the service issued it before it became one statement
    (its claim SELECT, then the case UPDATE, the timeline INSERT, the audit INSERT and COMMIT),
    on ``concurrency`` connections at once: what SKIP LOCKED contention costs in the database,
    without Python web-stack CPU in the way."""
    compiled = CLAIM_STATEMENT.compile(dialect=PGDialect_asyncpg())  # type: ignore[no-untyped-call]
    params = compiled.construct_params({"queue_id": SQL_CLAIM_QUEUE})
    claim_args = tuple(params[name] for name in compiled.positiontup or ())
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
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

    c = concurrency
    try:
        if paced:
            await measure(
                results,
                f"claim_sql_only_{c}_workers_paced",
                c,
                args.claims // 2 // c,
                claim,
                args.think_ms,
            )
        else:
            await measure(results, f"claim_sql_only_c{c}", c, args.claims // c, claim)
    finally:
        await pool.close()


# Command line ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_dsn_argument(parser)
    parser.add_argument("--db", default=DEFAULT_DB, help="the bench database (recreated)")
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--open", dest="open_cases", type=int, default=50_000)
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded database")
    parser.add_argument("--loader-processes", type=int, default=2)
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help="cases per COPY chunk")
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
    harness.add_smoke_argument(parser)
    args = parser.parse_args(argv)
    if args.cases % args.open_cases:
        parser.error("--cases must be a multiple of --open (every n-th case is open)")
    if args.smoke:
        vars(args).update(SMOKE, db=harness.smoke_database("queues"), port=harness.free_port())
        args.reuse = False
    return args


def failures(report: dict[str, Any]) -> list[str]:
    """Every measurement with a failed request (and, at full size, every plan off its index:
    a few thousand rows are read faster without one, so a smoke run's plans prove nothing)."""
    found = [
        f"{run}: {key}: {figures['errors']} failed"
        for run, measurements in [*report["http"].items(), ("database", report["database"])]
        for key, figures in measurements.items()
        if isinstance(figures, dict) and figures["errors"]
    ]
    found += [
        f"{run}: {count} warm-up requests failed"
        for run, measurements in report["http"].items()
        if (count := measurements.get("warm_up_errors"))
    ]
    if not report["smoke"]:
        found += [
            f"EXPLAIN: {title} does not use its index without a sort"
            for title, ok in report["explain_uses_index_without_sort"].items()
            if not ok
        ]
    return found


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    harness.stop_cleanly_on_signals()
    OUT.mkdir(parents=True, exist_ok=True)
    dsn = harness.database_dsn(args.dsn, args.db)
    try:
        report = await measure_all(args, dsn)
    finally:
        if args.smoke:
            await harness.drop_database(args.dsn, args.db)
    (OUT / ("queues_smoke.json" if args.smoke else "queues_results.json")).write_text(
        json.dumps(report, indent=2, default=str)
    )
    if not args.smoke:
        print(json.dumps(report, indent=2, default=str))
    problems = failures(report)
    for problem in problems:
        print(f"FAILED {problem}", file=sys.stderr)
    return 1 if problems else 0


async def measure_all(args: argparse.Namespace, dsn: str) -> dict[str, Any]:
    report: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": harness.machine(harness.database_dsn(args.dsn, "postgres")),
        "command": "python bench/bench_queues.py " + " ".join(sys.argv[1:]),
        "smoke": args.smoke,
        "cases": args.cases,
        "open_cases": args.open_cases,
    }
    if args.reuse and await database_ready(dsn, args.cases):
        print(f"reusing {args.db}", file=sys.stderr)
        # A database loaded before the latest migrations: bring it to head first.
        await asyncio.to_thread(harness.migrate, dsn)
        # Claims from earlier runs used up waiting cases: put them back.
        await reset_claims(dsn)
    else:
        print(f"loading {args.cases:,} cases into {args.db}", file=sys.stderr)
        report["load"] = await load(args, dsn)
        print(f"  {report['load']}", file=sys.stderr)
    plans, checks = await explain_plans(dsn)
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
            args, dsn, app_root=app_root, server_workers=workers, claims_only=claims_only
        )
        await reset_claims(dsn)
    print("the database alone", file=sys.stderr)
    report["database"] = await run_database_baselines(args, dsn)
    report["loadavg_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return report


if __name__ == "__main__":
    raise SystemExit(loadgen.run(main()))
