"""Faults are 503, never 500, and nothing hangs (issue 11, item 8).

Against a PostgreSQL server this module starts itself (its own data directory under a temporary
directory, its own port and socket directory; never the shared server): under load the server is
stopped (``pg_ctl stop -m fast`` and ``-m immediate``) and started again, and frozen (SIGSTOP) and
thawed. Every 201 must be in the database afterwards, every failure a 503 problem with
``Retry-After``, no request may outlast the configured timeouts, and the service recovers without
a restart. The module runs in the SQLite and the PostgreSQL test runs alike (its server is its
own); without ``initdb`` it is skipped locally and fails under ``CI=true``.

The classification of every way the database can be unavailable, and the lock-wait timeout on
the configured backend, are tested below without a server of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.config import Settings
from app.db import CLIENT_TIMEOUT_MARGIN_SECONDS, create_engine
from app.errors import is_database_unavailable
from app.main import create_app
from app.migrate import upgrade
from app.security import Role, issue_staff_token
from tests.conftest import TEST_JWT_SECRET
from tests.factories import referral_body, valid_test_nhs_numbers

CONNECT_TIMEOUT_SECONDS = 1.0
STATEMENT_TIMEOUT_SECONDS = 1.5
POOL_TIMEOUT_SECONDS = 1.0
# SQLAlchemy closes a broken asyncpg connection gracefully for up to 2 s before terminating it.
GRACEFUL_CLOSE_SECONDS = 2.0
# The longest a request may take with the server stopped or frozen: a statement the server never
# answers (the client's command timeout), then the broken connection's close, plus scheduling
# slack on a busy 2-CPU machine. (A new connection gives up after the connect timeout, a wait
# for a pooled one after the pool timeout: both shorter.) Without timeouts such requests hung
# for as long as the server stayed frozen.
REQUEST_BOUND_SECONDS = (
    STATEMENT_TIMEOUT_SECONDS + CLIENT_TIMEOUT_MARGIN_SECONDS + GRACEFUL_CLOSE_SECONDS + 1.5
)
LOAD_WORKERS = 8


# A PostgreSQL server of the test's own --------------------------------------------------------


def _pg_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
    bindir = Path(found.stdout.strip())
    # Debian's pg_config names /usr/lib/postgresql/<version>/bin, where initdb and pg_ctl live.
    return bindir if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file() else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnPostgres:
    """initdb/pg_ctl on a data directory of our own; run as ``postgres`` when we are root."""

    def __init__(self, bindir: Path, base: Path) -> None:
        self.bindir = bindir
        self.base = base
        self.data = base / "data"
        self.log = base / "server.log"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/frontdoor"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr[-2000:]}")
        return done

    def init(self) -> None:
        if self.as_root:
            shutil.chown(self.base, user="postgres", group="postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base} "
            "-c max_connections=60 -c shared_buffers=32MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=mode != "any")

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def _server_pids(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer, ...): ours only."""
        postmaster = self.postmaster_pid()
        pids = [postmaster]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == postmaster:
                pids.append(int(stat.parent.name))
        return pids

    def freeze(self) -> list[int]:
        pids = self._server_pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    @staticmethod
    def thaw(pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    bindir = _pg_bindir()
    if bindir is None:
        message = "initdb/pg_ctl not found via pg_config --bindir: cannot start a test server"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    base = Path(tempfile.mkdtemp(prefix="frontdoor-faults-"))
    server = OwnPostgres(bindir, base)
    try:
        server.init()
        server.start()
        asyncio.run(_create_database(server.port))
        upgrade(_fault_settings(server.url))
        yield server
    finally:
        server.stop("immediate") if (server.data / "postmaster.pid").exists() else None
        shutil.rmtree(base, ignore_errors=True)


async def _create_database(port: int) -> None:
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", timeout=10)
    try:
        await conn.execute("CREATE DATABASE frontdoor")
    finally:
        await conn.close()


def _fault_settings(url: str) -> Settings:
    return Settings(
        environment="test",
        database_url=url,
        jwt_secret=TEST_JWT_SECRET,  # type: ignore[arg-type]
        database_connect_timeout_seconds=CONNECT_TIMEOUT_SECONDS,
        database_statement_timeout_seconds=STATEMENT_TIMEOUT_SECONDS,
        database_pool_timeout_seconds=POOL_TIMEOUT_SECONDS,
        database_pool_size=5,
    )


@dataclass
class Service:
    client: httpx.AsyncClient
    headers: dict[str, str]
    settings: Settings


@pytest.fixture
async def service(own_postgres: OwnPostgres) -> AsyncIterator[Service]:
    """The app on its own engine (the real commit path), talking to the test's own server."""
    settings = _fault_settings(own_postgres.url)
    app = create_app(settings)
    engine = create_engine(settings)
    app.state.engine = engine
    token = issue_staff_token(
        settings, subject="fault-tester", role=Role("call_handler"), now=datetime.now(UTC)
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
        ):
            yield Service(client, {"Authorization": f"Bearer {token}"}, settings)
    finally:
        await engine.dispose()


# Load -------------------------------------------------------------------------------------------

NHS_NUMBERS = valid_test_nhs_numbers(4000, start=500_000)
_sequence = itertools.count()


@dataclass
class Outcome:
    key: str
    status: int
    retry_after: str | None
    problem_type: str | None
    referral_id: str | None
    seconds: float


async def _post_referral(service: Service) -> Outcome:
    n = next(_sequence)
    key = f"fault-{os.getpid()}-{n}"
    body = referral_body(nhs=NHS_NUMBERS[n % len(NHS_NUMBERS)])
    started = time.monotonic()
    response = await service.client.post(
        "/v1/referrals", json=body, headers={**service.headers, "Idempotency-Key": key}, timeout=60
    )
    seconds = time.monotonic() - started
    payload: dict[str, Any] = response.json()
    return Outcome(
        key=key,
        status=response.status_code,
        retry_after=response.headers.get("retry-after"),
        problem_type=payload.get("type") if response.status_code >= 400 else None,
        referral_id=payload.get("id") if response.status_code == 201 else None,
        seconds=seconds,
    )


class Load:
    """``LOAD_WORKERS`` clients posting referrals back to back until stopped."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.outcomes: list[Outcome] = []
        self.running = True
        self.tasks = [asyncio.create_task(self._worker()) for _ in range(LOAD_WORKERS)]

    async def _worker(self) -> None:
        while self.running:
            outcome = await _post_referral(self.service)
            self.outcomes.append(outcome)
            if outcome.status != 201:
                await asyncio.sleep(0.05)  # a client that backs off a little

    async def wait_for_created(self, after: int, deadline_seconds: float) -> None:
        """Until a 201 arrives among the outcomes from index ``after`` on."""
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            if any(o.status == 201 for o in self.outcomes[after:]):
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the service did not recover after the server came back")

    async def stop(self) -> None:
        self.running = False
        await asyncio.gather(*self.tasks)


async def _stored_referrals(server: OwnPostgres) -> dict[str, str]:
    """Idempotency key → referral id of every stored referral, read straight from the server."""
    conn = await asyncpg.connect(
        host="127.0.0.1", port=server.port, user="postgres", database="frontdoor", timeout=10
    )
    try:
        rows = await conn.fetch(
            "SELECT k.key, r.id::text AS referral_id FROM referrals r"
            " JOIN idempotency_keys k ON k.referral_id = r.id"
        )
    finally:
        await conn.close()
    return {row["key"]: row["referral_id"] for row in rows}


def _assert_only_201_or_503(outcomes: list[Outcome]) -> None:
    bad = [o for o in outcomes if o.status not in (201, 503)]
    assert not bad, [(o.status, o.problem_type) for o in bad[:10]]
    for outcome in outcomes:
        if outcome.status == 503:
            assert outcome.problem_type == "database_unavailable"
            assert outcome.retry_after is not None and int(outcome.retry_after) > 0
    slowest = max(o.seconds for o in outcomes)
    assert slowest < REQUEST_BOUND_SECONDS, slowest


# The tests against the test's own server --------------------------------------------------------


async def test_stopping_the_server_under_load_is_503_and_loses_nothing(own_postgres, service):
    load = Load(service)
    try:
        await load.wait_for_created(0, 15)
        for mode in ("fast", "immediate"):
            await asyncio.sleep(0.7)
            before_stop = len(load.outcomes)
            await asyncio.to_thread(own_postgres.stop, mode)
            await asyncio.sleep(1.5)  # clients keep sending to a stopped server
            down = load.outcomes[before_stop:]
            await asyncio.to_thread(own_postgres.start)
            restarted = len(load.outcomes)
            await load.wait_for_created(restarted, 15)
            assert any(o.status == 503 for o in down), f"no 503 while stopped ({mode})"
        await asyncio.sleep(0.5)
    finally:
        await load.stop()

    outcomes = load.outcomes
    _assert_only_201_or_503(outcomes)
    created = {o.key: o.referral_id for o in outcomes if o.status == 201}
    assert created
    stored = await _stored_referrals(own_postgres)
    missing = [key for key, referral_id in created.items() if stored.get(key) != referral_id]
    assert not missing, f"{len(missing)} of {len(created)} referrals answered 201 are not stored"

    # Recovered without a restart: requests one after another all succeed again.
    after = [await _post_referral(service) for _ in range(5)]
    assert [o.status for o in after] == [201] * 5


async def test_a_frozen_server_answers_503_within_the_timeouts(own_postgres, service):
    warm = [await _post_referral(service) for _ in range(3)]
    assert [o.status for o in warm] == [201] * 3
    pids = await asyncio.to_thread(own_postgres.freeze)
    try:
        started = time.monotonic()
        frozen = await asyncio.gather(*(_post_referral(service) for _ in range(LOAD_WORKERS)))
        ready = await service.client.get("/readyz", timeout=60)
        elapsed = time.monotonic() - started
    finally:
        own_postgres.thaw(pids)
    assert [o.status for o in frozen] == [503] * LOAD_WORKERS
    _assert_only_201_or_503(list(frozen))
    assert elapsed < 2 * REQUEST_BOUND_SECONDS
    assert ready.status_code == 503
    assert ready.headers["content-type"].startswith("application/problem+json")
    assert ready.headers.get("retry-after")

    deadline = time.monotonic() + 15
    while True:
        outcome = await _post_referral(service)
        if outcome.status == 201:
            break
        assert outcome.status == 503, outcome
        assert time.monotonic() < deadline, "no recovery after the server was thawed"
        await asyncio.sleep(0.2)
    assert (await service.client.get("/readyz")).status_code == 200


async def test_the_configured_timeouts_reach_the_server(own_postgres, service):
    engine = create_engine(service.settings)
    try:
        async with engine.connect() as conn:
            timeout = await conn.scalar(text("SHOW statement_timeout"))
    finally:
        await engine.dispose()
    assert timeout == "1500ms"


# Lock waits on the configured backend (SQLite busy timeout, PostgreSQL statement_timeout) ----


async def test_a_statement_waiting_on_a_lock_gives_up_with_503(scratch_database_url):
    settings = _fault_settings(scratch_database_url).model_copy(
        update={"database_statement_timeout_seconds": 1.0}
    )
    await asyncio.to_thread(upgrade, settings)
    app = create_app(settings)
    engine = create_engine(settings)
    app.state.engine = engine
    token = issue_staff_token(
        settings, subject="lock-tester", role=Role("call_handler"), now=datetime.now(UTC)
    )
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "lock-1"}
    transport = httpx.ASGITransport(app=app)
    holder: Any
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
        ):
            if settings.is_sqlite:
                # Another writer holds SQLite's write lock for longer than the busy timeout.
                path = make_url(settings.database_url).database
                holder = sqlite3.connect(path, isolation_level=None)
                holder.execute("BEGIN IMMEDIATE")
            else:
                url = make_url(settings.database_url)
                holder = await asyncpg.connect(
                    host=url.host, port=url.port, user=url.username, database=url.database
                )
                await holder.execute("BEGIN")
                await holder.execute("LOCK TABLE referrals IN ACCESS EXCLUSIVE MODE")
            try:
                started = time.monotonic()
                response = await client.post(
                    "/v1/referrals", json=referral_body(), headers=headers, timeout=60
                )
                elapsed = time.monotonic() - started
            finally:
                if settings.is_sqlite:
                    holder.execute("ROLLBACK")
                    holder.close()
                else:
                    await holder.close()
            assert response.status_code == 503, response.text
            assert response.json()["type"] == "database_unavailable"
            assert response.headers["retry-after"]
            assert elapsed < 1.0 + CLIENT_TIMEOUT_MARGIN_SECONDS + 2.0
            # The lock released, the same request (same key) is accepted.
            retried = await client.post("/v1/referrals", json=referral_body(), headers=headers)
            assert retried.status_code == 201, retried.text
    finally:
        await engine.dispose()


# Every way the database can be unavailable is recognised ----------------------------------------


def _asyncpg_error(cls: type[asyncpg.PostgresError]) -> asyncpg.PostgresError:
    return cls("simulated")


def _wrapped(orig: BaseException, wrapper: type[DBAPIError] = DBAPIError) -> DBAPIError:
    return wrapper("SELECT 1", {}, orig)


class _DriverError(Exception):
    """A driver error carrying only a SQLSTATE (as SQLAlchemy's asyncpg adapter does)."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__("simulated")
        self.sqlstate = sqlstate


_raised_from_a_reset = RuntimeError("during commit")
_raised_from_a_reset.__cause__ = ConnectionResetError()

UNAVAILABLE = {
    "connection refused": ConnectionRefusedError(111, "refused"),
    "connection reset": ConnectionResetError(104, "reset"),
    "socket or asyncio timeout": TimeoutError(),  # asyncio.TimeoutError is TimeoutError
    "no route to host": OSError(113, "no route to host"),
    "every address refused (asyncio)": OSError("Multiple exceptions: ..."),
    "unknown host": socket.gaierror(-2, "Name or service not known"),
    "refused, wrapped": _wrapped(ConnectionRefusedError(111, "refused")),
    "reset, wrapped as interface error": _wrapped(ConnectionResetError(), InterfaceError),
    "connection does not exist": _asyncpg_error(asyncpg.ConnectionDoesNotExistError),
    "connection does not exist, wrapped": _wrapped(
        _asyncpg_error(asyncpg.ConnectionDoesNotExistError)
    ),
    "cannot connect now": _asyncpg_error(asyncpg.CannotConnectNowError),
    "too many connections": _wrapped(_asyncpg_error(asyncpg.TooManyConnectionsError)),
    "admin shutdown": _wrapped(_asyncpg_error(asyncpg.AdminShutdownError)),
    "crash shutdown": _wrapped(_asyncpg_error(asyncpg.CrashShutdownError)),
    "statement timeout": _wrapped(_asyncpg_error(asyncpg.QueryCanceledError)),
    "serialization failure": _wrapped(_asyncpg_error(asyncpg.SerializationError)),
    "deadlock": _wrapped(_asyncpg_error(asyncpg.DeadlockDetectedError)),
    "read-only after failover": _wrapped(_asyncpg_error(asyncpg.ReadOnlySQLTransactionError)),
    "sqlstate 08006 via adapter": _wrapped(_DriverError("08006")),
    "sqlstate 53100 disk full": _wrapped(_DriverError("53100")),
    "sqlstate 55P03 lock timeout": _wrapped(_DriverError("55P03")),
    "asyncpg interface error": asyncpg.InterfaceError("connection is closed"),
    "operational error": _wrapped(Exception("simulated"), OperationalError),
    "sqlite busy": _wrapped(sqlite3.OperationalError("database is locked"), OperationalError),
    "pool timeout": PoolTimeoutError("QueuePool limit reached"),
    "raised from a reset": _raised_from_a_reset,
    "group of resets": ExceptionGroup("tasks", [ConnectionResetError(), TimeoutError()]),
}

NOT_UNAVAILABLE = {
    "programming bug": RuntimeError("bug"),
    "missing file": FileNotFoundError(2, "No such file or directory"),
    "permission": PermissionError(13, "Permission denied"),
    "unique violation": _wrapped(_asyncpg_error(asyncpg.UniqueViolationError)),
    "syntax error": _wrapped(_DriverError("42601")),
    "a group with a bug": ExceptionGroup("tasks", [ConnectionResetError(), KeyError("x")]),
}


@pytest.mark.parametrize("exc", UNAVAILABLE.values(), ids=UNAVAILABLE.keys())
def test_every_kind_of_unavailability_is_recognised(exc):
    assert is_database_unavailable(exc)


@pytest.mark.parametrize("exc", NOT_UNAVAILABLE.values(), ids=NOT_UNAVAILABLE.keys())
def test_faults_in_the_service_are_not_called_unavailability(exc):
    assert not is_database_unavailable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "refused"),
        ConnectionResetError(104, "reset"),
        TimeoutError(),
        _asyncpg_error(asyncpg.CannotConnectNowError),
        _wrapped(_asyncpg_error(asyncpg.AdminShutdownError)),
        _wrapped(_asyncpg_error(asyncpg.QueryCanceledError)),
        PoolTimeoutError("QueuePool limit reached"),
    ],
    ids=["refused", "reset", "timeout", "cannot-connect-now", "admin-shutdown", "57014", "pool"],
)
async def test_a_raw_or_wrapped_fault_from_a_route_is_503_problem_json(
    client, staff_headers, monkeypatch, exc
):
    async def _fail(*args: Any, **kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr("app.routers.persons.find_people", _fail)
    response = await client.get(
        "/v1/persons", params={"nhs_number": "9990000018"}, headers=staff_headers()
    )
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "5"
    problem = response.json()
    assert problem["type"] == "database_unavailable"
    assert problem["status"] == 503
    assert problem["request_id"] == response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_an_unexpected_error_is_500_with_the_same_body_shape(
    client, staff_headers, monkeypatch
):
    async def _fail(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("9990000018")

    monkeypatch.setattr("app.routers.persons.find_people", _fail)
    response = await client.get(
        "/v1/persons", params={"nhs_number": "9990000018"}, headers=staff_headers()
    )
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert set(problem) == {"type", "code", "title", "status", "detail", "request_id"}
    assert problem["type"] == "internal_error"
    assert "9990000018" not in response.text


async def test_a_generic_dbapi_error_that_is_not_unavailability_is_500(
    client, staff_headers, monkeypatch
):
    async def _fail(*args: Any, **kwargs: Any) -> Any:
        raise _wrapped(_DriverError("42601"))

    monkeypatch.setattr("app.routers.persons.find_people", _fail)
    response = await client.get(
        "/v1/persons", params={"nhs_number": "9990000018"}, headers=staff_headers()
    )
    assert response.status_code == 500
    assert response.json()["type"] == "internal_error"
