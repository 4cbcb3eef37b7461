"""Person search over the loaded database: latency by NHS number and by name + date of birth.

    python bench/generate_data.py --db frontdoor_bench --people 1000000   # once
    python bench/search_bench.py --db frontdoor_bench --requests 2000 --concurrency 1 4
    python bench/search_bench.py --smoke --dsn "$PG_URL"   # loads 300 people itself, seconds

1. Samples people from the database (seeded ``TABLESAMPLE``) and writes request paths:
   ``?nhs_number=``; ``?family_name=&date_of_birth=``; ``?family_name=&date_of_birth=&postcode=``;
   and, to exercise close matches, a misspelt family name (last letter changed).
2. Serves Front Door (``python -m app.cli serve``, one worker, pinned) over that database.
3. For each kind and each concurrency: a warm-up, then ``--requests`` requests, closed loop
   (bench/loadgen.py, pinned to the client CPU): p50 / p99 / max, errors.
4. Runs one search of each kind in-process with SQL capture, and saves
   ``EXPLAIN (ANALYZE, BUFFERS)`` of every SELECT it issued to bench/out/explain_<kind>.txt.

Results: bench/out/search_<label>.json and a summary on stdout. Exits 1 if any search failed.
"""

from __future__ import annotations

if __package__ in (None, ""):  # run as a script: make ``app`` and ``bench`` importable
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg

from bench import harness
from bench.generate_data import load_dataset

SEARCH_PORT = 8103
KINDS = ("nhs_number", "name_dob", "name_dob_postcode", "close_name_dob")
SMOKE_PEOPLE = 300


async def sample_people(
    dsn: str, count: int, seed: int, percent: float = 2
) -> list[dict[str, Any]]:
    """``count`` people with an NHS number, names, date of birth and postcode (seeded)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT nhs_number, given_name, family_name, date_of_birth, postcode "
            f"FROM persons TABLESAMPLE SYSTEM ({float(percent)}) REPEATABLE ({int(seed)}) "
            "WHERE nhs_number IS NOT NULL AND postcode IS NOT NULL LIMIT $1",
            count,
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


def _misspell(name: str) -> str:
    """The name with its last letter changed (a keying slip): a close match, not exact."""
    last = name[-1]
    return name[:-1] + ("x" if last.lower() != "x" else "y")


def search_paths(people: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Request paths for each kind of search."""
    out: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for p in people:
        dob = p["date_of_birth"].isoformat()
        out["nhs_number"].append("/v1/persons?" + urlencode({"nhs_number": p["nhs_number"]}))
        out["name_dob"].append(
            "/v1/persons?" + urlencode({"family_name": p["family_name"], "date_of_birth": dob})
        )
        out["name_dob_postcode"].append(
            "/v1/persons?"
            + urlencode(
                {"family_name": p["family_name"], "date_of_birth": dob, "postcode": p["postcode"]}
            )
        )
        out["close_name_dob"].append(
            "/v1/persons?"
            + urlencode({"family_name": _misspell(p["family_name"]), "date_of_birth": dob})
        )
    return out


