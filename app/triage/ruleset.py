"""The ruleset: thresholds, urgency triggers, windows, THRIVE mapping and routing, with the
service directory (``app/triage/directory.py``) they route into.

A ruleset is configuration, versioned like code. It is a YAML file (the packaged default is
``app/rulesets/default.yaml``; deployments supply their own) validated here into frozen pydantic
models. Every decision is stamped with ``Ruleset.version``: the human ``label``, "+", and the first
12 hex digits of the sha256 of the canonical JSON of the parsed content, so reformatting or
commenting the file keeps the version while changing any value changes it.

Validation is strict (unknown keys are errors, numbers must be numbers) and checks
cross-references (queues, localities, districts, routing steps), because a typo in a ruleset would
otherwise route a young person to nowhere. Every problem is reported with its key path.

Lookups the engine needs on every referral (district → locality, queue by id, compiled urgency
triggers, prebuilt routes) are computed once here, at load, into ``Ruleset.compiled``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import Field, ValidationError, model_validator

from app.triage.conditions import CompiledCondition, Condition
from app.triage.decision import Route, RouteKind, ThriveGrouping, UrgencyCode
from app.triage.directory import (
    Identifier,
    Text,
    directory_problems,
    queue_reference_problem,
)
from app.triage.directory import LocalityConfig as LocalityConfig  # the ruleset's public API
from app.triage.directory import QueueConfig as QueueConfig
from app.triage.directory import StrictConfig as _Config
from app.triage.facts import Channel, ReferrerType

DEFAULT_RULESET_PATH = Path(__file__).parent.parent / "rulesets" / "default.yaml"

VERSION_HASH_HEX_DIGITS = 12
"""How much of the content's sha256 goes into ``Ruleset.version``."""

MAX_AGE_YEARS_ALLOWED = 150
"""Sanity bound on every age in a ruleset (catches a typo such as 255)."""

HOURS_PER_DAY = 24

ALL_URGENCY_CODES: tuple[UrgencyCode, ...] = tuple(UrgencyCode)

_LOADER_COMPUTED_KEYS = ("version", "content")


