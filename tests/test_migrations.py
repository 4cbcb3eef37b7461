"""Models and migrations agree, and migrations go down and up again cleanly."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from app.config import Settings
from app.db import create_engine
from app.migrate import downgrade, head_revision, upgrade
from app.models import Base
from tests.conftest import TEST_JWT_SECRET


def _settings(url: str) -> Settings:
    return Settings(environment="test", database_url=url, jwt_secret=TEST_JWT_SECRET)  # type: ignore[arg-type]


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


def _inspect(settings: Settings) -> tuple[list[object], list[str], str | None]:
    async def run() -> tuple[list[object], list[str], str | None]:
        engine = create_engine(settings)
        try:
            async with engine.connect() as conn:
                diff = await conn.run_sync(_diff)
                tables = await conn.run_sync(lambda c: sorted(inspect(c).get_table_names()))
                version = await conn.run_sync(
                    lambda c: MigrationContext.configure(c).get_current_revision()
                )
                return diff, tables, version
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_autogenerate_finds_no_difference(scratch_database_url):
    settings = _settings(scratch_database_url)
    upgrade(settings)
    diff, _, version = _inspect(settings)
    assert diff == [], f"models and migrations disagree: {diff}"
    assert version == head_revision()


def test_upgrade_downgrade_upgrade(scratch_database_url):
    settings = _settings(scratch_database_url)
    upgrade(settings)
    downgrade(settings, "base")
    _, tables, version = _inspect(settings)
    assert version is None
    assert [t for t in tables if t != "alembic_version"] == []
    upgrade(settings)
    diff, tables, version = _inspect(settings)
    assert version == head_revision()
    assert {"persons", "referrals", "cases", "case_events", "audit_events"} <= set(tables)
    assert diff == []
