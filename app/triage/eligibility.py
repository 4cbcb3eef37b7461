"""Eligibility: is this young person in scope of the service? (docs/domain/eligibility.md)

Each rule below is a named function; ``ELIGIBILITY_RULES`` fixes their order, and the first that
matches decides. The age bounds they use come from the ruleset's ``eligibility`` section. Ages are
whole years on the Europe/London date the referral was received.

Interpretations agreed with the lead, beyond the rule table in docs/domain/eligibility.md:

- CAMHS_TRANSITION needs CAMHS open *with transition planned*, or CAMHS discharged; and then
  either age 16-17 with the AMHS threshold not met (unknown counts as not met at that age), or
  age 16-17 with SEND, or age 18 up to the SEND limit with SEND and the AMHS threshold not met.
- CAMHS_LEAVER_REVIEW covers CAMHS open (planned or not) or discharged, age 18-25, no SEND, AMHS
  threshold not met.
- A postcode that cannot be read is not OUT_OF_AREA: only a readable district that no locality
  serves is.
- A date of birth after the received date is treated as no date of birth (AGE_UNKNOWN), so the
  case is reviewed rather than the engine failing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.triage.decision import Eligibility, EligibilityOutcome, FiredRule, Reason
from app.triage.facts import AmhsThreshold, CamhsStatus
from app.triage.ruleset import EligibilityConfig
from app.triage.subject import Subject

STAGE = "eligibility"


class EligibilityRule(StrEnum):
    """Eligibility rule ids, in evaluation order."""

    AGE_UNKNOWN = "AGE_UNKNOWN"
    AGE_OVER_25 = "AGE_OVER_25"
    OUT_OF_AREA = "OUT_OF_AREA"
    AMHS_THRESHOLD_MET = "AMHS_THRESHOLD_MET"
    CAMHS_TRANSITION = "CAMHS_TRANSITION"
    CAMHS_LEAVER_REVIEW = "CAMHS_LEAVER_REVIEW"
    AMHS_THRESHOLD_UNKNOWN = "AMHS_THRESHOLD_UNKNOWN"
    AGE_IN_SCOPE = "AGE_IN_SCOPE"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a matching eligibility rule decided, what it read, and why."""

    outcome: EligibilityOutcome
    inputs: dict[str, Any]
    reason: str
    transition_support: bool = False


RuleFunction = Callable[[Subject, EligibilityConfig], Verdict | None]

_CAMHS_PHRASES = {
    CamhsStatus.NEVER: "never under CAMHS",
    CamhsStatus.OPEN: "CAMHS open",
    CamhsStatus.DISCHARGED: "CAMHS discharged",
    CamhsStatus.UNKNOWN: "CAMHS history unknown",
}
_AMHS_PHRASES = {
    AmhsThreshold.MET: "AMHS threshold met",
    AmhsThreshold.NOT_MET: "AMHS threshold not met",
    AmhsThreshold.UNKNOWN: "AMHS threshold unknown",
}


def _aged(subject: Subject) -> str:
    return f"Aged {subject.age_years} on {subject.received_on.isoformat()}"


def _camhs_phrase(subject: Subject) -> str:
    facts = subject.facts
    if facts.camhs_status == CamhsStatus.OPEN:
        if facts.camhs_transition_planned:
            return "CAMHS open with transition planned"
        return "CAMHS open, no transition planned"
    return _CAMHS_PHRASES.get(facts.camhs_status, str(facts.camhs_status))


def _camhs_inputs(subject: Subject) -> dict[str, Any]:
    facts = subject.facts
    return {
        "age_years": subject.age_years,
        "received_on": subject.received_on.isoformat(),
        "camhs_status": str(facts.camhs_status),
        "camhs_transition_planned": facts.camhs_transition_planned,
        "amhs_threshold": str(facts.amhs_threshold),
        "send": facts.send,
    }


def age_unknown(subject: Subject, config: EligibilityConfig) -> Verdict | None:
    """No (usable) date of birth: a clinician reviews eligibility; advice can still be given."""
    if subject.age_years is not None:
        return None
    given = subject.facts.date_of_birth is not None
    inputs = {"date_of_birth_given": given, "received_on": subject.received_on.isoformat()}
    if given:
        reason = (
            f"Date of birth is after the received date ({subject.received_on.isoformat()}): "
            "age unknown, so eligibility needs clinical review"
        )
    else:
        reason = (
            "No date of birth: age unknown, so eligibility needs clinical review "
            "(advice can still be given)"
        )
    return Verdict(EligibilityOutcome.CLINICAL_REVIEW, inputs, reason)


def age_over_25(subject: Subject, config: EligibilityConfig) -> Verdict | None:
    """Past the upper age (26 or more by default): ineligible, signpost to adult services."""
    age = subject.age_years
    if age is None or age <= config.max_age_years:
        return None
    return Verdict(
        EligibilityOutcome.INELIGIBLE,
        {
            "age_years": age,
            "received_on": subject.received_on.isoformat(),
            "max_age_years": config.max_age_years,
        },
        f"{_aged(subject)}, over the upper age of {config.max_age_years}: ineligible, "
        "signpost to adult services",
    )


def out_of_area(subject: Subject, config: EligibilityConfig) -> Verdict | None:
    """A readable postcode district that no locality serves: signpost to the home area."""
    district = subject.postcode_district
    if district is None or subject.locality is not None:
        return None
    return Verdict(
        EligibilityOutcome.INELIGIBLE,
        {"postcode_district": district, "locality_id": None},
        f"Postcode district {district} is outside every served locality: ineligible, "
        "signpost to the home area's service",
    )


