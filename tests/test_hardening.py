"""Hardening: security headers on every response, CORS closed by default, and nothing internal
(stack traces, exception messages, API docs) shown in production mode."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app.config import Settings
from tests.conftest import _running_app
from tests.factories import self_referral_body

EXPECTED_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
}
SECRET_DETAIL = "secret-detail-9990000018"


def _assert_hardened(response: httpx.Response) -> None:
    for name, value in EXPECTED_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.status_code)
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert response.headers.get("x-request-id")


async def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError(SECRET_DETAIL)


@pytest.fixture
async def production_app(migrated, engine, session_factory, clock) -> AsyncIterator[Any]:
    settings = Settings(
        environment="production",
        database_url=migrated.database_url,
        jwt_secret=migrated.jwt_secret,
    )
    app = await _running_app(settings, engine, session_factory, clock)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def production_client(production_app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=production_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield client


async def test_security_headers_on_every_kind_of_response(client, staff_headers, settings):
    responses = [
        await client.get("/healthz"),
        await client.get("/v1/services"),
        await client.get("/v1/rulesets/current"),  # 401
        await client.get("/v1/audit", headers=staff_headers("practitioner"), params={"x": 1}),
        await client.get("/v1/nowhere"),  # 404
        await client.post("/v1/self-referrals", json={"person": "x"}),  # 422
        await client.post("/v1/self-referrals", content="{", headers={"content-type": "text/x"}),
        await client.post(
            "/v1/self-referrals",
            content=b"x" * (settings.max_body_bytes + 1),
            headers={"content-type": "application/json"},
        ),  # 413
    ]
    assert {r.status_code for r in responses} >= {200, 401, 403, 404, 413, 415, 422}
    for response in responses:
        _assert_hardened(response)
    assert "strict-transport-security" not in responses[0].headers


async def test_an_incoming_request_id_is_echoed_only_when_well_formed(client):
    good = await client.get("/healthz", headers={"X-Request-ID": "abc12345-trace"})
    assert good.headers["x-request-id"] == "abc12345-trace"
    bad = await client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert bad.headers["x-request-id"] != "<script>alert(1)</script>"


async def test_cors_is_closed_by_default(client):
    preflight = await client.options(
        "/v1/referrals",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code >= 400
    simple = await client.get("/v1/services", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_opens_only_to_configured_origins(migrated, engine, session_factory, clock):
    settings = migrated.model_copy(
        update={"cors_allow_origins": ["https://console.frontdoor.example"]}
    )
    app = await _running_app(settings, engine, session_factory, clock)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):

        async def preflight(origin: str) -> httpx.Response:
            return await client.options(
                "/v1/referrals",
                headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
            )

        allowed = await preflight("https://console.frontdoor.example")
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://console.frontdoor.example"
        assert "access-control-allow-credentials" not in allowed.headers
        _assert_hardened(allowed)
        refused = await preflight("https://evil.example")
        assert refused.headers.get("access-control-allow-origin") != "https://evil.example"
        assert "access-control-allow-origin" not in refused.headers


def test_production_refuses_a_wildcard_cors_origin():
    with pytest.raises(ValidationError, match="CORS"):
        Settings(
            environment="production",
            database_url="postgresql://db/frontdoor",
            jwt_secret="s" * 40,  # type: ignore[arg-type]
            cors_allow_origins=["*"],
        )


async def test_production_has_no_interactive_docs_and_sends_hsts(production_client):
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert (await production_client.get(path)).status_code == 404
    # The schema stays published: referring systems code against it.
    assert (await production_client.get("/openapi.json")).status_code == 200
    health = await production_client.get("/healthz")
    assert health.headers["strict-transport-security"].startswith("max-age=")


async def test_development_serves_docs(client):
    assert (await client.get("/docs")).status_code == 200


async def test_a_crash_in_production_shows_no_trace_and_logs_no_message(
    production_app, production_client, staff_headers, monkeypatch, caplog
):
    monkeypatch.setattr("app.routers.persons.find_people", _boom)
    caplog.set_level(logging.INFO)
    response = await production_client.get(
        "/v1/persons", params={"nhs_number": "9990000018"}, headers=staff_headers()
    )
    assert response.status_code == 500
    body = response.text
    assert SECRET_DETAIL not in body
    assert "Traceback" not in body and "RuntimeError" not in body and ".py" not in body
    problem = response.json()
    assert problem["type"] == "internal_error"
    assert problem["request_id"] == response.headers["x-request-id"]
    _assert_hardened(response)
    assert response.headers["strict-transport-security"]
    logged = caplog.text
    assert SECRET_DETAIL not in logged and "9990000018" not in logged
    assert "unhandled_error" in logged and "RuntimeError" in logged


async def test_a_crash_in_development_is_just_as_quiet(client, staff_headers, monkeypatch):
    monkeypatch.setattr("app.routers.persons.find_people", _boom)
    response = await client.get(
        "/v1/persons", params={"nhs_number": "9990000018"}, headers=staff_headers()
    )
    assert response.status_code == 500
    assert SECRET_DETAIL not in response.text and "Traceback" not in response.text


async def test_a_crash_on_the_public_form_stores_nothing(client, session, monkeypatch):
    from tests.conftest import count_rows

    monkeypatch.setattr("app.routers.self_referrals.next_steps", _raise_sync)
    response = await client.post("/v1/self-referrals", json=self_referral_body())
    assert response.status_code == 500
    assert "reference" not in response.json()
    assert await count_rows(session, "referrals") == 0
    assert await count_rows(session, "audit_events") == 0


def _raise_sync(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError(SECRET_DETAIL)


async def _chunks(total: int, size: int = 4096) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b" " * min(size, total - sent)
        sent += len(chunk)
        yield chunk


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/self-referrals", "application/json"),
        ("/v1/referrals", "application/json"),
        ("/refer", "application/x-www-form-urlencoded"),
    ],
)
async def test_a_chunked_body_over_the_limit_is_413(
    client, settings, staff_headers, session, path, content_type
):
    from tests.conftest import count_rows

    # No Content-Length: the limit can only be found while reading (Transfer-Encoding: chunked).
    response = await client.post(
        path,
        content=_chunks(settings.max_body_bytes + 1),
        headers={**staff_headers(), "content-type": content_type},
    )
    assert response.status_code == 413, response.text
    assert "content-length" not in response.request.headers
    if path == "/refer":
        # A public page answers with a page: crisis contacts first, then what went wrong.
        assert response.headers["content-type"].startswith("text/html")
        assert "We could not save this just now" in response.text
        _assert_hardened(response)
        assert await count_rows(session, "referrals") == 0
        return
    problem = response.json()
    assert problem["type"] == "payload_too_large"
    assert problem["errors"][0]["field"] == "body"
    assert problem["request_id"] == response.headers["x-request-id"]
    assert response.headers["content-type"].startswith("application/problem+json")
    _assert_hardened(response)
    assert await count_rows(session, "referrals") == 0


async def test_a_chunked_body_under_the_limit_is_read(client, settings):
    import orjson

    body = orjson.dumps(self_referral_body())

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    response = await client.post(
        "/v1/self-referrals", content=stream(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
