"""Eligibility decisions as a table: one row per rule, plus the age and date boundaries.

Unless a row says otherwise the referral is received 2026-03-02 10:00 UTC (GMT, so the same date
in London) from a Norwich postcode, CAMHS never involved, AMHS threshold unknown, no SEND.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from app.triage import AmhsThreshold as Amhs
from app.triage import CamhsStatus as Camhs
from app.triage import EligibilityOutcome as Outcome
from app.triage import ReferralFacts, Ruleset, evaluate

FactsFactory = Callable[..., ReferralFacts]


def aged(years: int) -> date:
    """A date of birth giving this age on 2026-03-02 (birthday in mid-January, already passed)."""
    return date(2026 - years, 1, 15)


ROWS = [
    # id, overrides, outcome, rule, transition_support, age_years
    pytest.param(
        {"date_of_birth": None},
        Outcome.CLINICAL_REVIEW, "AGE_UNKNOWN", False, None,
        id="AGE_UNKNOWN-no-date-of-birth",
    ),
    pytest.param(
        {"date_of_birth": date(2026, 3, 3)},
        Outcome.CLINICAL_REVIEW, "AGE_UNKNOWN", False, None,
        id="AGE_UNKNOWN-date-of-birth-after-received-date",
    ),
    pytest.param(
        {"date_of_birth": None, "postcode": "CB1 1AA"},
        Outcome.CLINICAL_REVIEW, "AGE_UNKNOWN", False, None,
        id="AGE_UNKNOWN-before-OUT_OF_AREA",
    ),
    pytest.param(
        {"date_of_birth": aged(30)},
        Outcome.INELIGIBLE, "AGE_OVER_25", False, 30,
        id="AGE_OVER_25-aged-30",
    ),
    pytest.param(
        {"date_of_birth": aged(30), "postcode": "CB1 1AA"},
        Outcome.INELIGIBLE, "AGE_OVER_25", False, 30,
        id="AGE_OVER_25-before-OUT_OF_AREA",
    ),
    pytest.param(
        {"date_of_birth": date(2000, 3, 3), "amhs_threshold": Amhs.NOT_MET},
        Outcome.ELIGIBLE, "AGE_IN_SCOPE", False, 25,
        id="day-before-26th-birthday-in-scope",
    ),
    pytest.param(
        {"date_of_birth": date(2000, 3, 2), "amhs_threshold": Amhs.NOT_MET},
        Outcome.INELIGIBLE, "AGE_OVER_25", False, 26,
        id="on-26th-birthday-AGE_OVER_25",
    ),
    pytest.param(
        {
            "date_of_birth": date(2000, 2, 29),
            "received_at": datetime(2026, 2, 28, 12, tzinfo=UTC),
            "amhs_threshold": Amhs.NOT_MET,
        },
        Outcome.ELIGIBLE, "AGE_IN_SCOPE", False, 25,
        id="born-29-Feb-still-25-on-28-Feb-non-leap-year",
    ),
    pytest.param(
        {
            "date_of_birth": date(2000, 2, 29),
            "received_at": datetime(2026, 3, 1, 12, tzinfo=UTC),
            "amhs_threshold": Amhs.NOT_MET,
        },
        Outcome.INELIGIBLE, "AGE_OVER_25", False, 26,
        id="born-29-Feb-turns-26-on-1-Mar-non-leap-year",
    ),
    pytest.param(
        {
            "date_of_birth": date(2000, 7, 1),
            "received_at": datetime(2026, 6, 30, 23, 30, tzinfo=UTC),
            "amhs_threshold": Amhs.NOT_MET,
        },
        Outcome.INELIGIBLE, "AGE_OVER_25", False, 26,
        id="london-date-23:30Z-30-Jun-is-1-Jul-birthday-counts",
    ),
    pytest.param(
        {
            "date_of_birth": date(2000, 7, 1),
            "received_at": datetime(2026, 6, 30, 22, 59, tzinfo=UTC),
            "amhs_threshold": Amhs.NOT_MET,
        },
        Outcome.ELIGIBLE, "AGE_IN_SCOPE", False, 25,
        id="london-date-22:59Z-30-Jun-is-still-30-Jun",
    ),
    pytest.param(
        {
            "date_of_birth": date(2000, 2, 1),
            "received_at": datetime(2026, 1, 31, 23, 30, tzinfo=UTC),
            "amhs_threshold": Amhs.NOT_MET,
        },
        Outcome.ELIGIBLE, "AGE_IN_SCOPE", False, 25,
        id="london-date-in-winter-GMT-no-shift",
    ),
    pytest.param(
        {"postcode": "CB1 1AA"},
        Outcome.INELIGIBLE, "OUT_OF_AREA", False, 13,
        id="OUT_OF_AREA-cambridge",
    ),
    pytest.param(
        {"postcode": "cb1"},
        Outcome.INELIGIBLE, "OUT_OF_AREA", False, 13,
        id="OUT_OF_AREA-bare-outward-code",
    ),
    pytest.param(
        {"postcode": "not a postcode"},
        Outcome.ELIGIBLE, "AGE_IN_SCOPE", False, 13,
        id="unusable-postcode-is-not-out-of-area",
    ),
    pytest.param(
        {"postcode": None},
        Outcome.ELIGIBLE, "AGE_IN_SCOPE", False, 13,
        id="no-postcode-is-not-out-of-area",
    ),
    pytest.param(
        {"date_of_birth": aged(19), "amhs_threshold": Amhs.MET},
        Outcome.INELIGIBLE, "AMHS_THRESHOLD_MET", False, 19,
        id="AMHS_THRESHOLD_MET-aged-19",
    ),
    pytest.param(
        {"date_of_birth": aged(19), "amhs_threshold": Amhs.MET, "send": True,
         "camhs_status": Camhs.DISCHARGED},
        Outcome.INELIGIBLE, "AMHS_THRESHOLD_MET", False, 19,
        id="AMHS_THRESHOLD_MET-before-CAMHS_TRANSITION",
    ),
    pytest.param(
        {"date_of_birth": aged(17), "amhs_threshold": Amhs.MET},
        Outcome.ELIGIBLE, "AGE_IN_SCOPE", False, 17,
        id="AMHS-met-under-18-does-not-apply",
    ),
    pytest.param(
        {"date_of_birth": aged(17), "camhs_status": Camhs.DISCHARGED,
         "amhs_threshold": Amhs.NOT_MET},
        Outcome.ELIGIBLE, "CAMHS_TRANSITION", True, 17,
        id="CAMHS_TRANSITION-17-discharged",
    ),
    pytest.param(
        {"date_of_birth": aged(16), "camhs_status": Camhs.OPEN,
         "camhs_transition_planned": True},
        Outcome.ELIGIBLE, "CAMHS_TRANSITION", True, 16,
        id="CAMHS_TRANSITION-16-open-planned-amhs-unknown",
    ),
    pytest.param(
        {"date_of_birth": aged(15), "camhs_status": Camhs.DISCHARGED,
         "amhs_threshold": Amhs.NOT_MET},
        Outcome.ELIGIBLE, "AGE_IN_SCOPE", False, 15,
        id="aged-15-too-young-for-transition",
    ),
    pytest.param(
        {"date_of_birth": aged(17), "camhs_status": Camhs.OPEN,
         "camhs_transition_planned": False, "amhs_threshold": Amhs.NOT_MET},
        Outcome.ELIGIBLE, "AGE_IN_SCOPE", False, 17,
        id="CAMHS-open-without-transition-planned-is-not-transition",
    ),
    pytest.param(
        {"date_of_birth": aged(17), "camhs_status": Camhs.DISCHARGED, "send": True,
         "amhs_threshold": Amhs.MET},
        Outcome.ELIGIBLE, "CAMHS_TRANSITION", True, 17,
        id="CAMHS_TRANSITION-17-with-SEND-whatever-AMHS",
    ),
    pytest.param(
        {"date_of_birth": aged(17), "camhs_status": Camhs.DISCHARGED,
         "amhs_threshold": Amhs.MET},
        Outcome.ELIGIBLE, "AGE_IN_SCOPE", False, 17,
        id="17-discharged-AMHS-met-no-SEND-not-transition",
    ),
    pytest.param(
        {"date_of_birth": aged(18), "camhs_status": Camhs.DISCHARGED,
         "amhs_threshold": Amhs.NOT_MET},
        Outcome.CLINICAL_REVIEW, "CAMHS_LEAVER_REVIEW", False, 18,
        id="aged-18-discharged-no-SEND-leaver-review",
    ),
    pytest.param(
        {"date_of_birth": aged(25), "camhs_status": Camhs.DISCHARGED, "send": True,
         "amhs_threshold": Amhs.NOT_MET},
        Outcome.ELIGIBLE, "CAMHS_TRANSITION", True, 25,
        id="CAMHS_TRANSITION-25-with-SEND",
    ),
    pytest.param(
        {"date_of_birth": aged(20), "camhs_status": Camhs.OPEN,
         "camhs_transition_planned": True, "send": True, "amhs_threshold": Amhs.NOT_MET},
        Outcome.ELIGIBLE, "CAMHS_TRANSITION", True, 20,
        id="CAMHS_TRANSITION-20-open-planned-SEND",
    ),
    pytest.param(
        {"date_of_birth": aged(20), "camhs_status": Camhs.DISCHARGED, "send": True},
        Outcome.CLINICAL_REVIEW, "AMHS_THRESHOLD_UNKNOWN", False, 20,
        id="20-SEND-AMHS-unknown-is-not-transition",
    ),
    pytest.param(
        {"date_of_birth": aged(22), "camhs_status": Camhs.OPEN,
         "amhs_threshold": Amhs.NOT_MET},
        Outcome.CLINICAL_REVIEW, "CAMHS_LEAVER_REVIEW", False, 22,
        id="CAMHS_LEAVER_REVIEW-22-open",
    ),
    pytest.param(
        {"date_of_birth": aged(19)},
        Outcome.CLINICAL_REVIEW, "AMHS_THRESHOLD_UNKNOWN", False, 19,
        id="AMHS_THRESHOLD_UNKNOWN-19",
    ),
    pytest.param(
        {"date_of_birth": aged(19), "amhs_threshold": Amhs.NOT_MET},
        Outcome.ELIGIBLE, "AGE_IN_SCOPE", False, 19,
        id="AGE_IN_SCOPE-19-never-CAMHS-AMHS-not-met",
    ),
    pytest.param(
        {}, Outcome.ELIGIBLE, "AGE_IN_SCOPE", False, 13, id="AGE_IN_SCOPE-13",
    ),
    pytest.param(
        {"date_of_birth": date(2026, 3, 2)},
        Outcome.ELIGIBLE, "AGE_IN_SCOPE", False, 0,
        id="AGE_IN_SCOPE-born-on-the-received-date",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "outcome", "rule", "transition", "age"), ROWS)
def test_eligibility(
    ruleset: Ruleset,
    facts: FactsFactory,
    overrides: dict[str, Any],
    outcome: Outcome,
    rule: str,
    transition: bool,
    age: int | None,
) -> None:
    decision = evaluate(facts(**overrides), ruleset)

    assert decision.eligibility.outcome == outcome
    assert decision.eligibility.reasons[0].rule == rule
    assert decision.eligibility.transition_support is transition
    assert decision.age_years == age
    (fired,) = [f for f in decision.fired if f.stage == "eligibility"]
    assert fired.rule == rule
    assert fired.outcome == outcome.value
    assert fired.reason == decision.eligibility.reasons[0].detail
    json.dumps(fired.inputs)  # JSON-ready: str/int/bool/None only


def test_transition_reason_reads_as_a_sentence(ruleset: Ruleset, facts: FactsFactory) -> None:
    decision = evaluate(
        facts(
            date_of_birth=date(2008, 6, 1),
            received_at=datetime(2026, 3, 1, 12, tzinfo=UTC),
            camhs_status=Camhs.DISCHARGED,
            amhs_threshold=Amhs.NOT_MET,
        ),
        ruleset,
    )

    assert decision.eligibility.reasons[0].detail == (
        "Aged 17 on 2026-03-01, CAMHS discharged, AMHS threshold not met: "
        "eligible for transition support"
    )
    assert "transition_support" in decision.urgency.flags


def test_inputs_never_include_the_date_of_birth_or_full_postcode(
    ruleset: Ruleset, facts: FactsFactory
) -> None:
    decision = evaluate(facts(postcode="CB1 1AA"), ruleset)

    serialised = json.dumps(decision.to_dict())
    assert "2012-06-01" not in serialised
    assert "CB1 1AA" not in serialised