class RulesetError(ValueError):
    """A ruleset that cannot be used. The message names each bad key path and what is wrong."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class RoutingStep(StrEnum):
    """The routing steps a ruleset can order (each is implemented in ``app/triage/routing.py``)."""

    CRISIS_URGENCY = "CRISIS_URGENCY"
    DUTY_HIGH_RISK_NOT_ELIGIBLE = "DUTY_HIGH_RISK_NOT_ELIGIBLE"
    SIGNPOST_INELIGIBLE = "SIGNPOST_INELIGIBLE"
    DUTY_CLINICAL_REVIEW = "DUTY_CLINICAL_REVIEW"
    DROP_IN_SITE = "DROP_IN_SITE"
    LOOKED_AFTER = "LOOKED_AFTER"
    ADVICE_ACCESS_HUB = "ADVICE_ACCESS_HUB"
    ONE_STOP_SHOP = "ONE_STOP_SHOP"
    COMMUNITY_BASE = "COMMUNITY_BASE"
    NO_LOCALITY_ACCESS_HUB = "NO_LOCALITY_ACCESS_HUB"


# COMMUNITY_BASE (locality known) and NO_LOCALITY_ACCESS_HUB (locality unknown) between them match
# every referral, so an order containing both always routes.
_TERMINAL_ROUTING_STEPS = (RoutingStep.COMMUNITY_BASE, RoutingStep.NO_LOCALITY_ACCESS_HUB)

# Which county-wide queue each routing step sends to (steps absent here use the directory).
_STEP_QUEUE_SETTING: dict[RoutingStep, str] = {
    RoutingStep.CRISIS_URGENCY: "crisis_queue_id",
    RoutingStep.DUTY_HIGH_RISK_NOT_ELIGIBLE: "duty_queue_id",
    RoutingStep.DUTY_CLINICAL_REVIEW: "duty_queue_id",
    RoutingStep.LOOKED_AFTER: "looked_after_queue_id",
    RoutingStep.ADVICE_ACCESS_HUB: "access_hub_queue_id",
    RoutingStep.NO_LOCALITY_ACCESS_HUB: "access_hub_queue_id",
}
_QUEUE_SETTING_KIND: dict[str, RouteKind] = {
    "crisis_queue_id": RouteKind.CRISIS,
    "duty_queue_id": RouteKind.DUTY,
    "looked_after_queue_id": RouteKind.LOOKED_AFTER,
    "access_hub_queue_id": RouteKind.ACCESS_HUB,
}

AgeYears = Annotated[int, Field(strict=True, ge=0, le=MAX_AGE_YEARS_ALLOWED)]
Hours = Annotated[float, Field(strict=True, ge=0)]


class EligibilityConfig(_Config):
    """Age bounds for the eligibility rules (the rules and their order are in eligibility.py)."""

    max_age_years: AgeYears
    """In scope up to this age (the default 25 means "up to the 26th birthday")."""
    adult_age_years: AgeYears
    """From this age the adult mental health services (AMHS) threshold is asked about."""
    transition_min_age_years: AgeYears
    """CAMHS transition support starts at this age (to adult_age_years - 1 without SEND)."""
    send_transition_max_age_years: AgeYears
    """With SEND, CAMHS transition support continues up to this age."""


class WindowConfig(_Config):
    """How soon an urgency code must be responded to; null means no response window here."""

    respond_within_hours: Hours | None


class UrgencyConfig(_Config):
    """The urgency scale: evaluation order, meanings, response windows and triggers per code."""

    evaluation_order: tuple[UrgencyCode, ...]
    meanings: dict[UrgencyCode, Text]
    windows: dict[UrgencyCode, WindowConfig]
    triggers: dict[UrgencyCode, tuple[Condition, ...]]


class RoutingConfig(_Config):
    """Routing step order and the county-wide queues and thresholds the steps use."""

    order: tuple[RoutingStep, ...]
    crisis_urgency_codes: tuple[UrgencyCode, ...]
    duty_high_risk_urgency_codes: tuple[UrgencyCode, ...]
    advice_urgency_codes: tuple[UrgencyCode, ...]
    one_stop_shop_min_age_years: AgeYears
    one_stop_shop_max_age_years: AgeYears
    crisis_queue_id: Identifier | None = None
    duty_queue_id: Identifier | None = None
    looked_after_queue_id: Identifier | None = None
    access_hub_queue_id: Identifier | None = None
    signposted_name: Text | None = "Signposted"
    """``Route.queue_name`` for a signposted referral (it has no queue)."""


# MHSDS codes (NHS Data Dictionary): SOURCE OF REFERRAL FOR MENTAL HEALTH is a letter and a
# digit (A1, B1, ...); CLINICAL RESPONSE PRIORITY TYPE is 1 emergency, 2 urgent/serious,
# 3 routine, 4 very urgent. docs/domain/fhir-and-codes.md records the versions followed.
SourceOfReferralCode = Annotated[str, Field(pattern=r"^[A-Z][0-9]$")]
ClinicalResponsePriorityType = Literal["1", "2", "3", "4"]
ReferrerOdsCode = Annotated[str, Field(pattern=r"^[A-Z0-9]{3,10}$")]


class SameProviderConfig(_Config):
    """Referrers inside the provider that runs this service (an internal referral)."""

    ods_codes: tuple[ReferrerOdsCode, ...] = ()
    """The provider's own ODS codes: a referrer sending with one of these is internal."""
    by_referrer_type: dict[ReferrerType, SourceOfReferralCode] = Field(default_factory=dict)


class SourceOfReferralConfig(_Config):
    """How a referral's MHSDS source of referral is chosen: the channel first (a drop-in is a
    drop-in whoever came), then an internal referrer, then the referrer's type."""

    by_channel: dict[Channel, SourceOfReferralCode] = Field(default_factory=dict)
    same_provider: SameProviderConfig = Field(default_factory=SameProviderConfig)
    by_referrer_type: dict[ReferrerType, SourceOfReferralCode]


class CodesConfig(_Config):
    """The MHSDS codes each referral records (docs/domain/fhir-and-codes.md)."""

    source_of_referral: SourceOfReferralConfig
    clinical_response_priority_type: dict[UrgencyCode, ClinicalResponsePriorityType]

    def source_of_referral_for(
        self, *, channel: str, referrer_type: str, referrer_ods_code: str | None
    ) -> str:
        """SOURCE OF REFERRAL FOR MENTAL HEALTH for a referral's channel and referrer."""
        config = self.source_of_referral
        by_channel = config.by_channel.get(Channel(channel))
        if by_channel is not None:
            return by_channel
        referrer = ReferrerType(referrer_type)
        internal = config.same_provider
        if referrer_ods_code is not None and referrer_ods_code in internal.ods_codes:
            same_provider = internal.by_referrer_type.get(referrer)
            if same_provider is not None:
                return same_provider
        return config.by_referrer_type[referrer]

    def clinical_response_priority_type_for(self, urgency_code: str) -> str:
        """CLINICAL RESPONSE PRIORITY TYPE for a UK Mental Health Triage Scale code."""
        return self.clinical_response_priority_type[UrgencyCode(urgency_code)]


