"""A referral is accepted only once it is durable: a failed commit is an error, never a 201."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import count_rows
from tests.factories import referral_body, self_referral_body


class CommitFailsSession(AsyncSession):
    async def commit(self) -> None:
        raise OperationalError("COMMIT", {}, Exception("simulated: disk full"))


def _failing_factory(connection) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        bind=connection,
        class_=CommitFailsSession,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
    )


async def test_failed_commit_is_503_and_stores_nothing(
    app, client, connection, session, staff_headers
):
    app.state.session_factory = _failing_factory(connection)
    response = await client.post(
        "/v1/referrals",
        json=referral_body(),
        headers={**staff_headers(), "Idempotency-Key": "commit-1"},
    )
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "database_unavailable"
    assert response.headers["retry-after"] == "5"
    for table in (
        "referrals",
        "persons",
        "cases",
        "triage_decisions",
        "idempotency_keys",
        "case_events",
    ):
        assert await count_rows(session, table) == 0, table


async def test_failed_commit_on_self_referral(app, client, connection, session):
    app.state.session_factory = _failing_factory(connection)
    response = await client.post("/v1/self-referrals", json=self_referral_body())
    assert response.status_code == 503
    assert "reference" not in response.json()
    assert await count_rows(session, "referrals") == 0


async def test_retry_after_failed_commit_succeeds_once(
    app, client, connection, session, session_factory, staff_headers
):
    headers = {**staff_headers(), "Idempotency-Key": "commit-2"}
    app.state.session_factory = _failing_factory(connection)
    failed = await client.post("/v1/referrals", json=referral_body(), headers=headers)
    assert failed.status_code == 503
    app.state.session_factory = session_factory
    retried = await client.post("/v1/referrals", json=referral_body(), headers=headers)
    assert retried.status_code == 201
    again = await client.post("/v1/referrals", json=referral_body(), headers=headers)
    assert again.json()["id"] == retried.json()["id"]
    assert await count_rows(session, "referrals") == 1
