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

from app.schemas.common import BlankIsAbsent, MultiLine, ReasonText, SingleLine
from app.triage.decision import ThriveGrouping

CaseStatus = Literal["waiting", "allocated", "contacted", "active", "on_hold", "closed"]
OpenCaseStatus = Literal["waiting", "allocated", "contacted", "active", "on_hold"]

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
    """The first meaningful contact that stops the waiting clock (docs/domain/waiting-clocks.md)."""

    ADVICE = "advice"
    ASSESSMENT = "assessment"
    INTERVENTION = "intervention"


class ContactMethod(StrEnum):
    FACE_TO_FACE = "face_to_face"
    PHONE = "phone"
    VIDEO = "video"
    TEXT_MESSAGE = "text_message"
    EMAIL = "email"


class CaseOutcome(StrEnum):
    """Why a case closed."""

    RETURNED_TO_THRIVING = "returned_to_thriving"
    SIGNPOSTED = "signposted"
    MOVED_TO_ADULT_SERVICES = "moved_to_adult_services"
    TRANSFERRED_TO_SPECIALIST_SERVICE = "transferred_to_specialist_service"
    MOVED_OUT_OF_AREA = "moved_out_of_area"
    DECLINED = "declined"
    NOT_CONTACTABLE = "not_contactable"


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


class CaseRead(BaseModel):
    id: uuid.UUID
    version: int = Field(description='also sent as the ETag header: W/"<version>"')
    status: CaseStatus
    queue_id: str
    person: PersonDetail
    urgency_code: str
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
