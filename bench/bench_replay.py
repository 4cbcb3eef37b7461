"""Benchmark: what-if replay of a candidate ruleset over every stored referral, on one core.

    python bench/bench_replay.py --reuse                 # the database bench/generate_data.py made
    python bench/bench_replay.py --people 815000         # (re)load ~1,000,000 referrals first
    python bench/bench_replay.py --smoke --dsn "$PG_URL" # 300 people, checked, dropped

Loads (unless ``--reuse``) a database with ``bench.generate_data.load_dataset``, then, in this
process pinned to one core, against the default ruleset as active and a candidate whose upper
age is one year lower:

1. *baseline, read only*: the same batched keyset reads and JSON parsing as a replay, no
   evaluation (the floor the database and driver set);
2. *replay*: ``app.services.replay.replay``, timed ``--repeats`` times (median reported), with
   the peak resident memory of each run (VmHWM, reset before each run);
3. *naive*: the plain engine (``naive_report``: both rulesets evaluated for every referral) over
   the first ``--naive-sample`` referrals, extrapolated to all of them, and checked to give the
   same report as the fast path on those referrals (exit 1 if not).

Prints a JSON summary and a markdown row for bench/RESULTS.md. Exit 1 above the 60 s target
(not with ``--smoke``, whose figures mean nothing) or if the fast and naive reports differ.
"""

from __future__ import annotations

if __package__ in (None, ""):  # run as a script: make ``app`` and ``bench`` importable
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from bench import harness
from bench.generate_data import load_dataset

TARGET_SECONDS_PER_MILLION = 60.0


def _pin_to_one_core() -> str:
    try:
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    except (AttributeError, OSError):
        return "not pinned"