@dataclass(frozen=True, slots=True)
class UrgencyStep:
    """One urgency code in evaluation order, with everything precomputed for the engine."""

    code: UrgencyCode
    conditions: tuple[CompiledCondition, ...]
    respond_within: timedelta | None
    respond_within_hours: float | None
    meaning: str
    window_text: str
    codes_before: str
    """The codes evaluated before this one ("A, B, C"): what a fallback has fallen through."""
    rule_id: str
    """The fired-rule id, ``URGENCY_<code>``."""
    code_value: str


@dataclass(frozen=True, slots=True)
class CompiledRuleset:
    """Per-ruleset lookups built once at load, so evaluating a referral is dict lookups."""

    locality_by_district: dict[str, LocalityConfig]
    queue_by_id: dict[str, QueueConfig]
    urgency_steps: tuple[UrgencyStep, ...]
    thrive_by_code: dict[UrgencyCode, ThriveGrouping]
    routing_order: tuple[RoutingStep, ...]
    crisis_codes: frozenset[UrgencyCode]
    duty_high_risk_codes: frozenset[UrgencyCode]
    advice_codes: frozenset[UrgencyCode]
    one_stop_shop_min_age_years: int
    one_stop_shop_max_age_years: int
    step_routes: dict[RoutingStep, Route]
    """Prebuilt routes for the steps that send to a county-wide queue."""
    signpost_route: Route
    drop_in_routes: dict[str, Route]
    """Sites a young person can walk into (Community Bases, One Stop Shops), by queue id."""
    community_base_routes: dict[str, Route]
    """By locality id."""
    one_stop_shop_routes: dict[str, Route]
    """By locality id."""


class Ruleset(_Config):
    """A validated ruleset. Build it with ``load_ruleset`` or ``ruleset_from_content``."""

    label: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)]
    description: str = ""
    version: str
    """``label`` + "+" + the first 12 hex digits of sha256(canonical content)."""
    content: dict[str, Any]
    """The parsed ruleset file, as served by ``GET /v1/rulesets/current``."""
    eligibility: EligibilityConfig
    urgency: UrgencyConfig
    thrive_grouping: dict[UrgencyCode, ThriveGrouping]
    routing: RoutingConfig
    queues: list[QueueConfig] = Field(min_length=1)
    localities: list[LocalityConfig] = Field(min_length=1)
    codes: CodesConfig

    @model_validator(mode="after")
    def _check_and_compile(self) -> Self:
        problems = [
            *_eligibility_problems(self.eligibility),
            *_urgency_problems(self.urgency),
            *_code_map_problems("thrive_grouping", self.thrive_grouping),
            *directory_problems(self.queues, self.localities),
            *_routing_problems(self.routing, {q.id: q for q in self.queues}),
            *_codes_problems(self.codes),
        ]
        if problems:
            raise ValueError("; ".join(problems))
        _ = self.compiled  # build the engine's lookups now, not on the first referral
        return self

    @cached_property
    def compiled(self) -> CompiledRuleset:
        """Lookups precomputed for the engine (a plain attribute read after the first)."""
        return _compile(self)

    def queue(self, queue_id: str) -> QueueConfig | None:
        """The queue with this id, or None."""
        return self.compiled.queue_by_id.get(queue_id)

    def locality_for_district(self, district: str) -> LocalityConfig | None:
        """The locality serving a postcode district (``"NR1"``, any case), or None."""
        return self.compiled.locality_by_district.get(district.strip().upper())


