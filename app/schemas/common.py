"""Reusable field types for request bodies: bounded, stripped, validated."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from nhs_number import is_valid as nhs_number_is_valid  # type: ignore[attr-defined]
from pydantic import AfterValidator, BaseModel, BeforeValidator, StringConstraints, model_validator

from app.triage.postcodes import normalise_postcode

# Documented limits on free text (README, "Limits").
NAME_MAX_CHARS = 100
ORGANISATION_MAX_CHARS = 200
REASON_MAX_CHARS = 4000
NEEDS_MAX_ITEMS = 20
NEED_MAX_CHARS = 64
AGENCIES_MAX_ITEMS = 20
EARLIEST_DATE_OF_BIRTH = date(1900, 1, 1)


# Text the database cannot store (PostgreSQL refuses NUL; lone surrogates are not UTF-8) or that
# has no business in a name: C0 control characters, DEL, and UTF-16 surrogate halves.
_FORBIDDEN_IN_LINE = frozenset(chr(c) for c in [*range(0x20), 0x7F])
_FORBIDDEN_IN_TEXT = _FORBIDDEN_IN_LINE - {"\t", "\n", "\r"}


def _check_characters(value: str, forbidden: frozenset[str]) -> str:
    for ch in value:
        if ch in forbidden or "\ud800" <= ch <= "\udfff":
            raise ValueError("contains a control character or invalid Unicode")
    return value


def single_line(value: str) -> str:
    """Reject control characters (including NUL and line breaks) and lone surrogates."""
    return _check_characters(value, _FORBIDDEN_IN_LINE)


def multi_line(value: str) -> str:
    """As ``single_line``, but tabs and line breaks are fine (free text)."""
    return _check_characters(value, _FORBIDDEN_IN_TEXT)


SingleLine = AfterValidator(single_line)
MultiLine = AfterValidator(multi_line)


def _blank_to_none(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    return value


class BlankIsAbsent(BaseModel):
    """A request body in which ``""`` (or only spaces) for an optional field means the field
    was left out: forms and clients send empty strings for unanswered questions, and
    ``"date_of_birth": ""`` is "not given", not a 422. The field then takes its default.

    Only optional fields (those with a default): a required field keeps its blank value and
    fails validation naming the field. Base of every request body (``StrictModel``).
    """

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        blank: list[str] = []
        for name, field in cls.model_fields.items():
            if field.is_required():
                continue
            for key in {name, field.alias or name}:
                value = data.get(key)
                if isinstance(value, str) and not value.strip():
                    blank.append(key)
        if not blank:
            return data
        return {k: v for k, v in data.items() if k not in blank}


Name = Annotated[
    str,
    BeforeValidator(_blank_to_none),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_CHARS),
    SingleLine,
]
Organisation = Annotated[
    str,
    BeforeValidator(_blank_to_none),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=ORGANISATION_MAX_CHARS),
    SingleLine,
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
    SingleLine,
]


def _upper_stripped(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


# Upper-cased before the pattern is checked, so "a81001" is accepted as A81001.
OdsCode = Annotated[
    str,
    BeforeValidator(_upper_stripped),
    StringConstraints(pattern=r"^[A-Z0-9]{3,10}$"),
]
ReasonText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=REASON_MAX_CHARS), MultiLine
]
# Identifiers that name things in the service directory (queue and site ids).
DirectoryId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
]
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
