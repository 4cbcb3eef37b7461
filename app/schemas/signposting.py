"""Signposting in the public API: a service a person can turn to.

Rules: docs/domain/signposting-and-messages.md.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class SignpostServiceRead(BaseModel):
    """A service someone is pointed to: who runs it, what it is and how to reach it."""

    id: str
    name: str
    organisation: str
    description: str
    phone: str | None = Field(default=None, description="a number to call")
    text: str | None = Field(default=None, description="how to text the service")
    url: str | None = None
    email: str | None = None
    min_age: int | None = Field(default=None, description="youngest age served, inclusive")
    max_age: int | None = Field(default=None, description="oldest age served, inclusive")
    areas: list[str] = Field(
        description="'national', or the postcode districts (NR1) and areas (NR) it serves"
    )
    opening_times: str | None = None
    illustrative: bool = Field(
        default=False,
        description="an illustrative local entry of the embedded default directory (no real "
        "contact details; it points to the NHS service finder)",
    )


class SignpostingRead(BaseModel):
    directory_version: str
    services: list[SignpostServiceRead]
