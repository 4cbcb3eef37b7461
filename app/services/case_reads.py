"""Reading cases: contact records, urgency changes, the clinical-review proposal and
the caller's own cases. Nothing here changes a case (app/services/cases.py does)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import (
    Case,
    CaseContact,
    CaseSupporter,
    CaseUrgencyChange,
    Person,
    TriageDecision,
)
from app.models.case import CaseStatus
from app.services.cases import CaseContext, awaiting_review, ensure_referrals
from app.triage import Eligibility, EligibilityOutcome, Reason, Route, Ruleset
from app.triage.age import age_on, local_date
from app.triage.facts import (
    AmhsThreshold,
    CamhsStatus,
    Channel,
    HarmToOthers,
    ReferralFacts,
    ReferrerType,
    RequestKind,
    RiskAnswers,
    SelfHarm,
    SettingPreference,
    Suicidal,
)
from app.triage.postcodes import postcode_district
from app.triage.routing import choose_route
from app.triage.subject import Subject

CASES = cast(Table, Case.__table__)
# The clinical review's acceptance, as the eligibility the routing rules read.
ACCEPTED_ON_REVIEW = Eligibility(
    outcome=EligibilityOutcome.ELIGIBLE,
    reasons=(Reason(rule="CLINICAL_REVIEW_ACCEPT", detail="Accepted on clinical review"),),
)


async def case_contacts(session: AsyncSession, case_id: uuid.UUID) -> list[CaseContact]:
    """Every contact recorded on the case, in the order they happened."""
    rows = await session.scalars(
        select(CaseContact)
        .where(CaseContact.case_id == case_id)
        .order_by(CaseContact.occurred_at, CaseContact.recorded_at, CaseContact.id)
    )
    return list(rows)


async def urgency_changes(session: AsyncSession, case_id: uuid.UUID) -> list[CaseUrgencyChange]:
    """Every change of the case's urgency after the engine graded it, oldest first."""
    rows = await session.scalars(
        select(CaseUrgencyChange)
        .where(CaseUrgencyChange.case_id == case_id)
        .order_by(CaseUrgencyChange.changed_at, CaseUrgencyChange.id)
    )
    return list(rows)


# The clinical-review proposal ------------------------------------------------------------------


def facts_from_snapshot(snapshot: dict[str, Any]) -> ReferralFacts:
    """The facts a decision was made from, rebuilt from its stored input snapshot."""
    risk = snapshot.get("risk") or {}

    def enum(kind: Any, value: Any) -> Any:
        return kind(value) if value is not None else None

    born = snapshot.get("date_of_birth")
    return ReferralFacts(
        received_at=datetime.fromisoformat(snapshot["received_at"]),
        channel=Channel(snapshot["channel"]),
        referrer_type=ReferrerType(snapshot["referrer_type"]),
        date_of_birth=date.fromisoformat(born) if born else None,
        postcode=snapshot.get("postcode"),
        site_id=snapshot.get("site_id"),
        camhs_status=CamhsStatus(snapshot.get("camhs_status") or CamhsStatus.UNKNOWN),
        camhs_transition_planned=bool(snapshot.get("camhs_transition_planned")),
        amhs_threshold=AmhsThreshold(snapshot.get("amhs_threshold") or AmhsThreshold.UNKNOWN),
        send=bool(snapshot.get("send")),
        looked_after=bool(snapshot.get("looked_after")),
        request=RequestKind(snapshot.get("request") or RequestKind.HELP),
        risk=RiskAnswers(
            immediate_danger=risk.get("immediate_danger"),
            suicidal=enum(Suicidal, risk.get("suicidal")),
            self_harm=enum(SelfHarm, risk.get("self_harm")),
            harm_to_others=enum(HarmToOthers, risk.get("harm_to_others")),
            safeguarding_concern=risk.get("safeguarding_concern"),
            supported=risk.get("supported"),
        ),
        setting_preference=enum(SettingPreference, snapshot.get("setting_preference")),
        contact_route=bool(snapshot.get("contact_route", True)),
    )


