"""Fixtures for the triage engine tests: the default ruleset and a referral-facts factory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from app.triage import (
    AmhsThreshold,
    CamhsStatus,
    Channel,
    ReferralFacts,
    ReferrerType,
    RiskAnswers,
    Ruleset,
    load_ruleset,
)

# A plain Monday in GMT, so the UTC and Europe/London dates agree unless a test says otherwise.
RECEIVED_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

FactsFactory = Callable[..., ReferralFacts]


# Every risk question asked and answered "no" (a question left out is *not asked*).
ANSWERED_NO: dict[str, Any] = {
    "immediate_danger": False,
    "suicidal": "none",
    "self_harm": "none",
    "harm_to_others": "none",
    "safeguarding_concern": False,
}


def make_facts(**overrides: Any) -> ReferralFacts:
    """A referral for an eligible 13-year-old in Norwich asking for help, with no risk.

    ``risk`` may be given as a dict of RiskAnswers fields, read over every question answered
    "no"; pass a ``RiskAnswers`` to leave questions not asked.
    """
    values: dict[str, Any] = {
        "received_at": RECEIVED_AT,
        "channel": Channel.PHONE,
        "referrer_type": ReferrerType.GP,
        "date_of_birth": date(2012, 6, 1),
        "postcode": "NR1 3AB",
        "camhs_status": CamhsStatus.NEVER,
        "amhs_threshold": AmhsThreshold.UNKNOWN,
    }
    values.update(overrides)
    risk = values.get("risk", {})
    if isinstance(risk, dict):
        values["risk"] = RiskAnswers(**{**ANSWERED_NO, **risk})
    return ReferralFacts(**values)


@pytest.fixture(scope="session")
def ruleset() -> Ruleset:
    """The packaged default ruleset (Norfolk & Waveney)."""
    return load_ruleset()


@pytest.fixture
def facts() -> FactsFactory:
    """``facts(**overrides)`` builds a ReferralFacts from the defaults in ``make_facts``."""
    return make_facts
