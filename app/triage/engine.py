"""The triage engine: facts in, an explainable ``Decision`` out. Pure: no I/O, no clock.

Stages, each first-match-wins: eligibility (eligibility.py), urgency (urgency.py, triggers from
the ruleset), the proposed THRIVE grouping (ruleset mapping) and routing (routing.py, order from
the ruleset). Risk outranks eligibility: urgency reads the eligibility outcome only to choose F
(ineligible and below C), and routing sends A-C to crisis or duty whatever the eligibility.

Everything the ruleset implies is precomputed when it loads (``Ruleset.compiled``), so a decision
costs a postcode match, a date conversion and a handful of dict lookups and small objects.
"""

from __future__ import annotations

from app.triage.age import age_on, local_date
from app.triage.decision import Decision
from app.triage.eligibility import assess_eligibility
from app.triage.facts import ReferralFacts
from app.triage.postcodes import postcode_district
from app.triage.routing import choose_route
from app.triage.ruleset import Ruleset
from app.triage.subject import Subject
from app.triage.urgency import assess_urgency, propose_thrive


def evaluate(facts: ReferralFacts, ruleset: Ruleset) -> Decision:
    """Decide eligibility, urgency, THRIVE grouping and route for one referral.

    ``facts.received_at`` must be timezone-aware (ValueError otherwise). Every rule that fired is
    listed in ``Decision.fired`` with the inputs it read and a reason a person can read.
    """
    compiled = ruleset.compiled
    received_on = local_date(facts.received_at)
    date_of_birth = facts.date_of_birth
    # A date of birth after the received date cannot give an age; AGE_UNKNOWN reviews it.
    age_years = (
        age_on(date_of_birth, received_on)
        if date_of_birth is not None and date_of_birth <= received_on
        else None
    )
    district = postcode_district(facts.postcode) if facts.postcode else None
    locality = compiled.locality_by_district.get(district) if district is not None else None
    subject = Subject(
        facts=facts,
        received_on=received_on,
        age_years=age_years,
        postcode_district=district,
        locality=locality,
    )

    eligibility, eligibility_fired = assess_eligibility(subject, ruleset.eligibility)
    urgency, urgency_fired = assess_urgency(
        facts.received_at,
        facts.risk,
        facts.request,
        eligibility,
        compiled,
        contact_route=facts.contact_route,
    )
    thrive_grouping, thrive_fired = propose_thrive(urgency.code, compiled)
    route, route_fired = choose_route(subject, eligibility, urgency.code, compiled)

    return Decision(
        ruleset_version=ruleset.version,
        eligibility=eligibility,
        urgency=urgency,
        thrive_grouping=thrive_grouping,
        route=route,
        fired=(eligibility_fired, urgency_fired, thrive_fired, route_fired),
        age_years=age_years,
        postcode_district=district,
        locality_id=None if locality is None else locality.id,
        risk_not_answered=facts.risk.not_answered(),
        from_record=facts.from_record,
    )
