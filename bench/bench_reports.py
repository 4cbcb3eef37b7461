"""The aggregate reports over ~1,000,000 referrals (with their cases, contacts and re-grades) on
PostgreSQL: p50/p95 of each report's realistic parameter sets, a same-run baseline, and
EXPLAIN (ANALYZE, BUFFERS) of every statement each report runs.

    python bench/bench_reports.py                     # loads frontdoor_bench_reports if missing
    python bench/bench_reports.py --repeats 30        # again, on the kept database
    python bench/bench_reports.py --reload            # drop and load it afresh
    python bench/bench_reports.py --drop              # drop the database when done
    python bench/bench_reports.py --smoke --dsn "$PG_URL"   # 300 people, every step, dropped

What is timed: ``app.services.reports.run_report`` (the function behind ``GET /v1/reports/…``
and the console dashboard, minus the audit row and the HTTP), on one session of the
application's own async engine (asyncpg), back to back, after a warm-up run (tried up to three
times: on a cold cache the first run can pass the application's statement timeout). Each parameter
set runs ``--repeats`` times; p50 and p95 are nearest-rank over those runs.

Baseline (same run, same session, same repeats): ``SELECT count(*) FROM referrals`` over the
same twelve-month received window, i.e. the cheapest possible answer over the rows the dated
reports read; a report near it costs little more than finding its rows.

EXPLAIN: every statement a report issues is captured (SQLAlchemy's ``before_cursor_execute``)
on the warm-up run and explained with its own parameters; the plans go to
``bench/out/reports_explain_<set>_<n>.txt`` and a summary (planning and execution time, index
names used, sequential scans) into the JSON result ``bench/out/bench_reports_<time>.json``.
"""

from __future__ import annotations

if __package__ in (None, ""):  # run as a script: make ``app`` and ``bench`` importable
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import math
import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bench import generate_data, harness

DEFAULT_DB = "frontdoor_bench_reports"
DEFAULT_REFERRALS = 1_000_000
SMOKE_PEOPLE = 300
TARGET_P95_MS = 1000.0
INDEX_IN_PLAN = re.compile(
    r"Index (?:Only )?Scan (?:Backward )?using (\w+)|Bitmap Index Scan on (\w+)"
)
SEQ_IN_PLAN = re.compile(r"Seq Scan on (\w+)")


@dataclass(frozen=True, slots=True)
class ParameterSet:
    """One realistic question: which report, grouped how, by whom (``scope``)."""

    key: str
    report: str
    by: str
    scope: str = "admin"  # admin: every queue, exact; commissioner: suppressed; lead: one queue
    dated: bool = True


PARAMETER_SETS = (
    ParameterSet("referrals_month_channel", "referrals", "month,channel"),
    ParameterSet(
        "referrals_month_channel_commissioner", "referrals", "month,channel", "commissioner"
    ),
    ParameterSet("referrals_queue_urgency", "referrals", "queue,urgency"),
    ParameterSet("referrals_age_gender_ethnicity", "referrals", "age_band,gender,ethnic_category"),
    ParameterSet("waits_queue", "waits", "queue"),
    ParameterSet("waits_month", "waits", "month"),
    ParameterSet("waits_month_lead", "waits", "month", "lead"),
    ParameterSet(
        "waiting_list_default", "waiting-list", "queue,age_band,weeks_waiting", dated=False
    ),
    ParameterSet("waiting_list_queue", "waiting-list", "queue", dated=False),
    ParameterSet("triage_agreement", "triage-agreement", ""),
    ParameterSet("triage_agreement_queue", "triage-agreement", "queue"),
    ParameterSet("access_total", "access", ""),
    ParameterSet("access_locality", "access", "locality"),
)
WARM_UP_TRIES = 3
LEAD_QUEUE = "cb-norwich"  # the busiest queue of the default directory