def route_as_eligible(facts: ReferralFacts, urgency_code: Any, ruleset: Ruleset) -> Route:
    """Where the routing rules send the young person once eligible, at the case's urgency."""
    compiled = ruleset.compiled
    received_on = local_date(facts.received_at)
    born = facts.date_of_birth
    age = age_on(born, received_on) if born is not None and born <= received_on else None
    district = postcode_district(facts.postcode) if facts.postcode else None
    locality = compiled.locality_by_district.get(district) if district else None
    subject = Subject(
        facts=facts,
        received_on=received_on,
        age_years=age,
        postcode_district=district,
        locality=locality,
    )
    route, _ = choose_route(subject, ACCEPTED_ON_REVIEW, urgency_code, compiled)
    return route


@dataclass(frozen=True, slots=True)
class ReviewProposal:
    """The team the routing rules propose for a case accepted on clinical review."""

    queue_id: str | None
    queue_name: str | None
    route_kind: str
    rule: str


async def review_proposal(
    session: AsyncSession, ctx: CaseContext, ruleset: Ruleset
) -> ReviewProposal | None:
    """For a case awaiting clinical review: the routing rules' answer with the young person now
    eligible (from the opening referral's facts, at the case's current urgency); else None."""
    from app.triage import UrgencyCode

    referrals = await ensure_referrals(session, ctx)
    if not awaiting_review(ctx.case, referrals):
        return None
    snapshot = await session.scalar(
        select(TriageDecision.input_snapshot).where(TriageDecision.referral_id == referrals[0].id)
    )
    if not snapshot:
        return None
    route = route_as_eligible(
        facts_from_snapshot(snapshot), UrgencyCode(ctx.case.urgency_code), ruleset
    )
    return ReviewProposal(
        queue_id=route.queue_id,
        queue_name=route.queue_name,
        route_kind=route.kind.value,
        rule=route.rule,
    )


# My cases ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MyCaseRow:
    """A case the caller holds (``key_worker``) or supports (``supporter``)."""

    id: uuid.UUID
    person_id: uuid.UUID
    queue_id: str
    status: str
    urgency_code: str
    received_at: datetime
    respond_by_at: datetime | None
    first_contact_at: datetime | None
    key_worker_id: str | None
    allocated_at: datetime | None
    thrive_grouping_proposed: str
    thrive_grouping: str | None
    version: int
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    relationship: str


MY_CASES_LIMIT = 500


async def my_cases(session: AsyncSession, worker_id: str) -> list[MyCaseRow]:
    """The open cases ``worker_id`` holds or supports, most urgent first, then earliest
    respond-by (at most ``MY_CASES_LIMIT``, far above any caseload)."""
    supports = exists().where(
        CaseSupporter.case_id == Case.id,
        CaseSupporter.worker_id == worker_id,
        CaseSupporter.removed_at.is_(None),
    )
    rows = await session.execute(
        select(
            Case.id,
            Case.person_id,
            Case.queue_id,
            Case.status,
            Case.urgency_code,
            Case.received_at,
            Case.respond_by_at,
            Case.first_contact_at,
            Case.key_worker_id,
            Case.allocated_at,
            Case.thrive_grouping_proposed,
            Case.thrive_grouping,
            Case.version,
            Person.given_name,
            Person.family_name,
            Person.date_of_birth,
        )
        .join(Person, Person.id == Case.person_id)
        .where(
            Case.status != CaseStatus.CLOSED.value, or_(Case.key_worker_id == worker_id, supports)
        )
        .order_by(Case.urgency_rank, Case.respond_by_sort_at, Case.id)
        .limit(MY_CASES_LIMIT)
    )
    return [
        MyCaseRow(
            **row._mapping,
            relationship="key_worker" if row.key_worker_id == worker_id else "supporter",
        )
        for row in rows
    ]
