"""The month's MHSDS extract (``frontdoor export mhsds``) over a large database: wall time and
peak memory, against a same-run baseline that streams the same rows and throws them away.

    python bench/bench_mhsds_export.py                      # load 1,000,000 referrals, measure
    python bench/bench_mhsds_export.py --reuse              # measure the loaded database again
    python bench/bench_mhsds_export.py --smoke              # 300 people, every step, dropped

The data is bench/generate_data.py's (the real triage engine decides every referral; cases and
their contacts), with one change made here, not in the generator: the referral history is
shortened from three years to ``--history-days`` (default 300), so that one calendar month holds
about 100,000 referrals received (1,000,000 / 300 * 30) besides those carried over from earlier
months; the month measured is the last complete one. Each export runs as the real command in a
fresh process (``python -m app.cli export mhsds``), so its peak RSS (``wait4``) is the whole
command's; a near-empty month (before the history starts) is exported too, to show that memory
does not grow with the month's size.
"""

from __future__ import annotations

if __package__ in (None, ""):  # run as a script: make ``app`` and ``bench`` importable
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import generate_data, harness

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DB = "frontdoor_bench_mhsds"
TARGET_SECONDS = 30.0
# The command, reporting its own peak RSS: VmHWM of the process's own memory after exec (a forked
# child's ru_maxrss would include the bench process's memory before the exec).
MEASURED_CLI = """
import sys
from app.cli import main
code = main(sys.argv[2:])
with open("/proc/self/status") as status:
    hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
with open(sys.argv[1], "w") as out:
    out.write(hwm)
sys.exit(code)
"""


def last_complete_month(today: date) -> str:
    first = today.replace(day=1) - timedelta(days=1)
    return f"{first.year:04d}-{first.month:02d}"


def months_before(month: str, count: int) -> str:
    year, number = (int(part) for part in month.split("-"))
    index = year * 12 + (number - 1) - count
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def load(admin_dsn: str, db: str, referrals: int, history_days: int) -> dict[str, Any]:
    # The generator's history window, shortened for this run only (its worker processes are
    # forked, so they see the same value).
    generate_data.REFERRAL_HISTORY_DAYS = history_days
    people = generate_data.people_for_referrals(referrals)
    summary = generate_data.load_dataset(admin_dsn, db, people, progress=True)
    return {"people": people, "rows": summary.rows, "seconds": summary.seconds}


def run_export(dsn: str, month: str, out: Path) -> dict[str, Any]:
    """``frontdoor export mhsds`` in a fresh process: wall seconds, peak RSS, manifest."""
    env = harness.frontdoor_env(
        dsn,
        FRONTDOOR_ENVIRONMENT="production",
        FRONTDOOR_PROVIDER_ODS="RMY",
        FRONTDOOR_MHSDS_PSEUDONYM_KEY="bench-only-pseudonym-key-" + "b" * 16,
    )
    hwm = out.parent / f"{out.name}.vmhwm"
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        command = ["export", "mhsds", "--month", month, "--out", str(out)]
        process = subprocess.Popen(
            [sys.executable, "-c", MEASURED_CLI, str(hwm), *command],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        _pid, status, _usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        if process.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"export failed: {stderr.read().decode(errors='replace')[-2000:]}")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return {
        "seconds": seconds,
        "peak_rss_mib": int(hwm.read_text(encoding="utf-8")) / 1024,
        "rows": {name: entry["rows"] for name, entry in manifest["files"].items()},
        "bytes": sum((out / name).stat().st_size for name in manifest["files"]),
    }


