"""Reusable field types for request bodies: bounded, stripped, validated."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from nhs_number import is_valid as nhs_number_is_valid  # type: ignore[attr-defined]
from pydantic import AfterValidator, BeforeValidator, StringConstraints

from app.triage.postcodes import normalise_postcode

# Documented limits on free text (README, "Limits").
NAME_MAX_CHARS = 100
ORGANISATION_MAX_CHARS = 200
REASON_MAX_CHARS = 4000
NEEDS_MAX_ITEMS = 20
NEED_MAX_CHARS = 64
AGENCIES_MAX_ITEMS = 20
EARLIEST_DATE_OF_BIRTH = date(1900, 1, 1)


def _blank_to_none(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    return value


Name = Annotated[
    str,
    BeforeValidator(_blank_to_none),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_CHARS),
]
Organisation = Annotated[
    str,
    BeforeValidator(_blank_to_none),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=ORGANISATION_MAX_CHARS),
]
Phone = Annotated[
    str,
    BeforeValidator(_blank_to_none),
    StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 ()\-]{5,30}$"),
]
Email = Annotated[
    str,
    BeforeValidator(_blank_to_none),
    StringConstraints(
        strip_whitespace=True, max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"
    ),
]


def _upper_stripped(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


# Upper-cased before the pattern is checked, so "a81001" is accepted as A81001.
OdsCode = Annotated[
    str,
    BeforeValidator(_upper_stripped),
    StringConstraints(pattern=r"^[A-Z0-9]{3,10}$"),
]
ReasonText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=REASON_MAX_CHARS)]
Need = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        min_length=1,
        max_length=NEED_MAX_CHARS,
        pattern=r"^[a-z0-9_ \-]+$",
    ),
]


def _valid_nhs_number(value: str) -> str:
    digits = value.replace(" ", "").replace("-", "")
    if len(digits) != 10 or not digits.isdigit():
        raise ValueError("NHS number must be 10 digits")
    if not nhs_number_is_valid(digits):
        raise ValueError("NHS number check digit is wrong (Modulus 11)")
    return digits


NhsNumber = Annotated[str, BeforeValidator(_blank_to_none), AfterValidator(_valid_nhs_number)]


def _valid_postcode(value: str) -> str:
    normalised = normalise_postcode(value)
    if normalised is None:
        raise ValueError("not a valid UK postcode")
    return normalised


Postcode = Annotated[
    str,
    BeforeValidator(_blank_to_none),
    StringConstraints(max_length=16),
    AfterValidator(_valid_postcode),
]
