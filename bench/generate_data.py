"""Load N synthetic people, with their referrals, triage decisions, cases and case timelines,
into a fresh PostgreSQL database, quickly (COPY), for the benchmarks.

    python bench/generate_data.py --dsn postgresql://postgres@127.0.0.1:5432/postgres \\
        --db frontdoor_bench --people 1000000
    python bench/generate_data.py --smoke --dsn "$PG_URL"   # 300 people, checked, dropped

The database is created (dropped first unless ``--keep``), migrated with the application's own
migrations, given the default service directory, then filled in chunks: worker processes build
each chunk's rows (the real triage engine decides every referral) in COPY text format, and the
main process COPYs them in. Foreign-key triggers are skipped during the load
(``session_replication_role = replica``): the rows are consistent by construction.
``VACUUM ANALYZE`` runs at the end.

Reusable from other benchmarks::

    from bench.generate_data import load_dataset
    summary = load_dataset("postgresql://postgres@127.0.0.1:5432/postgres", "frontdoor_q", 50_000)

Shape of the data (seeded, reproducible): people aged 0-25 (teenagers most often), 80% with an
NHS number from the 999 range (none were ever issued), 95% with a postcode in a served district
(3% of those out of area); 1-3 referrals each over the last three years by phone, system, web
and drop-in; a case for every referral that was not signposted, joined by later referrals while
open; cases close after about 60 days on average, so ~5% are open now (waiting, allocated,
contacted, active or on hold) with the most recent the most likely to be waiting.
"""

from __future__ import annotations

if __package__ in (None, ""):  # run as a script: make ``app`` and ``bench`` importable
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import io
import math
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import asyncpg
import orjson

from bench import harness, synth

REFERRALS_PER_PERSON = ((1, 82), (2, 13), (3, 5))  # (count, weight)
DB_CHANNELS = (("phone", 35), ("system", 35), ("web", 15), ("drop_in", 15))
REFERRAL_HISTORY_DAYS = 3 * 365
MEAN_CASE_DAYS = 60
KEY_WORKERS = 400
CLOSE_OUTCOMES = (
    "returned_to_thriving",
    "not_contactable",
    "moved_out_of_area",
    "declined",
)
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# An odd multiplier scrambles the referral counter into distinct, random-looking references.
_REFERENCE_MULTIPLIER = 0x9E3779B97F & ((1 << 40) - 1) | 1

_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_V4 = (0x4000 << 64) | (0x8000 << 48)

# Column order of each COPY (the order rows are built in).
COLUMNS: dict[str, tuple[str, ...]] = {
    "persons": (
        "id",
        "nhs_number",
        "given_name",
        "family_name",
        "given_name_key",
        "family_name_key",
        "date_of_birth",
        "postcode",
        "postcode_district",
        "phone",
        "email",
        "send",
        "looked_after",
        "created_at",
        "updated_at",
    ),
    "cases": (
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
        "thrive_grouping",
        "thrive_decided_by",
        "thrive_decided_at",
        "outcome",
        "closed_at",
        "version",
        "created_at",
        "updated_at",
    ),
    "referrals": (
        "id",
        "reference",
        "person_id",
        "case_id",
        "channel",
        "site_id",
        "referrer_type",
        "request",
        "received_at",
        "disposition",
        "submitted_by_kind",
        "submitted_by_id",
        "submitted_by_client_id",
        "raw_payload",
        "normalised",
        "reason",
        "created_at",
    ),
    "triage_decisions": (
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
    ),
    "case_events": (
        "id",
        "case_id",
        "seq",
        "type",
        "actor_kind",
        "actor_id",
        "actor_role",
        "from_status",
        "to_status",
        "reason",
        "data",
        "created_at",
    ),
}
TABLE_ORDER = tuple(COLUMNS)


@dataclass
class LoadSummary:
    database: str
    people: int
    rows: dict[str, int] = field(default_factory=dict)
    open_cases: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def reference_for(counter: int) -> str:
    """A unique ``FD-XXXX-XXXX`` reference for the loader's ``counter``-th referral."""
    value = (counter * _REFERENCE_MULTIPLIER) & ((1 << 40) - 1)
    chars = "".join(REFERENCE_ALPHABET[(value >> (5 * i)) & 31] for i in range(8))
    return f"FD-{chars[:4]}-{chars[4:]}"


