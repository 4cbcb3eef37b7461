"""Intake: every channel's referral becomes one durable record with its triage decision.

A referral is stored with its raw payload, its normalised form, the decision (input snapshot
and ruleset version) and, unless signposted, a case in the routed queue. A person who already
has an open case has the referral joined to it (episodic care), never a duplicate case.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog
from sqlalchemy import delete, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import insert_on_conflict
from app.errors import IdempotencyKeyReused, Unprocessable
from app.models import Case, IdempotencyKey, Person, Referral, TriageDecision
from app.schemas.referral import AnyReferralCreate, DropInReferralCreate, SelfReferralCreate
from app.security import Actor
from app.services import audit, cases
from app.services.notifications import MessagePolicy, intake_messages
from app.services.persons import ChangeAuthor, record_unverified_person, resolve_person
from app.signposting import (
    SignpostingDirectory,
    default_signposting,
    needs_signposting,
    query_for_decision,
    signposting_for,
)
from app.triage import Decision, ReferralFacts, RiskAnswers, Ruleset, evaluate
from app.triage.facts import RECORD_FACTS, Channel, ReferrerType, SettingPreference

log = structlog.get_logger(__name__)

# Crockford's base32 without I, L, O, U: easy to read aloud on the phone.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_PREFIX = "FD"


def new_reference() -> str:
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
    return f"{REFERENCE_PREFIX}-{chars[:4]}-{chars[4:]}"


def channel_of(body: AnyReferralCreate) -> Channel:
    if isinstance(body, SelfReferralCreate):
        return Channel.WEB
    return Channel(body.channel)


def has_contact_route(body: AnyReferralCreate, actor: Actor, known: Person | None = None) -> bool:
    """Can anyone be contacted about this referral? A phone or email for the young person or
    the referrer, the referring organisation (a system's credential names it), or contact
    details already on a known (verified) person's record."""
    person, referrer = body.person, body.referrer
    if person.phone or person.email or referrer.phone or referrer.email:
        return True
    if actor.is_system:
        return True
    return known is not None and bool(known.phone or known.email)


def facts_from(
    body: AnyReferralCreate,
    received_at: datetime,
    *,
    known: Person | None = None,
    contact_route: bool = True,
) -> ReferralFacts:
    """Map any channel's body to the one set of facts the triage engine reads.

    ``known`` is the verified person a staff or system referral joined: a fact of
    ``RECORD_FACTS`` the referral leaves out is read from their record, and listed in
    ``from_record`` (docs/domain/trust-and-safety.md, "What we know counts").
    """
    risk = body.risk
    preference = body.preferences.setting
    given: dict[str, Any] = {
        "date_of_birth": body.person.date_of_birth,
        "postcode": body.person.postcode,
        "send": body.person.send,
        "looked_after": body.person.looked_after,
    }
    from_record: list[str] = []
    if known is not None:
        for fact in RECORD_FACTS:
            recorded = getattr(known, fact)
            if given[fact] is None and recorded is not None:
                given[fact] = recorded
                from_record.append(fact)
    return ReferralFacts(
        received_at=received_at,
        channel=channel_of(body),
        referrer_type=ReferrerType(body.referrer.type),
        date_of_birth=given["date_of_birth"],
        postcode=given["postcode"],
        site_id=body.site_id if isinstance(body, DropInReferralCreate) else None,
        camhs_status=body.camhs.status,
        camhs_transition_planned=body.camhs.transition_planned,
        amhs_threshold=body.amhs_threshold,
        send=bool(given["send"]),
        looked_after=bool(given["looked_after"]),
        request=body.request,
        risk=RiskAnswers(
            immediate_danger=risk.immediate_danger,
            suicidal=risk.suicidal,
            self_harm=risk.self_harm,
            harm_to_others=risk.harm_to_others,
            safeguarding_concern=risk.safeguarding_concern,
            supported=risk.supported,
        ),
        setting_preference=SettingPreference(preference) if preference else None,
        contact_route=contact_route,
        from_record=tuple(from_record),
    )


def facts_snapshot(facts: ReferralFacts) -> dict[str, Any]:
    """The facts as JSON-ready data, stored with the decision they produced."""
    data: dict[str, Any] = orjson.loads(orjson.dumps(asdict(facts)))
    return data


# Person fields added after idempotency keys were first stored: left out of the fingerprint when
# not given, so a retry of a request made before they existed still matches its key.
_LATER_PERSON_FIELDS = ("gender", "ethnic_category")


def request_fingerprint(body: AnyReferralCreate) -> str:
    """SHA-256 of the validated body: the same request in any key order or spacing matches."""
    data = body.model_dump(
        mode="json", exclude={"website"} if isinstance(body, SelfReferralCreate) else None
    )
    person = data.get("person")
    if isinstance(person, dict):
        for name in _LATER_PERSON_FIELDS:
            if person.get(name) is None:
                person.pop(name, None)
    canonical = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def check_site(body: AnyReferralCreate, ruleset: Ruleset) -> None:
    """A drop-in names the site walked into: it must be a Community Base or One Stop Shop."""
    if isinstance(body, DropInReferralCreate):
        queue = ruleset.queue(body.site_id)
        if queue is None or queue.kind not in ("community_base", "one_stop_shop"):
            raise Unprocessable(
                "site_id is not a Community Base or One Stop Shop in the service directory",
                field="site_id",
            )


def check_referrer_organisation(body: AnyReferralCreate, actor: Actor) -> None:
    """A referring system is who its key says: another organisation's ODS code is refused."""
    if not actor.is_system or isinstance(body, SelfReferralCreate):
        return
    sent = body.referrer.ods_code
    if sent is not None and sent != actor.ods_code:
        raise Unprocessable(
            "referrer.ods_code must be your own organisation's ODS code (the one your API key "
            "was issued to), or left out.",
            field="referrer.ods_code",
        )


@dataclass(frozen=True, slots=True)
class IntakeResult:
    referral: Referral
    decision: TriageDecision
    case: Case | None
    replayed: bool = False
    # Whether the referral joined a person and an open case already known (staff see this).
    person_existed: bool = False


async def submit_referral(
    session: AsyncSession,
    *,
    body: AnyReferralCreate,
    raw_payload: dict[str, Any],
    actor: Actor,
    ruleset: Ruleset,
    now: datetime,
    idempotency_key: str | None = None,
    idempotency_ttl: timedelta = timedelta(hours=72),
    incomplete_fields: Sequence[str] = (),
    signposting: SignpostingDirectory | None = None,
    messages: MessagePolicy | None = None,
) -> IntakeResult:
    """Record a referral, decide on it and route it, in the caller's transaction.

    Staff and referring systems are trusted to add to a known person's record (every change
    recorded). A public self-referral (``actor`` PUBLIC) is unverified: it is stored with its
    own person record and only *proposes* a match, opens its own case (its urgent answers are
    acted on at once, whatever it matches) and never joins or changes a known person's case.
    ``incomplete_fields`` names answers missing or invalid in an urgent web referral that was
    stored anyway (docs/domain/trust-and-safety.md). An ineligible or advice-only decision
    stores the services matched from ``signposting`` (the packaged directory when None) with
    the referral, and the messages the referral calls for are written to the outbox in the
    same transaction, under ``messages`` (defaults when None) (docs/domain/
    signposting-and-messages.md).
    """
    check_site(body, ruleset)
    check_referrer_organisation(body, actor)
    referral_id = uuid.uuid4()
    if idempotency_key is not None:
        fingerprint = request_fingerprint(body)
        earlier = await _claim_idempotency_key(
            session,
            actor.idempotency_scope,
            idempotency_key,
            fingerprint,
            referral_id,
            now,
            idempotency_ttl,
        )
        if earlier is not None:
            # A replay hands the stored referral back: that is a read of it.
            audit.record(
                session,
                actor=actor,
                action="read",
                resource_type="referral",
                resource_id=earlier.referral.id,
                person_id=earlier.referral.person_id,
                now=now,
                details={"idempotent_replay": True},
            )
            return earlier

    unverified = actor.kind == "public"
    proposed_person_id: uuid.UUID | None = None
    if unverified:
        person, proposed_person_id = await record_unverified_person(session, body.person, now)
        person_created = True
        known: Person | None = None
    else:
        author = ChangeAuthor(kind=actor.kind, id=actor.id, referral_id=referral_id)
        resolved = await resolve_person(session, body.person, now, author=author)
        person, person_created = resolved.person, resolved.created
        known = None if person_created else person
    # Names of the fields this referral added to a known person (values are never audited).
    person_fields_added = (
        []
        if person_created
        else sorted(a.key for a in inspect(person).attrs if a.history.has_changes())
    )
    facts = facts_from(body, now, known=known, contact_route=has_contact_route(body, actor, known))
    decision = evaluate(facts, ruleset)
    case, disposition, _ = await cases.open_or_join_case(
        session,
        person,
        decision,
        now,
        person_is_new=person_created,
        gender_code=body.person.gender,
        ethnic_category_code=body.person.ethnic_category,
    )

    referral = Referral(
        id=referral_id,
        reference=new_reference(),
        person_id=person.id,
        case_id=case.id if case else None,
        channel=facts.channel.value,
        site_id=facts.site_id,
        referrer_type=facts.referrer_type.value,
        request=facts.request.value,
        received_at=now,
        disposition=disposition,
        submitted_by_kind=actor.kind,
        submitted_by_id=actor.id,
        submitted_by_client_id=actor.client_id,
        raw_payload=raw_payload,
        normalised=_normalised(body, actor),
        reason=body.reason,
        incomplete_fields=list(incomplete_fields),
        proposed_person_id=proposed_person_id,
        person_link="proposed" if proposed_person_id is not None else None,
        # Equity monitoring: on the referral only, never copied onto the person (an unverified
        # answer must not rewrite a known record; each referral keeps what was said then).
        gender_code=body.person.gender,
        ethnic_category_code=body.person.ethnic_category,
        created_at=now,
    )
    _signpost(referral, decision, body.needs, signposting or default_signposting())
    codes = referral_codes(ruleset, referral, decision.urgency.code.value)
    _record_reporting_fields(referral, decision, codes)
    decision_row = TriageDecision(
        referral_id=referral_id,
        ruleset_version=decision.ruleset_version,
        input_snapshot=facts_snapshot(facts),
        # The MHSDS codes are recorded with the decision, by the same ruleset.
        output={**decision.to_dict(), "codes": codes},
        eligibility_outcome=decision.eligibility.outcome.value,
        urgency_code=decision.urgency.code.value,
        thrive_grouping=decision.thrive_grouping.value,
        route_kind=decision.route.kind.value,
        queue_id=decision.route.queue_id,
        respond_by_at=decision.urgency.respond_by_at,
        decided_at=now,
    )
    # Nothing is flushed here: the referral, its decision, a new case, the timeline event and
    # the audit rows go to the database together at the commit (one flush).
    session.add_all([referral, decision_row])
    session.add_all(
        intake_messages(
            body=body,
            actor=actor,
            referral=referral,
            decision=decision,
            case=case,
            respond_by_changed=case is not None
            and bool(inspect(case).attrs.respond_by_at.history.added),
            policy=messages or MessagePolicy(),
            now=now,
        )
    )
    _audit_intake(
        session,
        actor=actor,
        now=now,
        referral=referral,
        person_created=person_created,
        person_fields_added=person_fields_added,
    )
    if case is not None:
        # The case's timeline event and audit row (saying what a joining referral changed)
        # are the case service's: every change of a case goes through it.
        await cases.record_referral_on_case(
            session,
            case,
            referral,
            decision,
            actor=actor,
            joined=disposition == "joined_case",
            now=now,
        )
    log.info(
        "referral_received",
        referral_id=str(referral.id),
        person_id=str(person.id),
        case_id=str(case.id) if case else None,
        channel=referral.channel,
        urgency=decision.urgency.code.value,
        route=decision.route.kind.value,
        disposition=disposition,
        person_link=referral.person_link,
        incomplete=bool(incomplete_fields),
    )
    return IntakeResult(
        referral=referral, decision=decision_row, case=case, person_existed=not person_created
    )


def _signpost(
    referral: Referral,
    decision: Decision,
    needs: Sequence[str],
    directory: SignpostingDirectory,
) -> None:
    """Store where an ineligible or advice-only person is pointed, as they are told now."""
    if not needs_signposting(decision.eligibility.outcome.value, decision.urgency.code.value):
        return
    query = query_for_decision(
        {
            "age_years": decision.age_years,
            "postcode_district": decision.postcode_district,
            "locality_id": decision.locality_id,
        },
        needs,
    )
    referral.signposting = signposting_for(directory, query)
    referral.signposting_version = directory.version


def _record_reporting_fields(referral: Referral, decision: Decision, codes: dict[str, str]) -> None:
    """What the reports group by, copied from the decision onto the referral
    (docs/domain/reporting.md); the decision's output keeps the same values."""
    referral.age_years = decision.age_years
    referral.locality_id = decision.locality_id
    referral.source_of_referral_code = codes["source_of_referral"]
    reasons = decision.eligibility.reasons
    referral.eligibility_rule = reasons[0].rule if reasons else None


def referral_codes(ruleset: Ruleset, referral: Referral, urgency_code: str) -> dict[str, str]:
    """The MHSDS source of referral and clinical response priority type a referral records,
    from its channel, referrer and urgency (docs/domain/fhir-and-codes.md)."""
    referrer_ods_code = referral.normalised.get("referrer", {}).get("ods_code")
    return {
        "source_of_referral": ruleset.codes.source_of_referral_for(
            channel=referral.channel,
            referrer_type=referral.referrer_type,
            referrer_ods_code=referrer_ods_code,
        ),
        "clinical_response_priority_type": ruleset.codes.clinical_response_priority_type_for(
            urgency_code
        ),
    }


def _normalised(body: AnyReferralCreate, actor: Actor) -> dict[str, Any]:
    """The validated body as stored; a referring system's organisation is its credential's."""
    data: dict[str, Any] = body.model_dump(mode="json")
    if actor.is_system:
        data["referrer"]["ods_code"] = actor.ods_code
    return data


def _audit_intake(
    session: AsyncSession,
    *,
    actor: Actor,
    now: datetime,
    referral: Referral,
    person_created: bool,
    person_fields_added: list[str],
) -> None:
    """Audit the person and referral intake created or changed, in the same transaction (ids
    and codes only). The case's audit row is the case service's
    (``cases.record_referral_on_case``)."""
    person_id = referral.person_id
    if person_created:
        audit.record(
            session,
            actor=actor,
            action="create",
            resource_type="person",
            resource_id=person_id,
            person_id=person_id,
            now=now,
            details={"referral_id": referral.id},
        )
    elif person_fields_added:
        audit.record(
            session,
            actor=actor,
            action="update",
            resource_type="person",
            resource_id=person_id,
            person_id=person_id,
            now=now,
            details={"referral_id": referral.id, "fields": person_fields_added},
        )
    audit.record(
        session,
        actor=actor,
        action="create",
        resource_type="referral",
        resource_id=referral.id,
        person_id=person_id,
        now=now,
        details={
            "channel": referral.channel,
            "disposition": referral.disposition,
            "case_id": referral.case_id,
            **(
                {"proposed_person_id": referral.proposed_person_id}
                if referral.proposed_person_id
                else {}
            ),
        },
    )


async def _claim_idempotency_key(
    session: AsyncSession,
    scope: str,
    key: str,
    fingerprint: str,
    referral_id: uuid.UUID,
    now: datetime,
    ttl: timedelta,
) -> IntakeResult | None:
    """Reserve the key for this request, or return the referral an earlier request made.

    The key row is inserted first (``ON CONFLICT DO NOTHING``: one round trip, no savepoint),
    inside the request's transaction: a concurrent request with the same key waits on the
    primary key until this one commits, then finds its referral.
    """
    values = {
        "scope": scope,
        "key": key,
        "request_hash": fingerprint,
        "referral_id": referral_id,
        "created_at": now,
        "expires_at": now + ttl,
    }
    if await _reserve_key(session, values):
        return None
    existing = await session.get(IdempotencyKey, (scope, key), populate_existing=True)
    if existing is not None and existing.expires_at <= now:
        # Past its time (an expired key stays in the table until reused): this request takes it.
        await session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
        )
        if await _reserve_key(session, values):
            return None
        existing = await session.get(IdempotencyKey, (scope, key), populate_existing=True)
    if existing is None:  # the conflicting row is gone again: give up rather than loop
        raise RuntimeError("idempotency key insert conflicted but no row holds the key")
    if existing.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "This idempotency key was used before with a different referral. "
            "Use a new key for a new referral."
        )
    referral = await session.get(Referral, existing.referral_id)
    decision = await session.scalar(
        select(TriageDecision).where(TriageDecision.referral_id == existing.referral_id)
    )
    if referral is None or decision is None:
        raise RuntimeError("idempotency key points at a missing referral")
    case = await session.get(Case, referral.case_id) if referral.case_id else None
    person = await session.get(Person, referral.person_id)
    # A person recorded by the original request was created at its received time.
    person_existed = person is not None and person.created_at < referral.received_at
    return IntakeResult(
        referral=referral,
        decision=decision,
        case=case,
        replayed=True,
        person_existed=person_existed,
    )


async def _reserve_key(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert the key row unless the key is taken; whether this request now holds it."""
    reserved = await session.execute(
        insert_on_conflict(session, IdempotencyKey)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[IdempotencyKey.scope, IdempotencyKey.key])
        .returning(IdempotencyKey.key)
    )
    return reserved.first() is not None
