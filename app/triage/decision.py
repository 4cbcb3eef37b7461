"""What the triage engine answers: an explainable, versioned decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class EligibilityOutcome(StrEnum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    CLINICAL_REVIEW = "clinical_review"


class UrgencyCode(StrEnum):
    A = "A"
    B = "B"
    C = "C"
    D = "D"
    E = "E"
    F = "F"
    G = "G"


# Most urgent first. Used to order worklists and to compare urgencies ("never lower").
# F (referred elsewhere) and G (advice only) need less of this service than E.
URGENCY_RANK: dict[UrgencyCode, int] = {
    UrgencyCode.A: 0,
    UrgencyCode.B: 1,
    UrgencyCode.C: 2,
    UrgencyCode.D: 3,
    UrgencyCode.E: 4,
    UrgencyCode.G: 5,
    UrgencyCode.F: 6,
}


class ThriveGrouping(StrEnum):
    GETTING_ADVICE = "getting_advice"
    GETTING_HELP = "getting_help"
    GETTING_MORE_HELP = "getting_more_help"
    GETTING_RISK_SUPPORT = "getting_risk_support"


class RouteKind(StrEnum):
    CRISIS = "crisis"
    DUTY = "duty"
    COMMUNITY_BASE = "community_base"
    ONE_STOP_SHOP = "one_stop_shop"
    LOOKED_AFTER = "looked_after"
    ACCESS_HUB = "access_hub"
    SIGNPOST = "signpost"


# Fired-rule inputs derived from a fact about the person, by the fact they come from: a rule's
# ``sources`` say whether the referral or the person's record supplied it.
INPUT_FACTS: dict[str, str] = {
    "age_years": "date_of_birth",
    "date_of_birth_given": "date_of_birth",
    "postcode_district": "postcode",
    "locality_id": "postcode",
    "send": "send",
    "looked_after": "looked_after",
}


@dataclass(frozen=True, slots=True)
class Reason:
    """A rule id and a sentence a clinician can read."""

    rule: str
    detail: str


@dataclass(frozen=True, slots=True)
class FiredRule:
    """One rule that fired: which stage, what it read, what it decided and why."""

    stage: str  # "eligibility" | "urgency" | "thrive" | "routing"
    rule: str
    inputs: dict[str, Any]
    outcome: str
    reason: str


@dataclass(frozen=True, slots=True)
class Eligibility:
    outcome: EligibilityOutcome
    reasons: tuple[Reason, ...]
    transition_support: bool = False


@dataclass(frozen=True, slots=True)
class Urgency:
    code: UrgencyCode
    respond_by_at: datetime | None
    respond_within_hours: float | None
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Route:
    kind: RouteKind
    queue_id: str | None
    queue_name: str | None
    rule: str


@dataclass(frozen=True, slots=True)
class Decision:
    ruleset_version: str
    eligibility: Eligibility
    urgency: Urgency
    thrive_grouping: ThriveGrouping
    route: Route
    fired: tuple[FiredRule, ...]
    age_years: int | None
    postcode_district: str | None
    locality_id: str | None
    # The risk questions not answered (not asked), and the facts the person's record supplied.
    risk_not_answered: tuple[str, ...] = ()
    from_record: tuple[str, ...] = ()

    def input_sources(self, inputs: dict[str, Any]) -> dict[str, str]:
        """Where each input a rule read about the person came from: "referral" or "record"."""
        sources: dict[str, str] = {}
        for key in inputs:
            fact = INPUT_FACTS.get(key)
            if fact is not None:
                sources[key] = "record" if fact in self.from_record else "referral"
        return sources

    def to_dict(self) -> dict[str, Any]:
        """The decision as JSON-ready data, in the public API's shape (plus ``rules_fired``)."""
        return {
            "ruleset_version": self.ruleset_version,
            "eligibility": {
                "outcome": self.eligibility.outcome.value,
                "reasons": [{"rule": r.rule, "detail": r.detail} for r in self.eligibility.reasons],
                "transition_support": self.eligibility.transition_support,
            },
            "urgency": {
                "code": self.urgency.code.value,
                "respond_by_at": (
                    self.urgency.respond_by_at.isoformat() if self.urgency.respond_by_at else None
                ),
                "respond_within_hours": self.urgency.respond_within_hours,
                "flags": list(self.urgency.flags),
            },
            "thrive_grouping": self.thrive_grouping.value,
            "route": {
                "kind": self.route.kind.value,
                "queue_id": self.route.queue_id,
                "queue_name": self.route.queue_name,
                "rule": self.route.rule,
            },
            "age_years": self.age_years,
            "postcode_district": self.postcode_district,
            "locality_id": self.locality_id,
            "risk_not_answered": list(self.risk_not_answered),
            "rules_fired": [
                {
                    "stage": f.stage,
                    "rule": f.rule,
                    "inputs": f.inputs,
                    "sources": self.input_sources(f.inputs),
                    "outcome": f.outcome,
                    "reason": f.reason,
                }
                for f in self.fired
            ],
        }