@lru_cache(maxsize=1)
def _loader_nhs_numbers() -> tuple[str, ...]:
    return tuple(synth.nhs_numbers(synth.LOADER_NHS_STEMS))


def nhs_number_for(index: int) -> str | None:
    """Four people in five have an NHS number (each a different one), while the range lasts."""
    if index % 5 == 0:
        return None
    numbers = _loader_nhs_numbers()
    position = index - index // 5 - 1
    return numbers[position] if position < len(numbers) else None


def _uuid(rng: random.Random) -> str:
    """A random (version 4) UUID from the seeded generator, as text."""
    h = f"{rng.getrandbits(128) & _UUID_CLEAR | _UUID_V4:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _field(value: Any) -> str:
    """One value in COPY's text format (JSON and names never hold tabs or newlines)."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    text = value if isinstance(value, str) else str(value)
    return text.replace("\\", "\\\\") if "\\" in text else text


class _Chunk:
    """Rows for one slice of people, in COPY text format per table."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {table: [] for table in TABLE_ORDER}
        self.open_cases = 0

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.lines[table].append("\t".join(map(_field, row)))

    def result(self) -> dict[str, Any]:
        return {
            "copy": {
                t: ("\n".join(rows) + "\n").encode() if rows else b""
                for t, rows in self.lines.items()
            },
            "counts": {t: len(rows) for t, rows in self.lines.items()},
            "open_cases": self.open_cases,
        }


def build_chunk(
    chunk_index: int, start: int, count: int, people: int, seed: int, now_iso: str
) -> dict[str, Any]:
    """Build the rows for people ``start`` .. ``start + count - 1`` (runs in a worker process)."""
    from app.services.persons import name_key
    from app.triage import evaluate
    from app.triage.decision import URGENCY_RANK, RouteKind
    from app.triage.postcodes import postcode_district

    ruleset = _ruleset()
    rng = random.Random(f"{seed}:{chunk_index}")
    now = datetime.fromisoformat(now_iso)
    today = now.date()
    chunk = _Chunk()
    counts, weights = zip(*REFERRALS_PER_PERSON, strict=True)
    channels = [channel for channel, _ in DB_CHANNELS]
    channel_weights = [weight for _, weight in DB_CHANNELS]

    for index in range(start, start + count):
        who = synth.person(rng, today, nhs_number_for(index))
        dob = date.fromisoformat(who["date_of_birth"])
        born_at = datetime(dob.year, dob.month, dob.day, 12, tzinfo=UTC)
        earliest = max(now - timedelta(days=REFERRAL_HISTORY_DAYS), born_at + timedelta(days=30))
        span = max((now - earliest).total_seconds(), 3600.0)
        n_referrals = rng.choices(counts, weights)[0]
        received = sorted(
            earliest + timedelta(seconds=rng.random() * span) for _ in range(n_referrals)
        )
        person_id = _uuid(rng)
        open_case: dict[str, Any] | None = None
        cases: list[dict[str, Any]] = []
        for k, received_at in enumerate(received):
            channel = rng.choices(channels, channel_weights)[0]
            body = synth.referral_body(
                rng, who, "phone" if channel == "web" else channel, received_at.date()
            )
            if channel == "web":
                del body["channel"]
                body["referrer"] = {"type": "self"}
            facts = _facts(body, channel, received_at)
            decision = evaluate(facts, ruleset)
            referral_id = _uuid(rng)
            if (
                open_case is not None
                and open_case["closed_at"] is not None
                and (open_case["closed_at"] <= received_at)
            ):
                open_case = None
            rank = URGENCY_RANK[decision.urgency.code]
            if open_case is not None:
                disposition = "joined_case"
                if rank < open_case["urgency_rank"]:
                    open_case["urgency_rank"] = rank
                    open_case["urgency_code"] = decision.urgency.code.value
                    open_case["version"] += 1
                open_case["events"].append((received_at, "referral_joined", None, referral_id))
            elif decision.route.kind is RouteKind.SIGNPOST or decision.route.queue_id is None:
                disposition = "signposted"
            else:
                disposition = "case_opened"
                open_case = _new_case(rng, person_id, decision, rank, received_at, now)
                open_case["events"].append((received_at, "case_opened", None, referral_id))
                cases.append(open_case)
            case_id = open_case["id"] if open_case is not None else None
            staff = channel in ("phone", "drop_in")
            raw = _json(body)
            chunk.add(
                "referrals",
                (
                    referral_id,
                    reference_for(index * 4 + k),
                    person_id,
                    case_id,
                    facts.channel.value,
                    facts.site_id,
                    facts.referrer_type.value,
                    facts.request.value,
                    _ts(received_at),
                    disposition,
                    "staff" if staff else ("system" if channel == "system" else "public"),
                    f"staff-{rng.randrange(KEY_WORKERS)}" if staff else None,
                    None,
                    raw,
                    raw,
                    body.get("reason"),
                    _ts(received_at),
                ),
            )
            chunk.add(
                "triage_decisions",
                (
                    _uuid(rng),
                    referral_id,
                    decision.ruleset_version,
                    _json(facts),
                    _json(decision.to_dict()),
                    decision.eligibility.outcome.value,
                    decision.urgency.code.value,
                    decision.thrive_grouping.value,
                    decision.route.kind.value,
                    decision.route.queue_id,
                    _ts(decision.urgency.respond_by_at),
                    _ts(received_at),
                ),
            )
        postcode = who["postcode"]
        chunk.add(
            "persons",
            (
                person_id,
                who["nhs_number"],
                who["given_name"],
                who["family_name"],
                name_key(who["given_name"]),
                name_key(who["family_name"]),
                who["date_of_birth"],
                postcode,
                postcode_district(postcode) if postcode else None,
                who["phone"],
                who["email"],
                who["send"],
                who["looked_after"],
                _ts(received[0]),
                _ts(received[-1]),
            ),
        )
        for case in cases:
            _finish_case(rng, chunk, case, now)
    return chunk.result()


