"""Signposting matching as tables: age bounds, districts and areas, home-area services,
needs, and the national fallback (docs/domain/signposting-and-messages.md)."""

from __future__ import annotations

import pytest

from app.signposting import (
    SignpostQuery,
    directory_from_content,
    load_signposting,
    match_services,
    needs_signposting,
    postcode_area,
    query_for_decision,
    service_public,
)

DIRECTORY = load_signposting()


def ids(age: int | None, district: str | None, *, in_area: bool = True, needs=()) -> list[str]:
    query = SignpostQuery(
        age_years=age, postcode_district=district, in_area=in_area, needs=frozenset(needs)
    )
    return [s.id for s in match_services(DIRECTORY, query)]


# (service, youngest age offered, oldest age offered) in the packaged directory.
AGE_BOUNDS = [
    ("childline", 0, 18),  # under 19
    ("papyrus-hopeline247", 0, 34),  # under 35
    ("kooth-norfolk-waveney", 11, 25),
    ("counselling-norwich", 11, 25),
    ("adult-mh-access-line", 18, 150),
    ("talking-therapies-local", 16, 150),
    ("talking-therapies-national", 18, 150),
    ("samaritans", 0, 150),
    ("nhs-111-mental-health", 0, 150),
]


@pytest.mark.parametrize(("service", "youngest", "oldest"), AGE_BOUNDS)
def test_age_bounds_are_inclusive(service: str, youngest: int, oldest: int) -> None:
    assert service in ids(youngest, "NR1")
    assert service in ids(oldest, "NR1")
    if youngest > 0:
        assert service not in ids(youngest - 1, "NR1")
    if oldest < 150:
        assert service not in ids(oldest + 1, "NR1")


@pytest.mark.parametrize(
    ("district", "in_area", "expected", "not_expected"),
    [
        ("NR1", True, "counselling-norwich", "counselling-great-yarmouth"),
        ("NR16", True, "counselling-norwich", "counselling-waveney"),
        ("NR29", True, "counselling-great-yarmouth", "counselling-norwich"),
        ("NR33", True, "counselling-waveney", "counselling-west-norfolk"),
        ("PE30", True, "counselling-west-norfolk", "cyp-cambridgeshire-peterborough"),
        ("IP24", True, "counselling-breckland-south-norfolk", "cyp-suffolk"),
        ("NR27", True, "counselling-broadland-north-norfolk", "counselling-norwich"),
        # Out of area: the home area's service, by the postcode's first letters.
        ("IP1", False, "cyp-suffolk", "counselling-breckland-south-norfolk"),
        ("CB1", False, "cyp-cambridgeshire-peterborough", "kooth-norfolk-waveney"),
        ("PE1", False, "cyp-cambridgeshire-peterborough", "counselling-west-norfolk"),
        ("LN2", False, "cyp-lincolnshire", "cyp-suffolk"),
    ],
)
def test_districts_and_home_areas(
    district: str, in_area: bool, expected: str, not_expected: str
) -> None:
    found = ids(15, district, in_area=in_area)
    assert expected in found
    assert not_expected not in found


@pytest.mark.parametrize(
    ("age", "district", "in_area"),
    [
        (15, "SW1A", False),  # out of area, no neighbouring service listed
        (30, "M1", False),
        (15, None, True),  # no usable postcode
        (40, None, True),
    ],
)
def test_national_fallback(age: int, district: str | None, in_area: bool) -> None:
    found = ids(age, district, in_area=in_area)
    assert found, "somewhere to turn, whatever the postcode"
    assert all(DIRECTORY.service_by_id[s].is_national for s in found)
    assert "nhs-find-local-service" in found and "samaritans" in found


@pytest.mark.parametrize(
    ("age", "district", "in_area"),
    [(27, "NR1", True), (15, "CB1", False), (20, "PE30", True), (12, "NR30", True)],
)
def test_local_services_first_national_last(age: int, district: str, in_area: bool) -> None:
    found = ids(age, district, in_area=in_area)
    national = [DIRECTORY.service_by_id[s].is_national for s in found]
    assert national == sorted(national), f"national services after local ones: {found}"
    assert not national[0], "a local service leads the list"


