"""What the engine derives about the referred young person before any rule runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from app.triage.directory import LocalityConfig
from app.triage.facts import ReferralFacts


@dataclass(frozen=True, slots=True)
class Subject:
    """The facts plus derived values every stage reads: age, district and locality."""

    facts: ReferralFacts
    received_on: date
    """The Europe/London date the referral was received: ages are counted on it."""
    age_years: int | None
    """None when there is no date of birth, or it is after ``received_on``."""
    postcode_district: str | None
    """None when there is no usable postcode."""
    locality: LocalityConfig | None
    """None when the district is unknown or not served by the directory."""
