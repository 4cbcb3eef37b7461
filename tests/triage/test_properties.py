"""Properties every decision must have, over generated referrals (hypothesis).

Derandomised with a fixed example count so CI runs the same cases every time.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from app.triage import (
    URGENCY_RANK,
    AmhsThreshold,
    CamhsStatus,
    Channel,
    Decision,
    EligibilityOutcome,
    HarmToOthers,
    ReferralFacts,
    ReferrerType,
    RequestKind,
    RiskAnswers,
    RouteKind,
    SelfHarm,
    SettingPreference,
    Suicidal,
    UrgencyCode,
    evaluate,
    load_ruleset,
    local_date,
)

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None)

# Module-level rather than the session fixture: hypothesis strategies are built at import time.
RULESET = load_ruleset()

POSTCODES = [
    "NR1 3AB", "nr13ab", " Nr1  3AB ", "NR10 1AA", "NR13 5AB", "NR21 7AA", "NR30 1AA",
    "NR32 1AA", "NR35 2AA", "PE14 9AA", "PE30 1AA", "IP22 4AA", "IP25 6AA", "NR18 0AA",
    "nr28", "PE38",  # bare outward codes
    "CB1 1AA", "SW1A 1AA", "IP1 1AA", "PE1 1AA",  # out of area
    "NR1 3A", "NOT A POSTCODE", "12345", "",  # unusable
]  # fmt: skip
SITE_IDS = [queue.id for queue in RULESET.queues] + ["no-such-site"]

LONDON = ZoneInfo("Europe/London")
received_ats = st.datetimes(
    min_value=datetime(2024, 1, 1),
    max_value=datetime(2030, 12, 31),
    timezones=st.sampled_from([UTC, LONDON, timezone(timedelta(hours=-5))]),
)


def mostly(usual: Any, *others: Any, weight: int = 3) -> st.SearchStrategy[Any]:
    """``usual`` ``weight`` times as often as each of ``others``: most referrals are low risk."""
    return st.sampled_from([usual] * weight + list(others))


risk_answers = st.builds(
    RiskAnswers,
    immediate_danger=mostly(False, True, None, weight=15),
    suicidal=mostly(Suicidal.NONE, *list(Suicidal)[1:], None, weight=10),
    self_harm=mostly(SelfHarm.NONE, *list(SelfHarm)[1:], None, weight=10),
    harm_to_others=mostly(HarmToOthers.NONE, *list(HarmToOthers)[1:], None, weight=10),
    safeguarding_concern=mostly(False, True, None),
    supported=st.sampled_from([True, None, False]),
)


@st.composite
def referral_facts(draw: st.DrawFn) -> ReferralFacts:
    """Valid facts: any channel, ages -1 to 30 (or unknown), directory and other postcodes."""
    received_at = draw(received_ats)
    received_on = local_date(received_at)
    # About one in ten without a date of birth; a few born after the received date.
    days_old = draw(st.integers(min_value=-3, max_value=31 * 366))
    date_of_birth = draw(mostly(received_on - timedelta(days=days_old), None, weight=9))
    return ReferralFacts(
        received_at=received_at,
        channel=draw(st.sampled_from(Channel)),
        referrer_type=draw(st.sampled_from(ReferrerType)),
        date_of_birth=date_of_birth,
        # Mostly from the list (directory, out of area, unusable, absent); sometimes any text.
        postcode=draw(
            st.one_of(st.sampled_from([*POSTCODES, None]), st.sampled_from(POSTCODES), st.text())
        ),
        site_id=draw(st.one_of(st.none(), st.sampled_from(SITE_IDS))),
        camhs_status=draw(st.sampled_from(CamhsStatus)),
        camhs_transition_planned=draw(st.booleans()),
        amhs_threshold=draw(st.sampled_from(AmhsThreshold)),
        send=draw(st.booleans()),
        looked_after=draw(mostly(False, True, weight=9)),
        request=draw(mostly(RequestKind.HELP, RequestKind.ADVICE)),
        risk=draw(risk_answers),
        setting_preference=draw(st.one_of(st.none(), st.sampled_from(SettingPreference))),
    )


# Each risk answer's values from least to most risk. Less support means more risk. A question
# not asked (None) reads as its lowest answer, so it stands beside it at the bottom.
RISK_ORDER: dict[str, list[Any]] = {
    "immediate_danger": [None, False, True],
    "suicidal": [None, *Suicidal],
    "self_harm": [None, *SelfHarm],
    "harm_to_others": [None, *HarmToOthers],
    "safeguarding_concern": [None, False, True],
    "supported": [True, None, False],
}


def riskier(a: RiskAnswers, b: RiskAnswers) -> RiskAnswers:
    """Each answer at the higher risk of ``a`` and ``b``: ``a`` with some risks added or raised."""
    return RiskAnswers(
        **{
            name: max(getattr(a, name), getattr(b, name), key=order.index)
            for name, order in RISK_ORDER.items()
        }
    )


def rank(decision: Decision) -> int:
    return URGENCY_RANK[decision.urgency.code]


@PROPERTY_SETTINGS
@given(referral_facts())
def test_evaluate_never_raises_and_explains_itself(facts: ReferralFacts) -> None:
    decision = evaluate(facts, RULESET)

    assert len(decision.eligibility.reasons) >= 1
    assert decision.eligibility.reasons[0].detail
    assert [f.stage for f in decision.fired] == ["eligibility", "urgency", "thrive", "routing"]
    assert all(f.reason for f in decision.fired)
    assert decision.fired[-1].rule == decision.route.rule
    assert decision.ruleset_version == RULESET.version
    json.dumps(decision.to_dict())  # every input a fired rule read is JSON-ready


@PROPERTY_SETTINGS
@given(referral_facts(), risk_answers)
def test_adding_or_raising_risk_never_lowers_urgency(
    facts: ReferralFacts, more: RiskAnswers
) -> None:
    raised = dataclasses.replace(facts, risk=riskier(facts.risk, more))

    assert rank(evaluate(raised, RULESET)) <= rank(evaluate(facts, RULESET))


@PROPERTY_SETTINGS
@given(referral_facts())
def test_a_or_b_always_routes_to_crisis(facts: ReferralFacts) -> None:
    decision = evaluate(facts, RULESET)

    if decision.urgency.code in (UrgencyCode.A, UrgencyCode.B):
        assert decision.route.kind == RouteKind.CRISIS
        assert decision.route.queue_id == "crisis"


@PROPERTY_SETTINGS
@given(referral_facts())
def test_not_eligible_at_c_is_never_signposted(facts: ReferralFacts) -> None:
    decision = evaluate(facts, RULESET)

    if (
        decision.urgency.code == UrgencyCode.C
        and decision.eligibility.outcome != EligibilityOutcome.ELIGIBLE
    ):
        assert decision.route.kind == RouteKind.DUTY


@PROPERTY_SETTINGS
@given(referral_facts())
def test_signposted_exactly_when_ineligible_and_below_c(facts: ReferralFacts) -> None:
    decision = evaluate(facts, RULESET)

    below_c = URGENCY_RANK[decision.urgency.code] > URGENCY_RANK[UrgencyCode.C]
    ineligible = decision.eligibility.outcome == EligibilityOutcome.INELIGIBLE
    assert (decision.route.kind == RouteKind.SIGNPOST) == (ineligible and below_c)
    assert (decision.route.queue_id is None) == (decision.route.kind == RouteKind.SIGNPOST)


@PROPERTY_SETTINGS
@given(referral_facts())
def test_respond_by_is_received_at_plus_the_configured_window(facts: ReferralFacts) -> None:
    decision = evaluate(facts, RULESET)

    hours = RULESET.urgency.windows[decision.urgency.code].respond_within_hours
    assert decision.urgency.respond_within_hours == hours
    if hours is None:
        assert decision.urgency.code == UrgencyCode.F
        assert decision.urgency.respond_by_at is None
    else:
        respond_by_at = decision.urgency.respond_by_at
        assert respond_by_at is not None
        assert respond_by_at.tzinfo is facts.received_at.tzinfo
        elapsed = respond_by_at.astimezone(UTC) - facts.received_at.astimezone(UTC)
        assert elapsed == timedelta(hours=hours)


@PROPERTY_SETTINGS
@given(referral_facts())
def test_thrive_follows_the_mapping_and_safeguarding_is_always_flagged(
    facts: ReferralFacts,
) -> None:
    decision = evaluate(facts, RULESET)

    assert decision.thrive_grouping == RULESET.thrive_grouping[decision.urgency.code]
    assert ("safeguarding" in decision.urgency.flags) == bool(facts.risk.safeguarding_concern)
    assert ("transition_support" in decision.urgency.flags) == (
        decision.eligibility.transition_support
    )


# Unknown is not none (docs/domain/trust-and-safety.md) -------------------------------------

ANSWERED_NO_VALUES: dict[str, Any] = {
    "immediate_danger": False,
    "suicidal": Suicidal.NONE,
    "self_harm": SelfHarm.NONE,
    "harm_to_others": HarmToOthers.NONE,
    "safeguarding_concern": False,
}


def answered_no(risk: RiskAnswers) -> RiskAnswers:
    """The same answers with every question not asked answered "no" instead."""
    return dataclasses.replace(
        risk,
        **{q: v for q, v in ANSWERED_NO_VALUES.items() if getattr(risk, q) is None},
    )


@PROPERTY_SETTINGS
@given(referral_facts())
def test_a_question_not_asked_never_lowers_urgency(facts: ReferralFacts) -> None:
    """No answer set with unknowns is less urgent than the same set with those answers "no"."""
    with_unknowns = evaluate(facts, RULESET)
    with_no = evaluate(dataclasses.replace(facts, risk=answered_no(facts.risk)), RULESET)
    assert URGENCY_RANK[with_unknowns.urgency.code] <= URGENCY_RANK[with_no.urgency.code]


@PROPERTY_SETTINGS
@given(referral_facts())
def test_questions_not_asked_are_listed_and_none_answered_is_flagged(
    facts: ReferralFacts,
) -> None:
    decision = evaluate(facts, RULESET)
    not_answered = [q for q in ANSWERED_NO_VALUES if getattr(facts.risk, q) is None]
    assert list(decision.risk_not_answered) == not_answered
    assert ("risk_not_assessed" in decision.urgency.flags) == (
        len(not_answered) == len(ANSWERED_NO_VALUES)
    )
    assert decision.to_dict()["risk_not_answered"] == not_answered
