"""Test fixtures: one database per run (SQLite file, or a fresh PostgreSQL database), migrated
once; each test in a transaction rolled back at the end (the savepoint recipe), so the app's own
commit path runs unchanged.

Choose the database with ``FRONTDOOR_TEST_DATABASE``: ``sqlite`` (default) or a PostgreSQL URL
such as ``postgresql://postgres@127.0.0.1:5432/test`` (a new database is created on that server
and dropped afterwards). With ``CI=true``, an unreachable PostgreSQL fails the run.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.clock import FrozenClock
from app.config import Settings
from app.db import create_engine
from app.main import create_app
from app.migrate import upgrade
from app.models import ApiClient
from app.security import Role, generate_api_key, issue_staff_token

TEST_JWT_SECRET = "test-secret-" + "x" * 40


def _database_choice() -> str:
    return os.environ.get("FRONTDOOR_TEST_DATABASE", "sqlite").strip() or "sqlite"


def pytest_report_header(config: pytest.Config) -> str:
    choice = _database_choice()
    return f"frontdoor test database: {'sqlite' if choice == 'sqlite' else 'postgresql'}"


async def _create_pg_database(admin_url: str) -> str:
    import asyncpg

    url = make_url(admin_url)
    name = f"frontdoor_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database or "postgres",
        timeout=10,
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(drivername="postgresql+asyncpg", database=name).render_as_string(
        hide_password=False
    )


async def _drop_pg_database(admin_url: str, test_url: str) -> None:
    import asyncpg

    url = make_url(admin_url)
    name = make_url(test_url).database
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database or "postgres",
        timeout=10,
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    choice = _database_choice()
    if choice == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "frontdoor-test.db"
        yield f"sqlite+aiosqlite:///{path}"
        return
    try:
        url = asyncio.run(_create_pg_database(choice))
    except Exception as exc:  # unreachable server, bad credentials
        message = f"PostgreSQL at {make_url(choice).host} is unreachable: {type(exc).__name__}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.exit(message, returncode=3)
        pytest.skip(message, allow_module_level=True)
    try:
        yield url
    finally:
        asyncio.run(_drop_pg_database(choice, url))


@pytest.fixture
def scratch_database_url(tmp_path: Path) -> Iterator[str]:
    """A second, empty database on the same backend, for tests that migrate or commit freely."""
    choice = _database_choice()
    if choice == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}"
        return
    url = asyncio.run(_create_pg_database(choice))
    try:
        yield url
    finally:
        asyncio.run(_drop_pg_database(choice, url))


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        jwt_secret=TEST_JWT_SECRET,  # type: ignore[arg-type]
        log_json=True,
    )


@pytest.fixture(scope="session")
def migrated(settings: Settings) -> Settings:
    """Apply migrations once per run (alembic runs its own event loop, so not inside ours)."""
    upgrade(settings)
    return settings


@pytest.fixture(scope="session")
async def engine(migrated: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction that is rolled back after the test."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            if transaction.is_active:
                await transaction.rollback()


@pytest.fixture
def session_factory(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    # Each app-level commit releases a SAVEPOINT; the outer transaction is rolled back.
    return async_sessionmaker(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
async def session(session_factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with session_factory() as session:
        yield session


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


async def _running_app(
    settings: Settings,
    engine: AsyncEngine,
    factory: async_sessionmaker[AsyncSession],
    clock: FrozenClock,
) -> Any:
    app = create_app(settings, clock=clock)
    app.state.engine = engine
    app.state.session_factory = factory
    return app


@pytest.fixture
async def app(
    migrated: Settings,
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
    clock: FrozenClock,
) -> AsyncIterator[Any]:
    app = await _running_app(migrated, engine, session_factory, clock)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def staff_headers(settings: Settings, clock: FrozenClock) -> Any:
    """``staff_headers(role="call_handler", queues=[...], subject=...)`` → auth headers."""

    def make(
        role: str = "call_handler", queues: list[str] | None = None, subject: str | None = None
    ) -> dict[str, str]:
        token = issue_staff_token(
            settings,
            subject=subject or f"user-{role}",
            role=Role(role),
            queue_ids=queues,
            # Tokens are checked against the wall clock, not the test's frozen clock.
            now=datetime.now(UTC),
        )
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def make_client(session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock) -> Any:
    """``await make_client(ods="A81001")`` → (client_id, headers) for a referring system."""

    async def make(
        name: str = "Test GP system", ods: str = "A81001"
    ) -> tuple[uuid.UUID, dict[str, str]]:
        key = generate_api_key()
        async with session_factory() as session:
            row = ApiClient(
                name=name,
                ods_code=ods,
                key_prefix=key.prefix,
                key_hash=key.key_hash,
                created_at=clock.now(),
            )
            session.add(row)
            await session.commit()
            return row.id, {"X-API-Key": key.key}

    return make


@pytest.fixture
def is_postgres(settings: Settings) -> bool:
    return not settings.is_sqlite


async def count_rows(session: AsyncSession, table: str) -> int:
    value = await session.scalar(text(f"SELECT count(*) FROM {table}"))
    return int(value or 0)