def nearest_rank(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _scope(kind: str) -> Any:
    from app.services.reports import ReportScope

    if kind == "commissioner":
        return ReportScope(suppress_below=8, round_to=5)
    if kind == "lead":
        return ReportScope(queue_ids=frozenset({LEAD_QUEUE}))
    return ReportScope()


class Captured:
    """The statements (and their driver parameters) the engine sends while ``on``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.on = False
        self.statements: list[tuple[str, Any]] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if self.on:
            self.statements.append((statement, parameters))


async def _explain(session: AsyncSession, statement: str, parameters: Any) -> str:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    args = tuple(parameters) if parameters else ()
    rows = await driver.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *args)
    return "\n".join(row[0] for row in rows)


def _plan_summary(plan: str) -> dict[str, Any]:
    def ms(label: str) -> float | None:
        found = re.search(label + r": ([0-9.]+) ms", plan)
        return float(found.group(1)) if found else None

    return {
        "planning_ms": ms("Planning Time"),
        "execution_ms": ms("Execution Time"),
        "indexes": sorted({a or b for a, b in INDEX_IN_PLAN.findall(plan)}),
        "seq_scans": sorted(set(SEQ_IN_PLAN.findall(plan))),
    }


async def measure(
    dsn: str,
    repeats: int,
    today: date,
    out_prefix: str,
    explain: bool = True,
    only: frozenset[str] | None = None,
) -> dict[str, Any]:
    from app.config import Settings
    from app.db import create_engine
    from app.services.reports import ReportName, parse_query, run_report

    engine = create_engine(Settings(database_url=dsn))
    captured = Captured(engine)
    results: dict[str, Any] = {}
    try:
        async with AsyncSession(engine) as session:
            now = datetime.now(UTC)
            start = today.replace(year=today.year - 1) + timedelta(days=1)
            window = (
                datetime(start.year, start.month, start.day, tzinfo=UTC),
                datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1),
            )
            # Baseline: the cheapest answer over the same twelve months of referrals.
            baseline_sql = (
                "SELECT count(*) FROM referrals WHERE received_at >= $1 AND received_at < $2"
            )
            connection = await session.connection()
            raw = await connection.get_raw_connection()
            driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
            # Planned as the reports are (app.services.reports.run_report): a custom plan per
            # run, no JIT. Otherwise, after five runs of the prepared statement PostgreSQL may
            # fall to a generic plan that cannot see the dates (seen here: past the timeout).
            await driver.execute("SET plan_cache_mode = force_custom_plan")
            await driver.execute("SET jit = off")
            for attempt in range(1, WARM_UP_TRIES + 1):  # the warm-up, as for the reports
                try:
                    baseline_rows = await driver.fetchval(baseline_sql, *window)
                    break
                except asyncpg.QueryCanceledError:
                    if attempt == WARM_UP_TRIES:
                        raise
            samples = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                await driver.fetchval(baseline_sql, *window)
                samples.append(time.perf_counter() - t0)
            results["baseline_count_12_months"] = {
                "rows_in_window": baseline_rows,
                "p50_ms": round(nearest_rank(samples, 50) * 1000, 1),
                "p95_ms": round(nearest_rank(samples, 95) * 1000, 1),
            }
            if explain:
                plan = "\n".join(
                    row[0]
                    for row in await driver.fetch(
                        "EXPLAIN (ANALYZE, BUFFERS) " + baseline_sql, *window
                    )
                )
                (harness.OUT / f"{out_prefix}_explain_baseline.txt").write_text(plan + "\n")
            for spec in PARAMETER_SETS:
                if only is not None and spec.key not in only:
                    continue
                name = ReportName(spec.report)
                query = parse_query(
                    name, None if not spec.dated else start, today, spec.by, today=today
                )
                scope = _scope(spec.scope)
                # The warm-up: on a cold cache (just after a load, or after other work pushed
                # the database out of memory) the first run can pass the application's 10 s
                # statement timeout while it reads the index from disk; each try reads more of
                # it in, so up to WARM_UP_TRIES are made, and the failures are recorded.
                warm = None
                warm_up_failures: list[str] = []
                for _ in range(WARM_UP_TRIES):
                    captured.on, captured.statements = True, []
                    try:
                        warm = await run_report(session, name, query, scope, now=now)
                        break
                    except DBAPIError as exc:  # e.g. the application's statement timeout
                        await session.rollback()
                        warm_up_failures.append(str(exc.orig))
                    finally:
                        captured.on = False
                if warm is None:
                    results[spec.key] = {
                        "report": spec.report,
                        "by": spec.by,
                        "error": warm_up_failures[-1],
                        "warm_up_failures": warm_up_failures,
                    }
                    print(f"  {spec.key:<40} FAILED: {warm_up_failures[-1]}", flush=True)
                    continue
                # The queries (a report may also SET LOCAL a setting first: not a plan).
                statements = [
                    (sql, params)
                    for sql, params in captured.statements
                    if sql.lstrip().upper().startswith(("SELECT", "WITH"))
                ]
                samples = []
                try:
                    for _ in range(repeats):
                        t0 = time.perf_counter()
                        await run_report(session, name, query, scope, now=now)
                        samples.append(time.perf_counter() - t0)
                except DBAPIError as exc:
                    await session.rollback()
                    results[spec.key] = {
                        "report": spec.report,
                        "by": spec.by,
                        "error": f"run {len(samples) + 1}: {exc.orig}",
                        "completed_runs_ms": [round(x * 1000, 1) for x in samples],
                    }
                    print(f"  {spec.key:<40} FAILED on a timed run: {exc.orig}", flush=True)
                    continue
                plans = []
                if explain:
                    for index, (statement, parameters) in enumerate(statements, start=1):
                        plan = await _explain(session, statement, parameters)
                        path = harness.OUT / f"{out_prefix}_explain_{spec.key}_{index}.txt"
                        path.write_text(
                            f"-- {spec}\n{statement}\n-- parameters: {parameters!r}\n\n{plan}\n"
                        )
                        plans.append({"file": path.name, **_plan_summary(plan)})
                p95 = nearest_rank(samples, 95) * 1000
                results[spec.key] = {
                    "report": spec.report,
                    "by": spec.by,
                    "scope": spec.scope,
                    "from": query.start.isoformat() if query.start else None,
                    "to": query.end.isoformat(),
                    "rows": len(warm.rows),
                    "statements": len(statements),
                    "p50_ms": round(nearest_rank(samples, 50) * 1000, 1),
                    "p95_ms": round(p95, 1),
                    "max_ms": round(max(samples) * 1000, 1),
                    "within_target": p95 <= TARGET_P95_MS,
                    "warm_up_failures": warm_up_failures,
                    "plans": plans,
                }
                figures = results[spec.key]
                print(
                    f"  {spec.key:<40} rows {len(warm.rows):>5}  "
                    f"p50 {figures['p50_ms']:>7.1f} ms  p95 {figures['p95_ms']:>7.1f} ms",
                    flush=True,
                )
            await session.rollback()
    finally:
        await engine.dispose()
    return results


async def _referral_count(dsn: str) -> int | None:
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        return None
    try:
        return int(await conn.fetchval("SELECT count(*) FROM referrals"))
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    harness.add_dsn_argument(parser)
    parser.add_argument("--db", default=DEFAULT_DB, help="the bench database (kept between runs)")
    parser.add_argument("--referrals", type=int, default=DEFAULT_REFERRALS)
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per parameter set")
    parser.add_argument("--reload", action="store_true", help="drop and load the database again")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    parser.add_argument("--no-explain", action="store_true", help="skip EXPLAIN (ANALYZE)")
    parser.add_argument(
        "--only", default="", help="comma-separated parameter-set keys (default: all)"
    )
    harness.add_smoke_argument(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.db, args.repeats, args.drop = harness.smoke_database("reports"), 3, True
    harness.OUT.mkdir(parents=True, exist_ok=True)
    dsn = harness.database_dsn(args.dsn, args.db)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    prefix = "smoke_reports" if args.smoke else f"reports_{stamp}"
    with harness.database_dropped_afterwards(args.dsn, args.db, enabled=args.drop):
        loaded = None if args.reload or args.smoke else asyncio.run(_referral_count(dsn))
        load: dict[str, Any] | None = None
        if not loaded:
            people = (
                SMOKE_PEOPLE if args.smoke else generate_data.people_for_referrals(args.referrals)
            )
            print(f"loading {people:,} people into {args.db} ...", flush=True)
            summary = generate_data.load_dataset(
                args.dsn, args.db, people, chunk_size=100 if args.smoke else 20_000, progress=True
            )
            load = {"rows": summary.rows, "seconds": summary.seconds}
            loaded = summary.rows["referrals"]
        print(
            f"{loaded:,} referrals in {args.db}; {args.repeats} runs per parameter set", flush=True
        )
        today = datetime.now(UTC).date()
        only = frozenset(k for k in args.only.split(",") if k) or None
        results = asyncio.run(
            measure(dsn, args.repeats, today, prefix, explain=not args.no_explain, only=only)
        )
        record = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
            "database": args.db,
            "referrals": loaded,
            "load": load,
            "repeats": args.repeats,
            "machine": harness.machine(dsn),
            "results": results,
        }
        path = harness.OUT / f"{'smoke_reports' if args.smoke else 'bench_reports_' + stamp}.json"
        path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
        print(f"results: {path}")
        failures = [
            key
            for key, value in results.items()
            if key != "baseline_count_12_months" and ("error" in value or not value["statements"])
        ]
        if args.smoke:
            empty = [k for k, v in results.items() if k.startswith("referrals") and not v["rows"]]
            failures += empty
        else:
            slow = [
                k for k, v in results.items() if "within_target" in v and not v["within_target"]
            ]
            for key in slow:
                print(f"over the 1 s p95 target: {key}", file=sys.stderr)
        for key in failures:
            print(f"FAILED {key}", file=sys.stderr)
        return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
