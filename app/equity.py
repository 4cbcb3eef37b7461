"""Equity monitoring codes recorded at intake: gender identity and ethnic category.

The rules are in ``docs/domain/equity-data.md``. Both answers are optional on every channel;
"not stated" (the person was asked and chose not to say) is a real answer with its own code and is
kept apart from "not recorded" (the column is NULL). The codes are the NHS Data Dictionary's, as
the Mental Health Services Data Set carries them, so that reports group the same way national
returns do.
"""

from __future__ import annotations

from typing import Final

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


def sql_in(codes: dict[str, str]) -> str:
    """The codes as a SQL ``IN`` list, for the database check constraints."""
    return "(" + ", ".join(f"'{c}'" for c in codes) + ")"
