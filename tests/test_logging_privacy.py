"""Logs carry ids, routes and statuses, never patient identifiers or free text."""

from __future__ import annotations

import io
import json
import logging

from tests.factories import referral_body, self_referral_body, valid_test_nhs_numbers

NHS = valid_test_nhs_numbers(1, start=4242)[0]
GIVEN, FAMILY = "Zephyrine", "Quillfeather"
POSTCODE = "NR2 4TT"
PHONE = "07700 900123"
REASON = "Unmistakable free text about a hard week"


def _identifying_values(dob: str) -> list[str]:
    return [
        NHS,
        GIVEN,
        FAMILY,
        POSTCODE,
        POSTCODE.replace(" ", ""),
        dob,
        PHONE,
        REASON,
        "Pat Example",
    ]


async def test_logs_never_contain_patient_identifiers(client, staff_headers, make_client):
    root = logging.getLogger()
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    try:
        person = {
            "nhs_number": NHS,
            "given_name": GIVEN,
            "family_name": FAMILY,
            "postcode": POSTCODE,
            "phone": PHONE,
        }
        body = referral_body(age=17, person=person, reason=REASON)
        dob = body["person"]["date_of_birth"]
        staff = staff_headers()
        created = await client.post("/v1/referrals", json=body, headers=staff)
        assert created.status_code == 201
        _, gp = await make_client()
        system = referral_body("system", age=17, person=person, reason=REASON)
        await client.post("/v1/referrals", json=system, headers={**gp, "Idempotency-Key": "log"})
        await client.post(
            "/v1/self-referrals", json=self_referral_body(age=17, person=person, reason=REASON)
        )
        await client.post("/v1/triage/evaluate", json=body, headers=staff)
        await client.get(f"/v1/persons?nhs_number={NHS}", headers=staff)
        await client.get(
            f"/v1/persons?family_name={FAMILY}&date_of_birth={dob}&postcode={POSTCODE}",
            headers=staff,
        )
        await client.get(f"/v1/referrals/{created.json()['id']}", headers=staff)
        # Bad input must not be echoed into logs either.
        bad = referral_body(person={**person, "nhs_number": "9990000019"}, reason=REASON)
        await client.post("/v1/referrals", json=bad, headers=staff)
    finally:
        root.removeHandler(handler)

    output = buffer.getvalue()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    # The test is only meaningful if the requests were logged, with their ids.
    assert any(line.get("event") == "referral_received" for line in lines)
    assert created.json()["id"] in output
    assert any(line.get("route") == "/v1/persons" for line in lines)
    assert all("request_id" in line for line in lines if line.get("event") == "request")
    for value in [*_identifying_values(dob), "9990000019"]:
        assert value not in output, f"log output contains {value!r}"
