"""A small HTTP/1.1 load generator: open loop at a fixed arrival rate, or closed loop; and the
bench's one raw keep-alive client, worker loops and percentiles.

wrk measures the maximum (closed loop); latency *at a given load* needs an open loop, where
requests are sent on a fixed schedule whether or not earlier ones have finished, and latency is
measured from the time a request was *due*, not the time it was sent (avoiding coordinated
omission, as wrk2 does). Debian has no wrk2, so this is it: asyncio (uvloop) with raw keep-alive
connections, light enough to share a core with the database.

    python bench/loadgen.py open --url http://127.0.0.1:8102 --rate 200 --duration 20 \\
        --bodies bench/out/intake_bodies.tsv --token-file bench/out/token --api-key-file ...
    python bench/loadgen.py closed --url http://127.0.0.1:8102 --concurrency 4 --requests 2000 \\
        --paths-file bench/out/search_paths.txt --token-file bench/out/token

Prints one JSON object: requests, errors (non-2xx, by status, and connection failures), achieved
rate, and latency percentiles in milliseconds. Imported, ``worker_loop`` runs N workers (back
to back, or paced by a think time) over any awaitable, HTTP through ``Pool.exchange`` or SQL.
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
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
# What worker_loop awaits: send(worker, index) -> did it succeed (by the caller's own check)?
Send = Callable[[int, int], Awaitable[bool]]
MAX_CONNECTIONS = 512
# uvicorn closes a keep-alive connection idle for 5 s; one idle longer than this is not reused
# (a request written to a connection the server just closed would fail, never reaching it).
MAX_IDLE_SECONDS = 4.0


@dataclass
class Outcome:
    """What a run measured. Latencies in seconds, in completion order."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    # Requests that passed the caller's own check (worker_loop: no HTTP status to count).
    passed: int = 0
    elapsed: float = 0.0
    scheduled_rate: float | None = None
    connections_opened: int = 0

    def summary(self) -> dict[str, Any]:
        ok = self.passed + sum(n for code, n in self.statuses.items() if 200 <= code < 300)
        total = self.passed + sum(self.statuses.values()) + sum(self.failures.values())
        return {
            "requests": total,
            "ok": ok,
            "errors": total - ok,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "failures": dict(self.failures),
            "elapsed_s": round(self.elapsed, 3),
            "achieved_rps": round(total / self.elapsed, 1) if self.elapsed else 0.0,
            "scheduled_rps": self.scheduled_rate,
            "connections": self.connections_opened,
            "latency_ms": percentiles(self.latencies),
        }


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max in milliseconds (nearest-rank)."""
    if not samples:
        return {}
    ordered = sorted(samples)

    def rank(p: float) -> float:
        index = max(0, math.ceil(p / 100 * len(ordered)) - 1)
        return round(ordered[index] * 1000, 2)

    return {
        "p50": rank(50),
        "p90": rank(90),
        "p99": rank(99),
        "p999": rank(99.9),
        "max": round(ordered[-1] * 1000, 2),
        "mean": round(sum(ordered) / len(ordered) * 1000, 2),
    }


class Connection:
    """One keep-alive HTTP/1.1 connection; responses must carry Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.last_used = time.monotonic()

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, bool, bytes]:
        """Send one request; (status, keep-alive?, body)."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        keep_alive = True
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                keep_alive = False
        body = await self.reader.readexactly(length) if length else b""
        self.last_used = time.monotonic()
        return status, keep_alive, body

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Idle connections for reuse; opens more on demand up to ``limit``."""

    def __init__(self, host: str, port: int, limit: int, outcome: Outcome | None = None) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.outcome = outcome or Outcome()  # counts the connections opened
        self.idle: list[Connection] = []
        self.open_count = 0
        self.freed = asyncio.Condition()

    async def acquire(self) -> Connection:
        while True:
            while self.idle:
                conn = self.idle.pop()
                if time.monotonic() - conn.last_used < MAX_IDLE_SECONDS:
                    return conn
                conn.close()
                self.open_count -= 1
            if self.open_count < self.limit:
                self.open_count += 1
                self.outcome.connections_opened += 1
                try:
                    return await Connection.open(self.host, self.port)
                except OSError:
                    self.open_count -= 1
                    raise
            async with self.freed:
                await self.freed.wait()

    async def release(self, conn: Connection | None) -> None:
        if conn is None:
            self.open_count -= 1
        else:
            self.idle.append(conn)
        async with self.freed:
            self.freed.notify()

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send one request on a pooled connection; (status, body)."""
        conn: Connection | None = await self.acquire()
        assert conn is not None
        try:
            status, keep_alive, body = await conn.exchange(request)
        except BaseException:
            conn.close()
            conn = None
            raise
        finally:
            if conn is not None and not keep_alive:
                conn.close()
                conn = None
            await self.release(conn)
        return status, body

    def close(self) -> None:
        for conn in self.idle:
            conn.close()


# What a failed request raises: a refused or reset connection, a truncated or malformed answer.
REQUEST_FAILURES = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


async def _one(pool: Pool, request: bytes, due: float, outcome: Outcome) -> None:
    try:
        status, _body = await pool.exchange(request)
    except REQUEST_FAILURES as exc:
        outcome.failures[type(exc).__name__] += 1
        return
    outcome.latencies.append(time.perf_counter() - due)
    outcome.statuses[status] += 1


async def open_loop(
    url: str,
    requests: Callable[[int], bytes],
    rate: float,
    duration: float,
    *,
    max_connections: int = MAX_CONNECTIONS,
) -> Outcome:
    """Send ``rate`` requests a second for ``duration`` seconds on a fixed schedule.

    SIGTERM ends the schedule early; requests in flight finish and are counted.
    """
    parts = urlsplit(url)
    outcome = Outcome(scheduled_rate=rate)
    pool = Pool(parts.hostname or "127.0.0.1", parts.port or 80, max_connections, outcome)
    total = int(rate * duration)
    tasks = []
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    # perf_counter, not loop.time(): uvloop's clock has millisecond resolution.
    start = time.perf_counter() + 0.05
    for i in range(total):
        if stop.is_set():
            break
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_one(pool, requests(i), due, outcome)))
    await asyncio.gather(*tasks)
    outcome.elapsed = time.perf_counter() - start
    pool.close()
    return outcome


async def closed_loop(
    url: str, requests: Callable[[int], bytes], concurrency: int, count: int
) -> Outcome:
    """``concurrency`` clients, each sending its next request when the last one answers."""
    parts = urlsplit(url)
    outcome = Outcome()
    pool = Pool(parts.hostname or "127.0.0.1", parts.port or 80, concurrency, outcome)
    next_index = 0

    async def client() -> None:
        nonlocal next_index
        while next_index < count:
            i = next_index
            next_index += 1
            await _one(pool, requests(i), time.perf_counter(), outcome)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    outcome.elapsed = time.perf_counter() - start
    pool.close()
    return outcome


async def worker_loop(
    workers: int,
    per_worker: int,
    send: Send,
    *,
    think_ms: float | None = None,
    seed: int = 2026,
) -> Outcome:
    """``workers`` workers, each awaiting ``send(worker, index)`` ``per_worker`` times: back to
    back, or with ``think_ms`` pausing an exponential think time of that mean between requests
    (people below saturation, starting spread over one think time). ``send`` returns whether
    the request succeeded by its own check; latency is timed around it."""
    outcome = Outcome()
    rng = random.Random(seed)

    async def worker(index: int) -> None:
        if think_ms is not None:
            await asyncio.sleep(rng.random() * think_ms / 1000)
        for request_index in range(per_worker):
            started = time.perf_counter()
            try:
                ok = await send(index, request_index)
            except REQUEST_FAILURES as exc:
                outcome.failures[type(exc).__name__] += 1
            else:
                outcome.latencies.append(time.perf_counter() - started)
                if ok:
                    outcome.passed += 1
                else:
                    outcome.failures["failed check"] += 1
            if think_ms is not None:
                await asyncio.sleep(rng.expovariate(1000 / think_ms))

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(workers)))
    outcome.elapsed = time.perf_counter() - started
    return outcome


def http_request(
    method: str, host: str, path: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    """The bytes of one HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def intake_requests(
    url: str, bodies_file: Path, token: str, api_key: str, run_id: str, start: int = 0
) -> Callable[[int], bytes]:
    """Requests for POST /v1/referrals from a bodies file (as bench/intake.lua sends them)."""
    host = urlsplit(url).netloc
    entries = []
    for line in bodies_file.read_text().splitlines():
        kind, _, body = line.partition("\t")
        entries.append((kind, body.encode()))

    def build(i: int) -> bytes:
        counter = start + i
        kind, body = entries[counter % len(entries)]
        headers = {"Content-Type": "application/json"}
        if kind == "system":
            headers["X-API-Key"] = api_key
            headers["Idempotency-Key"] = f"{run_id}-{counter}"
        else:
            headers["Authorization"] = f"Bearer {token}"
        return http_request("POST", host, "/v1/referrals", headers, body)

    return build


