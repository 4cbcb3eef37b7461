"""What the active-ruleset check costs intake: POST /v1/referrals with the check as shipped
(at most once every 2 s), checked on every request (the upper bound), and a same-run baseline
that never checks after start-up.

Three apps are built in this process over one PostgreSQL database (the bench's own, created,
migrated and dropped), differing only in ``FRONTDOOR_RULESET_CHECK_SECONDS``: 300 (the baseline:
no check during the run), 2 (the default) and 0 (every request). Referrals are posted through
each app in-process (httpx ASGI transport, one at a time, so latency is the app's own work plus
its database round trips, without network or server noise), in blocks of 10 with the modes'
order rotating, so drift in the machine hits all three alike; this process's CPU per request is
reported too (steadier than wall time on a busy machine). A second part times the check's
query alone.

    python bench/bench_ruleset_check.py --requests 600 --rounds 5
    python bench/bench_ruleset_check.py --smoke

Prints and writes (bench/out/ruleset_check.json) medians and p95 per mode, per round and overall.
"""

from __future__ import annotations

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import json
import math
import sys
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime
from typing import Any

import httpx

from bench import harness, synth

BLOCK = 10
"""Referrals posted through one mode before the next mode's turn."""

MODES = {"baseline (no check)": 300.0, "default (2 s)": 2.0, "every request (0 s)": 0.0}


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """Median, p95, p99 and max in milliseconds (nearest rank)."""
    ordered = sorted(samples_ms)
    if not ordered:
        return {}

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 3)

    return {"p50": rank(50), "p95": rank(95), "p99": rank(99), "max": round(ordered[-1], 3)}


def _bodies(count: int, seed: int) -> list[dict[str, Any]]:
    """Staff-channel intake bodies (phone calls and walk-ins) from the bench's synthetic mix."""
    bodies: list[dict[str, Any]] = []
    seed_step = 0
    while len(bodies) < count:
        more = synth.intake_bodies(count * 2, seed=seed + seed_step, on=date.today())
        bodies += [b for b in more if b.get("channel") != "system"]
        seed_step += 1
    return bodies[:count]


async def _post_block(
    client: httpx.AsyncClient, headers: dict[str, str], bodies: list[dict[str, Any]]
) -> tuple[list[float], int]:
    samples: list[float] = []
    errors = 0
    for body in bodies:
        started = time.perf_counter()
        response = await client.post(
            "/v1/referrals",
            json=body,
            headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
        )
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 201:
            errors += 1
            if errors == 1:
                print(f"unexpected {response.status_code}: {response.text[:300]}", file=sys.stderr)
    return samples, errors


async def _check_query_alone(app: Any, repeats: int) -> dict[str, float]:
    """The check's single-row read, timed on its own (its own session each time, as a request)."""
    from app.services.rulesets import active_version

    samples = []
    for _ in range(repeats):
        async with app.state.session_factory() as session:
            started = time.perf_counter()
            await active_version(session)
            samples.append((time.perf_counter() - started) * 1000)
            await session.rollback()
    return percentiles(samples)


