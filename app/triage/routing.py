"""Routing: which team holds the case (docs/domain/routing.md).

Each step is a named function; the ruleset's ``routing.order`` lists the steps to run, and the
first that matches decides. Risk outranks eligibility: in the default order, A/B goes to crisis and
C goes to duty before an ineligible person could be signposted away.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.triage.decision import Eligibility, EligibilityOutcome, FiredRule, Route, UrgencyCode
from app.triage.facts import Channel, SettingPreference
from app.triage.ruleset import CompiledRuleset, RoutingStep
from app.triage.subject import Subject

STAGE = "routing"

StepResult = tuple[Route, dict[str, Any], str] | None
"""The route, the inputs the step read and the reason; None when the step does not match."""

StepFunction = Callable[[Subject, Eligibility, UrgencyCode, CompiledRuleset], StepResult]


def crisis_urgency(
    subject: Subject, eligibility: Eligibility, code: UrgencyCode, compiled: CompiledRuleset
) -> StepResult:
    """Urgency A or B: the county-wide crisis queue, whatever the eligibility."""
    if code not in compiled.crisis_codes:
        return None
    route = compiled.step_routes[RoutingStep.CRISIS_URGENCY]
    return (
        route,
        {"urgency_code": str(code)},
        f"Urgency {code}: {route.queue_name}, whatever the eligibility",
    )


def duty_high_risk_not_eligible(
    subject: Subject, eligibility: Eligibility, code: UrgencyCode, compiled: CompiledRuleset
) -> StepResult:
    """Urgency C and not (yet) eligible: the duty clinician, so high risk is never turned away."""
    if code not in compiled.duty_high_risk_codes:
        return None
    if eligibility.outcome == EligibilityOutcome.ELIGIBLE:
        return None
    route = compiled.step_routes[RoutingStep.DUTY_HIGH_RISK_NOT_ELIGIBLE]
    return (
        route,
        {"urgency_code": str(code), "eligibility": str(eligibility.outcome)},
        f"Urgency {code} with eligibility {eligibility.outcome}: {route.queue_name}; "
        "high risk is never simply turned away",
    )


def signpost_ineligible(
    subject: Subject, eligibility: Eligibility, code: UrgencyCode, compiled: CompiledRuleset
) -> StepResult:
    """Ineligible (and below high risk): no queue; closed with signposting and its reasons."""
    if eligibility.outcome != EligibilityOutcome.INELIGIBLE:
        return None
    deciding_rule = eligibility.reasons[0].rule
    return (
        compiled.signpost_route,
        {"eligibility": str(eligibility.outcome), "eligibility_rule": deciding_rule},
        f"Ineligible ({deciding_rule}): closed with signposting and its reasons",
    )


def duty_clinical_review(
    subject: Subject, eligibility: Eligibility, code: UrgencyCode, compiled: CompiledRuleset
) -> StepResult:
    """Eligibility needs clinical review: the duty clinician decides."""
    if eligibility.outcome != EligibilityOutcome.CLINICAL_REVIEW:
        return None
    deciding_rule = eligibility.reasons[0].rule
    route = compiled.step_routes[RoutingStep.DUTY_CLINICAL_REVIEW]
    return (
        route,
        {"eligibility": str(eligibility.outcome), "eligibility_rule": deciding_rule},
        f"Eligibility needs clinical review ({deciding_rule}): {route.queue_name}",
    )


def drop_in_site(
    subject: Subject, eligibility: Eligibility, code: UrgencyCode, compiled: CompiledRuleset
) -> StepResult:
    """A drop-in at a known site stays with that site (no referring on); else fall through."""
    facts = subject.facts
    if facts.channel != Channel.DROP_IN or facts.site_id is None:
        return None
    route = compiled.drop_in_routes.get(facts.site_id)
    if route is None:
        return None
    return (
        route,
        {"channel": str(facts.channel), "site_id": facts.site_id},
        f"Walked in to {route.queue_name}: that site keeps the case (no referring on)",
    )


def looked_after(
    subject: Subject, eligibility: Eligibility, code: UrgencyCode, compiled: CompiledRuleset
) -> StepResult:
    """A looked-after or adopted child: the integrated looked-after children team."""
    if not subject.facts.looked_after:
        return None
    route = compiled.step_routes[RoutingStep.LOOKED_AFTER]
    return (
        route,
        {"looked_after": True},
        f"Looked-after or adopted child: {route.queue_name}",
    )


def advice_access_hub(
    subject: Subject, eligibility: Eligibility, code: UrgencyCode, compiled: CompiledRuleset
) -> StepResult:
    """Advice only (G): the access hub gives advice and signposting."""
    if code not in compiled.advice_codes:
        return None
    route = compiled.step_routes[RoutingStep.ADVICE_ACCESS_HUB]
    return (
        route,
        {"urgency_code": str(code)},
        f"Advice only (urgency {code}): {route.queue_name}",
    )


def one_stop_shop(
    subject: Subject, eligibility: Eligibility, code: UrgencyCode, compiled: CompiledRuleset
) -> StepResult:
    """Aged 14-25 preferring a One Stop Shop, or in CAMHS transition: their locality's OSS."""
    age = subject.age_years
    locality = subject.locality
    if age is None or locality is None:
        return None
    if not compiled.one_stop_shop_min_age_years <= age <= compiled.one_stop_shop_max_age_years:
        return None
    preference = subject.facts.setting_preference
    prefers = preference == SettingPreference.ONE_STOP_SHOP
    if not (prefers or eligibility.transition_support):
        return None
    route = compiled.one_stop_shop_routes[locality.id]
    why = "prefers a One Stop Shop" if prefers else "CAMHS transition support"
    return (
        route,
        {
            "age_years": age,
            "setting_preference": None if preference is None else str(preference),
            "transition_support": eligibility.transition_support,
            "locality_id": locality.id,
        },
        f"Aged {age} ({compiled.one_stop_shop_min_age_years}-"
        f"{compiled.one_stop_shop_max_age_years}), {why}, {locality.name} locality: "
        f"{route.queue_name}",
    )