async def _baseline(dsn: str, month: str) -> dict[str, Any]:
    """The same two statements read the same way as the export (COPY on PostgreSQL, a cursor's
    batches elsewhere: ``_each_batch``), rows counted and discarded: what reading the month
    costs before any code is mapped or any CSV written."""
    from app.config import Settings
    from app.exports.mhsds import (
        BATCH_ROWS,
        ReportingPeriod,
        _begin_snapshot,
        _contact_statement,
        _each_batch,
        _referral_statement,
        create_export_engine,
    )

    period = ReportingPeriod.parse(month)
    engine = create_export_engine(Settings(database_url=dsn))
    rows = 0

    def count(batch: Any) -> None:
        nonlocal rows
        rows += len(batch)

    started = time.perf_counter()
    try:
        async with engine.connect() as conn:
            await _begin_snapshot(conn)
            for statement in (_referral_statement(period), _contact_statement(period)):
                await _each_batch(conn, statement, BATCH_ROWS, count)
            await conn.rollback()
    finally:
        await engine.dispose()
    return {"seconds": time.perf_counter() - started, "rows_read": rows}


def baseline(dsn: str, month: str) -> dict[str, Any]:
    return asyncio.run(_baseline(dsn, month))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    harness.add_dsn_argument(parser)
    parser.add_argument("--db", default=DEFAULT_DB)
    parser.add_argument("--referrals", type=int, default=1_000_000)
    parser.add_argument("--history-days", type=int, default=300)
    parser.add_argument("--month", default=None, help="YYYY-MM (default: the last complete month)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="measure the loaded database again")
    parser.add_argument("--keep-files", action="store_true", help="keep the last extract")
    harness.add_smoke_argument(parser)
    args = parser.parse_args(argv)
    month = args.month or last_complete_month(datetime.now(UTC).date())
    if args.smoke:
        args.db, args.referrals, args.repeats, args.reuse = (
            harness.smoke_database("mhsds"),
            370,
            1,
            False,
        )
        args.history_days = 60
    dsn = harness.database_dsn(args.dsn, args.db)
    report: dict[str, Any] = {
        "machine": harness.machine(args.dsn),
        "database": args.db,
        "month": month,
        "history_days": args.history_days,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with harness.database_dropped_afterwards(args.dsn, args.db, enabled=args.smoke):
        if not args.reuse:
            print(f"loading about {args.referrals:,} referrals into {args.db} ...", flush=True)
            report["load"] = load(args.dsn, args.db, args.referrals, args.history_days)
        work = Path(tempfile.mkdtemp(prefix="mhsds-bench-"))
        try:
            runs = []
            baselines = []
            for repeat in range(args.repeats):
                baselines.append(baseline(dsn, month))
                runs.append(run_export(dsn, month, work / f"run{repeat}"))
                run, base = runs[-1], baselines[-1]
                print(
                    f"run {repeat + 1}: {run['seconds']:.2f} s, {run['peak_rss_mib']:.0f} MiB; "
                    f"baseline {base['seconds']:.2f} s",
                    flush=True,
                )
            empty_month = months_before(month, 24)
            small = run_export(dsn, empty_month, work / "small")
            seconds = [run["seconds"] for run in runs]
            report.update(
                {
                    "rows": runs[-1]["rows"],
                    "bytes": runs[-1]["bytes"],
                    "export_seconds": seconds,
                    "export_median_seconds": harness.median(seconds),
                    "export_peak_rss_mib": max(run["peak_rss_mib"] for run in runs),
                    "baseline_seconds": [b["seconds"] for b in baselines],
                    "baseline_median_seconds": harness.median([b["seconds"] for b in baselines]),
                    "baseline_rows_read": baselines[-1]["rows_read"],
                    "small_month": {
                        "month": empty_month,
                        "rows": small["rows"],
                        "seconds": small["seconds"],
                        "peak_rss_mib": small["peak_rss_mib"],
                    },
                    "target_seconds": TARGET_SECONDS,
                }
            )
            if args.keep_files:
                print(f"extract kept in {work / f'run{args.repeats - 1}'}")
        finally:
            if not args.keep_files:
                shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))
    if args.smoke:
        rows = report["rows"]
        if not rows.get("MHS101Referral.csv") or not rows.get("MHS201CareContact.csv"):
            print("smoke: the month had no referrals or no contacts", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
