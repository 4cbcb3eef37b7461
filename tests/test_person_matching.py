"""Person matching (app/services/persons.py) and search (app/services/person_search.py) in the
service layer, both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime

from app.models import Person
from app.schemas.referral import PersonIn
from app.services.person_search import _prefix_upper_bound, search_persons
from app.services.persons import ChangeAuthor, resolve_person
from tests.factories import valid_test_nhs_numbers

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
AUTHOR = ChangeAuthor(kind="staff", id="staff-test")
NHS = valid_test_nhs_numbers(6, start=7100)
DOB = date(2010, 5, 17)


def _person(**overrides: object) -> PersonIn:
    fields: dict[str, object] = {
        "given_name": "Alex",
        "family_name": "Lazarus",
        "date_of_birth": DOB,
        "postcode": "NR1 3AB",
    }
    fields.update(overrides)
    return PersonIn.model_validate(fields)


async def test_resolve_person_creates_once_then_matches_by_nhs_number(session):
    first = await resolve_person(session, _person(nhs_number=NHS[0]), NOW, author=AUTHOR)
    again = await resolve_person(
        session, _person(nhs_number=NHS[0], given_name="Alexa"), NOW, author=AUTHOR
    )
    assert first.created and not again.created
    assert again.person is first.person
    assert first.person.family_name_key == "lazarus"


async def test_resolve_person_joins_a_number_recorded_by_someone_else(session, monkeypatch):
    # The row exists but the lookup missed it (as when a concurrent request commits it between
    # our lookup and our insert): the insert conflicts, does nothing, and the holder is joined.
    async def _missed(*_args: object) -> None:
        return None

    monkeypatch.setattr("app.services.persons._find_exact", _missed)
    session.add(
        Person(
            nhs_number=NHS[1],
            given_name="Sam",
            family_name="Okafor",
            date_of_birth=DOB,
            created_at=NOW,
            updated_at=NOW,
        )
    )
    await session.flush()
    resolved = await resolve_person(
        session,
        PersonIn(nhs_number=NHS[1], given_name="Sam", phone="07700 900001"),
        NOW,
        author=AUTHOR,
    )
    assert not resolved.created
    assert resolved.person.nhs_number == NHS[1]
    assert resolved.person.phone == "07700 900001"  # blanks filled, nothing overwritten


async def test_demographic_match_needs_exactly_one_candidate(session):
    one = (await resolve_person(session, _person(given_name="Ruby"), NOW, author=AUTHOR)).person
    same = (await resolve_person(session, _person(given_name="ruby "), NOW, author=AUTHOR)).person
    assert same is one
    # A second record with the same details (recorded under an NHS number) makes it ambiguous.
    session.add(
        Person(
            given_name="Ruby",
            family_name="Lazarus",
            given_name_key="ruby",
            family_name_key="lazarus",
            date_of_birth=DOB,
            postcode="NR1 3AB",
            created_at=NOW,
            updated_at=NOW,
        )
    )
    await session.flush()
    third = (await resolve_person(session, _person(given_name="Ruby"), NOW, author=AUTHOR)).person
    assert third is not one


async def test_nhs_number_holder_wins_over_demographic_candidates(session):
    holder = (
        await resolve_person(
            session,
            _person(given_name="Mia", family_name="Zhang", nhs_number=NHS[2]),
            NOW,
            author=AUTHOR,
        )
    ).person
    await resolve_person(
        session, _person(given_name="Kai", family_name="Zhang"), NOW, author=AUTHOR
    )
    found = (
        await resolve_person(
            session,
            _person(given_name="Kai", family_name="Zhang", nhs_number=NHS[2]),
            NOW,
            author=AUTHOR,
        )
    ).person
    assert found is holder


async def test_a_different_nhs_number_is_never_joined_on_demographics(session):
    first = await resolve_person(
        session, _person(given_name="Noa", nhs_number=NHS[3]), NOW, author=AUTHOR
    )
    second = await resolve_person(
        session, _person(given_name="Noa", nhs_number=NHS[4]), NOW, author=AUTHOR
    )
    assert second.created and second.person is not first.person
    assert second is not first


async def test_close_matches_by_prefix_including_z_and_accented_names(session):
    for family, given in (
        ("Lazarus", "Eli"),
        ("Lazenby", "Ivy"),
        ("Lbarra", "Jo"),
        ("Zoë-Ann", "Ola"),
        ("Zoeller", "Una"),
    ):
        await resolve_person(
            session, _person(family_name=family, given_name=given), NOW, author=AUTHOR
        )
    found = await search_persons(session, family_name="Lazaruss", date_of_birth=DOB)
    names = sorted(m.person.family_name for m in found)
    assert names == ["Lazarus", "Lazenby"]  # "laz" prefix; "lba" is past the range
    accented = await search_persons(session, family_name="Zoe", date_of_birth=DOB)
    assert {m.person.family_name for m in accented} == {"Zoë-Ann", "Zoeller"}


def test_prefix_upper_bound():
    assert _prefix_upper_bound("lam") == "lan"
    assert _prefix_upper_bound("laz") == "lb"
    assert _prefix_upper_bound("a9") == "aa"
    assert _prefix_upper_bound("zzz") is None
    assert _prefix_upper_bound("zoë") is None
