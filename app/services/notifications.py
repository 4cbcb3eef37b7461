"""Messages: who is told what, written to the outbox in the transaction that causes them.

Three messages follow from intake (docs/domain/signposting-and-messages.md): an acknowledgement
to a self-referrer who left contact details and agreed; the outcome to a referring
professional; and a warning to the queue's team before a case passes its respond-by time unseen.
Each is a ``Notification`` row added to the caller's session (flushed with the referral, never
committed here), so a referral that rolls back leaves no message and one that commits always
has its message. ``app/worker.py`` delivers them.

The rules every message follows: nothing clinical by SMS; SMS only with consent to be contacted
by text; nothing through a contact the young person said a parent or carer who does not know
may see. A message the rules forbid for a contact that was given is recorded as ``not_sent``
with the reason, so an admin can see why nobody was told.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.content import next_steps
from app.models import Case, Notification, Referral
from app.models.base import new_id
from app.schemas.referral import AnyReferralCreate
from app.security import Actor
from app.triage import Decision
from app.triage.age import SERVICE_TIME_ZONE
from app.triage.decision import RouteKind

# The crisis line, in every acknowledgement (email and SMS alike).
CRISIS_LINE = (
    "If you need help now, call NHS 111 and choose the mental health option, or text SHOUT to "
    "85258. In an emergency, call 999."
)
PROFESSIONAL_REFERRERS = frozenset({"gp", "camhs", "school", "social_care", "other_professional"})
# A UK mobile number (07…, +447…, 00447…), spaces and dashes ignored: only mobiles take texts.
_UK_MOBILE = re.compile(r"^(?:\+44|0044|0)7\d{9}$")


@dataclass(frozen=True, slots=True)
class MessagePolicy:
    """What the outbox needs from configuration."""

    breach_warning_lead: timedelta = timedelta(minutes=60)
    queue_contact_emails: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> MessagePolicy:
        return cls(
            breach_warning_lead=timedelta(minutes=settings.breach_warning_lead_minutes),
            queue_contact_emails=dict(settings.queue_contact_emails),
        )


def is_uk_mobile(number: str) -> bool:
    return _UK_MOBILE.fullmatch(re.sub(r"[\s\-()]", "", number)) is not None


def _new(
    *,
    kind: str,
    channel: str,
    dedupe_key: str,
    recipient: str | None,
    personalisation: dict[str, Any],
    now: datetime,
    referral_id: uuid.UUID | None = None,
    case_id: uuid.UUID | None = None,
    due_at: datetime | None = None,
    not_sent_reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> Notification:
    return Notification(
        id=new_id(),
        kind=kind,
        channel=channel,
        status="not_sent" if not_sent_reason else "pending",
        dedupe_key=dedupe_key,
        referral_id=referral_id,
        case_id=case_id,
        recipient=None if not_sent_reason else recipient,
        personalisation=personalisation,
        details=details or {},
        attempts=0,
        next_attempt_at=due_at or now,
        last_error=not_sent_reason,
        created_at=now,
        updated_at=now,
    )


# Acknowledgement ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactChoice:
    channel: str
    recipient: str | None
    not_sent_reason: str | None = None


def acknowledgement_contact(body: AnyReferralCreate) -> ContactChoice | None:
    """How a self-referrer may be acknowledged, or None when they left no contact at all.

    Email when given; otherwise a text to a mobile, only with consent to be texted. Nothing
    when they did not agree to the referral, or when the young person said their parent or
    carer does not know and the contact may be shared with them.
    """
    person, referrer, consent = body.person, body.referrer, body.consent
    if referrer.type == "parent_carer":
        email, phone = referrer.email or person.email, referrer.phone or person.phone
    else:
        email, phone = person.email, person.phone
    if not email and not phone:
        return None
    channel = "email" if email else "sms"
    if consent.to_referral is not True:
        return ContactChoice(channel, None, "they did not say they agree to the referral")
    if (
        referrer.type == "self"
        and consent.parent_carer_aware is False
        and consent.contact_shared_with_parent is not False
    ):
        return ContactChoice(
            channel,
            None,
            "the young person said their parent or carer does not know, and this contact may "
            "be shared with them",
        )
    if email:
        return ContactChoice("email", email)
    assert phone is not None
    if consent.contact_by_text is not True:
        return ContactChoice("sms", None, "no consent to be contacted by text message")
    if not is_uk_mobile(phone):
        return ContactChoice("sms", None, "the phone number given is not a UK mobile number")
    return ContactChoice("sms", phone)


def _services_lines(signposting: Sequence[Mapping[str, Any]] | None) -> str:
    lines = []
    for service in signposting or []:
        how = [
            f"call {service['phone']}" if service.get("phone") else None,
            service.get("text"),
            service.get("url"),
        ]
        lines.append(f"- {service['name']}: " + ", ".join(h for h in how if h))
    return "\n".join(lines)


def acknowledgement_personalisation(
    referral: Referral, decision: Decision, channel: str
) -> dict[str, Any]:
    """What the acknowledgement says. By SMS: only that we have it, the reference and where to
    get help now (no urgency, no timescale that would reveal it, nothing clinical)."""
    reference = referral.reference
    if channel == "sms":
        return {
            "reference": reference,
            "subject": "Front Door: referral received",
            "body": (
                f"Front Door: we have received your referral. Your reference is {reference}. "
                f"We will be in touch. {CRISIS_LINE}"
            ),
        }
    steps = next_steps(decision.urgency.code, decision.route.kind, reference)
    services = _services_lines(referral.signposting)
    body = (
        "Thank you for contacting Front Door, the mental health service for children and young "
        f"people. We have received your referral.\n\n{steps}"
        + (f"\n\nServices that can help:\n{services}" if services else "")
        + f"\n\n{CRISIS_LINE}"
    )
    return {
        "reference": reference,
        "subject": f"We have received your referral ({reference})",
        "body": body,
    }


# Outcome to the referrer ----------------------------------------------------------------------


def outcome_words(decision: Decision, case: Case | None, joined: bool) -> tuple[str, str]:
    """(short outcome, sentence) for the referring professional."""
    route = decision.route
    if route.kind is RouteKind.SIGNPOST or case is None:
        return (
            "signposted",
            "has been signposted: another service is better placed to help. We have given the "
            "young person the services listed below.",
        )
    if decision.eligibility.outcome.value == "clinical_review":
        return (
            "awaiting clinical review",
            f"is awaiting a clinical review of eligibility by the {route.queue_name or 'duty'} "
            "team. We will write again when the review decides.",
        )
    if joined:
        return (
            "added to an open case",
            "has been added to the young person's open case, which stays with the team that "
            "holds it.",
        )
    return ("accepted", f"has been accepted by {route.queue_name or 'our team'}.")


def referrer_outcome_personalisation(
    referral: Referral, decision: Decision, case: Case | None, joined: bool
) -> dict[str, Any]:
    short, sentence = outcome_words(decision, case, joined)
    received_on = referral.received_at.astimezone(SERVICE_TIME_ZONE).strftime("%-d %B %Y")
    services = _services_lines(referral.signposting)
    body = (
        f"Your referral received on {received_on} (Front Door reference {referral.reference}) "
        f"{sentence}"
        + (f"\n\n{services}" if services and short == "signposted" else "")
        + "\n\nPlease quote the reference if you contact us."
    )
    return {
        "reference": referral.reference,
        "subject": f"Front Door referral {referral.reference}: {short}",
        "body": body,
    }


# Breach warning ------------------------------------------------------------------------------


def breach_warning_personalisation(case: Case, queue_name: str) -> dict[str, Any]:
    assert case.respond_by_at is not None
    respond_by = case.respond_by_at.astimezone(SERVICE_TIME_ZONE).strftime("%-d %B %Y at %H:%M")
    return {
        "reference": str(case.id),
        "subject": f"Respond by {respond_by}: a case in {queue_name} has not been contacted",
        "body": (
            f"A case in {queue_name} (urgency {case.urgency_code}) has had no first contact yet "
            f"and must be responded to by {respond_by}. Open the case in the Front Door console: "
            f"/console/cases/{case.id}"
        ),
    }


def breach_warning(
    case: Case, queue_name: str, policy: MessagePolicy, now: datetime
) -> Notification | None:
    """The warning owed to the queue's team for the case's current respond-by time."""
    if case.respond_by_at is None or case.first_contact_at is not None:
        return None
    recipient = policy.queue_contact_emails.get(case.queue_id)
    return _new(
        kind="breach_warning",
        channel="email",
        dedupe_key=f"breach_warning:{case.id}:{case.respond_by_at.isoformat()}",
        recipient=recipient,
        personalisation=breach_warning_personalisation(case, queue_name),
        now=now,
        case_id=case.id,
        due_at=max(now, case.respond_by_at - policy.breach_warning_lead),
        not_sent_reason=(
            None
            if recipient
            else f"no team address is configured for queue {case.queue_id} "
            "(FRONTDOOR_QUEUE_CONTACT_EMAILS)"
        ),
        details={"respond_by_at": case.respond_by_at.isoformat(), "queue_id": case.queue_id},
    )


# At intake -----------------------------------------------------------------------------------


def intake_messages(
    *,
    body: AnyReferralCreate,
    actor: Actor,
    referral: Referral,
    decision: Decision,
    case: Case | None,
    respond_by_changed: bool,
    policy: MessagePolicy,
    now: datetime,
) -> list[Notification]:
    """Every message a new referral calls for (added to the intake transaction by the caller)."""
    messages: list[Notification] = []
    if actor.kind == "public":
        choice = acknowledgement_contact(body)
        if choice is not None:
            messages.append(
                _new(
                    kind="acknowledgement",
                    channel=choice.channel,
                    dedupe_key=f"acknowledgement:{referral.id}",
                    recipient=choice.recipient,
                    personalisation=acknowledgement_personalisation(
                        referral, decision, choice.channel
                    ),
                    now=now,
                    referral_id=referral.id,
                    not_sent_reason=choice.not_sent_reason,
                )
            )
    elif body.referrer.type in PROFESSIONAL_REFERRERS and body.referrer.email:
        joined = referral.disposition == "joined_case"
        messages.append(
            _new(
                kind="referrer_outcome",
                channel="email",
                dedupe_key=f"referrer_outcome:{referral.id}",
                recipient=body.referrer.email,
                personalisation=referrer_outcome_personalisation(referral, decision, case, joined),
                now=now,
                referral_id=referral.id,
            )
        )
    # A new case, or an open one whose respond-by time this referral brought forward, is owed
    # a warning for that time (one per case and respond-by time).
    opened = referral.disposition == "case_opened"
    if case is not None and (opened or respond_by_changed):
        warning = breach_warning(case, _queue_name(case, decision), policy, now)
        if warning is not None:
            warning.referral_id = referral.id
            messages.append(warning)
    return messages


def _queue_name(case: Case, decision: Decision) -> str:
    if decision.route.queue_id == case.queue_id and decision.route.queue_name:
        return decision.route.queue_name
    return case.queue_id


# Admin ---------------------------------------------------------------------------------------


async def list_notifications(
    session: AsyncSession, *, referral_id: uuid.UUID | None, limit: int
) -> list[Notification]:
    query = select(Notification).order_by(Notification.created_at.desc(), Notification.id)
    if referral_id is not None:
        query = query.where(Notification.referral_id == referral_id)
    return list((await session.scalars(query.limit(limit))).all())


RETRYABLE_BY_ADMIN = frozenset({"failed", "permanent_failure", "not_sent"})
CANCELLABLE_BY_ADMIN = frozenset({"pending", "failed"})


def mask_recipient(recipient: str | None) -> str | None:
    """Enough of an address to recognise it, not to read it: ``j***@example.com``,
    ``07*** ***123``."""
    if not recipient:
        return None
    if "@" in recipient:
        local, _, domain = recipient.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = re.sub(r"\D", "", recipient)
    return f"{digits[:2]}*** ***{digits[-3:]}" if len(digits) >= 5 else "***"


# After a clinical review ------------------------------------------------------------------------

# What the referring professional is told when a clinical review decides (no clinical detail).
_REVIEW_WORDS: dict[str, tuple[str, str]] = {
    "accept": (
        "accepted after clinical review",
        "has been accepted by {queue} after a clinical review of eligibility.",
    ),
    "signpost": (
        "signposted after clinical review",
        "has been reviewed by a clinician, who "
        "decided another service is better placed to help. We have given the young "
        "person the services listed below.",
    ),
    "adult_handover": (
        "handed over to adult services",
        "has been reviewed by a clinician and "
        "handed over to adult mental health services (a warm handover).",
    ),
}


async def review_follow_up(
    session: AsyncSession,
    case: Case,
    *,
    outcome: str,
    queue_name: str | None,
    directory: Any,
    now: datetime,
) -> list[Notification]:
    """What a clinical-review decision owes people, in the review's transaction: a signposted or
    handed-over young person is given services to turn to (stored on the opening referral, as
    intake stores them), and a referring professional who left an email is told the outcome
    again (docs/domain/signposting-and-messages.md)."""
    from app.models import TriageDecision
    from app.signposting import signposting_for
    from app.signposting.matching import query_for_decision

    row = (
        await session.execute(
            select(Referral, TriageDecision)
            .join(TriageDecision, TriageDecision.referral_id == Referral.id)
            .where(Referral.case_id == case.id, Referral.disposition == "case_opened")
            .limit(1)
        )
    ).first()
    if row is None:
        return []
    referral, decision = row
    if outcome != "accept" and not referral.signposting:
        needs = (referral.normalised or {}).get("needs") or []
        referral.signposting = signposting_for(
            directory, query_for_decision(decision.output, needs)
        )
        referral.signposting_version = directory.version
    referrer = (referral.normalised or {}).get("referrer") or {}
    email = referrer.get("email")
    if referrer.get("type") not in PROFESSIONAL_REFERRERS or not email:
        return []
    short, sentence = _REVIEW_WORDS[outcome]
    sentence = sentence.format(queue=queue_name or "our team")
    received_on = referral.received_at.astimezone(SERVICE_TIME_ZONE).strftime("%-d %B %Y")
    services = _services_lines(referral.signposting) if outcome != "accept" else ""
    body = (
        f"Your referral received on {received_on} (Front Door reference {referral.reference}) "
        f"{sentence}"
        + (f"\n\n{services}" if services else "")
        + "\n\nPlease quote the reference if you contact us."
    )
    message = _new(
        kind="referrer_outcome",
        channel="email",
        dedupe_key=f"referrer_outcome:review:{case.id}",
        recipient=email,
        personalisation={
            "reference": referral.reference,
            "subject": f"Front Door referral {referral.reference}: {short}",
            "body": body,
        },
        now=now,
        referral_id=referral.id,
        case_id=case.id,
    )
    session.add(message)
    return [message]