def _reset_peak_rss() -> None:
    """Reset VmHWM (Linux: writing 5 to clear_refs), so each run's peak is its own."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


async def _backend_pid(session: Any) -> int | None:
    from sqlalchemy import text

    if session.get_bind().dialect.name != "postgresql":
        return None
    return int(await session.scalar(text("SELECT pg_backend_pid()")))


def _cpu(pid: int | None) -> float:
    return 0.0 if pid is None else harness.process_tree_cpu(pid)


def _candidate(smoke: bool = False) -> Any:
    """The default with an upper age one year lower; with ``smoke``, also E proposed as
    "getting more help", so that even a few hundred referrals see changes to compare."""
    from app.triage import load_ruleset, ruleset_from_content

    content = dict(load_ruleset().content)
    content["label"] = "bench-candidate"
    if smoke:
        content["thrive_grouping"] = {**content["thrive_grouping"], "E": "getting_more_help"}
    content["eligibility"] = {
        **content["eligibility"],
        "max_age_years": content["eligibility"]["max_age_years"] - 1,
        "send_transition_max_age_years": content["eligibility"]["max_age_years"] - 1,
    }
    return ruleset_from_content(content)


async def _run(dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    from app.config import Settings
    from app.db import create_engine, create_session_factory
    from app.services.replay import (
        Replayer,
        ReplayWindow,
        StoredRow,
        naive_report,
        replay,
        stored_rows,
    )
    from app.triage import load_ruleset

    active, candidate = load_ruleset(), _candidate(args.smoke)
    window = ReplayWindow()
    settings = Settings(database_url=dsn)
    engine = create_engine(settings)
    out: dict[str, Any] = {
        "active": active.version,
        "candidate": candidate.version,
        "batch_size": args.batch_size,
        "statement_timeout_s": settings.database_statement_timeout_seconds,
    }
    try:
        factory = create_session_factory(engine)
        # 1. Baseline: read and parse only.
        async with factory() as session:
            backend = await _backend_pid(session)
            started, cpu, server = time.perf_counter(), time.process_time(), _cpu(backend)
            rows = 0
            async for batch in stored_rows(session, window, batch_size=args.batch_size):
                for row in batch:
                    orjson.loads(row[7])
                rows += len(batch)
            out["baseline_read_parse_s"] = time.perf_counter() - started
            out["baseline_cpu_s"] = {
                "client": time.process_time() - cpu,
                "server": _cpu(backend) - server,
            }
        out["referrals"] = rows

        # 2. The replay itself.
        runs: list[float] = []
        peaks: list[int] = []
        cpus: list[dict[str, float]] = []
        report: Any = None
        for _ in range(args.repeats):
            _reset_peak_rss()
            async with factory() as session:
                backend = await _backend_pid(session)
                started, cpu, server = time.perf_counter(), time.process_time(), _cpu(backend)
                report = await replay(
                    session,
                    active=active,
                    candidate=candidate,
                    window=window,
                    batch_size=args.batch_size,
                )
                runs.append(time.perf_counter() - started)
                cpus.append({"client": time.process_time() - cpu, "server": _cpu(backend) - server})
            peaks.append(_rss_kib("VmHWM"))
        assert report is not None
        out["replay_s"] = runs
        out["replay_median_s"] = statistics.median(runs)
        out["peak_rss_mib"] = [round(p / 1024, 1) for p in peaks]
        # CPU seconds, this process and its PostgreSQL backend: on a busy machine the wall
        # time includes waiting for a core; CPU time is what one core would need.
        out["replay_cpu_s"] = cpus
        out["replay_cpu_median_s"] = statistics.median(c["client"] + c["server"] for c in cpus)
        summary = report.to_dict()
        out["changed"] = summary["changed"]
        out["distinct_inputs"] = summary["distinct_inputs"]
        out["stored_disagreements"] = summary["stored_disagreements"]

        # 3. Naive: the plain engine on a sample, and the same numbers from the fast path.
        sample: list[StoredRow] = []
        async with factory() as session:
            async for batch in stored_rows(session, window, batch_size=args.batch_size):
                for rid, received, version, elig, urg, thrive, queue_id, text in batch:
                    sample.append(
                        StoredRow(
                            rid,
                            received,
                            version,
                            (elig, urg, thrive, queue_id or "signposted"),
                            orjson.loads(text),
                        )
                    )
                if len(sample) >= args.naive_sample:
                    break
        sample = sample[: args.naive_sample]
        started = time.perf_counter()
        naive = naive_report(sample, active, candidate, window)
        naive_s = time.perf_counter() - started
        fast = Replayer(active, candidate, window)
        for row in sample:
            fast.add(*_fields(row))
        naive_dict, fast_dict = naive.to_dict(), fast.report.to_dict()
        naive_dict.pop("distinct_inputs")
        fast_dict.pop("distinct_inputs")
        out["naive_sample"] = len(sample)
        out["naive_us_per_referral"] = naive_s / max(1, len(sample)) * 1e6
        out["naive_extrapolated_s"] = naive_s / max(1, len(sample)) * rows
        out["naive_equals_fast"] = naive_dict == fast_dict
    finally:
        await engine.dispose()
    return out


def _fields(row: Any) -> tuple[Any, ...]:
    return (row.referral_id, row.received_at, row.ruleset_version, row.stored, row.snapshot)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    harness.add_dsn_argument(parser)
    parser.add_argument("--db", default="frontdoor_bench_replay")
    parser.add_argument("--people", type=int, default=815_000, help="~1.23 referrals each")
    parser.add_argument("--reuse", action="store_true", help="replay the database as it is")
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-sample", type=int, default=50_000)
    harness.add_smoke_argument(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.db, args.people, args.reuse = harness.smoke_database("replay"), 300, False
        args.batch_size, args.repeats, args.naive_sample = 97, 1, 10_000
    with harness.database_dropped_afterwards(args.dsn, args.db, enabled=args.smoke):
        if not args.reuse:
            print(f"loading {args.people:,} people into {args.db} ...", flush=True)
            load_dataset(args.dsn, args.db, args.people, chunk_size=min(20_000, args.people))
        pinned = "not pinned (smoke)" if args.smoke else _pin_to_one_core()
        out = asyncio.run(_run(harness.database_dsn(args.dsn, args.db), args))
    out["pinned"] = pinned
    out["machine"] = harness.machine()
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    per_million = out["replay_median_s"] / max(1, out["referrals"]) * 1_000_000
    print(
        "| date | machine | referrals | command | baseline: read + parse | replay median "
        "| per million | CPU (client + server) | peak RSS | naive (plain engine, extrapolated) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {date.today().isoformat()} | {out['machine']['cpu_model']}, nproc "
        f"{out['machine']['nproc']} | {out['referrals']:,} | `python bench/bench_replay.py "
        f"{'--smoke' if args.smoke else '--reuse'}` | {out['baseline_read_parse_s']:.1f} s "
        f"| **{out['replay_median_s']:.1f} s** | {per_million:.1f} s "
        f"| {out['replay_cpu_median_s']:.1f} s | {max(out['peak_rss_mib'])} MiB "
        f"| {out['naive_extrapolated_s']:.1f} s "
        f"({out['naive_us_per_referral']:.1f} µs each) |"
    )
    failed = False
    if not out["naive_equals_fast"]:
        print("FAILED: the fast replay and the naive evaluation disagree", file=sys.stderr)
        failed = True
    if args.smoke and (out["referrals"] == 0 or not any(out["changed"].values())):
        print("FAILED: nothing replayed, or the candidate changed nothing", file=sys.stderr)
        failed = True
    if not args.smoke and per_million > TARGET_SECONDS_PER_MILLION:
        print(f"FAILED: {per_million:.1f} s per million referrals", file=sys.stderr)
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
