"""The public self-referral form: no login, rate-limited, size-capped, a honeypot, no oracle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text

from app.config import Settings
from app.db import create_engine, create_session_factory
from app.main import create_app
from app.migrate import upgrade
from app.ratelimit import SelfReferralLimiter, address_bucket
from tests.conftest import TEST_JWT_SECRET, _running_app, count_rows
from tests.factories import referral_body, self_referral_body, valid_test_nhs_numbers

FORM = "/v1/self-referrals"
NHS_KNOWN, NHS_NEW, NHS_OTHER = valid_test_nhs_numbers(3, start=800)


def _client_from(app: Any, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_no_login_is_needed(client):
    response = await client.post(FORM, json=self_referral_body())
    assert response.status_code == 201, response.text
    assert set(response.json()) == {
        "reference",
        "received_at",
        "next_steps",
        "contact_route",
        "crisis",
        "signposting",
    }


async def test_a_filled_honeypot_is_refused_and_nothing_is_stored(client, session):
    response = await client.post(FORM, json=self_referral_body(website="http://spam.example"))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["website"]
    assert "spam.example" not in response.text
    for table in ("referrals", "persons", "cases", "audit_events"):
        assert await count_rows(session, table) == 0, table


async def test_an_empty_honeypot_is_fine(client):
    response = await client.post(FORM, json=self_referral_body(website=""))
    assert response.status_code == 201


async def test_the_body_size_is_capped(client, settings, session):
    body = self_referral_body()
    body["reason"] = "x" * (settings.max_body_bytes + 10)
    response = await client.post(FORM, json=body)
    assert response.status_code == 413
    assert response.json()["type"] == "payload_too_large"
    assert await count_rows(session, "referrals") == 0


@pytest.mark.parametrize(
    "field",
    ["status", "urgency", "urgency_code", "queue_id", "key_worker_id", "version", "case_id"],
)
async def test_server_owned_fields_cannot_be_set(client, session, field):
    response = await client.post(FORM, json={**self_referral_body(), field: "A"})
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]
    assert await count_rows(session, "referrals") == 0


@pytest.mark.parametrize(
    ("part", "field"),
    [
        (None, "status"),
        (None, "queue_id"),
        (None, "key_worker_id"),
        (None, "version"),
        (None, "person_id"),
        (None, "decision"),
        ("person", "id"),
        ("risk", "urgency_code"),
    ],
)
async def test_server_owned_fields_cannot_be_set_by_staff_or_systems(
    client, staff_headers, session, part, field
):
    body = referral_body()
    if part is None:
        body[field] = "x"
    else:
        body[part] = {**body[part], field: "x"}
    response = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert response.status_code == 422
    expected = field if part is None else f"{part}.{field}"
    assert expected in [e["field"] for e in response.json()["errors"]]
    assert await count_rows(session, "referrals") == 0


# No oracle ----------------------------------------------------------------------------------


def _shape(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    return {
        "status": response.status_code,
        "keys": sorted(body),
        "next_steps": body["next_steps"].replace(body["reference"], "REF"),
        "crisis": body["crisis"],
        "headers": sorted(
            h for h in response.headers if h not in {"content-length", "x-request-id", "date"}
        ),
    }


async def test_the_reply_says_nothing_about_whether_someone_is_known(client, staff_headers):
    """Same reply for a known NHS number (with an open case), a mismatched name on a known
    number, and a number never seen: no "already known" oracle."""
    known = referral_body(
        nhs=NHS_KNOWN, person={"given_name": "Morgan", "family_name": "Knownperson"}
    )
    assert (
        await client.post("/v1/referrals", json=known, headers=staff_headers())
    ).status_code == 201

    replies = []
    for nhs, person in [
        (NHS_KNOWN, {"given_name": "Morgan", "family_name": "Knownperson"}),
        (NHS_KNOWN, {"given_name": "Someone", "family_name": "Else"}),
        (NHS_NEW, {"given_name": "Morgan", "family_name": "Knownperson"}),
    ]:
        response = await client.post(FORM, json=self_referral_body(nhs=nhs, person=person))
        assert response.status_code == 201
        for leak in ("Knownperson", "Morgan", NHS_KNOWN, "person_id", "case_id", "joined"):
            assert leak not in response.text
        assert "location" not in response.headers
        replies.append(_shape(response))
    assert replies[0] == replies[1] == replies[2]


async def test_validation_errors_do_not_echo_what_was_sent(client):
    body = self_referral_body(nhs=NHS_OTHER)
    body["person"]["date_of_birth"] = "not-a-date"
    response = await client.post(FORM, json=body)
    assert response.status_code == 422
    assert NHS_OTHER not in response.text and "not-a-date" not in response.text


# Rate limits (shared in the database; time moved with the app clock, never slept) -------------


def _forty_seconds_into_a_minute(clock) -> None:
    """Fixed one-minute windows: start 40 s into one, so the next begins 20 s later."""
    clock.set(clock.now().replace(second=40, microsecond=0))


@pytest.fixture
async def limited_app(migrated, engine, session_factory, clock) -> AsyncIterator[Any]:
    settings = migrated.model_copy(
        update={"self_referral_per_address_per_minute": 3, "self_referral_overall_per_minute": 5}
    )
    _forty_seconds_into_a_minute(clock)
    app = await _running_app(settings, engine, session_factory, clock)
    async with app.router.lifespan_context(app):
        yield app


async def test_defaults_are_sensible(settings):
    assert settings.self_referral_per_address_per_minute == 10
    assert settings.self_referral_overall_per_minute == 300
    assert settings.forwarded_for_trusted_hops == 0


async def test_per_address_limit_with_retry_after(limited_app, clock, session):
    async with _client_from(limited_app, "203.0.113.7") as client:
        for _ in range(3):
            assert (await client.post(FORM, json=self_referral_body())).status_code == 201
        refused = await client.post(FORM, json=self_referral_body())
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"] == "rate_limited"
        assert "999" in refused.json()["detail"]  # crisis help, even when refused
        assert refused.headers["retry-after"] == "20"  # the window ends in 20 s
        # Invalid attempts count too: a flood of junk is limited like real submissions.
        junk = await client.post(FORM, json={"person": "nonsense"})
        assert junk.status_code == 429
        clock.set(clock.now() + timedelta(seconds=20))  # a new window
        for _ in range(3):
            assert (await client.post(FORM, json=self_referral_body())).status_code == 201
        assert (await client.post(FORM, json=self_referral_body())).status_code == 429
    assert await count_rows(session, "referrals") == 6
    # Another address is not held back by this one.
    async with _client_from(limited_app, "198.51.100.9") as other:
        assert (await other.post(FORM, json=self_referral_body())).status_code == 201


async def test_overall_limit(limited_app):
    statuses = []
    for i in range(7):
        async with _client_from(limited_app, f"192.0.2.{i + 1}") as client:
            statuses.append((await client.post(FORM, json=self_referral_body())).status_code)
    assert statuses == [201] * 5 + [429] * 2


async def test_other_routes_are_not_limited(limited_app):
    async with _client_from(limited_app, "203.0.113.8") as client:
        for _ in range(5):
            await client.post(FORM, json=self_referral_body())
        assert (await client.get("/v1/services")).status_code == 200


async def test_x_forwarded_for_is_ignored_unless_trusted(limited_app):
    async with _client_from(limited_app, "203.0.113.10") as client:
        statuses = [
            (
                await client.post(
                    FORM,
                    json=self_referral_body(),
                    headers={"X-Forwarded-For": f"10.9.8.{i}"},  # a client can say anything
                )
            ).status_code
            for i in range(4)
        ]
    assert statuses == [201, 201, 201, 429]


async def test_x_forwarded_for_from_a_trusted_proxy(migrated, engine, session_factory, clock):
    settings = migrated.model_copy(
        update={"self_referral_per_address_per_minute": 1, "forwarded_for_trusted_hops": 1}
    )
    app = await _running_app(settings, engine, session_factory, clock)
    async with app.router.lifespan_context(app), _client_from(app, "10.0.0.1") as proxy:

        async def via_proxy(client_says: str, proxy_saw: str) -> int:
            headers = {"X-Forwarded-For": f"{client_says}, {proxy_saw}"}
            response = await proxy.post(FORM, json=self_referral_body(), headers=headers)
            return response.status_code

        assert await via_proxy("1.1.1.1", "203.0.113.20") == 201
        # The spoofed left-hand entry changes nothing: the proxy saw the same address.
        assert await via_proxy("2.2.2.2", "203.0.113.20") == 429
        assert await via_proxy("1.1.1.1", "203.0.113.21") == 201


def test_ipv6_addresses_share_a_bucket_per_64():
    from starlette.requests import Request

    from app.config import Settings
    from app.ratelimit import client_address

    def request_from(host: str) -> Request:
        return Request({"type": "http", "headers": [], "client": (host, 1)})

    settings = Settings(environment="test")
    a = client_address(request_from("2001:db8:1:2:aaaa::1"), settings)
    b = client_address(request_from("2001:db8:1:2:bbbb::2"), settings)
    c = client_address(request_from("2001:db8:1:3::1"), settings)
    assert a == b == "2001:db8:1:2::/64"
    assert c != a
    assert client_address(request_from("192.0.2.1"), settings) == "192.0.2.1"


async def test_one_address_flooding_cannot_lock_out_another(limited_app):
    """Refused by its own limit before it counts against everyone's: 5 overall, 3 per address."""
    async with _client_from(limited_app, "203.0.113.66") as flood:
        statuses = [
            (await flood.post(FORM, json=self_referral_body())).status_code for _ in range(20)
        ]
    assert statuses == [201] * 3 + [429] * 17
    async with _client_from(limited_app, "198.51.100.67") as other:
        for _ in range(2):
            assert (await other.post(FORM, json=self_referral_body())).status_code == 201


