"""Equity data at intake: gender identity and ethnic category (docs/domain/equity-data.md).

Optional on every channel (phone, drop-in, system, FHIR, the public form and its API); stored on
the referral as NHS Data Dictionary codes; NULL when not recorded, "Z" when the person chose not
to say; an unknown code refused naming the field with nothing written; shown to staff, never to
a referring system (not even the one that sent it) and never logged.
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import uuid
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.equity import ETHNIC_CATEGORY, GENDER_IDENTITY
from app.fhir.systems import (
    FHIR_GENDER_IDENTITY,
    GENDER_IDENTITY_CODE,
    GENDER_IDENTITY_EXTENSION,
    UKCORE_ETHNIC_CATEGORY_ENGLAND,
    UKCORE_ETHNIC_CATEGORY_EXTENSION,
)
from app.models import Referral
from app.schemas.referral import PhoneReferralCreate
from app.services.intake import request_fingerprint
from app.web.forms import ETHNIC_OPTIONS, GENDER_OPTIONS, STAFF_ETHNIC_OPTIONS
from tests.conftest import count_rows
from tests.factories import referral_body, self_referral_body, valid_test_nhs_numbers
from tests.test_fhir import message, outcome, post, read_back
from tests.test_web_forms import csrf_from, phone_form, self_form, sign_in, submit_self

NHS = valid_test_nhs_numbers(12, start=27100)
ODS = "A81001"
OTHER_ODS = "B82002"
WRITTEN = ("referrals", "persons", "cases", "triage_decisions", "idempotency_keys")


async def stored(session: AsyncSession, referral_id: str | uuid.UUID) -> Referral:
    session.expire_all()
    referral = await session.get(Referral, uuid.UUID(str(referral_id)))
    assert referral is not None
    return referral


async def only_referral(session: AsyncSession) -> Referral:
    session.expire_all()
    [referral] = (await session.scalars(select(Referral))).all()
    return referral


async def counts(session: AsyncSession) -> dict[str, int]:
    return {table: await count_rows(session, table) for table in WRITTEN}


def with_equity(body: dict[str, Any], gender: str | None, ethnic: str | None) -> dict[str, Any]:
    body = copy.deepcopy(body)
    if gender is not None:
        body["person"]["gender"] = gender
    if ethnic is not None:
        body["person"]["ethnic_category"] = ethnic
    return body


# The code lists -------------------------------------------------------------------------------


def test_the_code_lists_are_the_data_dictionarys():
    assert list(GENDER_IDENTITY) == ["1", "2", "3", "4", "Z", "X"]
    assert list(ETHNIC_CATEGORY) == [
        *("A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S"),
        *("Z", "99"),
    ]
    assert ETHNIC_CATEGORY["Z"] == "Not stated" and ETHNIC_CATEGORY["99"] == "Not known"
    # The public form offers every category in words, and "Prefer not to say" (not stated);
    # never "not known", which is not a person's answer.
    assert [code for code, _ in ETHNIC_OPTIONS] == [*list(ETHNIC_CATEGORY)[:16], "Z"]
    assert [code for code, _ in GENDER_OPTIONS] == ["2", "1", "3", "4", "Z"]
    assert dict(GENDER_OPTIONS)["Z"] == dict(ETHNIC_OPTIONS)["Z"] == "Prefer not to say"
    assert STAFF_ETHNIC_OPTIONS[0] == ("", "Not asked")


# The JSON API, every channel --------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["phone", "drop_in"])
async def test_staff_channels_store_the_codes_and_staff_read_them(
    client, session, staff_headers, channel
):
    body = with_equity(referral_body(channel, nhs=NHS[0]), "3", "N")
    created = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert created.status_code == 201, created.text
    referral = await stored(session, created.json()["id"])
    assert (referral.gender_code, referral.ethnic_category_code) == ("3", "N")
    assert created.json()["equity"] == {
        "gender": {"code": "3", "display": "Non-binary"},
        "ethnic_category": {"code": "N", "display": "Black or Black British - African"},
    }
    read = await client.get(f"/v1/referrals/{referral.id}", headers=staff_headers("duty_clinician"))
    assert read.json()["equity"] == created.json()["equity"]


async def test_left_out_is_not_recorded_and_not_stated_is_an_answer(client, session, staff_headers):
    omitted = await client.post(
        "/v1/referrals", json=referral_body(nhs=NHS[1]), headers=staff_headers()
    )
    assert omitted.status_code == 201, omitted.text
    referral = await stored(session, omitted.json()["id"])
    assert (referral.gender_code, referral.ethnic_category_code) == (None, None)
    assert omitted.json()["equity"] == {"gender": None, "ethnic_category": None}

    # Explicit nulls and blanks are the same as leaving the questions out.
    blank = with_equity(referral_body(nhs=NHS[2]), "", None)
    blank["person"]["ethnic_category"] = None
    created = await client.post("/v1/referrals", json=blank, headers=staff_headers())
    assert created.status_code == 201, created.text
    referral = await stored(session, created.json()["id"])
    assert (referral.gender_code, referral.ethnic_category_code) == (None, None)

    declined = with_equity(referral_body(nhs=NHS[3]), "Z", "Z")
    created = await client.post("/v1/referrals", json=declined, headers=staff_headers())
    referral = await stored(session, created.json()["id"])
    assert (referral.gender_code, referral.ethnic_category_code) == ("Z", "Z")
    assert created.json()["equity"]["gender"]["display"].startswith("Not stated")
    assert created.json()["equity"]["ethnic_category"]["display"] == "Not stated"


@pytest.mark.parametrize(
    ("gender", "ethnic", "field"),
    [
        ("M", None, "person.gender"),
        ("9", None, "person.gender"),
        ("z", None, "person.gender"),
        (None, "T", "person.ethnic_category"),
        (None, "CA", "person.ethnic_category"),
        (None, 1, "person.ethnic_category"),
    ],
)
async def test_an_unknown_code_is_a_422_naming_the_field_and_nothing_is_written(
    client, session, staff_headers, make_client, gender, ethnic, field
):
    before = await counts(session)
    audit_before = await count_rows(session, "audit_events")
    _, gp = await make_client(ods=ODS)
    attempts = [
        ("/v1/referrals", with_equity(referral_body(nhs=NHS[4]), gender, ethnic), staff_headers()),
        (
            "/v1/referrals",
            with_equity(referral_body("system", nhs=NHS[4]), gender, ethnic),
            {**gp, "Idempotency-Key": f"bad-{field}-{gender}-{ethnic}"},
        ),
        ("/v1/self-referrals", with_equity(self_referral_body(), gender, ethnic), {}),
    ]
    for path, body, headers in attempts:
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == 422, (path, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field], path
        assert field in response.json()["detail"]
    assert await counts(session) == before
    assert await count_rows(session, "audit_events") == audit_before


async def test_the_public_api_stores_the_codes_and_says_nothing_of_them_back(client, session):
    response = await client.post(
        "/v1/self-referrals", json=with_equity(self_referral_body(), "2", "H")
    )
    assert response.status_code == 201, response.text
    assert "equity" not in response.json() and "gender" not in response.text
    referral = await only_referral(session)
    assert (referral.channel, referral.gender_code, referral.ethnic_category_code) == (
        "web",
        "2",
        "H",
    )


async def test_a_referring_system_never_reads_them_back_and_another_never_reads_the_referral(
    client, session, staff_headers, make_client
):
    _, gp = await make_client(ods=ODS)
    _, other = await make_client(name="Another practice", ods=OTHER_ODS)
    body = with_equity(referral_body("system", nhs=NHS[5]), "1", "B")
    created = await client.post("/v1/referrals", json=body, headers={**gp, "Idempotency-Key": "e1"})
    assert created.status_code == 201, created.text
    referral_id = created.json()["id"]
    referral = await stored(session, referral_id)
    assert (referral.gender_code, referral.ethnic_category_code) == ("1", "B")

    # The sender: neither the create answer nor a read carries them.
    assert created.json()["equity"] is None
    own = await client.get(f"/v1/referrals/{referral_id}", headers=gp)
    assert own.status_code == 200
    assert own.json()["equity"] is None
    # A retry (idempotent replay) is answered the same way.
    replay = await client.post("/v1/referrals", json=body, headers={**gp, "Idempotency-Key": "e1"})
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json()["equity"] is None
    # Another referring organisation cannot read the referral at all.
    theirs = await client.get(f"/v1/referrals/{referral_id}", headers=other)
    assert theirs.status_code in (403, 404)
    assert "equity" not in theirs.text and "White" not in theirs.text
    # Staff who may read the referral do see them.
    staff = await client.get(f"/v1/referrals/{referral_id}", headers=staff_headers())
    assert staff.json()["equity"]["ethnic_category"]["code"] == "B"


async def test_each_referral_keeps_its_own_answers_and_the_person_is_not_changed(
    client, session, staff_headers
):
    first = await client.post(
        "/v1/referrals",
        json=with_equity(referral_body(nhs=NHS[6]), "2", "A"),
        headers=staff_headers(),
    )
    second = await client.post(
        "/v1/referrals",
        json=with_equity(referral_body(nhs=NHS[6]), "3", None),
        headers=staff_headers(),
    )
    assert first.json()["person_id"] == second.json()["person_id"]
    one = await stored(session, first.json()["id"])
    assert (one.gender_code, one.ethnic_category_code) == ("2", "A")
    two = await stored(session, second.json()["id"])
    assert (two.gender_code, two.ethnic_category_code) == ("3", None)
    # Nothing about them was written to the person or their change history.
    fields = await session.scalars(text("SELECT field FROM person_changes"))
    assert not {"gender", "ethnic_category"} & set(fields.all())


def test_unsent_equity_fields_leave_the_idempotency_fingerprint_as_it_was():
    body = PhoneReferralCreate.model_validate(referral_body(nhs=NHS[7]))
    before = body.model_dump(mode="json")
    for name in ("gender", "ethnic_category"):
        del before["person"][name]
    expected = hashlib.sha256(orjson.dumps(before, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert request_fingerprint(body) == expected
    answered = PhoneReferralCreate.model_validate(with_equity(referral_body(nhs=NHS[7]), "1", None))
    assert request_fingerprint(answered) != expected


async def test_the_database_refuses_a_code_outside_the_lists(client, session, staff_headers):
    created = await client.post(
        "/v1/referrals", json=referral_body(nhs=NHS[8]), headers=staff_headers()
    )
    referral_id = uuid.UUID(created.json()["id"])
    for column, value in (("gender_code", "Q"), ("ethnic_category_code", "T")):
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                await session.execute(
                    update(Referral).where(Referral.id == referral_id).values({column: value})
                )


async def test_equity_answers_are_never_logged(client, staff_headers, make_client):
    root = logging.getLogger()
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    try:
        _, gp = await make_client(ods=ODS)
        await client.post(
            "/v1/referrals",
            json=with_equity(referral_body(nhs=NHS[9]), "3", "N"),
            headers=staff_headers(),
        )
        await client.post(
            "/v1/referrals",
            json=with_equity(referral_body("system", nhs=NHS[10]), "4", "M"),
            headers={**gp, "Idempotency-Key": "log-equity"},
        )
        await client.post("/v1/self-referrals", json=with_equity(self_referral_body(), "9", "T"))
    finally:
        root.removeHandler(handler)
    logged = buffer.getvalue()
    assert "referral_received" in logged
    for word in ("gender", "ethnic", "Non-binary", "African", "Caribbean"):
        assert word not in logged, word


# FHIR -------------------------------------------------------------------------------------------


def patient_with(bundle: dict[str, Any], **fields: Any) -> dict[str, Any]:
    [patient] = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    patient.update(fields)
    return bundle


def coded_extension(url: str, *codings: tuple[str, str]) -> dict[str, Any]:
    return {
        "url": url,
        "valueCodeableConcept": {
            "coding": [{"system": system, "code": code} for system, code in codings]
        },
    }


@pytest.fixture
async def gp(make_client: Any) -> dict[str, str]:
    _, headers = await make_client(ods=ODS)
    return headers


@pytest.mark.parametrize(
    ("extensions", "expected"),
    [
        (
            [
                coded_extension(GENDER_IDENTITY_EXTENSION, (GENDER_IDENTITY_CODE, "3")),
                coded_extension(
                    UKCORE_ETHNIC_CATEGORY_EXTENSION, (UKCORE_ETHNIC_CATEGORY_ENGLAND, "K")
                ),
            ],
            ("3", "K"),
        ),
        # FHIR's own gender identity codes; a trans girl is female in GENDER IDENTITY CODE.
        (
            [
                coded_extension(
                    GENDER_IDENTITY_EXTENSION, (FHIR_GENDER_IDENTITY, "transgender-female")
                )
            ],
            ("2", None),
        ),
        (
            [coded_extension(GENDER_IDENTITY_EXTENSION, (FHIR_GENDER_IDENTITY, "non-disclose"))],
            ("Z", None),
        ),
        # A coding we do not read (another system) leaves the answer not recorded; the first
        # coding in a system we read is taken.
        (
            [
                coded_extension(
                    UKCORE_ETHNIC_CATEGORY_EXTENSION,
                    ("https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryWales", "T"),
                )
            ],
            (None, None),
        ),
        (
            [
                coded_extension(
                    UKCORE_ETHNIC_CATEGORY_EXTENSION,
                    ("http://snomed.info/sct", "92491000000104"),
                    (UKCORE_ETHNIC_CATEGORY_ENGLAND, "99"),
                )
            ],
            (None, "99"),
        ),
        ([], (None, None)),
    ],
)
async def test_fhir_reads_the_patient_extensions(client, gp, session, extensions, expected):
    bundle = patient_with(message(nhs=NHS[11]), extension=extensions, gender="female")
    response = await post(client, gp, bundle)
    assert response.status_code == 201, response.text
    referral = await only_referral(session)
    assert (referral.gender_code, referral.ethnic_category_code) == expected


async def test_fhir_patient_gender_is_administrative_never_gender_identity(client, gp, session):
    response = await post(client, gp, patient_with(message(nhs=NHS[11]), gender="male"))
    assert response.status_code == 201, response.text
    referral = await only_referral(session)
    assert referral.gender_code is None


@pytest.mark.parametrize(
    ("extension", "expression"),
    [
        (
            coded_extension(
                UKCORE_ETHNIC_CATEGORY_EXTENSION, (UKCORE_ETHNIC_CATEGORY_ENGLAND, "T")
            ),
            "Patient.extension[0].valueCodeableConcept.coding[0].code",
        ),
        (
            coded_extension(
                GENDER_IDENTITY_EXTENSION,
                ("http://snomed.info/sct", "446151000124109"),
                (GENDER_IDENTITY_CODE, "M"),
            ),
            "Patient.extension[0].valueCodeableConcept.coding[1].code",
        ),
        (
            coded_extension(GENDER_IDENTITY_EXTENSION, (FHIR_GENDER_IDENTITY, "man")),
            "Patient.extension[0].valueCodeableConcept.coding[0].code",
        ),
        (
            {"url": UKCORE_ETHNIC_CATEGORY_EXTENSION, "valueString": "A"},
            "Patient.extension[0].valueCodeableConcept",
        ),
    ],
)
async def test_fhir_an_unknown_code_names_the_element_and_nothing_is_written(
    client, gp, session, extension, expression
):
    before = await counts(session)
    response = await post(client, gp, patient_with(message(nhs=NHS[11]), extension=[extension]))
    assert response.status_code == 422, response.text
    issue = outcome(response)
    assert issue["expression"] == [expression]
    assert await counts(session) == before


async def test_fhir_read_back_carries_no_equity_data(client, gp, session):
    extensions = [
        coded_extension(GENDER_IDENTITY_EXTENSION, (GENDER_IDENTITY_CODE, "4")),
        coded_extension(UKCORE_ETHNIC_CATEGORY_EXTENSION, (UKCORE_ETHNIC_CATEGORY_ENGLAND, "R")),
    ]
    response = await post(client, gp, patient_with(message(nhs=NHS[11]), extension=extensions))
    assert response.status_code == 201, response.text
    referral = await only_referral(session)
    assert (referral.gender_code, referral.ethnic_category_code) == ("4", "R")
    sr = await client.get(f"/fhir/R4/ServiceRequest/{referral.id}", headers=gp)
    tasks = await client.get(f"/fhir/R4/Task?focus=ServiceRequest/{referral.id}", headers=gp)
    await read_back(client, gp, str(referral.id))
    for text_ in (response.text, sr.text, tasks.text):
        assert "EthnicCategory" not in text_ and "genderIdentity" not in text_
        assert "gender-identity" not in text_


# The web form -----------------------------------------------------------------------------------


async def test_the_form_asks_kindly_and_in_words(client: httpx.AsyncClient):
    html = (await client.get("/refer")).text
    assert "You do not have to answer" in html
    assert "What is your gender? (optional)" in html
    assert "What is your ethnic group? (optional)" in html
    for _, words in (*GENDER_OPTIONS, *ETHNIC_OPTIONS):
        assert words in html
    assert html.count(">Prefer not to say</label>") == 2
    # The questions come before the submit button, after the safety questions.
    assert html.index('name="suicidal"') < html.index('name="gender"')
    assert html.index('name="ethnic_category"') < html.index("Send my referral")


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"gender": "1", "ethnic_category": "D"}, ("1", "D")),
        ({"gender": "Z", "ethnic_category": "Z"}, ("Z", "Z")),
        ({}, (None, None)),
        ({"gender": "", "ethnic_category": ""}, (None, None)),
    ],
)
async def test_the_web_form_stores_what_was_chosen(client, session, answers, expected):
    response = await submit_self(client, self_form(**answers))
    assert response.status_code == 303, response.text
    referral = await only_referral(session)
    assert referral.channel == "web"
    assert (referral.gender_code, referral.ethnic_category_code) == expected


async def test_the_web_form_names_an_answer_it_does_not_offer(client, session):
    response = await submit_self(client, self_form(gender="M", ethnic_category="99x"))
    assert response.status_code == 422
    html = response.text
    assert 'class="nhsuk-error-summary"' in html
    assert (
        '<a href="#gender">Select an answer about gender from the list, or leave this question '
        "blank</a>" in html
    )
    assert '<a href="#ethnic_category">Select an ethnic group from the list' in html
    assert 'id="gender-error"' in html and 'id="ethnic_category-error"' in html
    assert "99x" not in html
    assert await count_rows(session, "referrals") == 0


async def test_an_urgent_web_referral_with_a_bad_answer_is_kept_without_it(client, session):
    response = await submit_self(
        client, self_form(suicidal="intent", gender="M", ethnic_category="A")
    )
    assert response.status_code == 303, response.text
    referral = await only_referral(session)
    assert (referral.gender_code, referral.ethnic_category_code) == (None, "A")
    assert "person.gender" in referral.incomplete_fields


# The call handler's console -----------------------------------------------------------------------


async def test_the_console_records_them_and_shows_them_to_staff(client, session, staff_headers):
    await sign_in(client, staff_headers)
    page = await client.get("/console/referrals/new")
    assert "Gender and ethnic group (optional)" in page.text
    csrf = csrf_from(page.text)
    response = await client.post(
        "/console/referrals/new",
        data={
            "csrf_token": csrf,
            "action": "submit",
            **phone_form(gender="3", ethnic_category="Z"),
        },
    )
    assert response.status_code == 303, response.text
    referral = await only_referral(session)
    assert (referral.channel, referral.gender_code, referral.ethnic_category_code) == (
        "phone",
        "3",
        "Z",
    )
    shown = await client.get(response.headers["location"])
    assert "Gender: Non-binary<br>Ethnic group: Not stated" in shown.text


async def test_the_console_not_asked_is_not_recorded(client, session, staff_headers):
    await sign_in(client, staff_headers)
    csrf = csrf_from((await client.get("/console/referrals/new")).text)
    response = await client.post(
        "/console/referrals/new",
        data={
            "csrf_token": csrf,
            "action": "submit",
            **phone_form(gender="", ethnic_category=""),
        },
    )
    assert response.status_code == 303, response.text
    referral = await only_referral(session)
    assert (referral.gender_code, referral.ethnic_category_code) == (None, None)
    shown = await client.get(response.headers["location"])
    assert "Gender: Not recorded<br>Ethnic group: Not recorded" in shown.text
