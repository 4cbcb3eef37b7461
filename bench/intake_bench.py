"""Intake throughput: Front Door's POST /v1/referrals against the bare baseline, in one run.

    python bench/intake_bench.py --runs 3 --duration 20
    python bench/intake_bench.py --smoke --dsn "$PG_URL"   # one 2 s run of each step, seconds

For each run: a fresh database (migrated, one API client), then for each app (baseline and
Front Door, alternating which goes first):

1. start it (uvicorn, one worker by default, pinned to ``--server-cpus``);
2. warm up with wrk for a few seconds;
3. **maximum throughput**: wrk, closed loop, ``--connections`` connections, ``--duration`` s;
4. **latency at 70% of that maximum**: bench/loadgen.py open loop at 0.7 x max req/s for
   ``--duration`` s, latency measured from each request's due time;
5. stop it; record requests/s, errors (anything but 201), p50/p99 and server CPU per request.

wrk and loadgen run pinned to ``--client-cpus``; PostgreSQL floats. Both apps get the same
bodies file (a realistic mix: phone 45%, system 40% with API key and Idempotency-Key, drop-in
15%; about 10% repeat people) and the same load. Results: bench/out/intake_<label>.json and a
Markdown summary on stdout. ``--profile`` records Front Door with py-spy during step 3 (raw
collapsed stacks: any flame-graph tool reads them). Exits 1 if any request was not a 201.
"""

from __future__ import annotations

if __package__ in (None, ""):  # run as a script: make ``app`` and ``bench`` importable
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import harness, synth

BODIES_FILE = harness.OUT / "intake_bodies.tsv"
SMOKE_BODIES_FILE = harness.OUT / "intake_bodies_smoke.tsv"
LUA_SCRIPT = harness.REPO / "bench" / "intake.lua"
BASELINE_PORT = 8101
FRONTDOOR_PORT = 8102
LOAD_FRACTION = 0.7
WARMUP_S = 4
# --smoke: one run, every step for a second or two, a small bodies file of its own.
SMOKE = {
    "runs": 1,
    "duration": 2,
    "warmup": 3,  # a new server's first requests are slow (caches, pools): 1 s may see none
    "connections": 4,
    "bodies_count": 500,
    "server_cpus": None,
    "client_cpus": None,
    "max_wait": 0,
    "label": "smoke",
}


def write_bodies(path: Path, count: int, seed: int) -> None:
    """The bodies file: ``kind<TAB>json`` per line (kind = staff | system)."""
    today = datetime.now(UTC).date()
    bodies = synth.intake_bodies(count, seed=seed, on=today)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for body in bodies:
            kind = b"system" if body["channel"] == "system" else b"staff"
            out.write(kind + b"\t" + orjson.dumps(body) + b"\n")


def prepare_database(admin_dsn: str, db: str, app_dir: Path) -> tuple[str, str]:
    """A fresh database, migrated by ``app_dir``'s own `frontdoor migrate`, with one
    referring-system client (the organisation the system bodies come from); (staff token,
    API key)."""
    asyncio.run(harness.create_database(admin_dsn, db, recreate=True))
    dsn = harness.database_dsn(admin_dsn, db)
    env = harness.frontdoor_env(dsn, app_dir)
    harness.frontdoor_cli(["migrate"], env, app_dir)
    # `frontdoor token` is for local use (refused in production); the server checks the token
    # with the same secret, issuer and audience whatever its environment.
    token = harness.frontdoor_cli(
        ["token", "--role", "call_handler", "--name", "Bench"],
        {**env, "FRONTDOOR_ENVIRONMENT": "development"},
        app_dir,
    )
    name, ods_code = synth.INTAKE_SYSTEM
    api_key = harness.frontdoor_cli(
        ["client", "create", "--name", name, "--ods", ods_code], env, app_dir
    ).splitlines()[-1]
    return token, api_key