async def test_addresses_are_stored_only_as_keyed_hashes(limited_app, session, settings):
    async with _client_from(limited_app, "203.0.113.77") as client:
        assert (await client.post(FORM, json=self_referral_body())).status_code == 201
    buckets = set((await session.scalars(text("SELECT bucket FROM rate_limit_windows"))).all())
    assert buckets == {"overall", address_bucket("203.0.113.77", settings)}
    assert not any("203.0.113" in b for b in buckets)
    other_secret = settings.model_copy(update={"jwt_secret": SecretStr("another-" + "y" * 40)})
    assert address_bucket("203.0.113.77", other_secret) not in buckets


async def test_fixed_windows_past_windows_deleted_and_no_going_back(session_factory, session):
    now = [1_000_040.0]  # 20 s into a window (1_000_020 is a minute boundary)
    limiter = SelfReferralLimiter(
        per_address_per_minute=2, overall_per_minute=100, time_source=lambda: now[0]
    )
    assert await limiter.acquire(session_factory, "addr:a") == 0
    assert await limiter.acquire(session_factory, "addr:a") == 0
    assert await limiter.acquire(session_factory, "addr:a") == pytest.approx(40.0)
    now[0] += 40  # the next window
    assert await limiter.acquire(session_factory, "addr:a") == 0
    windows = (
        await session.scalars(text("SELECT DISTINCT window_start FROM rate_limit_windows"))
    ).all()
    assert list(windows) == [1_000_080]
    now[0] -= 600  # a clock stepping back gives nothing away
    assert await limiter.acquire(session_factory, "addr:a") == 0
    assert await limiter.acquire(session_factory, "addr:a") > 0