def amhs_threshold_met(subject: Subject, config: EligibilityConfig) -> Verdict | None:
    """An adult (18-25) who meets the adult services threshold: warm handover to them."""
    age = subject.age_years
    if age is None or not config.adult_age_years <= age <= config.max_age_years:
        return None
    if subject.facts.amhs_threshold != AmhsThreshold.MET:
        return None
    return Verdict(
        EligibilityOutcome.INELIGIBLE,
        {
            "age_years": age,
            "received_on": subject.received_on.isoformat(),
            "adult_age_years": config.adult_age_years,
            "amhs_threshold": str(subject.facts.amhs_threshold),
        },
        f"{_aged(subject)}, adult mental health services threshold met: ineligible, "
        "warm handover to adult services",
    )


def camhs_transition(subject: Subject, config: EligibilityConfig) -> Verdict | None:
    """Leaving CAMHS without meeting the adult threshold: eligible, with transition support."""
    age = subject.age_years
    facts = subject.facts
    if age is None:
        return None
    leaving_camhs = (
        facts.camhs_status == CamhsStatus.OPEN and facts.camhs_transition_planned
    ) or facts.camhs_status == CamhsStatus.DISCHARGED
    if not leaving_camhs:
        return None
    under_adult = config.transition_min_age_years <= age < config.adult_age_years
    adult_with_send = config.adult_age_years <= age <= config.send_transition_max_age_years
    in_band = (under_adult and (facts.amhs_threshold != AmhsThreshold.MET or facts.send)) or (
        adult_with_send and facts.send and facts.amhs_threshold == AmhsThreshold.NOT_MET
    )
    if not in_band:
        return None
    send = ", SEND" if facts.send else ""
    return Verdict(
        EligibilityOutcome.ELIGIBLE,
        _camhs_inputs(subject),
        f"{_aged(subject)}, {_camhs_phrase(subject)}{send}, "
        f"{_AMHS_PHRASES.get(facts.amhs_threshold, '')}: eligible for transition support",
        transition_support=True,
    )


def camhs_leaver_review(subject: Subject, config: EligibilityConfig) -> Verdict | None:
    """A young adult without SEND leaving CAMHS, below the adult threshold: case by case."""
    age = subject.age_years
    facts = subject.facts
    if age is None or not config.adult_age_years <= age <= config.max_age_years:
        return None
    if facts.camhs_status not in (CamhsStatus.OPEN, CamhsStatus.DISCHARGED):
        return None
    if facts.send or facts.amhs_threshold != AmhsThreshold.NOT_MET:
        return None
    return Verdict(
        EligibilityOutcome.CLINICAL_REVIEW,
        _camhs_inputs(subject),
        f"{_aged(subject)}, {_camhs_phrase(subject)}, no SEND, AMHS threshold not met: "
        "clinical review, case by case",
    )


def amhs_threshold_unknown(subject: Subject, config: EligibilityConfig) -> Verdict | None:
    """A young adult whose adult-services threshold is unknown: clinical review."""
    age = subject.age_years
    if age is None or not config.adult_age_years <= age <= config.max_age_years:
        return None
    if subject.facts.amhs_threshold != AmhsThreshold.UNKNOWN:
        return None
    return Verdict(
        EligibilityOutcome.CLINICAL_REVIEW,
        {
            "age_years": age,
            "received_on": subject.received_on.isoformat(),
            "adult_age_years": config.adult_age_years,
            "amhs_threshold": str(subject.facts.amhs_threshold),
        },
        f"{_aged(subject)}, AMHS threshold unknown: clinical review",
    )


def age_in_scope(subject: Subject, config: EligibilityConfig) -> Verdict | None:
    """Otherwise, anyone aged 0-25: eligible."""
    age = subject.age_years
    if age is None or age > config.max_age_years:
        return None
    return Verdict(
        EligibilityOutcome.ELIGIBLE,
        {
            "age_years": age,
            "received_on": subject.received_on.isoformat(),
            "max_age_years": config.max_age_years,
        },
        f"{_aged(subject)} (0-{config.max_age_years}): eligible",
    )


ELIGIBILITY_RULES: tuple[tuple[str, RuleFunction], ...] = (
    (EligibilityRule.AGE_UNKNOWN.value, age_unknown),
    (EligibilityRule.AGE_OVER_25.value, age_over_25),
    (EligibilityRule.OUT_OF_AREA.value, out_of_area),
    (EligibilityRule.AMHS_THRESHOLD_MET.value, amhs_threshold_met),
    (EligibilityRule.CAMHS_TRANSITION.value, camhs_transition),
    (EligibilityRule.CAMHS_LEAVER_REVIEW.value, camhs_leaver_review),
    (EligibilityRule.AMHS_THRESHOLD_UNKNOWN.value, amhs_threshold_unknown),
    (EligibilityRule.AGE_IN_SCOPE.value, age_in_scope),
)
"""First match wins. Rule ids as plain text, ready for the decision."""


def assess_eligibility(
    subject: Subject, config: EligibilityConfig
) -> tuple[Eligibility, FiredRule]:
    """Run the eligibility rules in order; the first that matches decides."""
    for rule, decide in ELIGIBILITY_RULES:
        verdict = decide(subject, config)
        if verdict is not None:
            eligibility = Eligibility(
                outcome=verdict.outcome,
                reasons=(Reason(rule=rule, detail=verdict.reason),),
                transition_support=verdict.transition_support,
            )
            fired = FiredRule(
                stage=STAGE,
                rule=rule,
                inputs=verdict.inputs,
                outcome=str(verdict.outcome),
                reason=verdict.reason,
            )
            return eligibility, fired
    # Unreachable: AGE_UNKNOWN matches any unknown age; AGE_IN_SCOPE/AGE_OVER_25 any known one.
    raise AssertionError("no eligibility rule matched")