def measure_app(
    name: str,
    start: Any,
    args: argparse.Namespace,
    token: str,
    api_key: str,
    offset: int,
    run_id: str,
    profile_path: Path | None,
) -> dict[str, Any]:
    """Warm up, measure the maximum, then latency at 70% of it. Returns the figures."""
    server = start()
    try:
        # wrk counts completed requests only; up to one per connection is still in flight when
        # it stops and reaches the server, so the next phase skips that many bodies and uses its
        # own Idempotency-Key prefix (no phase replays another's request).
        in_flight = args.connections

        def wrk(phase: str, seconds: int) -> dict[str, Any]:
            return harness.run_wrk(
                server.url,
                LUA_SCRIPT,
                [str(args.bodies_file), token, api_key, f"{run_id}-{name}-{phase}", str(offset)],
                connections=args.connections,
                duration_s=seconds,
                cpus=args.client_cpus,
            )

        offset += wrk("warm", args.warmup)["requests"] + in_flight
        cpu_before = server.cpu_seconds()
        pg_before = harness.postgres_cpu()
        spy = _start_py_spy(server, args.duration, profile_path) if profile_path else None
        peak = wrk("max", args.duration)
        if spy is not None:
            spy.wait(timeout=args.duration + 60)
        cpu = server.cpu_seconds() - cpu_before
        pg_cpu = harness.postgres_cpu() - pg_before
        offset += peak["requests"] + in_flight
        if not peak["requests"]:
            raise RuntimeError(f"{name}: no request completed in {args.duration} s (wrk)")
        rate = round(peak["rps"] * LOAD_FRACTION, 1)
        bodies = args.bodies_count
        at_load = harness.run_loadgen(
            [
                "open",
                "--url",
                server.url,
                "--rate",
                str(rate),
                "--duration",
                str(args.duration),
                "--bodies",
                str(args.bodies_file),
                "--token-file",
                str(_write(token, "token")),
                "--api-key-file",
                str(_write(api_key, "api_key")),
                "--run-id",
                f"{run_id}-{name}-open",
                "--start",
                str(offset),
            ],
            cpus=args.client_cpus,
        )
        offset += at_load["requests"]
        return {
            "app": name,
            "max_rps": peak["rps"],
            "max_errors": peak["errors"],
            "max_statuses": peak["statuses"],
            "max_latency_ms": {k: round(v / 1000, 2) for k, v in peak["latency_us"].items()},
            "server_cpu_ms_per_request": round(cpu * 1000 / max(peak["requests"], 1), 3),
            "postgres_cpu_ms_per_request": round(pg_cpu * 1000 / max(peak["requests"], 1), 3),
            "load_rps": rate,
            "load_achieved_rps": at_load["achieved_rps"],
            "load_errors": at_load["errors"],
            "load_statuses": at_load["statuses"],
            "load_failures": at_load["failures"],
            "load_connections": at_load["connections"],
            "load_latency_ms": at_load["latency_ms"],
            "bodies_used": offset,
            "bodies_wrapped": name != "baseline" and offset > bodies,
        }
    finally:
        harness.stop_server(server)


def _write(text: str, name: str) -> Path:
    path = harness.OUT / name
    path.write_text(text)
    return path


def _start_py_spy(server: harness.Server, duration: int, path: Path) -> subprocess.Popen[bytes]:
    """py-spy over the server (and its workers) for ``duration`` s: collapsed stacks."""
    return subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(server.process.pid),
            "--subprocesses",
            "--duration",
            str(duration),
            "--rate",
            "250",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    harness.add_dsn_argument(parser)
    parser.add_argument("--db", default="frontdoor_bench_intake")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=20, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=WARMUP_S, help="seconds of wrk first")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers for every app")
    parser.add_argument(
        "--server-cpus",
        default=None,
        help="taskset CPU list for the servers (default: 0 with 1 worker, unpinned otherwise)",
    )
    parser.add_argument("--client-cpus", default="1", help="taskset CPU list for wrk/loadgen")
    parser.add_argument("--bodies-count", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--tree",
        action="append",
        default=None,
        metavar="NAME=PATH",
        help="a Front Door source tree to serve, as NAME=PATH (repeat to compare "
        "patched copies in the same run; default frontdoor=<this repo>)",
    )
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--label", default="baseline-vs-frontdoor", help="name for bench/out/intake_<label>.json"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy each Front Door server during the maximum-throughput step",
    )
    parser.add_argument(
        "--max-load",
        type=float,
        default=1.0,
        help="wait (up to --max-wait s) for the 1-min load average to drop below",
    )
    parser.add_argument("--max-wait", type=int, default=900)
    harness.add_smoke_argument(parser)
    args = parser.parse_args(argv)
    harness.stop_cleanly_on_signals()
    args.bodies_file = BODIES_FILE
    args.baseline_port, args.frontdoor_port = BASELINE_PORT, FRONTDOOR_PORT
    if args.smoke:
        vars(args).update(SMOKE, db=harness.smoke_database("intake"))
        args.bodies_file = SMOKE_BODIES_FILE
        args.baseline_port, args.frontdoor_port = harness.free_port(), harness.free_port()
    elif args.server_cpus is None:
        args.server_cpus = "0" if args.workers == 1 else None
    with harness.database_dropped_afterwards(args.dsn, args.db, enabled=args.smoke):
        return run(args)


