"""Where a referral is, as a FHIR Task ``status`` and ``businessStatus``.

Read from the referral, its decision and the case row (status, clinical review, first
contact, outcome, queue): no state of its own. ``businessStatus`` uses the e-Referral Service
``eRS-ReferralState`` code where one fits and our ``referral-status`` code otherwise
(docs/domain/fhir-and-codes.md, "Status back").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.fhir.systems import ERS_REFERRAL_STATE, REFERRAL_STATUS
from app.models import Case, Referral, TriageDecision


@dataclass(frozen=True, slots=True)
class TaskState:
    status: str  # FHIR Task.status
    system: str
    code: str
    display: str
    text: str
    """What a referrer reads: the state in plain words (team names, where signposted)."""
    owner: str | None = None
    """The team holding the referral, when a team does."""

    def business_status(self) -> dict[str, Any]:
        return {
            "coding": [{"system": self.system, "code": self.code, "display": self.display}],
            "text": self.text,
        }


# Our codes for the states eRS-ReferralState has no code for.
RECEIVED = ("received", "Received")
FIRST_CONTACT_MADE = ("first-contact-made", "First contact made")
CLOSED = ("closed", "Closed")

# eRS-ReferralState codes we use (https://fhir.nhs.uk/CodeSystem/eRS-ReferralState).
AWAITING_TRIAGE = ("AWAITING_TRIAGE", "The referral is pending review with a service provider")
DEFER_TO_PROVIDER = ("DEFER_TO_PROVIDER", "The service provider will arrange the appointment")
TRIAGE_RESPONSE = ("TRIAGE_RESPONSE", "Passed back to the referrer, with advice")

CLOSED_OUTCOME_TEXT = {
    "returned_to_thriving": "Closed: support finished",
    "signposted": "Closed: signposted to other support",
    "adult_handover": "Closed: handed over to adult mental health services",
    "moved_to_adult_services": "Closed: moved to adult services",
    "transferred_to_specialist": "Closed: transferred to a specialist service",
    "moved_out_of_area": "Closed: moved out of the area",
    "declined": "Closed: support was declined",
    "not_contactable": "Closed: we could not make contact",
}


def task_state(
    referral: Referral,
    decision: TriageDecision,
    case: Case | None,
    *,
    case_visible: bool,
    queue_name: str | None,
    signposted_reasons: list[str],
) -> TaskState:
    """The Task state of a referral as its reader may see it.

    ``case_visible`` is False for a referring system whose referral joined a case another
    organisation's referral opened: it learns only that the referral was received.
    ``signposted_reasons`` say, in plain words, why and where a signposted referral went.
    """
    if case is None:
        where = "; ".join(signposted_reasons) or "Signposted to other support"
        return TaskState("completed", ERS_REFERRAL_STATE, *TRIAGE_RESPONSE, f"Signposted: {where}")
    if not case_visible:
        return TaskState("received", REFERRAL_STATUS, *RECEIVED, "Referral received")
    if case.status == "closed":
        outcome = case.outcome or ""
        text = CLOSED_OUTCOME_TEXT.get(outcome, "Closed")
        if outcome in ("signposted", "adult_handover"):
            return TaskState("completed", ERS_REFERRAL_STATE, *TRIAGE_RESPONSE, text)
        return TaskState("completed", REFERRAL_STATUS, *CLOSED, text, owner=queue_name)
    team = queue_name or "the team"
    if case.first_contact_at is not None:
        status = "on-hold" if case.status == "on_hold" else "in-progress"
        return TaskState(
            status,
            REFERRAL_STATUS,
            *FIRST_CONTACT_MADE,
            f"First contact made by {team}",
            owner=queue_name,
        )
    if _awaiting_clinical_review(referral, decision, case):
        return TaskState(
            "received",
            ERS_REFERRAL_STATE,
            *AWAITING_TRIAGE,
            f"Awaiting clinical review by {team}",
            owner=queue_name,
        )
    return TaskState(
        "accepted",
        ERS_REFERRAL_STATE,
        *DEFER_TO_PROVIDER,
        f"Accepted by {team}, who will contact the young person",
        owner=queue_name,
    )


def _awaiting_clinical_review(referral: Referral, decision: TriageDecision, case: Case) -> bool:
    """The engine sent the case this referral opened for clinical review; nobody has decided."""
    return (
        referral.disposition == "case_opened"
        and decision.eligibility_outcome == "clinical_review"
        and getattr(case, "eligibility_review", None) is None
    )
