"""Alembic, driven from the application: find the scripts, upgrade, and check currency."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, make_url

from app.config import Settings
from app.db import create_engine, ensure_sqlite_directory


def migrations_dir() -> Path:
    """``FRONTDOOR_MIGRATIONS_DIR``, else ``migrations/`` beside the package or in the cwd."""
    candidates = [Path(p) for p in [os.environ.get("FRONTDOOR_MIGRATIONS_DIR")] if p] + [
        Path(__file__).resolve().parent.parent / "migrations",
        Path.cwd() / "migrations",
    ]
    for candidate in candidates:
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("cannot find the migrations directory (set FRONTDOOR_MIGRATIONS_DIR)")


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # Percent signs in passwords would otherwise be read as interpolation by configparser.
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    config.set_main_option(
        "file_template",
        "%%(year)d%%(month).2d%%(day).2d_%%(hour).2d%%(minute).2d_%%(rev)s_%%(slug)s",
    )
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (runs its own event loop: call from sync code)."""
    ensure_sqlite_directory(settings.database_url)
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


MIGRATE_HINT = "run `frontdoor migrate` (or `frontdoor serve --migrate`)"


class NotReadyToServe(Exception):
    """Why the service cannot start on this database, in one line a person can act on."""


def _where(settings: Settings) -> str:
    """The database named without its password: ``postgresql://user@host:5432/name``."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return f"sqlite:///{url.database}"
    port = f":{url.port}" if url.port else ""
    user = f"{url.username}@" if url.username else ""
    return f"{url.get_backend_name()}://{user}{url.host or 'localhost'}{port}/{url.database}"


async def _database_revision(settings: Settings) -> str | None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(current_revision)
    finally:
        await engine.dispose()


def database_revision(settings: Settings) -> str | None:
    """The database's migration revision (None: never migrated); ``NotReadyToServe`` when it
    cannot be reached. Runs its own event loop: call from sync code."""
    try:
        return asyncio.run(_database_revision(settings))
    except Exception as exc:  # refused, timed out, unknown host or database, bad credentials
        # The exception's type only: a driver's message is not for the console of a service
        # that may hold patient data, and the type says enough to act on.
        raise NotReadyToServe(
            f"cannot reach the database at {_where(settings)} ({type(exc).__name__}): "
            "check DATABASE_URL and that the server is running"
        ) from exc


def check_ready_to_serve(settings: Settings, *, migrate: bool) -> None:
    """Start-up check for ``frontdoor serve``: the database is reachable and its migrations are
    current (after applying them when ``migrate``). ``NotReadyToServe`` says what to do."""
    revision = database_revision(settings)
    head = head_revision()
    if migrate and revision != head:
        try:
            upgrade(settings)
        except Exception as exc:
            raise NotReadyToServe(
                f"migrating the database at {_where(settings)} failed ({type(exc).__name__}); "
                "see `frontdoor migrate` for details"
            ) from exc
        revision = database_revision(settings)
    if revision == head:
        return
    if revision is None:
        raise NotReadyToServe(
            f"the database at {_where(settings)} has not been migrated: {MIGRATE_HINT}"
        )
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    try:
        ScriptDirectory.from_config(config).get_revision(revision)
    except Exception:  # alembic's CommandError for a revision it has no script for
        raise NotReadyToServe(
            f"the database at {_where(settings)} is at migration {revision}, which this version "
            f"does not know (is the database newer than this release?); head is {head}"
        ) from None
    raise NotReadyToServe(
        f"the database at {_where(settings)} is at migration {revision}, behind {head}: "
        f"{MIGRATE_HINT}"
    )