async def explain_searches(database_url: str, person: dict[str, Any], token: str) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of each SELECT the API runs for one search of each kind."""
    import httpx
    from sqlalchemy import event

    from app.config import Settings
    from app.main import create_app

    settings = Settings(
        database_url=database_url, jwt_secret=harness.BENCH_JWT_SECRET, log_level="WARNING"
    )
    app = create_app(settings)
    plans: dict[str, str] = {}
    async with app.router.lifespan_context(app):
        engine = app.state.engine
        captured: list[tuple[str, Any]] = []

        def capture(
            _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool
        ) -> None:
            if statement.lstrip().upper().startswith("SELECT"):
                captured.append((statement, parameters))

        event.listen(engine.sync_engine, "before_cursor_execute", capture)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            paths = search_paths([person])
            for kind in KINDS:
                captured.clear()
                response = await client.get(
                    paths[kind][0], headers={"Authorization": f"Bearer {token}"}
                )
                response.raise_for_status()
                statements = list(captured)
                chunks = [f"-- {kind}: {len(statements)} SELECT statement(s)\n"]
                event.remove(engine.sync_engine, "before_cursor_execute", capture)
                async with engine.connect() as conn:
                    for statement, parameters in statements:
                        result = await conn.exec_driver_sql(
                            "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                        )
                        plan = "\n".join(row[0] for row in result)
                        chunks.append(f"\n{statement}\n\n{plan}\n")
                event.listen(engine.sync_engine, "before_cursor_execute", capture)
                plans[kind] = "".join(chunks)
    return plans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    harness.add_dsn_argument(parser)
    parser.add_argument("--db", default="frontdoor_bench")
    parser.add_argument("--requests", type=int, default=2000, help="per kind and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--sample", type=int, default=2000, help="people to search for")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--client-cpus", default="1")
    parser.add_argument("--app-dir", type=Path, default=harness.REPO)
    parser.add_argument("--label", default="1m")
    parser.add_argument("--no-explain", action="store_true")
    parser.add_argument(
        "--explain-only", action="store_true", help="only the EXPLAIN step (no server, no load)"
    )
    parser.add_argument(
        "--intake-rps",
        type=float,
        default=0.0,
        help="meanwhile post referrals (bench/out/intake_bodies.tsv) at this rate, open loop, "
        "as referring systems posting in bulk while call handlers search",
    )
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--max-load", type=float, default=1.0)
    parser.add_argument("--max-wait", type=int, default=900)
    harness.add_smoke_argument(parser)
    args = parser.parse_args(argv)
    harness.stop_cleanly_on_signals()
    # Migrations and the in-process EXPLAIN step import ``app`` from the tree under test.
    sys.path.insert(0, str(args.app_dir.resolve()))
    sample_percent = 2.0
    if args.smoke:  # its own 300 people; every kind at c2; referrals posted meanwhile
        vars(args).update(
            db=harness.smoke_database("search"),
            requests=20,
            concurrency=[2],
            sample=20,
            server_cpus=None,
            client_cpus=None,
            label="smoke",
            intake_rps=5.0,
            max_wait=0,
        )
        sample_percent = 100.0
        print(f"loading {SMOKE_PEOPLE} people into {args.db} ...", flush=True)
        load_dataset(args.dsn, args.db, SMOKE_PEOPLE, chunk_size=SMOKE_PEOPLE)
    with harness.database_dropped_afterwards(args.dsn, args.db, enabled=args.smoke):
        return run(args, sample_percent)


def run(args: argparse.Namespace, sample_percent: float) -> int:
    dsn = harness.database_dsn(args.dsn, args.db)
    if not args.smoke:  # a smoke run has just loaded (and migrated) its own database
        harness.migrate(dsn)  # bring the loaded database up to the code's head (e.g. new indexes)
    people = asyncio.run(sample_people(dsn, args.sample, args.seed, sample_percent))
    if not people:
        print(f"no people in {args.db}: run bench/generate_data.py first", file=sys.stderr)
        return 1
    paths = search_paths(people)
    harness.OUT.mkdir(parents=True, exist_ok=True)
    env = harness.frontdoor_env(dsn, args.app_dir)
    token = harness.frontdoor_cli(
        ["token", "--role", "call_handler", "--name", "Bench"],
        {**env, "FRONTDOOR_ENVIRONMENT": "development"},
        args.app_dir,
    )
    token_file = harness.OUT / "search_token"
    token_file.write_text(token)
    if args.explain_only:
        _write_plans(args.label, asyncio.run(explain_searches(dsn, people[0], token)))
        return 0
    quiet = harness.wait_for_quiet(args.max_load, args.max_wait)
    print(f"{len(people)} people sampled; load {quiet['load_average']}", flush=True)

    server = harness.start_frontdoor(
        dsn,
        harness.free_port() if args.smoke else SEARCH_PORT,
        app_dir=args.app_dir,
        workers=args.workers,
        cpus=args.server_cpus,
        log_path=harness.OUT / "search_server.log",
    )
    results: dict[str, Any] = {}
    intake = _start_intake(args, env, server.url) if args.intake_rps else None
    try:
        for kind in KINDS:
            path_file = harness.OUT / f"search_paths_{kind}.txt"
            path_file.write_text("\n".join(paths[kind]) + "\n")
            common = [
                "closed",
                "--url",
                server.url,
                "--token-file",
                str(token_file),
                "--paths-file",
                str(path_file),
            ]
            if not args.smoke:  # a warm-up is the same request loop again
                harness.run_loadgen(
                    [*common, "--concurrency", "2", "--requests", "200"], cpus=args.client_cpus
                )
            for concurrency in args.concurrency:
                outcome = harness.run_loadgen(
                    [*common, "--concurrency", str(concurrency), "--requests", str(args.requests)],
                    cpus=args.client_cpus,
                )
                key = f"{kind}@c{concurrency}"
                results[key] = outcome
                lat = outcome["latency_ms"]
                print(
                    f"  {key:26s} {outcome['achieved_rps']:7.1f} req/s  p50 {lat['p50']:6.2f} "
                    f"ms  p99 {lat['p99']:6.2f} ms  max {lat['max']:7.2f} ms  "
                    f"errors {outcome['errors']}",
                    flush=True,
                )
    finally:
        if intake is not None:
            intake.terminate()  # loadgen stops its schedule on SIGTERM and prints its summary
            out, _ = intake.communicate(timeout=120)
            results["background_intake"] = json.loads(out.strip().splitlines()[-1])
            print(f"  background intake: {results['background_intake']}", flush=True)
        harness.stop_server(server)

    if not args.no_explain:
        _write_plans(args.label, asyncio.run(explain_searches(dsn, people[0], token)))

    report = {
        "label": args.label,
        "database": args.db,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": harness.machine(dsn),
        "quiet": quiet,
        "args": {k: str(v) for k, v in vars(args).items()},
        "results": results,
    }
    out = harness.OUT / f"search_{args.label}.json"
    out.write_text(json.dumps(report, indent=2, default=_json_default))
    print(f"wrote {out}")
    failed = {key: r["errors"] for key, r in results.items() if r["errors"]}
    if failed:
        print(f"FAILED requests: {failed}", file=sys.stderr)
    return 1 if failed else 0


def _start_intake(args: argparse.Namespace, env: dict[str, str], url: str) -> Any:
    """Referring systems posting referrals at ``--intake-rps`` (open loop) in the background."""
    import subprocess

    from bench.intake_bench import BODIES_FILE, write_bodies

    if not BODIES_FILE.exists():
        write_bodies(BODIES_FILE, 2_000, seed=11)
    api_key = harness.frontdoor_cli(
        ["client", "create", "--name", "Bench bulk GP system", "--ods", "D82001"],
        env,
        args.app_dir,
    ).splitlines()[-1]
    key_file = harness.OUT / "search_intake_api_key"
    key_file.write_text(api_key)
    command = [
        sys.executable,
        str(harness.REPO / "bench" / "loadgen.py"),
        "open",
        "--url",
        url,
        "--rate",
        str(args.intake_rps),
        "--duration",
        "3600",
        "--bodies",
        str(BODIES_FILE),
        "--token-file",
        str(harness.OUT / "search_token"),
        "--api-key-file",
        str(key_file),
        "--run-id",
        f"search-bg-{datetime.now(UTC):%H%M%S}",
    ]
    if args.client_cpus:
        command = ["taskset", "-c", args.client_cpus, *command]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def _write_plans(label: str, plans: dict[str, str]) -> None:
    for kind, text in plans.items():
        (harness.OUT / f"explain_{label}_{kind}.txt").write_text(text)
    print(f"EXPLAIN output in {harness.OUT}/explain_{label}_*.txt")


def _json_default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


if __name__ == "__main__":
    raise SystemExit(main())
