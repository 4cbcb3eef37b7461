"""Request and response bodies for queues, worklists and cases.

Action bodies forbid unknown fields, so a client cannot set server-owned fields (status, key
worker, version, clock times) through them. The case version travels in the ``ETag`` /
``If-Match`` headers, not in bodies.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from app.models.case import (
    CaseOutcome,
    CaseStatus,
    ContactAttendance,
    ContactMechanism,
    ContactWith,
    EffectiveEligibility,
    ReviewOutcome,
)
from app.schemas.common import BlankIsAbsent, MultiLine, ReasonText, SingleLine
from app.triage.decision import ThriveGrouping, UrgencyCode

__all__ = ["CaseOutcome", "CaseStatus"]  # the case vocabulary, as the API names it

# A staff user's id as their identity provider names it (the token's ``sub``).
StaffId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^\S+$"),
    SingleLine,
]
QueueId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$"),
]
SupporterRole = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), SingleLine
]
RequiredReason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000), MultiLine
]


class ContactType(StrEnum):
    """The first meaningful contact that stops the waiting clock (docs/domain/waiting-clocks.md).
    The older first-contact action records it as an attended contact."""

    ADVICE = "advice"
    ASSESSMENT = "assessment"
    INTERVENTION = "intervention"


class ContactMethod(StrEnum):
    FACE_TO_FACE = "face_to_face"
    PHONE = "phone"
    VIDEO = "video"
    TEXT_MESSAGE = "text_message"
    EMAIL = "email"


class StrictModel(BlankIsAbsent):
    model_config = ConfigDict(extra="forbid")


# Queues ----------------------------------------------------------------------------------------


class QueueOverviewItem(BaseModel):
    id: str
    name: str
    kind: str
    locality_id: str | None
    active: bool = Field(description="False when the current directory no longer lists it")
    open_count: int = Field(description="Cases not closed")
    unallocated_count: int = Field(description="Open cases with no key worker (waiting)")
    breached_count: int = Field(description="Open cases past respond_by_at without a first contact")
    oldest_waiting_since: datetime | None = Field(
        description="received_at of the longest-waiting open case not yet contacted"
    )
    longest_wait_seconds: int | None = Field(description="How long that case has waited, at as_of")


class QueueOverview(BaseModel):
    as_of: datetime
    queues: list[QueueOverviewItem]


# Cases -----------------------------------------------------------------------------------------


class WaitingClock(BaseModel):
    """Starts when the referral is received, stops at the first meaningful contact."""

    started_at: datetime
    respond_by_at: datetime | None = Field(description="null: this urgency has no window")
    stopped_at: datetime | None = Field(description="the first meaningful contact")
    running: bool
    breached: bool = Field(description="respond_by_at passed with no first contact (now)")
    within_target: bool | None = Field(
        description="once stopped: was the first contact by respond_by_at (null: no window)"
    )


class PersonBrief(BaseModel):
    id: uuid.UUID
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None


class PersonDetail(PersonBrief):
    nhs_number: str | None
    postcode: str | None
    phone: str | None
    email: str | None
    send: bool
    looked_after: bool


class ThriveRead(BaseModel):
    proposed: str = Field(description="proposed by the triage engine")
    decided: str | None = Field(description="confirmed or changed with the young person")
    decided_by: str | None
    decided_at: datetime | None


class WorklistItem(BaseModel):
    id: uuid.UUID
    person: PersonBrief
    queue_id: str
    status: CaseStatus
    urgency_code: str
    received_at: datetime
    respond_by_at: datetime | None
    first_contact_at: datetime | None
    breached: bool
    key_worker_id: str | None
    allocated_at: datetime | None
    thrive_grouping: str = Field(description="the decided grouping, else the proposed one")
    version: int


class WorklistPage(BaseModel):
    queue_id: str
    as_of: datetime
    limit: int
    items: list[WorklistItem]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null on the last page"
    )


class SupporterRead(BaseModel):
    id: uuid.UUID
    kind: Literal["worker", "team"]
    worker_id: str | None
    team_queue_id: str | None
    role: str | None
    added_by_id: str
    added_at: datetime
    removed_by_id: str | None
    removed_at: datetime | None


class CaseReferralRead(BaseModel):
    id: uuid.UUID
    reference: str
    channel: str
    received_at: datetime
    disposition: str
    urgency_code: str
    route_kind: str


class EligibilityRead(BaseModel):
    """The case's effective eligibility: the engine's outcome until a clinical review."""

    outcome: EffectiveEligibility | None = Field(description="effective: after any review")
    engine_outcome: EffectiveEligibility | None = Field(
        description="the engine's outcome for the opening referral (never edited)"
    )
    awaiting_review: bool = Field(description="open, sent for clinical review, not reviewed")
    review: ReviewOutcome | None = Field(description="the clinical-review decision")
    reviewed_by: str | None
    reviewed_at: datetime | None
    reason: str | None = Field(description="why, in the reviewer's words")


class ReviewProposalRead(BaseModel):
    """Where the routing rules send the young person once eligible: accept's default queue."""

    queue_id: str | None
    queue_name: str | None
    route_kind: str
    rule: str