async def measure(dsn: str, requests: int, rounds: int, seed: int) -> dict[str, Any]:
    from app.clock import Clock
    from app.config import Settings
    from app.main import create_app
    from app.security import Role, issue_staff_token

    async_dsn = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    bodies = _bodies(requests * rounds * len(MODES) + 50, seed)
    async with AsyncExitStack() as stack:
        clients: dict[str, httpx.AsyncClient] = {}
        apps: dict[str, Any] = {}
        for name, seconds in MODES.items():
            settings = Settings(
                environment="test",
                database_url=async_dsn,
                jwt_secret=harness.BENCH_JWT_SECRET,
                ruleset_check_seconds=seconds,
                log_level="WARNING",
                run_worker_in_process=False,
            )
            app = create_app(settings, clock=Clock())
            await stack.enter_async_context(app.router.lifespan_context(app))
            apps[name] = app
            clients[name] = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=30
                )
            )
        token = issue_staff_token(
            next(iter(apps.values())).state.settings,
            subject="bench-call-handler",
            role=Role.CALL_HANDLER,
            queue_ids=None,
            now=datetime.now(UTC),
        )
        headers = {"Authorization": f"Bearer {token}"}
        # Warm every app (imports, JIT-free caches, pool connections) before timing.
        cursor = 0
        for client in clients.values():
            await _post_block(client, headers, bodies[cursor : cursor + 10])
            cursor += 10
        per_round: list[dict[str, Any]] = []
        samples: dict[str, list[float]] = {name: [] for name in MODES}
        cpu: dict[str, float] = dict.fromkeys(MODES, 0.0)
        errors = dict.fromkeys(MODES, 0)
        for round_no in range(rounds):
            got_round: dict[str, list[float]] = {name: [] for name in MODES}
            # Small blocks, the modes' order rotating: the machine's drift falls on all three.
            for block_no in range(max(1, requests // BLOCK)):
                names = list(MODES)
                shift = block_no % len(names)
                for name in names[shift:] + names[:shift]:
                    block = bodies[cursor : cursor + BLOCK]
                    cursor += BLOCK
                    cpu_before = time.process_time()
                    got, failed = await _post_block(clients[name], headers, block)
                    cpu[name] += time.process_time() - cpu_before
                    got_round[name] += got
                    errors[name] += failed
            row: dict[str, Any] = {"round": round_no + 1}
            for name, got in got_round.items():
                samples[name] += got
                row[name] = percentiles(got)
            per_round.append(row)
        check_alone = await _check_query_alone(next(iter(apps.values())), max(50, requests))
    overall = {name: percentiles(values) for name, values in samples.items()}
    return {
        "requests_per_mode": len(samples[next(iter(MODES))]),
        "rounds": rounds,
        "errors": errors,
        "overall_ms": overall,
        "cpu_ms_per_request": {
            name: round(seconds * 1000 / max(1, len(samples[name])), 3)
            for name, seconds in cpu.items()
        },
        "per_round_ms": per_round,
        "check_query_alone_ms": check_alone,
    }


def _table(result: dict[str, Any]) -> str:
    lines = [
        "| mode | requests | median ms | p95 ms | p99 ms | CPU ms/request (this process) |",
        "|---|---|---|---|---|---|",
    ]
    for name, stats in result["overall_ms"].items():
        lines.append(
            f"| {name} | {result['requests_per_mode']} | {stats['p50']:.2f} | "
            f"{stats['p95']:.2f} | {stats['p99']:.2f} | {result['cpu_ms_per_request'][name]:.2f} |"
        )
    medians = [
        " / ".join(f"{row[name]['p50']:.1f}" for name in MODES) for row in result["per_round_ms"]
    ]
    lines.append("\nmedian per round (" + " / ".join(MODES) + "): " + "; ".join(medians))
    alone = result["check_query_alone_ms"]
    lines.append(f"\ncheck query alone: median {alone['p50']:.3f} ms, p95 {alone['p95']:.3f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_dsn_argument(parser)
    harness.add_smoke_argument(parser)
    parser.add_argument("--db", default="frontdoor_bench_ruleset_check")
    parser.add_argument("--requests", type=int, default=600, help="per mode per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)
    if args.smoke:
        args.db, args.requests, args.rounds = harness.smoke_database("ruleset_check"), 20, 1
    asyncio.run(harness.create_database(args.dsn, args.db))
    with harness.database_dropped_afterwards(args.dsn, args.db):
        dsn = harness.database_dsn(args.dsn, args.db)
        harness.migrate(dsn)
        result = asyncio.run(measure(dsn, args.requests, args.rounds, args.seed))
    result["machine"] = harness.machine()
    result["command"] = " ".join(
        ["python", "bench/bench_ruleset_check.py", *(argv or sys.argv[1:])]
    )
    harness.OUT.mkdir(parents=True, exist_ok=True)
    out = harness.OUT / ("ruleset_check_smoke.json" if args.smoke else "ruleset_check.json")
    out.write_text(json.dumps(result, indent=2))
    print(_table(result))
    print(f"written to {out}")
    failed = sum(result["errors"].values())
    if failed:
        print(f"{failed} requests failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
