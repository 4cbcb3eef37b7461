"""``frontdoor token`` and ``frontdoor client create|list|revoke``, end to end against the API.

The client commands commit through their own engine, so they run against a database of their
own (a fresh SQLite file, or a fresh PostgreSQL database on the test server) rather than the
shared test database whose transactions are rolled back.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest

from app.cli import main
from app.config import Settings, get_settings
from app.main import create_app
from app.migrate import upgrade
from tests.conftest import TEST_JWT_SECRET, _create_pg_database, _drop_pg_database
from tests.factories import referral_body


@pytest.fixture(scope="module")
def cli_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    choice = os.environ.get("FRONTDOOR_TEST_DATABASE", "sqlite").strip() or "sqlite"
    if choice == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('cli') / 'cli.db'}"
        upgrade(Settings(environment="test", database_url=url))
        yield url
        return
    try:
        url = asyncio.run(_create_pg_database(choice))
    except Exception as exc:
        pytest.skip(f"PostgreSQL unreachable: {type(exc).__name__}")
    try:
        upgrade(Settings(environment="test", database_url=url))
        yield url
    finally:
        asyncio.run(_drop_pg_database(choice, url))


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, cli_database_url: str) -> Iterator[Settings]:
    """The environment ``frontdoor`` reads, pointed at the CLI's database."""
    monkeypatch.setenv("FRONTDOOR_ENVIRONMENT", "test")
    monkeypatch.setenv("FRONTDOOR_DATABASE_URL", cli_database_url)
    monkeypatch.setenv("FRONTDOOR_JWT_SECRET", TEST_JWT_SECRET)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what fixtures printed (start-up logs go to stdout)
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def _run_in_thread(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    # The client commands run their own event loop (asyncio.run): not inside the test's.
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# frontdoor token --------------------------------------------------------------------------------


async def test_token_prints_a_token_the_api_accepts(cli_env, capsys, client, settings):
    code, out, _ = _run(
        capsys,
        "token",
        "--role",
        "practitioner",
        "--queue",
        "cb-norwich",
        "--queue",
        "cb-lowestoft",
        "--name",
        "Dr Test",
    )
    assert code == 0
    token = out.strip()
    claims = jwt.decode(
        token, TEST_JWT_SECRET, algorithms=["HS256"], audience=settings.jwt_audience
    )
    assert claims["role"] == "practitioner"
    assert claims["queues"] == ["cb-lowestoft", "cb-norwich"]
    assert claims["name"] == "Dr Test"
    assert claims["iss"] == settings.jwt_issuer
    uuid.UUID(claims["sub"])
    response = await client.get(
        "/v1/rulesets/current", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200


def test_token_subject_can_be_chosen(cli_env, capsys):
    code, out, _ = _run(capsys, "token", "--role", "admin", "--subject", "user-42")
    assert code == 0
    assert jwt.decode(out.strip(), options={"verify_signature": False})["sub"] == "user-42"


def _subject(token: str) -> str:
    return str(jwt.decode(token.strip(), options={"verify_signature": False})["sub"])


def test_token_keeps_one_id_per_name(cli_env, capsys):
    """A worker who mints a new token keeps the id their cases are held under."""
    first = _run(capsys, "token", "--role", "practitioner", "--name", "Dr Test")[1]
    again = _run(capsys, "token", "--role", "team_lead", "--name", "  dr  TEST ")[1]
    other = _run(capsys, "token", "--role", "practitioner", "--name", "Dr Other")[1]
    assert _subject(first) == _subject(again) != _subject(other)
    uuid.UUID(_subject(first))
    nameless = [_run(capsys, "token", "--role", "call_handler")[1] for _ in range(2)]
    assert _subject(nameless[0]) == _subject(nameless[1])
    code, out, _ = _run(capsys, "token", "--role", "admin", "--name", "Dr Test", "--id", "u-9")
    assert code == 0 and _subject(out) == "u-9"


def test_token_refuses_a_lifetime_over_the_cap(cli_env, capsys, monkeypatch):
    code, out, err = _run(capsys, "token", "--role", "admin", "--lifetime-minutes", "721")
    assert (code, out) == (2, "")
    assert "at most 12 hours" in err
    code, out, _ = _run(capsys, "token", "--role", "admin", "--lifetime-minutes", "720")
    assert code == 0
    claims = jwt.decode(out.strip(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 12 * 3600
    # The cap is the service's setting; the default lifetime (8 h) must fit under it too.
    monkeypatch.setenv("FRONTDOOR_JWT_MAX_LIFETIME_HOURS", "4")
    get_settings.cache_clear()
    code, out, err = _run(capsys, "token", "--role", "admin")
    assert (code, out) == (2, "")
    assert "at most 4 hours" in err


def test_token_is_refused_in_production(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("FRONTDOOR_ENVIRONMENT", "production")
    get_settings.cache_clear()
    code, out, err = _run(capsys, "token", "--role", "admin")
    assert code == 2
    assert out == ""
    assert "local use" in err


def test_token_needs_a_known_role(cli_env, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["token", "--role", "superuser"])
    assert exited.value.code == 2
    capsys.readouterr()


# frontdoor client -------------------------------------------------------------------------------


@pytest.fixture
async def cli_api(cli_env: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API on the CLI's database (its own engine, as in production)."""
    app = create_app(cli_env)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
            yield api


async def test_the_service_freezes_its_start_up_heap(cli_env: Settings):
    """Its own process (its own engine) exempts what start-up built from full collections."""
    import gc

    gc.unfreeze()
    app = create_app(cli_env)
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


async def test_client_create_use_list_revoke(cli_api, capsys):
    code, out, err = await _run_in_thread(
        capsys, "client", "create", "--name", "Riverside Surgery", "--ods", "a81001"
    )
    assert code == 0
    key = out.strip()
    assert key.startswith("fdk_") and "\n" not in key
    client_id = next(line for line in err.splitlines() if line.startswith("client_id:"))
    client_id = client_id.split(":", 1)[1].strip()
    assert "not shown again" in err

    headers = {"X-API-Key": key, "Idempotency-Key": f"cli-{uuid.uuid4()}"}
    created = await cli_api.post("/v1/referrals", json=referral_body("system"), headers=headers)
    assert created.status_code == 201, created.text
    read = await cli_api.get(f"/v1/referrals/{created.json()['id']}", headers={"X-API-Key": key})
    assert read.status_code == 200

    code, listing, _ = await _run_in_thread(capsys, "client", "list")
    assert code == 0
    row = next(line for line in listing.splitlines() if line.startswith(client_id))
    assert row.split("\t")[1:3] == ["A81001", "active"]  # the ODS code is normalised
    assert key not in listing and key.split("_", 2)[2] not in listing and "$argon2" not in listing

    code, _, err = await _run_in_thread(capsys, "client", "revoke", client_id)
    assert code == 0 and "revoked" in err
    refused = await cli_api.get(f"/v1/referrals/{created.json()['id']}", headers={"X-API-Key": key})
    assert refused.status_code == 401
    code, listing, _ = await _run_in_thread(capsys, "client", "list")
    assert next(line for line in listing.splitlines() if line.startswith(client_id)).split("\t")[
        2
    ] == ("revoked")
    # Revoking twice is harmless.
    code, _, _ = await _run_in_thread(capsys, "client", "revoke", client_id)
    assert code == 0


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (("client", "create", "--name", "X", "--ods", "no spaces!"), 2, "ODS"),
        (("client", "revoke", "not-a-uuid"), 2, "uuid"),
        (("client", "revoke", str(uuid.uuid4())), 1, "no such client"),
    ],
)
async def test_client_command_errors(cli_env, capsys, argv: Any, code: int, message: str):
    got, out, err = await _run_in_thread(capsys, *argv)
    assert got == code
    assert out == ""
    assert message in err


# frontdoor serve: the client address ------------------------------------------------------------


async def test_serve_does_not_let_uvicorn_trust_x_forwarded_for(settings):
    """uvicorn's own proxy-header handling trusts 127.0.0.1 by default; serve turns it off, so
    a header from a local peer gives no new address (and so no new allowance) with hops=0."""
    import uvicorn
    from starlette.requests import Request

    from app.cli import uvicorn_options
    from app.ratelimit import client_address

    seen: list[dict[str, Any]] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)

    options = uvicorn_options("127.0.0.1", 8000, 1)
    assert options["proxy_headers"] is False
    config = uvicorn.Config(lambda: inner, **options)
    config.load()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/self-referrals",
        "raw_path": b"/v1/self-referrals",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"x-forwarded-for", b"10.9.8.7")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    await config.loaded_app(scope, None, None)
    assert seen[0]["client"] == ("127.0.0.1", 40000)
    assert settings.forwarded_for_trusted_hops == 0
    assert client_address(Request(seen[0]), settings) == "127.0.0.1"