@lru_cache(maxsize=1)
def _ruleset() -> Any:
    from app.triage import load_ruleset

    return load_ruleset()


def _facts(body: dict[str, Any], channel: str, received_at: datetime) -> Any:
    from app.triage import ReferralFacts, RiskAnswers
    from app.triage.facts import (
        AmhsThreshold,
        CamhsStatus,
        Channel,
        HarmToOthers,
        ReferrerType,
        RequestKind,
        SelfHarm,
        SettingPreference,
        Suicidal,
    )

    who, risk, preference = body["person"], body["risk"], body["preferences"]["setting"]
    return ReferralFacts(
        received_at=received_at,
        channel=Channel(channel),
        referrer_type=ReferrerType(body["referrer"]["type"]),
        date_of_birth=date.fromisoformat(who["date_of_birth"]),
        postcode=who["postcode"],
        site_id=body.get("site_id"),
        camhs_status=CamhsStatus(body["camhs"]["status"]),
        camhs_transition_planned=body["camhs"]["transition_planned"],
        amhs_threshold=AmhsThreshold(body["amhs_threshold"]),
        send=who["send"],
        looked_after=who["looked_after"],
        request=RequestKind(body["request"]),
        risk=RiskAnswers(
            immediate_danger=risk["immediate_danger"],
            suicidal=Suicidal(risk["suicidal"]),
            self_harm=SelfHarm(risk["self_harm"]),
            harm_to_others=HarmToOthers(risk["harm_to_others"]),
            safeguarding_concern=risk["safeguarding_concern"],
            supported=risk["supported"],
        ),
        setting_preference=SettingPreference(preference) if preference else None,
    )


def _new_case(
    rng: random.Random,
    person_id: str,
    decision: Any,
    rank: int,
    received_at: datetime,
    now: datetime,
) -> dict[str, Any]:
    days_open = max(1.0, rng.expovariate(1 / MEAN_CASE_DAYS))
    closed_at = received_at + timedelta(days=days_open)
    return {
        "id": _uuid(rng),
        "person_id": person_id,
        "queue_id": decision.route.queue_id,
        "urgency_code": decision.urgency.code.value,
        "urgency_rank": rank,
        "received_at": received_at,
        "respond_by_at": decision.urgency.respond_by_at,
        "thrive_grouping_proposed": decision.thrive_grouping.value,
        "closed_at": closed_at if closed_at <= now else None,
        "version": 1,
        "events": [],
    }