def test_district_before_postcode_area() -> None:
    # PE30 is named by the adult line; NR1 only through the NR area: both listed, and an
    # entry naming the district itself comes before one matching only its area.
    content = {
        "label": "t",
        "organizations": [{"id": "o", "name": "O", "description": "D"}],
        "services": [
            {"id": "area", "organization_id": "o", "name": "A", "description": "D",
             "url": "https://a.example", "areas": ["NR"]},
            {"id": "district", "organization_id": "o", "name": "B", "description": "D",
             "url": "https://b.example", "areas": ["NR1"]},
            {"id": "national", "organization_id": "o", "name": "N", "description": "D",
             "url": "https://n.example", "areas": ["national"]},
        ],
    }  # fmt: skip
    directory = directory_from_content(content)
    found = match_services(directory, SignpostQuery(age_years=10, postcode_district="NR1"))
    assert [s.id for s in found] == ["district", "area", "national"]
    # NR10 is in the NR area but is not NR1.
    found = match_services(directory, SignpostQuery(age_years=10, postcode_district="NR10"))
    assert [s.id for s in found] == ["area", "national"]


def test_home_area_services_only_out_of_area_and_needs_filter() -> None:
    assert "cyp-suffolk" not in ids(15, "IP22", in_area=True)
    assert "cyp-suffolk" in ids(15, "IP4", in_area=False)
    content = {
        "label": "t",
        "organizations": [{"id": "o", "name": "O", "description": "D"}],
        "services": [
            {"id": "eating", "organization_id": "o", "name": "E", "description": "D",
             "url": "https://e.example", "areas": ["NR"], "needs": ["eating"]},
            {"id": "national", "organization_id": "o", "name": "N", "description": "D",
             "url": "https://n.example", "areas": ["national"]},
        ],
    }  # fmt: skip
    directory = directory_from_content(content)
    with_need = SignpostQuery(age_years=15, postcode_district="NR1", needs=frozenset({"eating"}))
    without = SignpostQuery(age_years=15, postcode_district="NR1", needs=frozenset({"anxiety"}))
    assert [s.id for s in match_services(directory, with_need)] == ["eating", "national"]
    assert [s.id for s in match_services(directory, without)] == ["national"]


def test_unknown_age_offers_every_age_and_shows_the_bounds() -> None:
    found = ids(None, "NR1")
    assert "childline" in found and "adult-mh-access-line" in found
    childline = service_public(DIRECTORY, DIRECTORY.service_by_id["childline"])
    assert childline["max_age"] == 18 and childline["phone"] == "0800 1111"


@pytest.mark.parametrize(
    ("outcome", "code", "expected"),
    [
        ("ineligible", "F", True),
        ("ineligible", "B", True),  # ineligible but routed to crisis: still told where to go
        ("eligible", "G", True),
        ("clinical_review", "G", True),
        ("eligible", "E", False),
        ("clinical_review", "C", False),
    ],
)
def test_who_needs_signposting(outcome: str, code: str, expected: bool) -> None:
    assert needs_signposting(outcome, code) is expected


def test_query_from_a_stored_decision() -> None:
    query = query_for_decision(
        {"age_years": 27, "postcode_district": "CB1", "locality_id": None}, [" Anxiety "]
    )
    assert query.in_area is False and query.needs == {"anxiety"}
    assert query_for_decision({"age_years": 3, "postcode_district": None}).in_area is True
    assert postcode_area("NR10") == "NR" and postcode_area("E1W") == "E"


def test_the_national_helplines_carry_their_published_details() -> None:
    public = {s.id: service_public(DIRECTORY, s) for s in DIRECTORY.services}
    assert public["samaritans"]["phone"] == "116 123"
    assert public["shout"]["text"] == "Text SHOUT to 85258"
    assert public["childline"]["phone"] == "0800 1111"
    assert public["papyrus-hopeline247"]["phone"] == "0800 068 4141"
    assert public["nhs-111-mental-health"]["phone"] == "111"
    # Every local entry is illustrative and carries no invented contact details.
    for service in DIRECTORY.services:
        if not service.is_national and service.organization_id.startswith("local-"):
            assert service.illustrative and not service.phones and service.email is None
