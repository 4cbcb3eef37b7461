"""Request and response bodies for intake: referrals, self-referrals and the triage preview.

Intake channels are one discriminated union keyed on ``channel``; each maps to the same
``ReferralFacts`` for the triage engine. Every model forbids unknown fields, so clients cannot
set server-owned fields (status, urgency, queue, key worker) through a body.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.equity import EthnicCategoryCode, GenderCode
from app.schemas.common import (
    AGENCIES_MAX_ITEMS,
    EARLIEST_DATE_OF_BIRTH,
    NEEDS_MAX_ITEMS,
    BlankIsAbsent,
    DirectoryId,
    Email,
    Name,
    Need,
    NhsNumber,
    OdsCode,
    Organisation,
    Phone,
    Postcode,
    ReasonText,
    SingleLine,
)
from app.schemas.signposting import SignpostServiceRead
from app.triage.facts import (
    AmhsThreshold,
    CamhsStatus,
    HarmToOthers,
    ReferrerType,
    RequestKind,
    SelfHarm,
    SettingPreference,
    Suicidal,
)

LONDON = ZoneInfo("Europe/London")


class StrictModel(BlankIsAbsent):
    model_config = ConfigDict(extra="forbid")


class ReferrerIn(StrictModel):
    type: ReferrerType
    name: Name | None = None
    organisation: Organisation | None = None
    ods_code: OdsCode | None = None
    phone: Phone | None = None
    email: Email | None = None


class PersonIn(StrictModel):
    nhs_number: NhsNumber | None = Field(
        default=None, description="10 digits with a valid Modulus 11 check digit"
    )
    given_name: Name | None = None
    family_name: Name | None = None
    date_of_birth: date | None = None
    postcode: Postcode | None = None
    phone: Phone | None = None
    email: Email | None = None
    # Left out (null): not said. For a known person, triage then reads the person's record.
    send: bool | None = Field(
        default=None, description="special educational needs and disability; null: not said"
    )
    looked_after: bool | None = Field(
        default=None, description="looked-after or adopted child; null: not said"
    )
    # Equity monitoring (docs/domain/equity-data.md): optional, never required, staff-only.
    gender: GenderCode | None = Field(
        default=None,
        description="NHS Data Dictionary GENDER IDENTITY CODE, as the young person states it: "
        "1 male (including trans man), 2 female (including trans woman), 3 non-binary, "
        "4 other (not listed), Z not stated (asked, chose not to say), X not known; "
        "null: not recorded",
    )
    ethnic_category: EthnicCategoryCode | None = Field(
        default=None,
        description="NHS Data Dictionary ETHNIC CATEGORY (A to S), Z not stated (asked, chose "
        "not to say), 99 not known; null: not recorded",
    )

    @field_validator("date_of_birth")
    @classmethod
    def _plausible_date_of_birth(cls, value: date | None) -> date | None:
        if value is None:
            return None
        if value > datetime.now(LONDON).date():
            raise ValueError("date of birth is in the future")
        if value < EARLIEST_DATE_OF_BIRTH:
            raise ValueError("date of birth is before 1900")
        return value


class CamhsIn(StrictModel):
    status: CamhsStatus = CamhsStatus.UNKNOWN
    transition_planned: bool = False


class RiskIn(StrictModel):
    """Risk answers. A question left out (or null) is *not asked*, never *no*: "no" must be said."""

    immediate_danger: bool | None = Field(default=None, description="null: not asked")
    suicidal: Suicidal | None = Field(default=None, description="null: not asked")
    self_harm: SelfHarm | None = Field(default=None, description="null: not asked")
    harm_to_others: HarmToOthers | None = Field(default=None, description="null: not asked")
    safeguarding_concern: bool | None = Field(default=None, description="null: not asked")
    supported: bool | None = Field(
        default=None, description="capable support around them; null when unknown"
    )


class PreferencesIn(StrictModel):
    setting: SettingPreference | None = None


class GillickIn(StrictModel):
    """A Gillick competence judgement for an under-16 (recorded, never a gate)."""

    assessed_by: Name
    assessed_on: date
    outcome: Literal["competent", "not_competent"]


class ConsentIn(StrictModel):
    to_referral: bool | None = None
    to_share: bool | None = None
    share_with: list[Organisation] = Field(default_factory=list, max_length=AGENCIES_MAX_ITEMS)
    parent_carer_aware: bool | None = None
    gillick: GillickIn | None = None
    contact_by_text: bool | None = Field(
        default=None,
        description="agrees to be contacted by text message (no text is sent without it)",
    )
    contact_shared_with_parent: bool | None = Field(
        default=None,
        description="the phone or email given is shared with, or seen by, a parent or carer; "
        "with parent_carer_aware false, nothing is sent unless this is false",
    )


class _ReferralBody(StrictModel):
    referrer: ReferrerIn
    person: PersonIn = Field(default_factory=PersonIn)
    camhs: CamhsIn = Field(default_factory=CamhsIn)
    amhs_threshold: AmhsThreshold = AmhsThreshold.UNKNOWN
    request: RequestKind = RequestKind.HELP
    needs: list[Need] = Field(default_factory=list, max_length=NEEDS_MAX_ITEMS)
    reason: ReasonText | None = None
    risk: RiskIn = Field(default_factory=RiskIn)
    preferences: PreferencesIn = Field(default_factory=PreferencesIn)
    consent: ConsentIn = Field(default_factory=ConsentIn)


class PhoneReferralCreate(_ReferralBody):
    channel: Literal["phone"]


class DropInReferralCreate(_ReferralBody):
    channel: Literal["drop_in"]
    site_id: DirectoryId = Field(description="the queue id of the site walked into")


class SystemReferralCreate(_ReferralBody):
    """A referring system's referral: it must say who the young person is."""

    channel: Literal["system"]
    person: PersonIn = Field(
        description="must identify the young person: nhs_number, or given_name, family_name "
        "and date_of_birth"
    )

    @field_validator("person")
    @classmethod
    def _person_identified(cls, person: PersonIn) -> PersonIn:
        named = person.given_name and person.family_name and person.date_of_birth
        if person.nhs_number is None and not named:
            raise ValueError(
                "a referring system must identify the young person: an NHS number, or given "
                "name, family name and date of birth"
            )
        return person

    @model_validator(mode="after")
    def _professional_referrer(self) -> SystemReferralCreate:
        if self.referrer.type in (ReferrerType.SELF, ReferrerType.PARENT_CARER):
            raise ValueError("a system referral's referrer.type must be a professional")
        return self