def load_ruleset(path: str | Path | None = None) -> Ruleset:
    """Read and validate a ruleset YAML file; None means the packaged default.

    Raises RulesetError naming each bad key path.
    """
    source = DEFAULT_RULESET_PATH if path is None else Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesetError(f"{source}: cannot read the ruleset file ({exc.strerror})") from exc
    try:
        content = yaml.load(text, Loader=_StrictYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise RulesetError(f"{source}: not valid YAML: {exc}") from exc
    return ruleset_from_content(content)


def ruleset_from_content(content: Any) -> Ruleset:
    """Validate already-parsed ruleset content (a mapping, as from YAML or JSON) into a Ruleset."""
    if not isinstance(content, Mapping):
        raise RulesetError("the ruleset must be a mapping of keys to values at its top level")
    present = [key for key in _LOADER_COMPUTED_KEYS if key in content]
    if present:
        raise RulesetError(
            [f"{key}: computed when the ruleset loads; remove it" for key in present]
        )
    owned = copy.deepcopy(dict(content))
    try:
        canonical = json.dumps(
            owned, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        )
    except TypeError as exc:  # keys of mixed types cannot be put in a canonical order
        raise RulesetError(f"every key in a ruleset must be text ({exc})") from exc
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:VERSION_HASH_HEX_DIGITS]
    version = f"{owned.get('label')}+{digest}"
    try:
        return Ruleset.model_validate({**owned, "version": version, "content": owned})
    except ValidationError as exc:
        raise RulesetError([_describe(error) for error in exc.errors()]) from None


class _StrictYamlLoader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping_without_duplicates(
    loader: yaml.SafeLoader, node: yaml.MappingNode
) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictYamlLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping_without_duplicates
)


def _describe(error: Any) -> str:
    """One pydantic error as "key.path: message"."""
    path = ".".join(str(part) for part in error["loc"])
    # A ValueError raised by our own validators carries its own wording; pydantic's prefixes it.
    message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
    return f"{path}: {message}" if path else message


def _code_map_problems(path: str, mapping: Mapping[UrgencyCode, Any]) -> list[str]:
    return [
        f"{path}.{code}: missing; every urgency code A-G must be configured"
        for code in ALL_URGENCY_CODES
        if code not in mapping
    ]


def _codes_problems(config: CodesConfig) -> list[str]:
    by_referrer = config.source_of_referral.by_referrer_type
    return [
        *_code_map_problems(
            "codes.clinical_response_priority_type", config.clinical_response_priority_type
        ),
        *(
            f"codes.source_of_referral.by_referrer_type.{referrer}: missing; every referrer "
            "type must have a source of referral"
            for referrer in ReferrerType
            if referrer not in by_referrer
        ),
    ]


def _eligibility_problems(config: EligibilityConfig) -> list[str]:
    problems = []
    if not config.transition_min_age_years < config.adult_age_years <= config.max_age_years:
        problems.append(
            "eligibility: need transition_min_age_years < adult_age_years <= max_age_years"
        )
    if not config.adult_age_years <= config.send_transition_max_age_years <= config.max_age_years:
        problems.append(
            "eligibility.send_transition_max_age_years: must be between adult_age_years and "
            "max_age_years"
        )
    return problems


def _urgency_problems(config: UrgencyConfig) -> list[str]:
    problems = [
        *_code_map_problems("urgency.meanings", config.meanings),
        *_code_map_problems("urgency.windows", config.windows),
        *_code_map_problems("urgency.triggers", config.triggers),
    ]
    order = config.evaluation_order
    if sorted(order) != sorted(ALL_URGENCY_CODES):
        missing = [code.value for code in ALL_URGENCY_CODES if code not in order]
        repeated = sorted({code.value for code in order if order.count(code) > 1})
        problems.append(
            "urgency.evaluation_order: must list each code A-G exactly once "
            f"(missing: {missing or 'none'}, repeated: {repeated or 'none'})"
        )
        return problems
    last = order[-1]
    for code, conditions in config.triggers.items():
        if not conditions:
            problems.append(f"urgency.triggers.{code}: needs at least one condition")
        for index, condition in enumerate(conditions):
            if condition.fallback and code != last:
                problems.append(
                    f"urgency.triggers.{code}.{index}.fallback: only the last code in "
                    f"evaluation_order ({last}) may be the fallback"
                )
    last_conditions = config.triggers.get(last, ())
    if last_conditions and not any(condition.fallback for condition in last_conditions):
        problems.append(
            f"urgency.triggers.{last}: the last code in evaluation_order needs "
            "`- fallback: true` so every referral gets a code"
        )
    return problems


