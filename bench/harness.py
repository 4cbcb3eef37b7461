"""Shared plumbing for the benchmark drivers: servers, wrk, CPU accounting, machine facts.

Every process started here is started in its own session and stopped by its process-group id
(so ``--workers 2`` children stop too); servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# A fixed, long secret shared by the server and `frontdoor token` (bench only).
BENCH_JWT_SECRET = "bench-only-secret-not-for-production-0123456789abcdef"


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
            raise RuntimeError(f"{name} exited with {process.returncode}; see {log_path}")
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


@contextmanager
def running(server_factory: Any) -> Iterator[Server]:
    server = server_factory()
    try:
        yield server
    finally:
        stop_server(server)


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


def machine() -> dict[str, Any]:
    """The facts RESULTS.md records about the box."""
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
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "postgresql_client": pg,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return float("nan")
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
