"""What the triage rules read: the facts of one referral, independent of how it arrived."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class Channel(StrEnum):
    PHONE = "phone"
    DROP_IN = "drop_in"
    SYSTEM = "system"
    WEB = "web"


class ReferrerType(StrEnum):
    SELF = "self"
    PARENT_CARER = "parent_carer"
    GP = "gp"
    CAMHS = "camhs"
    SCHOOL = "school"
    SOCIAL_CARE = "social_care"
    OTHER_PROFESSIONAL = "other_professional"


class CamhsStatus(StrEnum):
    NEVER = "never"
    OPEN = "open"
    DISCHARGED = "discharged"
    UNKNOWN = "unknown"


class AmhsThreshold(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    UNKNOWN = "unknown"


class RequestKind(StrEnum):
    HELP = "help"
    ADVICE = "advice"


class Suicidal(StrEnum):
    NONE = "none"
    THOUGHTS = "thoughts"
    PLAN = "plan"
    INTENT = "intent"


class SelfHarm(StrEnum):
    NONE = "none"
    PAST = "past"
    RECENT = "recent"
    CURRENT = "current"


class HarmToOthers(StrEnum):
    NONE = "none"
    THOUGHTS = "thoughts"
    THREATS = "threats"
    IMMINENT = "imminent"


class SettingPreference(StrEnum):
    ONE_STOP_SHOP = "one_stop_shop"
    COMMUNITY_BASE = "community_base"


@dataclass(frozen=True, slots=True)
class RiskAnswers:
    """The risk questions asked at intake (UK Mental Health Triage Scale inputs)."""

    immediate_danger: bool = False
    suicidal: Suicidal = Suicidal.NONE
    self_harm: SelfHarm = SelfHarm.NONE
    harm_to_others: HarmToOthers = HarmToOthers.NONE
    safeguarding_concern: bool = False
    # Capable support around the young person: True, False, or None when unknown.
    supported: bool | None = None


@dataclass(frozen=True, slots=True)
class ReferralFacts:
    """Everything the ruleset may read about one referral.

    ``received_at`` must be timezone-aware. ``postcode`` may be any case or spacing (or only an
    outward code); the engine normalises it to its district. ``site_id`` is the queue id of the
    site walked into, for drop-ins.
    """

    received_at: datetime
    channel: Channel
    referrer_type: ReferrerType
    date_of_birth: date | None = None
    postcode: str | None = None
    site_id: str | None = None
    camhs_status: CamhsStatus = CamhsStatus.UNKNOWN
    camhs_transition_planned: bool = False
    amhs_threshold: AmhsThreshold = AmhsThreshold.UNKNOWN
    send: bool = False
    looked_after: bool = False
    request: RequestKind = RequestKind.HELP
    risk: RiskAnswers = field(default_factory=RiskAnswers)
    setting_preference: SettingPreference | None = None
