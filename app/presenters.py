"""Build API response bodies from stored records."""

from __future__ import annotations

from app.models import Case, Referral, TriageDecision
from app.schemas.referral import DecisionRead, ReferralRead


def referral_status(referral: Referral, case: Case | None) -> str:
    """What a referrer sees: signposted, or the state of the case that holds the referral."""
    if case is None:
        return "signposted"
    return case.status


def referral_read(referral: Referral, decision: TriageDecision, case: Case | None) -> ReferralRead:
    return ReferralRead(
        id=referral.id,
        reference=referral.reference,
        person_id=referral.person_id,
        channel=referral.channel,
        received_at=referral.received_at,
        status=referral_status(referral, case),
        decision=DecisionRead.model_validate(decision.output),
        case_id=referral.case_id,
    )