@pytest.fixture
def shared_database(scratch_database_url) -> Settings:
    """A second database, migrated, that two separate app instances will share."""
    settings = Settings(
        environment="test",
        database_url=scratch_database_url,
        jwt_secret=TEST_JWT_SECRET,  # type: ignore[arg-type]
        self_referral_per_address_per_minute=2,
        self_referral_overall_per_minute=3,
    )
    upgrade(settings)
    return settings


async def test_two_app_instances_share_the_limits(shared_database, clock):
    """Two processes or replicas (each its own engine and session factory) count together."""
    _forty_seconds_into_a_minute(clock)
    apps, engines = [], []
    for _ in range(2):
        engine = create_engine(shared_database)
        engines.append(engine)
        app = create_app(shared_database, clock=clock)
        app.state.engine = engine
        app.state.session_factory = create_session_factory(engine)
        apps.append(app)
    try:
        async with (
            apps[0].router.lifespan_context(apps[0]),
            apps[1].router.lifespan_context(apps[1]),
        ):

            async def send(index: int, address: str) -> int:
                async with _client_from(apps[index], address) as c:
                    return (await c.post(FORM, json=self_referral_body())).status_code

            # Per address: 2 a minute across both instances.
            assert await send(0, "203.0.113.90") == 201
            assert await send(1, "203.0.113.90") == 201
            assert await send(0, "203.0.113.90") == 429
            assert await send(1, "203.0.113.90") == 429
            # Overall: 3 a minute across both instances.
            assert await send(1, "203.0.113.91") == 201
            assert await send(0, "203.0.113.92") == 429
    finally:
        for engine in engines:
            await engine.dispose()
