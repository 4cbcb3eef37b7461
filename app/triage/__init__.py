"""The triage engine: pure decision code (no FastAPI, no SQLAlchemy, no I/O but the ruleset file).

``evaluate(facts, ruleset)`` turns one referral's ``ReferralFacts`` into an explainable
``Decision``; ``load_ruleset()`` reads and validates the ruleset it applies.
"""

from app.triage.age import age_on, local_date
from app.triage.decision import (
    URGENCY_RANK,
    Decision,
    Eligibility,
    EligibilityOutcome,
    FiredRule,
    Reason,
    Route,
    RouteKind,
    ThriveGrouping,
    Urgency,
    UrgencyCode,
)
from app.triage.directory import LocalityConfig, QueueConfig
from app.triage.eligibility import EligibilityRule
from app.triage.engine import evaluate
from app.triage.facts import (
    AmhsThreshold,
    CamhsStatus,
    Channel,
    HarmToOthers,
    ReferralFacts,
    ReferrerType,
    RequestKind,
    RiskAnswers,
    SelfHarm,
    SettingPreference,
    Suicidal,
)
from app.triage.postcodes import normalise_postcode, postcode_district
from app.triage.ruleset import (
    DEFAULT_RULESET_PATH,
    RoutingStep,
    Ruleset,
    RulesetError,
    load_ruleset,
    ruleset_from_content,
)

__all__ = [
    "DEFAULT_RULESET_PATH",
    "URGENCY_RANK",
    "AmhsThreshold",
    "CamhsStatus",
    "Channel",
    "Decision",
    "Eligibility",
    "EligibilityOutcome",
    "EligibilityRule",
    "FiredRule",
    "HarmToOthers",
    "LocalityConfig",
    "QueueConfig",
    "Reason",
    "ReferralFacts",
    "ReferrerType",
    "RequestKind",
    "RiskAnswers",
    "Route",
    "RouteKind",
    "RoutingStep",
    "Ruleset",
    "RulesetError",
    "SelfHarm",
    "SettingPreference",
    "Suicidal",
    "ThriveGrouping",
    "Urgency",
    "UrgencyCode",
    "age_on",
    "evaluate",
    "load_ruleset",
    "local_date",
    "normalise_postcode",
    "postcode_district",
    "ruleset_from_content",
]