ReferralCreate = Annotated[
    PhoneReferralCreate | DropInReferralCreate | SystemReferralCreate,
    Field(discriminator="channel"),
]


class SelfReferrerIn(StrictModel):
    type: Literal["self", "parent_carer"] = "self"
    name: Name | None = None
    phone: Phone | None = None
    email: Email | None = None


class SelfReferralCreate(StrictModel):
    """The public form's body: the young person or a parent/carer; channel ``web``."""

    referrer: SelfReferrerIn = Field(default_factory=SelfReferrerIn)
    person: PersonIn = Field(default_factory=PersonIn)
    camhs: CamhsIn = Field(default_factory=CamhsIn)
    amhs_threshold: AmhsThreshold = AmhsThreshold.UNKNOWN
    request: RequestKind = RequestKind.HELP
    needs: list[Need] = Field(default_factory=list, max_length=NEEDS_MAX_ITEMS)
    reason: ReasonText | None = None
    risk: RiskIn = Field(default_factory=RiskIn)
    preferences: PreferencesIn = Field(default_factory=PreferencesIn)
    consent: ConsentIn = Field(default_factory=ConsentIn)
    # Honeypot: hidden from people on the form; bots fill it in.
    website: Annotated[str, SingleLine] | None = Field(
        default=None, max_length=200, description="leave empty"
    )


AnyReferralCreate = (
    PhoneReferralCreate | DropInReferralCreate | SystemReferralCreate | SelfReferralCreate
)


# Responses ---------------------------------------------------------------------------------


class ReasonRead(BaseModel):
    rule: str
    detail: str


class EligibilityRead(BaseModel):
    outcome: Literal["eligible", "ineligible", "clinical_review"]
    reasons: list[ReasonRead]
    transition_support: bool = False


class UrgencyRead(BaseModel):
    code: Literal["A", "B", "C", "D", "E", "F", "G"]
    respond_by_at: datetime | None
    respond_within_hours: float | None = None
    flags: list[str]


class RouteRead(BaseModel):
    kind: Literal[
        "crisis",
        "duty",
        "community_base",
        "one_stop_shop",
        "looked_after",
        "access_hub",
        "signpost",
    ]
    queue_id: str | None
    queue_name: str | None
    rule: str | None = None


