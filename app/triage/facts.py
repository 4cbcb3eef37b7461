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


# The risk questions whose answers the urgency triggers read. ``supported`` is context for them
# (capable support around the young person), not a question about risk, so it is not one.
RISK_QUESTIONS = (
    "immediate_danger",
    "suicidal",
    "self_harm",
    "harm_to_others",
    "safeguarding_concern",
)


@dataclass(frozen=True, slots=True)
class RiskAnswers:
    """The risk questions asked at intake (UK Mental Health Triage Scale inputs).

    ``None`` is *not asked*, never *no* (docs/domain/trust-and-safety.md, "Unknown is not none"):
    the decision lists the questions left unanswered, and when none was answered the urgency
    carries the ``risk_not_assessed`` flag. The triggers read a question not asked as its
    lowest answer, so leaving a question out can never make a referral less urgent than
    answering it "no".
    """

    immediate_danger: bool | None = None
    suicidal: Suicidal | None = None
    self_harm: SelfHarm | None = None
    harm_to_others: HarmToOthers | None = None
    safeguarding_concern: bool | None = None
    # Capable support around the young person: True, False, or None when unknown.
    supported: bool | None = None

    def not_answered(self) -> tuple[str, ...]:
        """The risk questions left unanswered, in the order they are asked."""
        return tuple(q for q in RISK_QUESTIONS if getattr(self, q) is None)


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
    # False when nobody can be contacted about this referral (no phone, email or address for
    # the young person or the referrer, and no referring organisation): ``no_contact_route``.
    contact_route: bool = True
    # The facts (of RECORD_FACTS) taken from the person's record because the referral left
    # them out; every other fact is the referral's own. Shown per fired rule as its source.
    from_record: tuple[str, ...] = ()


# Facts a staff or system referral may leave out and the person's record then supplies.
RECORD_FACTS = ("date_of_birth", "postcode", "send", "looked_after")