def _finish_case(rng: random.Random, chunk: _Chunk, case: dict[str, Any], now: datetime) -> None:
    """Give the case a status consistent with its age, write it and its timeline."""
    received_at: datetime = case["received_at"]
    closed_at: datetime | None = case["closed_at"]
    end = closed_at or now
    elapsed = end - received_at
    key_worker = allocated_at = first_contact_at = thrive_at = None
    thrive = None
    if closed_at is not None:
        status = "closed"
        stage = rng.choice([1, 2, 3, 3, 3])
    else:
        days = elapsed.total_seconds() / 86400
        stage = 0 if days < 3 else rng.choices([0, 1, 2, 3, 4], [30, 15, 15, 30, 10])[0]
        status = ("waiting", "allocated", "contacted", "active", "on_hold")[stage]
    if stage >= 1:
        key_worker = f"staff-{rng.randrange(KEY_WORKERS)}"
        allocated_at = received_at + elapsed * 0.1
        case["events"].append((allocated_at, "allocated", None, None))
    if stage >= 2:
        first_contact_at = received_at + elapsed * 0.2
        case["events"].append((first_contact_at, "first_contact", None, None))
    if stage >= 3:
        thrive = case["thrive_grouping_proposed"]
        thrive_at = received_at + elapsed * 0.3
        case["events"].append((thrive_at, "thrive_confirmed", None, None))
    if closed_at is not None:
        case["events"].append((closed_at, "closed", None, None))
    else:
        chunk.open_cases += 1
    chunk.add(
        "cases",
        (
            case["id"],
            case["person_id"],
            case["queue_id"],
            status,
            case["urgency_code"],
            case["urgency_rank"],
            _ts(received_at),
            _ts(case["respond_by_at"]),
            _ts(first_contact_at),
            "assessment" if first_contact_at else None,
            key_worker,
            _ts(allocated_at),
            case["thrive_grouping_proposed"],
            thrive,
            key_worker if thrive else None,
            _ts(thrive_at),
            rng.choice(CLOSE_OUTCOMES) if closed_at else None,
            _ts(closed_at),
            case["version"] + len(case["events"]) - 1,
            _ts(received_at),
            _ts(end),
        ),
    )
    statuses = {
        "case_opened": "waiting",
        "referral_joined": None,
        "allocated": "allocated",
        "first_contact": "contacted",
        "thrive_confirmed": "active",
        "closed": "closed",
    }
    current = None
    for seq, (at, kind, _reason, referral_id) in enumerate(
        sorted(case["events"], key=lambda e: e[0]), start=1
    ):
        to_status = statuses[kind] or current
        actor = None if kind in ("case_opened", "referral_joined") else key_worker
        data = {"referral_id": str(referral_id)} if referral_id else {}
        chunk.add(
            "case_events",
            (
                _uuid(rng),
                case["id"],
                seq,
                kind,
                "staff" if actor else "system",
                actor,
                "practitioner" if actor else None,
                current,
                to_status,
                None,
                _json(data),
                _ts(at),
            ),
        )
        current = to_status


async def _copy_chunks(
    dsn: str,
    people: int,
    chunk_size: int,
    seed: int,
    jobs: int,
    summary: LoadSummary,
    progress: bool,
) -> None:
    now_iso = datetime.now(UTC).isoformat()
    conn = await asyncpg.connect(dsn)
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    try:
        # Rows are consistent by construction: skip per-row foreign-key triggers.
        await conn.execute("SET session_replication_role = replica")
        n_chunks = math.ceil(people / chunk_size)
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            pending: list[asyncio.Future[dict[str, Any]]] = []
            next_chunk = 0
            done = 0
            while done < n_chunks:
                while next_chunk < n_chunks and len(pending) < jobs + 1:
                    start = next_chunk * chunk_size
                    pending.append(
                        loop.run_in_executor(
                            pool,
                            build_chunk,
                            next_chunk,
                            start,
                            min(chunk_size, people - start),
                            people,
                            seed,
                            now_iso,
                        )
                    )
                    next_chunk += 1
                result = await pending.pop(0)
                for table in TABLE_ORDER:
                    if result["counts"][table]:
                        await conn.copy_to_table(
                            table,
                            source=io.BytesIO(result["copy"][table]),
                            columns=list(COLUMNS[table]),
                            format="text",
                        )
                    summary.rows[table] = summary.rows.get(table, 0) + result["counts"][table]
                summary.open_cases += result["open_cases"]
                done += 1
                if progress:
                    loaded = min(done * chunk_size, people)
                    rate = loaded / (time.perf_counter() - started)
                    print(f"  {loaded:>9,} people loaded ({rate:,.0f}/s)", flush=True)
    finally:
        await conn.close()