class ContactSummary(BaseModel):
    first_attended_at: datetime | None = Field(description="stopped the waiting clock")
    second_attended_at: datetime | None = Field(description="the CYP access measure")
    did_not_attend_count: int


class CaseRead(BaseModel):
    id: uuid.UUID
    version: int = Field(description='also sent as the ETag header: "<version>"')
    status: CaseStatus
    queue_id: str
    person: PersonDetail
    urgency_code: str = Field(description="effective: raised by referrals or re-graded")
    engine_urgency_code: str | None = Field(
        description="the most urgent code the triage engine gave the case's referrals"
    )
    eligibility: EligibilityRead
    review_proposal: ReviewProposalRead | None = Field(
        description="while awaiting clinical review: the team accept proposes"
    )
    contacts: ContactSummary
    waiting_clock: WaitingClock
    first_contact_type: str | None
    key_worker_id: str | None
    allocated_at: datetime | None
    thrive: ThriveRead
    supporters: list[SupporterRead] = Field(description="current supporters (not stood down)")
    outcome: str | None
    closed_at: datetime | None
    referrals: list[CaseReferralRead]
    created_at: datetime
    updated_at: datetime


class ActorRead(BaseModel):
    kind: str
    id: str | None
    role: str | None


class CaseEventRead(BaseModel):
    seq: int
    type: str
    at: datetime
    actor: ActorRead
    from_status: str | None
    to_status: str | None
    reason: str | None
    data: dict[str, Any]


class CaseTimeline(BaseModel):
    case_id: uuid.UUID
    version: int
    status: CaseStatus
    waiting_clock: WaitingClock
    events: list[CaseEventRead]


# Case actions ----------------------------------------------------------------------------------


class AllocateRequest(StrictModel):
    key_worker_id: StaffId = Field(description="the staff user who will hold the case")
    reason: ReasonText | None = None


class ReviewRequest(StrictModel):
    outcome: ReviewOutcome
    queue_id: QueueId | None = Field(
        default=None,
        description="accept only: the team's queue (default: review_proposal on the case)",
    )
    reason: RequiredReason = Field(description="why: the clinical reasoning, briefly")


class UrgencyChangeRequest(StrictModel):
    code: UrgencyCode = Field(description="the new UK Mental Health Triage Scale code (A-G)")
    reason: RequiredReason = Field(description="why, after assessing the young person")


class TransferRequest(StrictModel):
    queue_id: QueueId = Field(description="the queue the case moves to")
    reason: RequiredReason = Field(description="why the case moves (rare: no referring on)")


class ContactCreate(StrictModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    occurred_at: AwareDatetime = Field(
        description="when it happened: not in the future, not before the referral was received"
    )
    mechanism: ContactMechanism
    attendance: ContactAttendance
    with_whom: ContactWith = Field(alias="with", description="who the contact was with")


class ContactRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: uuid.UUID
    occurred_at: datetime
    mechanism: ContactMechanism | None = Field(
        description="null only for a first contact recorded without a method"
    )
    attendance: ContactAttendance
    with_whom: ContactWith = Field(serialization_alias="with", validation_alias="with_whom")
    contact_type: str | None = Field(description="advice | assessment | intervention, if said")
    recorded_by_id: str
    recorded_at: datetime


class ContactList(BaseModel):
    case_id: uuid.UUID
    version: int
    summary: ContactSummary
    items: list[ContactRead] = Field(description="in the order they happened")


class MyCaseItem(WorklistItem):
    relationship: Literal["key_worker", "supporter"]


class MyCases(BaseModel):
    as_of: datetime
    items: list[MyCaseItem] = Field(description="most urgent first, then earliest respond-by")


class ContactRequest(StrictModel):
    contact_type: ContactType
    method: ContactMethod | None = None
    contacted_at: AwareDatetime | None = Field(
        default=None,
        description="when the contact happened (default: now); not in the future, not before "
        "the referral was received",
    )
    reason: ReasonText | None = Field(default=None, description="a short note")


class NoteRequest(StrictModel):
    reason: ReasonText | None = None


class HoldRequest(StrictModel):
    reason: RequiredReason = Field(description="why the case is paused")


class CloseRequest(StrictModel):
    outcome: CaseOutcome
    reason: ReasonText | None = None


class ThriveDecisionRequest(StrictModel):
    thrive_grouping: ThriveGrouping = Field(
        description="the grouping agreed with the young person (the same as proposed confirms it)"
    )
    reason: ReasonText | None = None


class SupporterCreate(StrictModel):
    """A worker (``worker_id``) or a specialist team (``team_queue_id``), not both."""

    kind: Literal["worker", "team"]
    worker_id: StaffId | None = Field(default=None, description="for kind=worker")
    team_queue_id: QueueId | None = Field(
        default=None, description="for kind=team: the specialist team's queue id"
    )
    role: SupporterRole | None = Field(default=None, description="what they bring")
    reason: ReasonText | None = None
