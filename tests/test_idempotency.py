"""Idempotency-Key: retries return the same referral; concurrent duplicates make exactly one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.clock import FrozenClock
from app.config import Settings
from app.db import create_session_factory
from app.main import create_app
from app.migrate import upgrade
from app.models import Case, Person, Referral
from tests.conftest import TEST_JWT_SECRET, count_rows
from tests.factories import referral_body, valid_test_nhs_numbers


async def test_retry_with_same_key_and_body_returns_the_same_referral(
    client, staff_headers, session
):
    headers = {**staff_headers(), "Idempotency-Key": "retry-1"}
    first = await client.post("/v1/referrals", json=referral_body(), headers=headers)
    second = await client.post("/v1/referrals", json=referral_body(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await count_rows(session, "referrals") == 1


async def test_key_order_and_spacing_do_not_matter(client, staff_headers, session):
    headers = {**staff_headers(), "Idempotency-Key": "retry-2", "Content-Type": "application/json"}
    body = referral_body()
    import json

    first = await client.post("/v1/referrals", content=json.dumps(body), headers=headers)
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    second = await client.post("/v1/referrals", content=reordered, headers=headers)
    assert second.json()["id"] == first.json()["id"]


async def test_same_key_different_body_is_422(client, staff_headers, session):
    headers = {**staff_headers(), "Idempotency-Key": "retry-3"}
    await client.post("/v1/referrals", json=referral_body(age=15), headers=headers)
    changed = await client.post("/v1/referrals", json=referral_body(age=16), headers=headers)
    assert changed.status_code == 422
    assert changed.json()["type"] == "idempotency_key_reused"
    assert await count_rows(session, "referrals") == 1


async def test_keys_are_scoped_to_the_submitter(client, make_client, session):
    _, one = await make_client(name="one", ods="A81001")
    _, two = await make_client(name="two", ods="B82002")
    a = await client.post(
        "/v1/referrals", json=referral_body("system"), headers={**one, "Idempotency-Key": "shared"}
    )
    b = await client.post(
        "/v1/referrals", json=referral_body("system"), headers={**two, "Idempotency-Key": "shared"}
    )
    assert a.json()["id"] != b.json()["id"]


async def test_expired_key_makes_a_new_referral(client, staff_headers, clock, settings, session):
    headers = {**staff_headers(), "Idempotency-Key": "retry-4"}
    first = await client.post("/v1/referrals", json=referral_body(), headers=headers)
    clock.set(clock.now() + timedelta(hours=settings.idempotency_key_ttl_hours, seconds=1))
    headers = {**staff_headers(), "Idempotency-Key": "retry-4"}
    later = await client.post("/v1/referrals", json=referral_body(), headers=headers)
    assert later.status_code == 201, later.text
    assert later.json()["id"] != first.json()["id"]


async def test_overlong_key_is_refused(client, staff_headers):
    headers = {**staff_headers(), "Idempotency-Key": "k" * 256}
    response = await client.post("/v1/referrals", json=referral_body(), headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "header:Idempotency-Key"


# Concurrency, with real commits on a database of its own --------------------------------------


@pytest.fixture
async def committing_client(scratch_database_url: str) -> AsyncIterator[tuple[Any, Any]]:
    settings = Settings(
        environment="test",
        database_url=scratch_database_url,
        jwt_secret=TEST_JWT_SECRET,
        database_pool_size=20,
    )  # type: ignore[arg-type]
    await asyncio.to_thread(upgrade, settings)
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        async with transport as client:
            yield app, client


async def _count(app: Any, stmt: Any) -> int:
    async with create_session_factory(app.state.engine)() as session:
        return int(await session.scalar(stmt) or 0)


async def test_concurrent_duplicates_make_exactly_one_referral(committing_client, staff_headers):
    app, client = committing_client
    headers = {**staff_headers(), "Idempotency-Key": "burst-1"}
    body = referral_body(nhs=valid_test_nhs_numbers(1, start=3000)[0])
    responses = await asyncio.gather(
        *(client.post("/v1/referrals", json=body, headers=headers) for _ in range(12))
    )
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _count(app, select(func.count()).select_from(Referral)) == 1


async def test_concurrent_referrals_for_one_new_person_share_record_and_case(
    committing_client, staff_headers
):
    app, client = committing_client
    nhs = valid_test_nhs_numbers(1, start=3100)[0]
    responses = await asyncio.gather(
        *(
            client.post(
                "/v1/referrals",
                json=referral_body(nhs=nhs, needs=[f"need {i}"]),
                headers={**staff_headers(), "Idempotency-Key": f"p-{i}"},
            )
            for i in range(8)
        )
    )
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.json()["person_id"] for r in responses}) == 1
    assert len({r.json()["case_id"] for r in responses}) == 1
    assert await _count(app, select(func.count()).select_from(Referral)) == 8
    assert await _count(app, select(func.count()).select_from(Person)) == 1
    assert await _count(app, select(func.count()).select_from(Case)) == 1
