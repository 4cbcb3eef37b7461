"""Engine and session factory (built at startup), and the request-scoped session.

One transaction per request: services ``flush()``; the session dependency commits *before* the
response is sent (``scope="function"``), so a failed commit becomes an error response, never a
``201`` for a referral that was not stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import structlog
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from starlette.requests import Request

from app.config import Settings

# The client gives up on a statement this long after PostgreSQL's own statement_timeout would
# have cancelled it: only a server that does not answer at all (frozen, partitioned) reaches it.
CLIENT_TIMEOUT_MARGIN_SECONDS = 1.0
_log = structlog.get_logger(__name__)


def json_serializer(value: Any) -> str:
    """JSON columns (raw payloads, decisions, timelines, audit details) via orjson.

    Several documents are written per referral, so the encoder is on intake's hot path (orjson
    over the standard library's: bench/RESULTS.md). Non-string keys are allowed, as json.dumps
    allows them.
    """
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def json_deserializer(value: str | bytes) -> Any:
    return orjson.loads(value)


def create_engine(settings: Settings, **overrides: Any) -> AsyncEngine:
    """An async engine for the configured database, tuned per backend.

    Every wait is bounded (``FRONTDOOR_DATABASE_*_TIMEOUT_SECONDS``), so a stopped, frozen or
    overloaded database makes requests fail fast (503, app/errors.py) instead of hanging.
    """
    url = make_url(settings.database_url)
    kwargs: dict[str, Any] = {
        "echo": settings.sql_echo,
        "pool_pre_ping": False,
        "json_serializer": json_serializer,
        "json_deserializer": json_deserializer,
    }
    statement_timeout = settings.database_statement_timeout_seconds
    if url.get_backend_name() == "sqlite":
        ensure_sqlite_directory(settings.database_url)
        # pysqlite's busy timeout: how long a statement waits for another writer's lock.
        kwargs["connect_args"] = {"timeout": statement_timeout}
    else:
        kwargs["pool_size"] = settings.database_pool_size
        kwargs["max_overflow"] = settings.database_pool_size
        kwargs["pool_timeout"] = settings.database_pool_timeout_seconds
        if url.get_dialect().driver == "asyncpg":
            kwargs["connect_args"] = asyncpg_connect_args(settings)
    kwargs.update(overrides)
    engine = create_async_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        configure_sqlite(engine, busy_timeout_ms=round(statement_timeout * 1000))
    return engine


def asyncpg_connect_args(settings: Settings) -> dict[str, Any]:
    """asyncpg.connect() arguments: connect timeout (``timeout``), a client-side timeout for
    every operation (``command_timeout``) and the server's own ``statement_timeout``, which
    cancels a slow or lock-waiting statement cleanly (SQLSTATE 57014) before the client gives up.
    """
    statement_timeout = settings.database_statement_timeout_seconds
    return {
        "timeout": settings.database_connect_timeout_seconds,
        "command_timeout": statement_timeout + CLIENT_TIMEOUT_MARGIN_SECONDS,
        "server_settings": {"statement_timeout": str(max(1, round(statement_timeout * 1000)))},
    }


def ensure_sqlite_directory(database_url: str) -> None:
    """Create the folder of a SQLite file (the embedded default lives in ./var)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def configure_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int = 30_000) -> None:
    """Make SQLite transactional in the way the service relies on.

    pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; we emit BEGIN
    IMMEDIATE ourselves so every transaction takes the write lock up front: concurrent requests
    (claiming, idempotency) are serialised instead of failing with "database is locked" on upgrade.
    WAL keeps readers of committed data unblocked.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def insert_on_conflict(session: AsyncSession, table: Any) -> Any:
    """``INSERT`` for ``table`` with the database's ``ON CONFLICT`` clauses (PostgreSQL and
    SQLite, the two the service runs on): insert-if-absent in one round trip, no savepoint."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    raise NotImplementedError(f"no insert-if-absent for the {dialect} dialect")


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session; commits when the endpoint returns, rolls back if it raised.

    Refused accesses queued on the session (``audit.record_refusal``) are written either way:
    with the request's own commit, or after its rollback in a short transaction of their own, so
    a refusal leaves its ``denied`` audit row although the request fails, and no handler commits
    part-way through a request.
    """
    from app.services.audit import take_refusals

    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    async with factory() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            refusals = take_refusals(session)
            if refusals:
                try:
                    session.add_all(refusals)
                    await session.commit()
                except Exception as exc:  # the request's own error is the one to answer with
                    await session.rollback()
                    _log.error(
                        "audit_refusal_not_written",
                        count=len(refusals),
                        error_type=type(exc).__name__,
                    )
            raise
        else:
            session.add_all(take_refusals(session))
            await session.commit()
