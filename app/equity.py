"""Equity monitoring codes recorded at intake: gender identity and ethnic category.

The rules are in ``docs/domain/equity-data.md``. Both answers are optional on every channel;
"not stated" (the person was asked and chose not to say) is a real answer with its own code and is
kept apart from "not recorded" (the column is NULL). The codes are the NHS Data Dictionary's, as
the Mental Health Services Data Set carries them, so that reports group the same way national
returns do.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

# NHS Data Dictionary GENDER IDENTITY CODE: the gender identity of a person as stated by the
# person (MHSDS v5 onwards carries it beside PERSON STATED GENDER CODE).
GENDER_IDENTITY: Final[dict[str, str]] = {
    "1": "Male (including trans man)",
    "2": "Female (including trans woman)",
    "3": "Non-binary",
    "4": "Other (not listed)",
    "Z": "Not stated (asked but declined to answer)",
    "X": "Not known (not recorded)",
}
GENDER_NOT_STATED: Final = "Z"
GENDER_NOT_KNOWN: Final = "X"

# NHS Data Dictionary ETHNIC CATEGORY (2001 census categories), England: the ethnicity of a person
# as specified by the person. "Z" is not stated (asked, chose not to say); "99" is not known.
ETHNIC_CATEGORY: Final[dict[str, str]] = {
    "A": "White - British",
    "B": "White - Irish",
    "C": "White - Any other White background",
    "D": "Mixed - White and Black Caribbean",
    "E": "Mixed - White and Black African",
    "F": "Mixed - White and Asian",
    "G": "Mixed - Any other mixed background",
    "H": "Asian or Asian British - Indian",
    "J": "Asian or Asian British - Pakistani",
    "K": "Asian or Asian British - Bangladeshi",
    "L": "Asian or Asian British - Any other Asian background",
    "M": "Black or Black British - Caribbean",
    "N": "Black or Black British - African",
    "P": "Black or Black British - Any other Black background",
    "R": "Other ethnic groups - Chinese",
    "S": "Other ethnic groups - Any other ethnic group",
    "Z": "Not stated",
    "99": "Not known",
}
ETHNIC_NOT_STATED: Final = "Z"
ETHNIC_NOT_KNOWN: Final = "99"


# The same codes as types, for the API's request bodies (OpenAPI shows them as enums).
GenderCode = Literal["1", "2", "3", "4", "Z", "X"]
EthnicCategoryCode = Literal[
    "A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S", "Z", "99"
]
if set(get_args(GenderCode)) != set(GENDER_IDENTITY) or set(get_args(EthnicCategoryCode)) != set(
    ETHNIC_CATEGORY
):
    raise RuntimeError("the equity code types and code lists disagree")


def gender_display(code: str | None) -> str | None:
    """The words for a stored gender identity code (None when not recorded)."""
    return GENDER_IDENTITY.get(code) if code is not None else None


def ethnic_category_display(code: str | None) -> str | None:
    """The words for a stored ethnic category code (None when not recorded)."""
    return ETHNIC_CATEGORY.get(code) if code is not None else None


def sql_in(codes: dict[str, str]) -> str:
    """The codes as a SQL ``IN`` list, for the database check constraints."""
    return "(" + ", ".join(f"'{c}'" for c in codes) + ")"