def get_requests(url: str, paths: Sequence[str], token: str) -> Callable[[int], bytes]:
    """GET requests cycling through ``paths`` with a bearer token."""
    host = urlsplit(url).netloc
    prepared = [http_request("GET", host, p, {"Authorization": f"Bearer {token}"}) for p in paths]
    return lambda i: prepared[i % len(prepared)]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when installed (as the servers do)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    open_p = sub.add_parser("open", help="fixed arrival rate (POST /v1/referrals bodies)")
    open_p.add_argument("--rate", type=float, required=True, help="requests per second")
    open_p.add_argument("--duration", type=float, default=20.0, help="seconds")
    open_p.add_argument("--bodies", type=Path, required=True)
    open_p.add_argument("--api-key-file", type=Path, required=True)
    open_p.add_argument("--run-id", default=f"open-{int(time.time())}")
    open_p.add_argument("--start", type=int, default=0, help="first line of the bodies file")
    closed_p = sub.add_parser("closed", help="N concurrent clients (GET paths)")
    closed_p.add_argument("--concurrency", type=int, default=4)
    closed_p.add_argument("--requests", type=int, default=2000)
    closed_p.add_argument("--paths-file", type=Path, required=True)
    for p in (open_p, closed_p):
        p.add_argument("--url", default="http://127.0.0.1:8102")
        p.add_argument("--token-file", type=Path, required=True)
    args = parser.parse_args(argv)
    token = args.token_file.read_text().strip()
    if args.mode == "open":
        build = intake_requests(
            args.url,
            args.bodies,
            token,
            args.api_key_file.read_text().strip(),
            args.run_id,
            args.start,
        )
        outcome = run(open_loop(args.url, build, args.rate, args.duration))
    else:
        paths = [p for p in args.paths_file.read_text().splitlines() if p]
        outcome = run(
            closed_loop(
                args.url, get_requests(args.url, paths, token), args.concurrency, args.requests
            )
        )
    print(json.dumps(outcome.summary()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
