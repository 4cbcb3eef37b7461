"""Person search responses."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class PersonReferralSummary(BaseModel):
    id: uuid.UUID
    reference: str
    channel: str
    received_at: datetime
    status: str
    urgency_code: str
    route_kind: str
    queue_id: str | None
    case_id: uuid.UUID | None


class PersonRead(BaseModel):
    id: uuid.UUID
    nhs_number: str | None
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    postcode: str | None
    send: bool
    looked_after: bool
    verified: bool = Field(
        default=True,
        description="false: what a public self-referral said (never merged; staff confirm it)",
    )
    claimed_nhs_number: str | None = Field(
        default=None, description="the NHS number an unverified self-referral gave"
    )
    match: Literal["exact", "close"]
    matched_on: list[str]
    referrals: list[PersonReferralSummary]


class PersonSearchRead(BaseModel):
    matches: list[PersonRead]