async def _vacuum(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for table in TABLE_ORDER:
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()


def load_dataset(
    admin_dsn: str,
    db: str,
    people: int,
    *,
    seed: int = 7,
    jobs: int | None = None,
    chunk_size: int = 20_000,
    recreate: bool = True,
    progress: bool = False,
) -> LoadSummary:
    """Create ``db`` (dropping it first if ``recreate``), migrate it, load ``people`` people.

    ``admin_dsn`` is a DSN to any database on the server (to run CREATE DATABASE). Returns row
    counts and timings. Call from synchronous code.
    """
    import os

    jobs = jobs or os.cpu_count() or 1
    summary = LoadSummary(database=db, people=people)
    dsn = harness.database_dsn(admin_dsn, db)
    t0 = time.perf_counter()
    asyncio.run(harness.create_database(admin_dsn, db, recreate=recreate))
    harness.migrate(dsn)
    summary.seconds["create_and_migrate"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    asyncio.run(_copy_chunks(dsn, people, chunk_size, seed, jobs, summary, progress))
    summary.seconds["copy"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    asyncio.run(_vacuum(dsn))
    summary.seconds["vacuum_analyze"] = time.perf_counter() - t2
    summary.seconds["total"] = time.perf_counter() - t0
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    harness.add_dsn_argument(parser)
    parser.add_argument("--db", default="frontdoor_bench", help="database to create and fill")
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--jobs", type=int, default=None, help="row-building processes (default: CPU count)"
    )
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument(
        "--keep", action="store_true", help="do not drop an existing database of that name (append)"
    )
    harness.add_smoke_argument(parser)
    args = parser.parse_args(argv)
    if args.smoke:  # 300 people in three chunks, into a database of its own, dropped afterwards
        args.db, args.people, args.chunk_size, args.keep = (
            harness.smoke_database("data"),
            300,
            100,
            False,
        )
    print(f"loading {args.people:,} people into {args.db} ...", flush=True)
    with harness.database_dropped_afterwards(args.dsn, args.db, enabled=args.smoke):
        summary = load_dataset(
            args.dsn,
            args.db,
            args.people,
            seed=args.seed,
            jobs=args.jobs,
            chunk_size=args.chunk_size,
            recreate=not args.keep,
            progress=True,
        )
        print(orjson.dumps(asdict(summary), option=orjson.OPT_INDENT_2).decode())
        if args.smoke:
            return check_loaded(harness.database_dsn(args.dsn, args.db), summary)
    return 0


def check_loaded(dsn: str, summary: LoadSummary) -> int:
    """What a loaded database must hold: every table's rows as reported, every person, some
    open cases, and referrals that point at existing people and cases."""

    async def counts() -> dict[str, int]:
        conn = await asyncpg.connect(dsn)
        try:
            found = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLE_ORDER}
            found["orphan referrals"] = await conn.fetchval(
                "SELECT count(*) FROM referrals r LEFT JOIN persons p ON p.id = r.person_id "
                "LEFT JOIN cases c ON c.id = r.case_id "
                "WHERE p.id IS NULL OR (r.case_id IS NOT NULL AND c.id IS NULL)"
            )
            return found
        finally:
            await conn.close()

    found = asyncio.run(counts())
    problems = [
        f"{table}: {found[table]} rows, reported {rows}"
        for table, rows in summary.rows.items()
        if found[table] != rows
    ]
    if found["persons"] != summary.people:
        problems.append(f"{found['persons']} people, not {summary.people}")
    if not summary.open_cases:
        problems.append("no open cases")
    if found["orphan referrals"]:
        problems.append(f"{found['orphan referrals']} referrals without their person or case")
    for problem in problems:
        print(f"FAILED {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
