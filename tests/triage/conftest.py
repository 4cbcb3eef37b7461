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


def make_facts(**overrides: Any) -> ReferralFacts:
    """A referral for an eligible 13-year-old in Norwich asking for help, with no risk.

    ``risk`` may be given as a dict of RiskAnswers fields.
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
    if isinstance(values.get("risk"), dict):
        values["risk"] = RiskAnswers(**values["risk"])
    return ReferralFacts(**values)


@pytest.fixture(scope="session")
def ruleset() -> Ruleset:
    """The packaged default ruleset (Norfolk & Waveney)."""
    return load_ruleset()


@pytest.fixture
def facts() -> FactsFactory:
    """``facts(**overrides)`` builds a ReferralFacts from the defaults in ``make_facts``."""
    return make_facts
