"""Messages through the transactional outbox (docs/domain/signposting-and-messages.md): who is
told what, written with the referral, delivered once through a fake GOV.UK Notify the test
starts on 127.0.0.1 (retries on 429 and 500, permanent failures, delivery status, no second
send after a crash), the local sink, and the admin views."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from app.models import Case, Notification, Referral
from app.schemas.referral import PhoneReferralCreate
from app.security import Actor, Role
from app.services.intake import submit_referral
from app.triage import load_ruleset
from app.worker import DeliveryWorker
from tests.conftest import _running_app, count_rows
from tests.factories import referral_body, self_referral_body
from tests.fake_notify import FakeNotify, fake_api_key, running_fake_notify

TEMPLATES = {
    "acknowledgement_email": "11111111-1111-1111-1111-111111111111",
    "acknowledgement_sms": "22222222-2222-2222-2222-222222222222",
    "referrer_outcome_email": "33333333-3333-3333-3333-333333333333",
    "breach_warning_email": "44444444-4444-4444-4444-444444444444",
}
TEAM = {"cb-norwich": "norwich.team@example.nhs.uk", "crisis": "crisis.team@example.nhs.uk"}
STAFF = Actor(kind="staff", id="user-outbox", role=Role.CALL_HANDLER)


@pytest.fixture
def fake() -> Iterator[FakeNotify]:
    with running_fake_notify() as fake:
        yield fake


@pytest.fixture
def notify_settings(migrated: Any, fake: FakeNotify) -> Any:
    return migrated.model_copy(
        update={
            "notify_api_key": SecretStr(fake_api_key()),
            "notify_base_url": fake.base_url,
            "notify_templates": TEMPLATES,
            "queue_contact_emails": TEAM,
            "breach_warning_lead_minutes": 90,
            "notify_max_attempts": 3,
            "notify_retry_base_seconds": 30.0,
        }
    )


@pytest.fixture
async def notify_app(notify_settings, engine, session_factory, clock) -> Any:
    app = await _running_app(notify_settings, engine, session_factory, clock)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def notify_client(notify_app) -> Any:
    transport = httpx.ASGITransport(app=notify_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def worker(settings, session_factory, clock) -> DeliveryWorker:
    return DeliveryWorker(session_factory, settings, clock=clock)


async def messages(session, **where: Any) -> list[Notification]:
    query = (
        select(Notification)
        .order_by(Notification.created_at, Notification.kind)
        .execution_options(populate_existing=True)
    )
    for name, value in where.items():
        query = query.where(getattr(Notification, name) == value)
    return list((await session.scalars(query)).all())


def _self_body(**consent: Any) -> dict[str, Any]:
    body = self_referral_body(age=16)
    body["person"]["email"] = "sam@example.com"
    body["consent"].update(consent)
    return body


# Who is told what ----------------------------------------------------------------------------


async def test_a_self_referral_is_acknowledged_in_its_own_transaction(client, session):
    response = await client.post("/v1/self-referrals", json=_self_body())
    assert response.status_code == 201
    reference = response.json()["reference"]
    referral = await session.scalar(select(Referral).where(Referral.reference == reference))
    [ack] = await messages(session, kind="acknowledgement")
    assert ack.referral_id == referral.id
    assert (ack.channel, ack.status, ack.recipient) == ("email", "pending", "sam@example.com")
    assert reference in ack.personalisation["subject"]
    body = ack.personalisation["body"]
    assert reference in body and "NHS 111" in body and "85258" in body
    assert "4 weeks" in body  # what happens next, and by when (urgency E)


async def test_a_text_needs_consent_and_says_nothing_clinical(client, session):
    body = self_referral_body(age=16, risk={"suicidal": "plan"})  # urgency C
    body["person"]["phone"] = "07700 900123"
    no_consent = await client.post("/v1/self-referrals", json=body)
    [refused] = await messages(session, kind="acknowledgement")
    assert refused.status == "not_sent" and refused.recipient is None
    assert "consent to be contacted by text" in refused.last_error
    body["consent"]["contact_by_text"] = True
    texted = await client.post("/v1/self-referrals", json=body)
    assert no_consent.status_code == texted.status_code == 201
    [sms] = [m for m in await messages(session, kind="acknowledgement") if m.status == "pending"]
    assert sms.channel == "sms" and sms.recipient == "07700 900123"
    text = sms.personalisation["body"]
    assert texted.json()["reference"] in text and "999" in text
    for clinical in ("24 hours", "clinician", "urgent", "suicid", "risk", "plan"):
        assert clinical not in text.lower()


@pytest.mark.parametrize(
    ("consent", "sent"),
    [
        ({"parent_carer_aware": False}, False),  # the contact may be shared with the parent
        ({"parent_carer_aware": False, "contact_shared_with_parent": True}, False),
        ({"parent_carer_aware": False, "contact_shared_with_parent": False}, True),
        ({"parent_carer_aware": True}, True),
        ({"to_referral": None}, False),  # did not say they agree
    ],
)
async def test_nothing_through_a_contact_a_parent_who_does_not_know_may_see(
    client, session, consent, sent
):
    assert (await client.post("/v1/self-referrals", json=_self_body(**consent))).status_code == 201
    [ack] = await messages(session, kind="acknowledgement")
    assert (ack.status == "pending") is sent
    if not sent:
        assert ack.recipient is None and ack.last_error


async def test_the_referring_professional_is_told_the_outcome(client, staff_headers, session):
    gp = {"type": "gp", "name": "Dr Example", "email": "dr.example@nhs.net"}
    accepted = await client.post(
        "/v1/referrals", json=referral_body(age=15, referrer=gp), headers=staff_headers()
    )
    signposted = await client.post(
        "/v1/referrals", json=referral_body(age=27, referrer=gp), headers=staff_headers()
    )
    assert accepted.status_code == signposted.status_code == 201
    outcomes = {m.referral_id: m for m in await messages(session, kind="referrer_outcome")}
    first = outcomes[uuid.UUID(accepted.json()["id"])]
    assert first.recipient == "dr.example@nhs.net" and first.status == "pending"
    assert "accepted by Norwich Community Base" in first.personalisation["body"]
    second = outcomes[uuid.UUID(signposted.json()["id"])].personalisation
    assert second["subject"].endswith(": signposted")
    assert "Adult mental health services access line" in second["body"]
    # A parent or carer is not a referring organisation: no outcome message.
    await client.post("/v1/referrals", json=referral_body(age=15), headers=staff_headers())
    assert len(await messages(session, kind="referrer_outcome")) == 2


async def test_the_team_is_warned_before_the_respond_by_time(notify_client, staff_headers, session):
    response = await notify_client.post(
        "/v1/referrals",
        json=referral_body(age=15, risk={"suicidal": "thoughts"}),
        headers=staff_headers(),
    )
    case = await session.get(Case, uuid.UUID(response.json()["case_id"]))
    [warning] = await messages(session, kind="breach_warning")
    assert warning.case_id == case.id and warning.recipient == TEAM["cb-norwich"]
    assert warning.next_attempt_at == case.respond_by_at - timedelta(minutes=90)
    assert "Norwich Community Base" in warning.personalisation["subject"]
    # Without a team address (the embedded default) it is recorded as not sent, saying why.
    other = await notify_client.post(
        "/v1/referrals",
        json=referral_body(age=15, person={"postcode": "NR30 1AA"}),
        headers=staff_headers(),
    )
    assert other.status_code == 201
    unsent = [m for m in await messages(session, kind="breach_warning") if m.id != warning.id]
    assert unsent[0].status == "not_sent"
    assert "FRONTDOOR_QUEUE_CONTACT_EMAILS" in unsent[0].last_error


# The outbox: never for a rollback, exactly once for a commit ------------------------------------


async def test_a_rolled_back_referral_leaves_no_message(app, session_factory, clock, session):
    ruleset = load_ruleset()
    gp = {"type": "gp", "name": "Dr Example", "email": "dr.example@nhs.net"}
    body = PhoneReferralCreate.model_validate(referral_body(age=15, referrer=gp))
    async with session_factory() as intake:
        await submit_referral(
            intake, body=body, raw_payload={}, actor=STAFF, ruleset=ruleset, now=clock.now()
        )
        await intake.flush()
        assert await count_rows(intake, "notifications") == 2  # outcome and breach warning
        await intake.rollback()
    assert await count_rows(session, "notifications") == 0


async def test_a_committed_referral_is_delivered_exactly_once(
    app, notify_settings, session_factory, clock, session, fake
):
    ruleset = load_ruleset()
    gp = {"type": "gp", "name": "Dr Example", "email": "dr.example@nhs.net"}
    body = PhoneReferralCreate.model_validate(referral_body(age=15, referrer=gp))
    async with session_factory() as intake:
        result = await submit_referral(
            intake, body=body, raw_payload={}, actor=STAFF, ruleset=ruleset, now=clock.now()
        )
        await intake.commit()
    delivery = worker(notify_settings, session_factory, clock)
    assert await delivery.run_once() == 1  # the outcome; the breach warning is not due yet
    assert await delivery.run_once() == 0
    [outcome] = await messages(session, kind="referrer_outcome")
    assert fake.references() == [str(outcome.id)]  # the Notify reference is the message id
    assert fake.sent[0]["to"] == "dr.example@nhs.net"
    assert fake.sent[0]["template_id"] == TEMPLATES["referrer_outcome_email"]
    assert result.referral.reference in fake.sent[0]["personalisation"]["body"]
    assert (outcome.status, outcome.attempts) == ("sending", 1)
    # Its delivery status is checked until Notify says delivered.
    clock.set(clock.now() + timedelta(minutes=2))
    assert await delivery.run_once() == 1
    [outcome] = await messages(session, kind="referrer_outcome")
    assert (outcome.status, outcome.provider_status) == ("delivered", "delivered")
    assert outcome.delivered_at == clock.now()
    assert fake.posts == 1


async def test_429_and_500_are_retried_with_backoff(
    notify_settings, session_factory, clock, session, fake, client
):
    await client.post("/v1/self-referrals", json=_self_body())
    fake.fail_next = [429, 500]
    delivery = worker(notify_settings, session_factory, clock)
    start = clock.now()
    assert await delivery.run_once() == 1
    [ack] = await messages(session, kind="acknowledgement")
    assert (ack.status, ack.attempts, ack.last_error) == ("pending", 1, "429 HTTPError")
    assert ack.next_attempt_at == start + timedelta(seconds=30)
    assert await delivery.run_once() == 0  # not due yet
    clock.set(start + timedelta(seconds=30))
    await delivery.run_once()
    [ack] = await messages(session, kind="acknowledgement")
    assert (ack.status, ack.attempts, ack.last_error) == ("pending", 2, "500 HTTPError")
    assert ack.next_attempt_at == start + timedelta(seconds=30 + 60)
    clock.set(start + timedelta(seconds=90))
    await delivery.run_once()
    [ack] = await messages(session, kind="acknowledgement")
    assert (ack.status, ack.attempts, ack.last_error) == ("sending", 3, None)
    assert fake.posts == 3 and fake.references() == [str(ack.id)]


async def test_retries_run_out_and_an_admin_can_retry(
    notify_settings, session_factory, clock, session, fake, notify_client, staff_headers
):
    await notify_client.post("/v1/self-referrals", json=_self_body())
    fake.fail_next = [503, 502, 500]
    delivery = worker(notify_settings, session_factory, clock)
    for _ in range(3):
        await delivery.run_once()
        clock.set(clock.now() + timedelta(hours=1))
    [ack] = await messages(session, kind="acknowledgement")
    assert (ack.status, ack.attempts) == ("failed", 3)  # notify_max_attempts
    admin = staff_headers("admin")
    retried = await notify_client.post(f"/v1/notifications/{ack.id}/retry", headers=admin)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending" and retried.json()["attempts"] == 0
    await delivery.run_once()
    [ack] = await messages(session, kind="acknowledgement")
    assert ack.status == "sending" and fake.references() == [str(ack.id)]
    again = await notify_client.post(f"/v1/notifications/{ack.id}/retry", headers=admin)
    assert again.status_code == 409


async def test_a_refusal_is_a_permanent_failure(
    notify_settings, session_factory, clock, session, fake, client
):
    await client.post("/v1/self-referrals", json=_self_body())
    fake.fail_next = [400]
    await worker(notify_settings, session_factory, clock).run_once()
    [ack] = await messages(session, kind="acknowledgement")
    assert (ack.status, ack.attempts, ack.last_error) == ("permanent_failure", 1, "400 HTTPError")
    clock.set(clock.now() + timedelta(days=1))
    assert await worker(notify_settings, session_factory, clock).run_once() == 0
    assert fake.posts == 1


async def test_notify_reporting_permanent_failure_is_recorded(
    notify_settings, session_factory, clock, session, fake, client
):
    await client.post("/v1/self-referrals", json=_self_body())
    fake.status_of = "permanent-failure"
    delivery = worker(notify_settings, session_factory, clock)
    await delivery.run_once()
    clock.set(clock.now() + timedelta(minutes=5))
    await delivery.run_once()
    [ack] = await messages(session, kind="acknowledgement")
    assert (ack.status, ack.provider_status) == ("permanent_failure", "permanent-failure")


async def test_a_crash_after_sending_never_sends_twice(
    notify_settings, session_factory, clock, session, fake, client
):
    """A worker marked the message sending, Notify accepted it, and the worker died before
    recording it. The next worker finds it in Notify by its reference and does not resend."""
    await client.post("/v1/self-referrals", json=_self_body())
    [ack] = await messages(session, kind="acknowledgement")
    ack.status, ack.attempts = "sending", 1
    ack.claimed_until = clock.now() - timedelta(seconds=1)  # the dead worker's lapsed claim
    await session.commit()
    provider_id = fake.preload(str(ack.id))
    await worker(notify_settings, session_factory, clock).run_once()
    [ack] = await messages(session, kind="acknowledgement")
    assert (ack.status, ack.provider_id, ack.attempts) == ("sending", provider_id, 1)
    assert fake.posts == 0


async def test_a_claimed_message_is_not_taken_by_another_worker(
    notify_settings, session_factory, clock, session, fake, client
):
    await client.post("/v1/self-referrals", json=_self_body())
    first, second = (worker(notify_settings, session_factory, clock) for _ in range(2))
    claimed = await first.claim()
    assert len(claimed) == 1
    assert await second.claim() == []  # held until the claim lapses
    await first._handle(claimed[0])
    assert fake.posts == 1


async def test_a_breach_warning_is_not_sent_once_the_case_is_contacted(
    notify_settings, session_factory, clock, session, fake, notify_client, staff_headers
):
    response = await notify_client.post(
        "/v1/referrals",
        json=referral_body(age=15, risk={"suicidal": "thoughts"}),
        headers=staff_headers(),
    )
    case = await session.get(Case, uuid.UUID(response.json()["case_id"]))
    case.first_contact_at = clock.now()
    await session.commit()
    clock.set(case.respond_by_at)
    await worker(notify_settings, session_factory, clock).run_once()
    [warning] = await messages(session, kind="breach_warning")
    assert warning.status == "not_sent" and "first contact" in warning.last_error
    assert fake.posts == 0


async def test_without_a_key_messages_go_to_the_local_sink(
    migrated, session_factory, clock, session, client
):
    assert migrated.notify_api_key is None
    await client.post("/v1/self-referrals", json=_self_body())
    await worker(migrated, session_factory, clock).run_once()
    [ack] = await messages(session, kind="acknowledgement")
    assert (ack.status, ack.attempts, ack.sent_at) == ("sink", 1, clock.now())
    assert ack.provider_id is None


# Admin views -----------------------------------------------------------------------------------


async def test_admins_see_every_message_of_a_referral(client, staff_headers, session):
    created = await client.post("/v1/self-referrals", json=_self_body())
    referral = await session.scalar(
        select(Referral).where(Referral.reference == created.json()["reference"])
    )
    response = await client.get(
        "/v1/notifications",
        params={"referral_id": str(referral.id)},
        headers=staff_headers("admin"),
    )
    assert response.status_code == 200
    kinds = {item["kind"]: item for item in response.json()["items"]}
    ack = kinds["acknowledgement"]
    assert {"id", "kind", "channel", "status", "attempts", "created_at", "sent_at"} <= set(ack)
    assert ack["recipient"] == "s***@example.com"  # masked
    assert created.json()["reference"] in ack["body"]
    assert set(kinds) == {"acknowledgement", "breach_warning"}
    refused = await client.get("/v1/notifications", headers=staff_headers("team_lead"))
    assert refused.status_code == 403


async def test_cancel_and_retry_follow_the_message_state(client, staff_headers, session):
    await client.post("/v1/self-referrals", json=_self_body())
    [ack] = await messages(session, kind="acknowledgement")
    [warning] = await messages(session, kind="breach_warning")
    admin = staff_headers("admin")
    cancelled = await client.post(f"/v1/notifications/{ack.id}/cancel", headers=admin)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "not_sent"
    assert (
        await client.post(f"/v1/notifications/{ack.id}/cancel", headers=admin)
    ).status_code == 409
    assert (await client.post(f"/v1/notifications/{ack.id}/retry", headers=admin)).json()[
        "status"
    ] == "pending"
    # Nobody may be contacted for a warning with no team address: retrying cannot help.
    assert (
        await client.post(f"/v1/notifications/{warning.id}/retry", headers=admin)
    ).status_code == 409
    missing = await client.post(f"/v1/notifications/{uuid.uuid4()}/cancel", headers=admin)
    assert missing.status_code == 404


# Where the worker runs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, True),  # the embedded default: SQLite, development
        ({"environment": "test"}, False),
        ({"database_url": "postgresql://db.example/frontdoor"}, False),
        (
            {"database_url": "postgresql://db.example/frontdoor", "run_worker_in_process": True},
            True,
        ),
        ({"run_worker_in_process": False}, False),
    ],
)
def test_serve_delivers_in_process_on_the_embedded_default_only(overrides, expected):
    from app.config import Settings
    from app.worker import run_in_process

    assert run_in_process(Settings(**overrides)) is expected
