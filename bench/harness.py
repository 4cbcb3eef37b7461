"""Shared plumbing for the benchmark drivers: bench databases, servers, wrk, CPU accounting,
machine facts, and the ``--smoke`` mode every driver has.

Every process started here is started in its own session and stopped by its process-group id
(so ``--workers 2`` children stop too); servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# A fixed, long secret shared by the server and `frontdoor token` (bench only).
BENCH_JWT_SECRET = "bench-only-secret-not-for-production-0123456789abcdef"
DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and all its children so far."""
        return process_tree_cpu(self.process.pid)


def frontdoor_env(database_url: str, app_dir: Path = REPO, **extra: str) -> dict[str, str]:
    """Environment for `frontdoor serve` / CLI commands in bench runs."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "FRONTDOOR_JWT_SECRET": BENCH_JWT_SECRET,
            "FRONTDOOR_ENVIRONMENT": "production",
            "FRONTDOOR_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(app_dir),
        }
    )
    env.update(extra)
    return env


def frontdoor_cli(args: list[str], env: dict[str, str], app_dir: Path = REPO) -> str:
    """Run `frontdoor ARGS` (as ``python -m app.cli`` from ``app_dir``); its stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=app_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def start_frontdoor(
    dsn: str,
    port: int,
    *,
    app_dir: Path = REPO,
    workers: int = 1,
    cpus: str | None = None,
    log_path: Path,
    ready_path: str = "/healthz",
) -> Server:
    """`frontdoor serve` (as ``python -m app.cli serve``, so a patched copy in ``app_dir`` can be
    served) over ``dsn`` on a loopback port, with production settings and INFO request logs."""
    command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    return start_server(
        "frontdoor",
        command,
        f"http://127.0.0.1:{port}",
        env=frontdoor_env(dsn, app_dir),
        cwd=app_dir,
        cpus=cpus,
        log_path=log_path,
        ready_path=ready_path,
    )


def start_server(
    name: str,
    command: list[str],
    url: str,
    *,
    env: dict[str, str],
    cwd: Path,
    cpus: str | None,
    log_path: Path,
    ready_path: str = "/healthz",
    timeout: float = 60.0,
) -> Server:
    """Start a server (pinned to ``cpus`` with taskset when given) and wait until it answers."""
    if cpus:
        command = ["taskset", "-c", cpus, *command]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("wb")
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
            raise RuntimeError(f"{name} exited with {process.returncode} ({log_path}):\n{tail}")
        try:
            with urllib.request.urlopen(url + ready_path, timeout=2) as response:
                if response.status < 500:
                    return Server(name, process, url, log_path)
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return Server(name, process, url, log_path)
        except OSError:
            pass
        time.sleep(0.2)
    stop_server(Server(name, process, url, log_path))
    raise RuntimeError(f"{name} did not become ready in {timeout}s; see {log_path}")


def stop_server(server: Server, timeout: float = 15.0) -> None:
    """SIGTERM the server's process group (its workers too), SIGKILL if it lingers."""
    if server.process.poll() is not None:
        return
    pgid = server.process.pid  # start_new_session: the group id is the server's pid
    os.killpg(pgid, signal.SIGTERM)
    try:
        server.process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        server.process.wait(timeout)


# Bench databases ---------------------------------------------------------------------------------


def database_dsn(admin_dsn: str, db: str) -> str:
    """``admin_dsn`` (a DSN to any database on the server, ``postgresql+asyncpg://`` too) as a
    plain ``postgresql://`` DSN to database ``db``."""
    from sqlalchemy import make_url

    url = make_url(admin_dsn).set(drivername="postgresql", database=db)
    return url.render_as_string(hide_password=False)


def _admin(admin_dsn: str) -> str:
    from sqlalchemy import make_url

    return database_dsn(admin_dsn, make_url(admin_dsn).database or "postgres")


async def create_database(admin_dsn: str, db: str, *, recreate: bool = True) -> None:
    """Create ``db`` on ``admin_dsn``'s server (dropping it first if ``recreate``)."""
    import asyncpg

    conn = await asyncpg.connect(_admin(admin_dsn))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db)
        if exists and recreate:
            await conn.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
            exists = False
        if not exists:
            await conn.execute(f'CREATE DATABASE "{db}"')
    finally:
        await conn.close()


async def drop_database(admin_dsn: str, db: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_admin(admin_dsn))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    finally:
        await conn.close()


def migrate(dsn: str) -> str:
    """Apply the application's migrations and write the default service directory (queues,
    ruleset record) as the app does at start-up; the ruleset's version."""
    from app.config import Settings
    from app.migrate import upgrade

    settings = Settings(database_url=dsn)
    upgrade(settings)
    return asyncio.run(_sync_directory(settings))


