"""Start-up (issue 11, item 12): ``frontdoor serve`` refuses, in one line, a database it cannot
reach or whose migrations are not current, instead of a traceback; ``/readyz`` answers problem
JSON with ``Retry-After`` while the service is not ready."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from app.cli import main
from app.config import Settings, get_settings
from app.db import create_engine, create_session_factory
from app.main import create_app
from app.migrate import (
    MIGRATE_HINT,
    NotReadyToServe,
    check_ready_to_serve,
    head_revision,
    migrations_dir,
    upgrade,
)
from tests.conftest import TEST_JWT_SECRET


def _closed_port() -> int:
    """A local port nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Record uvicorn.run calls instead of serving."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: calls.append(kwargs))
    yield calls


def _serve(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
    *argv: str,
) -> tuple[int, str]:
    monkeypatch.setenv("FRONTDOOR_ENVIRONMENT", "test")
    monkeypatch.setenv("FRONTDOOR_DATABASE_URL", database_url)
    monkeypatch.setenv("FRONTDOOR_JWT_SECRET", TEST_JWT_SECRET)
    monkeypatch.setenv("FRONTDOOR_DATABASE_CONNECT_TIMEOUT_SECONDS", "3")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    # Logging set up on pytest's captured stdout would outlive this test's capture.
    monkeypatch.setattr("app.logs.configure_logging", lambda *args, **kwargs: None)
    get_settings.cache_clear()
    try:
        capsys.readouterr()
        code = main(["serve", "--port", str(_closed_port()), *argv])
        return code, capsys.readouterr().err
    finally:
        get_settings.cache_clear()


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _previous_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    head = ScriptDirectory.from_config(config).get_revision(head_revision())
    assert head is not None and isinstance(head.down_revision, str)
    return head.down_revision


def test_serve_on_an_unreachable_database_says_so_in_one_line():
    """The real command in its own process: exit code, stderr, nothing served."""
    url = f"postgresql://frontdoor:s3cret-pw@127.0.0.1:{_closed_port()}/frontdoor"
    env = {
        **os.environ,
        "FRONTDOOR_ENVIRONMENT": "test",
        "FRONTDOOR_DATABASE_URL": url,
        "FRONTDOOR_JWT_SECRET": TEST_JWT_SECRET,
    }
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(_closed_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    line = _one_line(done.stderr)
    assert "cannot reach the database" in line
    assert f"127.0.0.1:{url.split(':')[3].split('/')[0]}/frontdoor" in line
    assert "s3cret-pw" not in done.stderr + done.stdout


def test_serve_on_an_unmigrated_database(monkeypatch, capsys, served, scratch_database_url):
    code, err = _serve(monkeypatch, capsys, scratch_database_url)
    if scratch_database_url.startswith("sqlite"):
        # The embedded default migrates itself, then serves.
        assert code == 0 and len(served) == 1
        settings = Settings(environment="test", database_url=scratch_database_url)
        check_ready_to_serve(settings, migrate=False)
        return
    assert code == 1
    assert served == []
    line = _one_line(err)
    assert "has not been migrated" in line and "frontdoor migrate" in line
    assert "frontdoor serve --migrate" in line


def test_serve_on_a_database_behind_head(monkeypatch, capsys, served, scratch_database_url):
    previous = _previous_revision()
    upgrade(Settings(environment="test", database_url=scratch_database_url), previous)
    code, err = _serve(monkeypatch, capsys, scratch_database_url)
    if scratch_database_url.startswith("sqlite"):
        assert code == 0 and len(served) == 1
        return
    assert code == 1 and served == []
    line = _one_line(err)
    assert f"at migration {previous}, behind {head_revision()}" in line
    assert "frontdoor migrate" in line


def test_serve_with_migrate_migrates_then_serves(monkeypatch, capsys, served, scratch_database_url):
    code, err = _serve(monkeypatch, capsys, scratch_database_url, "--migrate")
    assert code == 0, err
    assert len(served) == 1 and served[0]["factory"] is True
    check_ready_to_serve(
        Settings(environment="test", database_url=scratch_database_url), migrate=False
    )


def test_the_start_up_check_names_the_fix_on_every_backend(scratch_database_url):
    settings = Settings(environment="test", database_url=scratch_database_url)
    with pytest.raises(NotReadyToServe, match="has not been migrated") as raised:
        check_ready_to_serve(settings, migrate=False)
    assert MIGRATE_HINT in str(raised.value)
    upgrade(settings, _previous_revision())
    with pytest.raises(NotReadyToServe, match="behind"):
        check_ready_to_serve(settings, migrate=False)
    check_ready_to_serve(settings, migrate=True)
    check_ready_to_serve(settings, migrate=False)


def test_a_database_newer_than_this_release_is_named(scratch_database_url):
    settings = Settings(environment="test", database_url=scratch_database_url)
    upgrade(settings)

    async def stamp_unknown_revision() -> None:
        engine = create_engine(settings)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE alembic_version SET version_num = 'ffff0newer'"))
        finally:
            await engine.dispose()

    asyncio.run(stamp_unknown_revision())
    with pytest.raises(NotReadyToServe, match="does not know"):
        check_ready_to_serve(settings, migrate=False)


# /readyz ----------------------------------------------------------------------------------------


async def test_readyz_when_the_database_is_unreachable_is_problem_json():
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/nowhere"
    settings = Settings(
        environment="test",
        database_url=url,
        jwt_secret=TEST_JWT_SECRET,  # type: ignore[arg-type]
        database_connect_timeout_seconds=2,
    )
    app = create_app(settings)  # no lifespan: it would need the database
    engine = create_engine(settings)
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/readyz")
    finally:
        await engine.dispose()
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "5"
    problem = response.json()
    assert problem["type"] == "database_unavailable"
    assert problem["status"] == 503
    assert problem["database"] == "unreachable"
    assert problem["request_id"] == response.headers["x-request-id"]


async def test_readyz_when_migrations_are_behind_is_problem_json(app, client):
    app.state.migration_head = "not-the-current-revision"
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "5"
    problem = response.json()
    assert problem["type"] == "migrations_pending"
    assert problem["migrations"] == "behind"
    assert "frontdoor migrate" in problem["detail"]


def test_migrate_on_an_unreachable_database_says_so_in_one_line():
    url = f"postgresql://frontdoor:s3cret-pw@127.0.0.1:{_closed_port()}/frontdoor"
    env = {
        **os.environ,
        "FRONTDOOR_ENVIRONMENT": "test",
        "FRONTDOOR_DATABASE_URL": url,
        "FRONTDOOR_JWT_SECRET": TEST_JWT_SECRET,
    }
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    line = _one_line(done.stderr)
    assert line.startswith("frontdoor migrate: cannot reach the database")
    assert "s3cret-pw" not in done.stderr + done.stdout
