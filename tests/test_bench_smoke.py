"""The bench still runs: its scripts import (what they use of ``app`` still exists), the triage
bench's smallest mode passes, the shared client counts what it sends, and the intake bench's
bodies are referrals the service accepts. The full smallest runs against PostgreSQL are the
"bench smoke" step of .ci/run (they take a minute, not seconds)."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from app.schemas.referral import ReferralCreate
from bench import loadgen, synth

REPO = Path(__file__).resolve().parents[1]
BENCH_SCRIPTS = (
    "bench_queues",
    "bench_triage",
    "bench_mhsds_export",
    "bench_replay",
    "bench_reports",
    "bench_ruleset_check",
    "generate_data",
    "intake_bench",
    "search_bench",
    "baseline_app",
    "loadgen",
)


# Modules of bench/ that are shared code, not scripts of their own.
BENCH_LIBRARIES = {"__init__", "harness", "synth"}


def test_every_bench_script_is_listed() -> None:
    """A new benchmark is checked here too: every script in bench/ is in BENCH_SCRIPTS."""
    scripts = {p.stem for p in (REPO / "bench").glob("*.py")} - BENCH_LIBRARIES
    assert scripts == set(BENCH_SCRIPTS)


@pytest.mark.parametrize("name", BENCH_SCRIPTS)
def test_every_bench_script_imports_what_it_uses_of_the_app(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    assert callable(module.main)


def test_the_triage_bench_smallest_mode_decides_every_referral() -> None:
    # A process of its own: the bench pins itself to one core.
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_triage.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "decisions/s per repeat" in result.stdout


def test_intake_bench_bodies_are_valid_referrals_from_the_bench_system() -> None:
    bodies = synth.intake_bodies(300, seed=11, on=date(2026, 12, 1))
    adapter = TypeAdapter(ReferralCreate)
    for body in bodies:
        adapter.validate_python(body)
    system = [body for body in bodies if body["channel"] == "system"]
    assert system
    # A referring system may send only its own ODS code (the one its API key was issued to).
    assert {body["referrer"]["ods_code"] for body in system} == {synth.INTAKE_SYSTEM[1]}


async def test_the_bench_client_counts_requests_checks_and_reconnects() -> None:
    """Pool.exchange over keep-alive connections, a server that closes one connection in
    three, and worker_loop's counts: every request answered, failed checks counted apart."""
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                served += 1
                close = served % 3 == 0
                body = b"odd" if served % 2 else b"even"
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n"
                head += "Connection: close\r\n\r\n" if close else "\r\n"
                writer.write(head.encode() + body)
                await writer.drain()
                if close:
                    break
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = loadgen.Pool("127.0.0.1", port, limit=3)
    request = loadgen.http_request("GET", f"127.0.0.1:{port}", "/", {})
    bodies: list[bytes] = []

    async def send(_worker: int, _index: int) -> bool:
        status, body = await pool.exchange(request)
        bodies.append(body)
        return status == 200 and body == b"even"

    try:
        outcome = await loadgen.worker_loop(3, 10, send, think_ms=1)
    finally:
        pool.close()
        server.close()
        await server.wait_closed()
    summary = outcome.summary()
    assert served == len(bodies) == summary["requests"] == 30
    assert summary["ok"] == bodies.count(b"even") == 15
    assert summary["failures"] == {"failed check": 15}
    assert pool.outcome.connections_opened > 3  # connections the server closed were replaced
    assert set(summary["latency_ms"]) == {"p50", "p90", "p99", "p999", "max", "mean"}