def community_base(
    subject: Subject, eligibility: Eligibility, code: UrgencyCode, compiled: CompiledRuleset
) -> StepResult:
    """Otherwise, the Community Base of their locality."""
    locality = subject.locality
    if locality is None:
        return None
    route = compiled.community_base_routes[locality.id]
    return (
        route,
        {"postcode_district": subject.postcode_district, "locality_id": locality.id},
        f"Postcode district {subject.postcode_district} is in {locality.name} locality: "
        f"{route.queue_name}",
    )


def no_locality_access_hub(
    subject: Subject, eligibility: Eligibility, code: UrgencyCode, compiled: CompiledRuleset
) -> StepResult:
    """No usable postcode, or a district outside the directory: the access hub."""
    if subject.locality is not None:
        return None
    route = compiled.step_routes[RoutingStep.NO_LOCALITY_ACCESS_HUB]
    district = subject.postcode_district
    where = (
        "No usable postcode"
        if district is None
        else f"Postcode district {district} is in no locality"
    )
    return (
        route,
        {"postcode_district": district, "locality_id": None},
        f"{where}: {route.queue_name}",
    )


ROUTING_STEPS: dict[RoutingStep, StepFunction] = {
    RoutingStep.CRISIS_URGENCY: crisis_urgency,
    RoutingStep.DUTY_HIGH_RISK_NOT_ELIGIBLE: duty_high_risk_not_eligible,
    RoutingStep.SIGNPOST_INELIGIBLE: signpost_ineligible,
    RoutingStep.DUTY_CLINICAL_REVIEW: duty_clinical_review,
    RoutingStep.DROP_IN_SITE: drop_in_site,
    RoutingStep.LOOKED_AFTER: looked_after,
    RoutingStep.ADVICE_ACCESS_HUB: advice_access_hub,
    RoutingStep.ONE_STOP_SHOP: one_stop_shop,
    RoutingStep.COMMUNITY_BASE: community_base,
    RoutingStep.NO_LOCALITY_ACCESS_HUB: no_locality_access_hub,
}


def choose_route(
    subject: Subject, eligibility: Eligibility, code: UrgencyCode, compiled: CompiledRuleset
) -> tuple[Route, FiredRule]:
    """Run the ruleset's routing steps in order; the first that matches decides."""
    for step in compiled.routing_order:
        result = ROUTING_STEPS[step](subject, eligibility, code, compiled)
        if result is not None:
            route, inputs, reason = result
            fired = FiredRule(
                stage=STAGE, rule=str(step), inputs=inputs, outcome=str(route.kind), reason=reason
            )
            return route, fired
    # Unreachable: validation requires COMMUNITY_BASE and NO_LOCALITY_ACCESS_HUB, which between
    # them match every referral.
    raise AssertionError("no routing step matched")