class FiredRuleRead(BaseModel):
    stage: str
    rule: str
    inputs: dict[str, Any]
    sources: dict[str, Literal["referral", "record"]] = Field(
        default_factory=dict,
        description="for inputs about the person: the referral's own, or the person's record",
    )
    outcome: str
    reason: str


class DecisionRead(BaseModel):
    ruleset_version: str
    eligibility: EligibilityRead
    urgency: UrgencyRead
    thrive_grouping: Literal[
        "getting_advice", "getting_help", "getting_more_help", "getting_risk_support"
    ]
    route: RouteRead
    risk_not_answered: list[str] = Field(
        default_factory=list, description="risk questions not asked (left out)"
    )
    rules_fired: list[FiredRuleRead] = Field(default_factory=list)


class JoinedRead(BaseModel):
    """Whether the referral joined a person and an open case already known (staff only)."""

    person: Literal["new", "existing"]
    case: Literal["new", "existing", "none"]


class PersonLinkRead(BaseModel):
    """An unverified (public) referral's proposed match with a known person, for staff."""

    status: Literal["proposed", "confirmed", "rejected"]
    person_id: uuid.UUID
    decided_by: str | None = None
    decided_at: datetime | None = None


class ReferralCodesRead(BaseModel):
    """The MHSDS codes the referral records (docs/domain/fhir-and-codes.md)."""

    source_of_referral: str = Field(description="SOURCE OF REFERRAL FOR MENTAL HEALTH, e.g. A1")
    clinical_response_priority_type: Literal["1", "2", "3", "4"] = Field(
        description="CLINICAL RESPONSE PRIORITY TYPE: 1 emergency, 2 urgent, 3 routine, "
        "4 very urgent"
    )


class CodedRead(BaseModel):
    code: str
    display: str


class EquityRead(BaseModel):
    """Equity monitoring answers given with the referral (staff only; null: not recorded)."""

    gender: CodedRead | None = Field(
        default=None, description="NHS Data Dictionary GENDER IDENTITY CODE and its words"
    )
    ethnic_category: CodedRead | None = Field(
        default=None, description="NHS Data Dictionary ETHNIC CATEGORY and its words"
    )


class ReferralRead(BaseModel):
    id: uuid.UUID
    reference: str
    person_id: uuid.UUID
    channel: Literal["phone", "drop_in", "system", "web"]
    received_at: datetime
    status: str = Field(
        description="signposted, or the status of the case that holds the referral; a "
        "referring system sees `received` for a case another organisation's referral opened"
    )
    decision: DecisionRead
    case_id: uuid.UUID | None
    joined: JoinedRead | None = Field(
        default=None, description="staff only: did it join a known person and an open case"
    )
    incomplete_fields: list[str] = Field(
        default_factory=list,
        description="answers missing or invalid when an urgent web referral was stored anyway",
    )
    person_link: PersonLinkRead | None = Field(
        default=None, description="staff only: a public referral's proposed match"
    )
    signposting: list[SignpostServiceRead] | None = Field(
        default=None,
        description="ineligible and advice-only (G) referrals: the services the person was "
        "pointed to at intake, local first and national last",
    )
    codes: ReferralCodesRead | None = Field(
        default=None,
        description="MHSDS source of referral and clinical response priority type, recorded "
        "at intake (null only for referrals received before codes were recorded)",
    )
    equity: EquityRead | None = Field(
        default=None,
        description="staff only: gender identity and ethnic category as given with this "
        "referral; never shown to a referring system, including the one that sent it",
    )


class ReferralListRead(BaseModel):
    items: list[ReferralRead]


class PersonLinkDecision(StrictModel):
    """Staff decide a public self-referral's proposed match with a known person."""

    decision: Literal["confirm", "reject"]


class CrisisContact(BaseModel):
    name: str
    how: str
    when: str | None = None


class CrisisBlock(BaseModel):
    message: str
    contacts: list[CrisisContact]


class SelfReferralRead(BaseModel):
    reference: str
    received_at: datetime
    next_steps: str
    contact_route: bool = Field(
        default=True, description="false: no phone or email was given, so we cannot contact them"
    )
    crisis: CrisisBlock | None = None
    signposting: list[SignpostServiceRead] | None = Field(
        default=None,
        description="when another service is better placed, or advice was asked for: where "
        "to turn, local first and national last",
    )


def utc_now() -> datetime:
    return datetime.now(UTC)