async def _sync_directory(settings: Any) -> str:
    from app.db import create_engine, create_session_factory
    from app.services.directory import sync_directory
    from app.triage import load_ruleset

    ruleset = load_ruleset(None)
    engine = create_engine(settings)
    try:
        async with create_session_factory(engine)() as session:
            await sync_directory(session, ruleset, datetime.now(UTC))
            await session.commit()
    finally:
        await engine.dispose()
    return str(ruleset.version)


def add_dsn_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dsn",
        default=DEFAULT_ADMIN_DSN,
        help="a DSN to any database on the PostgreSQL server (used for CREATE DATABASE; the "
        "bench database's name replaces its database name)",
    )


# --smoke -----------------------------------------------------------------------------------------


def add_smoke_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the smallest run that still goes through every step (a tiny dataset in a database "
        "of its own, created and dropped; free ports; no pinning or waiting): seconds, not "
        "minutes. Exit 1 if any step or request failed. Its figures mean nothing.",
    )


def smoke_database(script: str) -> str:
    """A database name of this process's own, so smoke runs side by side do not collide."""
    return f"frontdoor_smoke_{script}_{os.getpid()}"


@contextmanager
def database_dropped_afterwards(admin_dsn: str, db: str, enabled: bool = True) -> Iterator[None]:
    """Drop ``db`` when the block ends, however it ends (when ``enabled``)."""
    try:
        yield
    finally:
        if enabled:
            asyncio.run(drop_database(admin_dsn, db))


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# CPU and the machine -----------------------------------------------------------------------------


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its live descendants."""
    total = 0.0
    for child in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the ")" : state is field 0; utime, stime are fields 11 and 12.
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def _descendants(pid: int) -> list[int]:
    children: list[int] = []
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        for task in tasks:
            text = (task / "children").read_text().split()
            for child in map(int, text):
                children.append(child)
                children.extend(_descendants(child))
    except OSError:
        pass
    return children


def postgres_cpu() -> float:
    """CPU seconds of every postgres process on the box (other users' too: a rough figure)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        if name.startswith("postgres"):
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def run_wrk(
    url: str,
    script: Path,
    script_args: list[str],
    *,
    connections: int,
    duration_s: int,
    threads: int = 1,
    cpus: str | None = None,
    timeout_s: int = 5,
) -> dict[str, Any]:
    """Run wrk with a script whose done() prints ``RESULT {json}``; that JSON."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(script),
        url,
        "--",
        *script_args,
    ]
    if cpus:
        command = ["taskset", "-c", cpus, *command]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    for line in output.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            seconds = result["duration_us"] / 1e6
            result["rps"] = round(result["requests"] / seconds, 1)
            errors = sum(result["socket_errors"].values()) + result["non_201"]
            result["errors"] = errors
            return result
    raise RuntimeError(f"wrk printed no RESULT line:\n{output}")


def run_loadgen(args: list[str], cpus: str | None = None) -> dict[str, Any]:
    """Run bench/loadgen.py in its own (pinned) process; its JSON summary."""
    command = [sys.executable, str(REPO / "bench" / "loadgen.py"), *args]
    if cpus:
        command = ["taskset", "-c", cpus, *command]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def stop_cleanly_on_signals() -> None:
    """SIGTERM (and SIGINT, which nohup'd background jobs ignore) raise, so ``finally`` blocks
    stop the servers this process started."""

    def _raise(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGINT, _raise)


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def busy_processes() -> list[str]:
    """Other heavy work on the box (test suites, other benchmarks) that would skew timings."""
    out = subprocess.run(
        ["ps", "-eo", "pid,pcpu,args", "--sort=-pcpu"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[1:]
    busy = []
    for line in out:
        pid, pcpu, args = line.strip().split(None, 2)
        if int(pid) == os.getpid():
            continue
        if float(pcpu) >= 20 or re.search(r"\bpytest\b", args):
            busy.append(f"{pid} {pcpu}% {args[:100]}")
    return busy


def wait_for_quiet(max_load: float, max_wait_s: int, poll_s: int = 60) -> dict[str, Any]:
    """Wait (up to ``max_wait_s``) until the 1-minute load average is below ``max_load``."""
    waited = 0
    while True:
        load = load_average()
        if load[0] < max_load or waited >= max_wait_s:
            return {"load_average": load, "waited_s": waited, "busy": busy_processes()}
        print(f"  machine busy (load {load}); waiting {poll_s}s ...", flush=True)
        time.sleep(poll_s)
        waited += poll_s


def machine(dsn: str | None = None) -> dict[str, Any]:
    """The facts RESULTS.md records about the box (and the PostgreSQL server at ``dsn``)."""
    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    pg = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    facts: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "postgresql_client": pg,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
    if dsn is not None:
        server = subprocess.run(
            ["psql", "-At", "-c", "SHOW server_version", dsn], capture_output=True, text=True
        )
        facts["postgresql_server"] = server.stdout.strip()
    return facts


def median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return float("nan")
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
