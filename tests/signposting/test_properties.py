"""Every ineligible or advice-only person is given at least one service that fits their age and
area: a property over ages 0-120 and postcodes in the directory, out of area, unusable and none
(docs/domain/signposting-and-messages.md). Derandomised, like the triage properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from app.signposting import (
    load_signposting,
    match_services,
    needs_signposting,
    postcode_area,
    query_for_decision,
)
from app.triage import (
    AmhsThreshold,
    CamhsStatus,
    Channel,
    ReferralFacts,
    ReferrerType,
    RequestKind,
    RiskAnswers,
    evaluate,
    load_ruleset,
)

PROPERTY_SETTINGS = settings(max_examples=400, deadline=None, derandomize=True, database=None)
RULESET = load_ruleset()
DIRECTORY = load_signposting()
RECEIVED_AT = datetime(2026, 6, 30, 23, 30, tzinfo=UTC)  # 1 July in Europe/London

POSTCODES = [
    "NR1 3AB", "NR16 1AA", "NR21 7AA", "NR30 1AA", "NR32 1AA", "PE14 9AA", "PE30 1AA",
    "IP22 4AA", "IP25 6AA", "NR18 0AA", "nr28",  # served
    "CB1 1AA", "SW1A 1AA", "IP1 1AA", "PE1 1AA", "LN1 1AA", "M1 1AE", "BT1 1AA",  # out of area
    "NOT A POSTCODE", "",  # unusable
]  # fmt: skip


def _birth_date(age: int, extra_days: int) -> date:
    received_on = date(2026, 7, 1)
    born = received_on.replace(year=received_on.year - age)
    return born - timedelta(days=extra_days)


@PROPERTY_SETTINGS
@given(
    age=st.integers(min_value=0, max_value=120),
    extra_days=st.integers(min_value=0, max_value=364),
    postcode=st.sampled_from([*POSTCODES, None]),
    request=st.sampled_from(list(RequestKind)),
    amhs=st.sampled_from(list(AmhsThreshold)),
    camhs=st.sampled_from(list(CamhsStatus)),
    needs=st.lists(st.sampled_from(["anxiety", "low_mood", "eating", "sleep"]), max_size=3),
)
def test_every_signposted_person_is_given_a_service_fitting_age_and_area(
    age: int,
    extra_days: int,
    postcode: str | None,
    request: RequestKind,
    amhs: AmhsThreshold,
    camhs: CamhsStatus,
    needs: list[str],
) -> None:
    facts = ReferralFacts(
        received_at=RECEIVED_AT,
        channel=Channel.WEB,
        referrer_type=ReferrerType.SELF,
        date_of_birth=_birth_date(age, extra_days),
        postcode=postcode,
        camhs_status=camhs,
        amhs_threshold=amhs,
        request=request,
        risk=RiskAnswers(
            immediate_danger=False,
            suicidal="none",
            self_harm="none",
            harm_to_others="none",
            safeguarding_concern=False,
        ),
    )
    decision = evaluate(facts, RULESET).to_dict()
    if not needs_signposting(decision["eligibility"]["outcome"], decision["urgency"]["code"]):
        return
    assert decision["age_years"] == age
    services = match_services(DIRECTORY, query_for_decision(decision, needs))
    assert services, f"nowhere to turn for age {age}, postcode {postcode!r}"
    district = decision["postcode_district"]
    for service in services:
        assert service.fits_age(age)
        assert service.is_national or (
            district is not None
            and (district in service.areas or postcode_area(district) in service.areas)
        )
        if service.out_of_area_only:
            assert decision["locality_id"] is None
