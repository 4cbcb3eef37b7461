"""Routing as a table: one row per step, the directory's postcodes, and the risk-first ordering.

Unless a row says otherwise: an eligible 13-year-old at NR1 3AB (Norwich) phoning for help,
received 2026-03-02 10:00 UTC, with no risk answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from app.triage import AmhsThreshold as Amhs
from app.triage import CamhsStatus as Camhs
from app.triage import Channel, ReferralFacts, RequestKind, Ruleset, evaluate
from app.triage import RouteKind as Kind
from app.triage import SettingPreference as Setting
from app.triage import Suicidal as Sui

FactsFactory = Callable[..., ReferralFacts]


def aged(years: int) -> date:
    """A date of birth giving this age on 2026-03-02."""
    return date(2026 - years, 1, 15)


A = {"risk": {"immediate_danger": True}}
B = {"risk": {"suicidal": Sui.INTENT}}
C = {"risk": {"suicidal": Sui.PLAN}}
INELIGIBLE = {"date_of_birth": aged(30)}
CLINICAL_REVIEW = {"date_of_birth": None}
PREFERS_OSS = {"setting_preference": Setting.ONE_STOP_SHOP}


def drop_in(site_id: str | None) -> dict[str, Any]:
    return {"channel": Channel.DROP_IN, "site_id": site_id}


ROWS = [
    # id, overrides, route rule, kind, queue id
    pytest.param(A, "CRISIS_URGENCY", Kind.CRISIS, "crisis", id="CRISIS_URGENCY-A"),
    pytest.param({**B, **INELIGIBLE}, "CRISIS_URGENCY", Kind.CRISIS, "crisis",
                 id="CRISIS_URGENCY-B-whatever-the-eligibility"),
    pytest.param({**A, **drop_in("cb-lowestoft"), "looked_after": True},
                 "CRISIS_URGENCY", Kind.CRISIS, "crisis", id="crisis-before-drop-in-and-LAC"),
    pytest.param({**C, **INELIGIBLE}, "DUTY_HIGH_RISK_NOT_ELIGIBLE", Kind.DUTY, "duty",
                 id="DUTY_HIGH_RISK_NOT_ELIGIBLE-C-ineligible"),
    pytest.param({**C, "postcode": "CB1 1AA"}, "DUTY_HIGH_RISK_NOT_ELIGIBLE", Kind.DUTY, "duty",
                 id="DUTY_HIGH_RISK_NOT_ELIGIBLE-C-out-of-area"),
    pytest.param({**C, **CLINICAL_REVIEW}, "DUTY_HIGH_RISK_NOT_ELIGIBLE", Kind.DUTY, "duty",
                 id="DUTY_HIGH_RISK_NOT_ELIGIBLE-C-clinical-review"),
    pytest.param(C, "COMMUNITY_BASE", Kind.COMMUNITY_BASE, "cb-norwich",
                 id="C-eligible-goes-to-the-community-base"),
    pytest.param(INELIGIBLE, "SIGNPOST_INELIGIBLE", Kind.SIGNPOST, None,
                 id="SIGNPOST_INELIGIBLE-over-25"),
    pytest.param({"postcode": "CB1 1AA"}, "SIGNPOST_INELIGIBLE", Kind.SIGNPOST, None,
                 id="SIGNPOST_INELIGIBLE-out-of-area"),
    pytest.param({**INELIGIBLE, **drop_in("cb-norwich")}, "SIGNPOST_INELIGIBLE", Kind.SIGNPOST,
                 None, id="signpost-before-drop-in"),
    pytest.param({"date_of_birth": aged(19), "amhs_threshold": Amhs.MET},
                 "SIGNPOST_INELIGIBLE", Kind.SIGNPOST, None, id="signpost-AMHS-threshold-met"),
    pytest.param(CLINICAL_REVIEW, "DUTY_CLINICAL_REVIEW", Kind.DUTY, "duty",
                 id="DUTY_CLINICAL_REVIEW-age-unknown"),
    pytest.param({"date_of_birth": aged(19)}, "DUTY_CLINICAL_REVIEW", Kind.DUTY, "duty",
                 id="DUTY_CLINICAL_REVIEW-AMHS-unknown"),
    pytest.param(drop_in("cb-lowestoft"), "DROP_IN_SITE", Kind.COMMUNITY_BASE, "cb-lowestoft",
                 id="DROP_IN_SITE-community-base-outside-home-locality"),
    pytest.param(drop_in("oss-cromer"), "DROP_IN_SITE", Kind.ONE_STOP_SHOP, "oss-cromer",
                 id="DROP_IN_SITE-one-stop-shop"),
    pytest.param({**drop_in("oss-cromer"), "looked_after": True}, "DROP_IN_SITE",
                 Kind.ONE_STOP_SHOP, "oss-cromer", id="drop-in-before-looked-after"),
    pytest.param(drop_in("cb-nowhere"), "COMMUNITY_BASE", Kind.COMMUNITY_BASE, "cb-norwich",
                 id="drop-in-unknown-site-falls-through"),
    pytest.param(drop_in("duty"), "COMMUNITY_BASE", Kind.COMMUNITY_BASE, "cb-norwich",
                 id="drop-in-at-a-non-site-queue-falls-through"),
    pytest.param(drop_in(None), "COMMUNITY_BASE", Kind.COMMUNITY_BASE, "cb-norwich",
                 id="drop-in-without-site-falls-through"),
    pytest.param({"channel": Channel.PHONE, "site_id": "cb-lowestoft"}, "COMMUNITY_BASE",
                 Kind.COMMUNITY_BASE, "cb-norwich", id="site-ignored-unless-drop-in"),
    pytest.param({"looked_after": True}, "LOOKED_AFTER", Kind.LOOKED_AFTER, "looked-after",
                 id="LOOKED_AFTER"),
    pytest.param({"looked_after": True, "request": RequestKind.ADVICE}, "LOOKED_AFTER",
                 Kind.LOOKED_AFTER, "looked-after", id="looked-after-before-advice"),
    pytest.param({"request": RequestKind.ADVICE}, "ADVICE_ACCESS_HUB", Kind.ACCESS_HUB,
                 "access-hub", id="ADVICE_ACCESS_HUB-G"),
    pytest.param({"request": RequestKind.ADVICE, **PREFERS_OSS, "date_of_birth": aged(15)},
                 "ADVICE_ACCESS_HUB", Kind.ACCESS_HUB, "access-hub", id="advice-before-OSS"),
    pytest.param({**PREFERS_OSS, "date_of_birth": aged(15)}, "ONE_STOP_SHOP",
                 Kind.ONE_STOP_SHOP, "oss-norwich", id="ONE_STOP_SHOP-prefers-15"),
    pytest.param({**PREFERS_OSS, "date_of_birth": aged(14)}, "ONE_STOP_SHOP",
                 Kind.ONE_STOP_SHOP, "oss-norwich", id="ONE_STOP_SHOP-aged-14"),
    pytest.param({**PREFERS_OSS, "date_of_birth": aged(13)}, "COMMUNITY_BASE",
                 Kind.COMMUNITY_BASE, "cb-norwich", id="aged-13-too-young-for-OSS"),
    pytest.param({**PREFERS_OSS, "date_of_birth": aged(25), "amhs_threshold": Amhs.NOT_MET},
                 "ONE_STOP_SHOP", Kind.ONE_STOP_SHOP, "oss-norwich", id="ONE_STOP_SHOP-aged-25"),
    pytest.param({"date_of_birth": aged(17), "camhs_status": Camhs.DISCHARGED,
                  "amhs_threshold": Amhs.NOT_MET, "postcode": "NR10 1AA"},
                 "ONE_STOP_SHOP", Kind.ONE_STOP_SHOP, "oss-cromer",
                 id="ONE_STOP_SHOP-CAMHS-transition-Broadland"),
    pytest.param({**PREFERS_OSS, "date_of_birth": aged(15), "postcode": "NR32 1AA"},
                 "ONE_STOP_SHOP", Kind.ONE_STOP_SHOP, "oss-great-yarmouth",
                 id="ONE_STOP_SHOP-Waveney-uses-Great-Yarmouth"),
    pytest.param({**PREFERS_OSS, "date_of_birth": aged(15), "postcode": "rubbish"},
                 "NO_LOCALITY_ACCESS_HUB", Kind.ACCESS_HUB, "access-hub",
                 id="OSS-needs-a-locality"),
    pytest.param({"setting_preference": Setting.COMMUNITY_BASE, "date_of_birth": aged(15)},
                 "COMMUNITY_BASE", Kind.COMMUNITY_BASE, "cb-norwich",
                 id="prefers-community-base"),
    pytest.param({"postcode": "nr1 3ab"}, "COMMUNITY_BASE", Kind.COMMUNITY_BASE, "cb-norwich",
                 id="COMMUNITY_BASE-lower-case"),
    pytest.param({"postcode": "NR13AB"}, "COMMUNITY_BASE", Kind.COMMUNITY_BASE, "cb-norwich",
                 id="COMMUNITY_BASE-no-space-NR1"),
    pytest.param({"postcode": " Nr1  3AB "}, "COMMUNITY_BASE", Kind.COMMUNITY_BASE,
                 "cb-norwich", id="COMMUNITY_BASE-odd-spacing"),
    pytest.param({"postcode": "NR10 1AA"}, "COMMUNITY_BASE", Kind.COMMUNITY_BASE,
                 "cb-north-walsham", id="NR10-is-Broadland-not-NR1"),
    pytest.param({"postcode": "NR13 5AB"}, "COMMUNITY_BASE", Kind.COMMUNITY_BASE,
                 "cb-norwich", id="NR13-is-Norwich"),
    pytest.param({"postcode": "NR30 1AA"}, "COMMUNITY_BASE", Kind.COMMUNITY_BASE,
                 "cb-great-yarmouth", id="NR30-Great-Yarmouth"),
    pytest.param({"postcode": "NR33 0AA"}, "COMMUNITY_BASE", Kind.COMMUNITY_BASE,
                 "cb-lowestoft", id="NR33-Waveney-Lowestoft"),
    pytest.param({"postcode": "PE14 9AA"}, "COMMUNITY_BASE", Kind.COMMUNITY_BASE,
                 "cb-kings-lynn", id="PE14-West-Norfolk"),
    pytest.param({"postcode": "PE30 1AA"}, "COMMUNITY_BASE", Kind.COMMUNITY_BASE,
                 "cb-kings-lynn", id="PE30-Kings-Lynn"),
    pytest.param({"postcode": "IP22 4AA"}, "COMMUNITY_BASE", Kind.COMMUNITY_BASE,
                 "cb-thetford", id="IP22-Thetford"),
    pytest.param({"postcode": "NR18 0AA"}, "COMMUNITY_BASE", Kind.COMMUNITY_BASE,
                 "cb-thetford", id="NR18-Breckland"),
    pytest.param({"postcode": "nr28"}, "COMMUNITY_BASE", Kind.COMMUNITY_BASE,
                 "cb-north-walsham", id="bare-outward-code"),
    pytest.param({"postcode": "NR1 3A"}, "NO_LOCALITY_ACCESS_HUB", Kind.ACCESS_HUB,
                 "access-hub", id="NO_LOCALITY_ACCESS_HUB-invalid-postcode"),
    pytest.param({"postcode": None}, "NO_LOCALITY_ACCESS_HUB", Kind.ACCESS_HUB, "access-hub",
                 id="NO_LOCALITY_ACCESS_HUB-no-postcode"),
    pytest.param({"postcode": ""}, "NO_LOCALITY_ACCESS_HUB", Kind.ACCESS_HUB, "access-hub",
                 id="NO_LOCALITY_ACCESS_HUB-empty-postcode"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "rule", "kind", "queue_id"), ROWS)
def test_routing(
    ruleset: Ruleset,
    facts: FactsFactory,
    overrides: dict[str, Any],
    rule: str,
    kind: Kind,
    queue_id: str | None,
) -> None:
    decision = evaluate(facts(**overrides), ruleset)

    assert decision.route.rule == rule
    assert decision.route.kind == kind
    assert decision.route.queue_id == queue_id
    if queue_id is not None:
        queue = ruleset.queue(queue_id)
        assert queue is not None
        assert decision.route.queue_name == queue.name
    (fired,) = [f for f in decision.fired if f.stage == "routing"]
    assert fired.rule == rule
    assert fired.reason


@pytest.mark.parametrize(
    ("postcode", "district", "locality_id"),
    [
        pytest.param("nr1 3ab", "NR1", "norwich", id="NR1"),
        pytest.param("NR10 1AA", "NR10", "broadland-north-norfolk", id="NR10"),
        pytest.param("PE14 9AA", "PE14", "west-norfolk", id="PE14"),
        pytest.param("IP22 4AA", "IP22", "breckland-south-norfolk", id="IP22"),
        pytest.param("CB1 1AA", "CB1", None, id="CB1-out-of-area"),
        pytest.param("NR1 3A", None, None, id="invalid"),
    ],
)
def test_decision_records_district_and_locality(
    ruleset: Ruleset,
    facts: FactsFactory,
    postcode: str,
    district: str | None,
    locality_id: str | None,
) -> None:
    decision = evaluate(facts(postcode=postcode), ruleset)

    assert decision.postcode_district == district
    assert decision.locality_id == locality_id


def test_signposted_referral_has_no_queue(ruleset: Ruleset, facts: FactsFactory) -> None:
    decision = evaluate(facts(**INELIGIBLE), ruleset)

    assert decision.route.queue_id is None
    assert decision.route.queue_name == "Signposted"


def test_every_rule_that_fired_is_listed_once_per_stage(
    ruleset: Ruleset, facts: FactsFactory
) -> None:
    decision = evaluate(facts(**C, **INELIGIBLE), ruleset)

    assert [(f.stage, f.rule) for f in decision.fired] == [
        ("eligibility", "AGE_OVER_25"),
        ("urgency", "URGENCY_C"),
        ("thrive", "THRIVE_BY_URGENCY"),
        ("routing", "DUTY_HIGH_RISK_NOT_ELIGIBLE"),
    ]
    assert decision.ruleset_version == ruleset.version
    json.dumps(decision.to_dict())
