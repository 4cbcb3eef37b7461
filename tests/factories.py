"""Plain factory functions for request bodies. NHS numbers are from the never-issued 999 range."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import nhs_number


def valid_test_nhs_numbers(count: int, start: int = 0) -> list[str]:
    """``count`` valid NHS numbers from 999 000 0000 upwards (skipping invalid check digits)."""
    out: list[str] = []
    body = start
    while len(out) < count:
        stem = f"999{body:06d}"
        for check in range(10):
            candidate = stem + str(check)
            if nhs_number.is_valid(candidate):
                out.append(candidate)
                break
        body += 1
    return out


def years_ago(years: int, *, days: int = 0, today: date | None = None) -> date:
    """The date of birth of someone who turned ``years`` old ``days`` days ago."""
    from datetime import timedelta

    today = today or date.today()
    try:
        birthday = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        birthday = today.replace(year=today.year - years, day=28)
    return birthday - timedelta(days=days)


PHONE_REFERRAL: dict[str, Any] = {
    "channel": "phone",
    "referrer": {"type": "parent_carer", "name": "Pat Example", "phone": "01603 000000"},
    "person": {
        "nhs_number": None,
        "given_name": "Alex",
        "family_name": "Testperson",
        "date_of_birth": None,
        "postcode": "NR1 3AB",
        "send": False,
        "looked_after": False,
    },
    "camhs": {"status": "never", "transition_planned": False},
    "amhs_threshold": "unknown",
    "request": "help",
    "needs": ["anxiety", "low_mood"],
    "reason": "Struggling at school since the spring.",
    "risk": {
        "immediate_danger": False,
        "suicidal": "none",
        "self_harm": "none",
        "harm_to_others": "none",
        "safeguarding_concern": False,
        "supported": True,
    },
    "preferences": {"setting": None},
    "consent": {"to_referral": True, "to_share": True, "parent_carer_aware": True, "gillick": None},
}


def referral_body(
    channel: str = "phone", *, age: int = 15, nhs: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """A valid referral body; ``person``/``risk``/... dicts in overrides are merged."""
    body = copy.deepcopy(PHONE_REFERRAL)
    body["channel"] = channel
    body["person"]["date_of_birth"] = years_ago(age, days=30).isoformat()
    body["person"]["nhs_number"] = nhs
    if channel == "drop_in":
        body["site_id"] = "cb-norwich"
    if channel == "system":
        body["referrer"] = {
            "type": "gp",
            "name": "Dr Example",
            "organisation": "Example Surgery",
        }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key].update(value)
        else:
            body[key] = value
    return body


def self_referral_body(
    *, age: int = 17, nhs: str | None = None, **overrides: Any
) -> dict[str, Any]:
    body = referral_body("phone", age=age, nhs=nhs, **overrides)
    del body["channel"]
    body["referrer"] = {"type": "self"}
    # A way to contact them (Ofcom's drama range), unless a test says otherwise.
    body["person"].setdefault("phone", "07700 900123")
    return body