def run(args: argparse.Namespace) -> int:
    trees = dict(t.split("=", 1) for t in (args.tree or [f"frontdoor={harness.REPO}"]))
    bodies = args.bodies_file
    if not bodies.exists() or sum(1 for _ in bodies.open()) != args.bodies_count:
        print(f"writing {args.bodies_count:,} bodies to {bodies} ...", flush=True)
        write_bodies(bodies, args.bodies_count, args.seed)

    dsn = harness.database_dsn(args.dsn, args.db)
    runs: list[dict[str, Any]] = []
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    apps: list[tuple[str, Path | None]] = [] if args.no_baseline else [("baseline", None)]
    apps += [(name, Path(path)) for name, path in trees.items()]
    for run_number in range(1, args.runs + 1):
        quiet = harness.wait_for_quiet(args.max_load, args.max_wait)
        print(f"run {run_number}/{args.runs} (load {quiet['load_average']})", flush=True)
        # Rotate the order run by run so drift in the machine's load hits every app alike.
        shift = (run_number - 1) % len(apps)
        results = {}
        for name, tree in apps[shift:] + apps[:shift]:
            # A fresh database for every app: each starts from the same empty state and bodies.
            token, api_key = prepare_database(args.dsn, args.db, tree or harness.REPO)
            run_id = uuid.uuid4().hex[:8]
            if tree is None:
                start = _baseline_starter(args, dsn)
            else:
                start = _frontdoor_starter(args, dsn, tree)
            profile = (
                harness.OUT / f"profile_{args.label}_{name}_run{run_number}.txt"
                if args.profile and tree is not None
                else None
            )
            results[name] = measure_app(name, start, args, token, api_key, 0, run_id, profile)
            r = results[name]
            print(
                f"  {name:10s} max {r['max_rps']:8.1f} req/s (errors {r['max_errors']}, "
                f"cpu {r['server_cpu_ms_per_request']:.2f} ms/req, "
                f"pg {r['postgres_cpu_ms_per_request']:.2f} ms/req) | "
                f"at {r['load_rps']:.0f} req/s: p50 {r['load_latency_ms'].get('p50')} ms "
                f"p99 {r['load_latency_ms'].get('p99')} ms errors {r['load_errors']}",
                flush=True,
            )
        ratios = {}
        if "baseline" in results:
            for name in trees:
                ratios[name] = results[name]["max_rps"] / results["baseline"]["max_rps"]
                print(f"  ratio {name}/baseline = {ratios[name]:.3f}", flush=True)
        runs.append({"run": run_number, "quiet": quiet, "ratios": ratios, **results})

    summary = summarise(runs, [name for name, _ in apps])
    report = {
        "label": args.label,
        "started_at": started_at,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": harness.machine(dsn),
        "args": {k: str(v) for k, v in vars(args).items()},
        "runs": runs,
        "median": summary,
    }
    out = harness.OUT / f"intake_{args.label}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"wrote {out}")
    failed = {name: figures["errors_total"] for name, figures in summary.items()}
    failed = {name: errors for name, errors in failed.items() if errors}
    if failed:
        print(f"FAILED requests (not 201) by app: {failed}", file=sys.stderr)
    return 1 if failed else 0


def _baseline_starter(args: argparse.Namespace, dsn: str) -> Any:
    """bench/baseline_app.py."""
    port = args.baseline_port

    def start() -> harness.Server:
        return harness.start_server(
            "baseline",
            [
                sys.executable,
                str(harness.REPO / "bench" / "baseline_app.py"),
                "--dsn",
                dsn,
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            f"http://127.0.0.1:{port}",
            env=harness.frontdoor_env(dsn),
            cwd=harness.REPO,
            cpus=args.server_cpus,
            log_path=harness.OUT / "server_baseline.log",
            ready_path="/openapi.json",
        )

    return start


def _frontdoor_starter(args: argparse.Namespace, dsn: str, tree: Path) -> Any:
    def start() -> harness.Server:
        return harness.start_frontdoor(
            dsn,
            args.frontdoor_port,
            app_dir=tree,
            workers=args.workers,
            cpus=args.server_cpus,
            log_path=harness.OUT / f"server_{tree.name}.log",
        )

    return start


def summarise(runs: list[dict[str, Any]], app_names: list[str]) -> dict[str, Any]:
    """Medians over runs of each app's figures, and of each tree's ratio to the baseline."""
    out: dict[str, Any] = {}
    for app_name in app_names:
        rows = [r[app_name] for r in runs if app_name in r]
        if not rows:
            continue
        out[app_name] = {
            "max_rps": harness.median([r["max_rps"] for r in rows]),
            "max_p99_ms": harness.median([r["max_latency_ms"]["p99"] for r in rows]),
            "load_rps": harness.median([r["load_rps"] for r in rows]),
            "load_p50_ms": harness.median([r["load_latency_ms"]["p50"] for r in rows]),
            "load_p99_ms": harness.median([r["load_latency_ms"]["p99"] for r in rows]),
            "server_cpu_ms_per_request": harness.median(
                [r["server_cpu_ms_per_request"] for r in rows]
            ),
            "postgres_cpu_ms_per_request": harness.median(
                [r["postgres_cpu_ms_per_request"] for r in rows]
            ),
            "errors_total": sum(r["max_errors"] + r["load_errors"] for r in rows),
            "runs": len(rows),
        }
    for app_name in app_names:
        ratios = [r["ratios"][app_name] for r in runs if app_name in r.get("ratios", {})]
        if ratios:
            out[app_name]["ratio_to_baseline_median"] = round(harness.median(ratios), 3)
            out[app_name]["ratios_to_baseline"] = [round(x, 3) for x in ratios]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