def _routing_problems(config: RoutingConfig, queue_by_id: dict[str, QueueConfig]) -> list[str]:
    problems: list[str] = []
    seen: set[RoutingStep] = set()
    for index, step in enumerate(config.order):
        if step in seen:
            problems.append(f"routing.order.{index}: {step} is listed twice")
        seen.add(step)
        setting = _STEP_QUEUE_SETTING.get(step)
        if setting is not None and getattr(config, setting) is None:
            problems.append(f"routing.{setting}: required by routing step {step}")
    for step in _TERMINAL_ROUTING_STEPS:
        if step not in seen:
            problems.append(
                f"routing.order: must include {step} (COMMUNITY_BASE and NO_LOCALITY_ACCESS_HUB "
                "together route every referral that no earlier step took)"
            )
    for setting, kind in _QUEUE_SETTING_KIND.items():
        queue_id = getattr(config, setting)
        if queue_id is not None:
            problem = queue_reference_problem(queue_by_id, queue_id, kind)
            if problem:
                problems.append(f"routing.{setting}: {problem}")
    if config.one_stop_shop_min_age_years > config.one_stop_shop_max_age_years:
        problems.append(
            "routing.one_stop_shop_min_age_years: must not exceed one_stop_shop_max_age_years"
        )
    return problems


def _window_text(hours: float | None) -> str:
    if hours is None:
        return "no response window in this service"
    if hours == 0:
        return "respond immediately"
    text = f"respond within {hours:g} hours"
    if hours >= 2 * HOURS_PER_DAY and hours % HOURS_PER_DAY == 0:
        text += f" ({hours / HOURS_PER_DAY:g} days)"
    return text


def _route(queue: QueueConfig, rule: RoutingStep) -> Route:
    return Route(kind=queue.kind, queue_id=queue.id, queue_name=queue.name, rule=rule.value)


def _compile(ruleset: Ruleset) -> CompiledRuleset:
    """Build the engine's lookups. Called after validation, so every reference resolves."""
    queue_by_id = {queue.id: queue for queue in ruleset.queues}
    urgency = ruleset.urgency
    steps: list[UrgencyStep] = []
    reads_so_far: dict[str, None] = {}  # an ordered set: what a fallback has fallen through
    for code in urgency.evaluation_order:
        conditions = urgency.triggers[code]
        compiled = tuple(
            CompiledCondition.build(condition, tuple(reads_so_far)) for condition in conditions
        )
        for condition in conditions:
            reads_so_far.update(dict.fromkeys(condition.input_keys()))
        hours = urgency.windows[code].respond_within_hours
        steps.append(
            UrgencyStep(
                code=code,
                conditions=compiled,
                respond_within=None if hours is None else timedelta(hours=hours),
                respond_within_hours=hours,
                meaning=urgency.meanings[code],
                window_text=_window_text(hours),
                codes_before=", ".join(step.code.value for step in steps),
                rule_id=f"URGENCY_{code.value}",
                code_value=code.value,
            )
        )
    routing = ruleset.routing
    step_routes = {
        step: _route(queue_by_id[getattr(routing, setting)], step)
        for step, setting in _STEP_QUEUE_SETTING.items()
        if getattr(routing, setting) is not None
    }
    drop_in_kinds = (RouteKind.COMMUNITY_BASE, RouteKind.ONE_STOP_SHOP)
    return CompiledRuleset(
        locality_by_district={
            district: locality
            for locality in ruleset.localities
            for district in locality.postcode_districts
        },
        queue_by_id=queue_by_id,
        urgency_steps=tuple(steps),
        thrive_by_code=dict(ruleset.thrive_grouping),
        routing_order=routing.order,
        crisis_codes=frozenset(routing.crisis_urgency_codes),
        duty_high_risk_codes=frozenset(routing.duty_high_risk_urgency_codes),
        advice_codes=frozenset(routing.advice_urgency_codes),
        one_stop_shop_min_age_years=routing.one_stop_shop_min_age_years,
        one_stop_shop_max_age_years=routing.one_stop_shop_max_age_years,
        step_routes=step_routes,
        signpost_route=Route(
            kind=RouteKind.SIGNPOST,
            queue_id=None,
            queue_name=routing.signposted_name,
            rule=RoutingStep.SIGNPOST_INELIGIBLE.value,
        ),
        drop_in_routes={
            queue.id: _route(queue, RoutingStep.DROP_IN_SITE)
            for queue in ruleset.queues
            if queue.kind in drop_in_kinds
        },
        community_base_routes={
            locality.id: _route(
                queue_by_id[locality.community_base_queue_id], RoutingStep.COMMUNITY_BASE
            )
            for locality in ruleset.localities
        },
        one_stop_shop_routes={
            locality.id: _route(
                queue_by_id[locality.one_stop_shop_queue_id], RoutingStep.ONE_STOP_SHOP
            )
            for locality in ruleset.localities
        },
    )
