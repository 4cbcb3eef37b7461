"""Urgency (UK Mental Health Triage Scale) as a table: each code, first match, windows, flags.

Unless a row says otherwise: an eligible 13-year-old in Norwich asking for help, received
2026-03-02 10:00 UTC, with no risk answers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.triage import HarmToOthers as Others
from app.triage import ReferralFacts, RequestKind, Ruleset, ThriveGrouping, evaluate
from app.triage import SelfHarm as Harm
from app.triage import Suicidal as Sui
from app.triage import UrgencyCode as Code

FactsFactory = Callable[..., ReferralFacts]

RECEIVED_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
INELIGIBLE = {"date_of_birth": date(1990, 1, 1)}  # aged 36: AGE_OVER_25
CLINICAL_REVIEW = {"date_of_birth": None}  # AGE_UNKNOWN
ADVICE = {"request": RequestKind.ADVICE}
# Every risk question left out (not asked); rows read their answers over "all answered no".
NOT_ASKED: dict[str, Any] = {
    "immediate_danger": None,
    "suicidal": None,
    "self_harm": None,
    "harm_to_others": None,
    "safeguarding_concern": None,
}

ROWS = [
    # id, risk answers, other overrides, code, flags, hours to respond
    pytest.param({"immediate_danger": True}, {}, Code.A, ("immediate_danger",), 0,
                 id="A-immediate-danger"),
    pytest.param({"immediate_danger": True, "suicidal": Sui.INTENT, "safeguarding_concern": True},
                 INELIGIBLE, Code.A, ("immediate_danger", "suicidal_intent", "safeguarding"), 0,
                 id="A-wins-over-B-whatever-the-eligibility"),
    pytest.param({"suicidal": Sui.INTENT}, {}, Code.B, ("suicidal_intent",), 4,
                 id="B-suicidal-intent"),
    pytest.param({"self_harm": Harm.CURRENT}, {}, Code.B, ("self_harm_current",), 4,
                 id="B-self-harm-current"),
    pytest.param({"harm_to_others": Others.IMMINENT}, {}, Code.B,
                 ("harm_to_others_imminent",), 4, id="B-harm-to-others-imminent"),
    pytest.param({"suicidal": Sui.INTENT}, INELIGIBLE, Code.B, ("suicidal_intent",), 4,
                 id="B-ineligible-person"),
    pytest.param({"suicidal": Sui.PLAN}, {}, Code.C, ("suicidal_plan",), 24,
                 id="C-suicidal-plan"),
    pytest.param({"harm_to_others": Others.THREATS}, {}, Code.C, ("harm_to_others_threats",),
                 24, id="C-harm-to-others-threats"),
    pytest.param({"self_harm": Harm.RECENT, "supported": False}, {}, Code.C,
                 ("self_harm_recent", "unsupported"), 24, id="C-recent-self-harm-unsupported"),
    pytest.param({"suicidal": Sui.PLAN}, INELIGIBLE, Code.C, ("suicidal_plan",), 24,
                 id="C-ineligible-person-above-F"),
    pytest.param({"self_harm": Harm.RECENT, "supported": None}, {}, Code.D,
                 ("self_harm_recent",), 72, id="D-recent-self-harm-support-unknown"),
    pytest.param({"self_harm": Harm.RECENT, "supported": True}, {}, Code.D,
                 ("self_harm_recent",), 72, id="D-recent-self-harm-supported"),
    pytest.param({"suicidal": Sui.THOUGHTS}, {}, Code.D, ("suicidal_thoughts",), 72,
                 id="D-suicidal-thoughts"),
    pytest.param({"harm_to_others": Others.THOUGHTS}, {}, Code.D,
                 ("harm_to_others_thoughts",), 72, id="D-harm-to-others-thoughts"),
    pytest.param({"safeguarding_concern": True}, {}, Code.D, ("safeguarding",), 72,
                 id="D-safeguarding-concern"),
    pytest.param({"suicidal": Sui.THOUGHTS}, CLINICAL_REVIEW, Code.D, ("suicidal_thoughts",),
                 72, id="D-clinical-review-is-not-F"),
    pytest.param({"suicidal": Sui.THOUGHTS}, ADVICE, Code.D, ("suicidal_thoughts",), 72,
                 id="D-advice-request-at-D-is-not-G"),
    pytest.param({}, {}, Code.E, (), 672, id="E-help-no-risk"),
    pytest.param({"self_harm": Harm.PAST, "supported": False}, {}, Code.E,
                 ("self_harm_past", "unsupported"), 672, id="E-past-self-harm-flagged"),
    pytest.param({}, CLINICAL_REVIEW, Code.E, (), 672, id="E-clinical-review-no-risk"),
    pytest.param({}, INELIGIBLE, Code.F, (), None, id="F-ineligible-no-risk"),
    pytest.param({"suicidal": Sui.THOUGHTS, "safeguarding_concern": True}, INELIGIBLE, Code.F,
                 ("suicidal_thoughts", "safeguarding"), None, id="F-ineligible-below-C"),
    pytest.param({}, {**INELIGIBLE, **ADVICE}, Code.F, (), None, id="F-before-G"),
    pytest.param({}, {"postcode": "CB1 1AA"}, Code.F, (), None, id="F-out-of-area"),
    pytest.param({}, ADVICE, Code.G, (), 168, id="G-advice-only"),
    pytest.param({"self_harm": Harm.PAST}, ADVICE, Code.G, ("self_harm_past",), 168,
                 id="G-advice-past-self-harm"),
    pytest.param({"safeguarding_concern": True}, ADVICE, Code.D, ("safeguarding",), 72,
                 id="safeguarding-advice-is-D"),
    # Unknown is not none: a question left out is not asked (None), and nothing asked is flagged.
    pytest.param(NOT_ASKED, {}, Code.E, ("risk_not_assessed",), 672,
                 id="E-nothing-asked-is-flagged"),
    pytest.param({**NOT_ASKED, "suicidal": Sui.PLAN}, {}, Code.C, ("suicidal_plan",), 24,
                 id="C-one-question-answered-is-not-flagged"),
    pytest.param({**NOT_ASKED, "self_harm": Harm.RECENT, "supported": False}, {}, Code.C,
                 ("self_harm_recent", "unsupported"), 24, id="C-others-not-asked"),
    pytest.param(NOT_ASKED, ADVICE, Code.G, ("risk_not_assessed",), 168,
                 id="G-advice-nothing-asked"),
    pytest.param({}, {"contact_route": False}, Code.E, ("no_contact_route",), 672,
                 id="E-no-contact-route-flagged"),
]  # fmt: skip


@pytest.mark.parametrize(("risk", "overrides", "code", "flags", "hours"), ROWS)
def test_urgency(
    ruleset: Ruleset,
    facts: FactsFactory,
    risk: dict[str, Any],
    overrides: dict[str, Any],
    code: Code,
    flags: tuple[str, ...],
    hours: int | None,
) -> None:
    decision = evaluate(facts(risk=risk, **overrides), ruleset)

    assert decision.urgency.code == code
    assert decision.urgency.flags == flags
    assert decision.urgency.respond_within_hours == hours
    if hours is None:
        assert decision.urgency.respond_by_at is None
    else:
        assert decision.urgency.respond_by_at == RECEIVED_AT + timedelta(hours=hours)
    (fired,) = [f for f in decision.fired if f.stage == "urgency"]
    assert fired.outcome == code.value
    assert fired.rule == f"URGENCY_{code.value}"


@pytest.mark.parametrize(
    ("code", "grouping"),
    [
        pytest.param({"immediate_danger": True}, ThriveGrouping.GETTING_RISK_SUPPORT, id="A"),
        pytest.param({"suicidal": Sui.INTENT}, ThriveGrouping.GETTING_RISK_SUPPORT, id="B"),
        pytest.param({"suicidal": Sui.PLAN}, ThriveGrouping.GETTING_RISK_SUPPORT, id="C"),
        pytest.param({"suicidal": Sui.THOUGHTS}, ThriveGrouping.GETTING_MORE_HELP, id="D"),
        pytest.param({}, ThriveGrouping.GETTING_HELP, id="E"),
    ],
)
def test_thrive_grouping_follows_urgency(
    ruleset: Ruleset, facts: FactsFactory, code: dict[str, Any], grouping: ThriveGrouping
) -> None:
    decision = evaluate(facts(risk=code), ruleset)

    assert decision.thrive_grouping == grouping
    (fired,) = [f for f in decision.fired if f.stage == "thrive"]
    assert fired.outcome == grouping.value


@pytest.mark.parametrize(
    "overrides", [pytest.param(INELIGIBLE, id="F"), pytest.param(ADVICE, id="G")]
)
def test_f_and_g_are_getting_advice(
    ruleset: Ruleset, facts: FactsFactory, overrides: dict[str, Any]
) -> None:
    assert evaluate(facts(**overrides), ruleset).thrive_grouping == ThriveGrouping.GETTING_ADVICE


def test_a_must_respond_at_once(ruleset: Ruleset, facts: FactsFactory) -> None:
    decision = evaluate(facts(risk={"immediate_danger": True}), ruleset)

    assert decision.urgency.respond_by_at == RECEIVED_AT


def test_window_is_elapsed_hours_across_the_clocks_going_forward(
    ruleset: Ruleset, facts: FactsFactory
) -> None:
    london = ZoneInfo("Europe/London")
    # The clocks go forward at 01:00 UTC on 29 March 2026: 24 elapsed hours after 12:00 GMT on
    # the 28th is 13:00 BST on the 29th.
    received_at = datetime(2026, 3, 28, 12, 0, tzinfo=london)

    decision = evaluate(facts(received_at=received_at, risk={"suicidal": Sui.PLAN}), ruleset)

    respond_by_at = decision.urgency.respond_by_at
    assert respond_by_at is not None
    assert respond_by_at.tzinfo is london
    assert (respond_by_at.hour, respond_by_at.day) == (13, 29)
    assert respond_by_at - received_at == timedelta(hours=25)  # same-zone subtraction: wall time
    assert respond_by_at.astimezone(UTC) - received_at.astimezone(UTC) == timedelta(hours=24)


def test_reason_names_the_trigger_and_window(ruleset: Ruleset, facts: FactsFactory) -> None:
    decision = evaluate(facts(risk={"self_harm": Harm.RECENT, "supported": False}), ruleset)

    (fired,) = [f for f in decision.fired if f.stage == "urgency"]
    assert fired.inputs == {"self_harm": "recent", "supported": False}
    assert fired.reason.startswith("Recent self-harm and no capable support around them: code C")
    assert fired.reason.endswith("respond within 24 hours")
