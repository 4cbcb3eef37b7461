"""Urgency on the UK Mental Health Triage Scale, and the proposed THRIVE grouping.

The triggers, evaluation order and response windows are configuration (``urgency`` in the
ruleset), compiled when the ruleset loads; this module runs them and writes the flags and reasons.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from app.triage.conditions import describe_inputs
from app.triage.decision import Eligibility, FiredRule, ThriveGrouping, Urgency, UrgencyCode
from app.triage.facts import (
    RISK_QUESTIONS,
    HarmToOthers,
    RequestKind,
    RiskAnswers,
    SelfHarm,
    Suicidal,
)
from app.triage.ruleset import CompiledRuleset, UrgencyStep

URGENCY_STAGE = "urgency"
THRIVE_STAGE = "thrive"
THRIVE_RULE = "THRIVE_BY_URGENCY"

# One flag per risk answer that is present, so a worklist can show why a case is urgent.
_SUICIDAL_FLAGS: dict[Suicidal | None, str] = {
    Suicidal.THOUGHTS: "suicidal_thoughts",
    Suicidal.PLAN: "suicidal_plan",
    Suicidal.INTENT: "suicidal_intent",
}
_SELF_HARM_FLAGS: dict[SelfHarm | None, str] = {
    SelfHarm.PAST: "self_harm_past",
    SelfHarm.RECENT: "self_harm_recent",
    SelfHarm.CURRENT: "self_harm_current",
}
_HARM_TO_OTHERS_FLAGS: dict[HarmToOthers | None, str] = {
    HarmToOthers.THOUGHTS: "harm_to_others_thoughts",
    HarmToOthers.THREATS: "harm_to_others_threats",
    HarmToOthers.IMMINENT: "harm_to_others_imminent",
}


# Flags the intake safety rules raise (docs/domain/trust-and-safety.md).
RISK_NOT_ASSESSED = "risk_not_assessed"
NO_CONTACT_ROUTE = "no_contact_route"


def risk_flags(
    risk: RiskAnswers, transition_support: bool, *, contact_route: bool = True
) -> tuple[str, ...]:
    """Flags for the case: one per risk answer present, ``safeguarding`` whatever the code,
    ``risk_not_assessed`` when no risk question was answered, ``no_contact_route`` when nobody
    can be contacted."""
    flags: list[str] = []
    if len(risk.not_answered()) == len(RISK_QUESTIONS):
        flags.append(RISK_NOT_ASSESSED)
    if risk.immediate_danger:
        flags.append("immediate_danger")
    # .get, not indexing: "none" and not asked (None) have no flag.
    suicidal = _SUICIDAL_FLAGS.get(risk.suicidal)
    if suicidal is not None:
        flags.append(suicidal)
    self_harm = _SELF_HARM_FLAGS.get(risk.self_harm)
    if self_harm is not None:
        flags.append(self_harm)
    harm_to_others = _HARM_TO_OTHERS_FLAGS.get(risk.harm_to_others)
    if harm_to_others is not None:
        flags.append(harm_to_others)
    if risk.supported is False:
        flags.append("unsupported")
    # The safeguarding lead must see every safeguarding concern, whatever the urgency code.
    if risk.safeguarding_concern:
        flags.append("safeguarding")
    if transition_support:
        flags.append("transition_support")
    if not contact_route:
        flags.append(NO_CONTACT_ROUTE)
    return tuple(flags)


def respond_by(received_at: datetime, respond_within: timedelta | None) -> datetime | None:
    """``received_at`` plus the window in elapsed time, in ``received_at``'s time zone.

    Elapsed, not wall-clock: 24 hours after 01:00 on the day the clocks go forward is 02:00 the
    next day in Europe/London, not 01:00 (plain ``datetime + timedelta`` on a zoneinfo datetime
    would add wall-clock time and give a window an hour short or long across a change).
    """
    if respond_within is None:
        return None
    zone = received_at.tzinfo
    if isinstance(zone, timezone):  # a fixed offset: wall-clock and elapsed time agree
        return received_at + respond_within
    return (received_at.astimezone(UTC) + respond_within).astimezone(zone)


def assess_urgency(
    received_at: datetime,
    risk: RiskAnswers,
    request: RequestKind,
    eligibility: Eligibility,
    compiled: CompiledRuleset,
    *,
    contact_route: bool = True,
) -> tuple[Urgency, FiredRule]:
    """The first urgency code (in the ruleset's evaluation order) whose triggers match."""
    outcome = eligibility.outcome
    for step in compiled.urgency_steps:
        for condition in step.conditions:
            if condition.test(risk, outcome, request):
                inputs = condition.read_inputs(risk, outcome, request)
                urgency = Urgency(
                    code=step.code,
                    respond_by_at=respond_by(received_at, step.respond_within),
                    respond_within_hours=step.respond_within_hours,
                    flags=risk_flags(
                        risk, eligibility.transition_support, contact_route=contact_route
                    ),
                )
                fired = FiredRule(
                    stage=URGENCY_STAGE,
                    rule=step.rule_id,
                    inputs=inputs,
                    outcome=step.code_value,
                    reason=_reason(step, inputs, condition.is_fallback),
                )
                return urgency, fired
    # Unreachable: validation requires the last code in the order to be `fallback: true`.
    raise AssertionError("no urgency code matched")


def _reason(step: UrgencyStep, inputs: dict[str, Any], is_fallback: bool) -> str:
    if is_fallback:
        cause = f"None of the triggers for {step.codes_before} matched"
    else:
        described = describe_inputs(inputs)
        cause = described[:1].upper() + described[1:]
    return f"{cause}: code {step.code_value} ({step.meaning}); {step.window_text}"


def propose_thrive(
    code: UrgencyCode, compiled: CompiledRuleset
) -> tuple[ThriveGrouping, FiredRule]:
    """The THRIVE grouping the ruleset maps this urgency code to (a proposal, not a decision)."""
    grouping = compiled.thrive_by_code[code]
    fired = FiredRule(
        stage=THRIVE_STAGE,
        rule=THRIVE_RULE,
        inputs={"urgency_code": str(code)},
        outcome=str(grouping),
        reason=(
            f"Urgency {code} proposes the THRIVE grouping {grouping}; the key worker "
            "confirms or changes it with the young person"
        ),
    )
    return grouping, fired
