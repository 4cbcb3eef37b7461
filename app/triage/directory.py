"""The service directory: the queues a case can be routed to, and the localities with the
postcode districts each serves and its sites (a Community Base and a One Stop Shop).

The directory is part of a ruleset file (``queues`` and ``localities``) and is versioned with it,
but it describes the service, not the rules: which teams and sites exist and where. The ruleset
(``app/triage/ruleset.py``) validates it with these models and checks the routing settings that
name its queues; routing (``app/triage/routing.py``) reads it through the compiled lookups.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from app.triage.decision import RouteKind
from app.triage.postcodes import is_outward_code

Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
Text = Annotated[str, Field(min_length=1, max_length=500)]


class StrictConfig(BaseModel):
    """A part of a ruleset file (the directory's and the rules' alike)."""

    # Unknown keys are errors: a misspelt key would otherwise silently fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _canonical_district(value: str) -> str:
    district = value.strip().upper()
    if not is_outward_code(district):
        raise ValueError(f"{value!r} is not a UK postcode district (an outward code such as NR1)")
    return district


PostcodeDistrict = Annotated[str, AfterValidator(_canonical_district)]


class QueueConfig(StrictConfig):
    """A queue a case can be routed to: a county-wide team or a site (Community Base, OSS)."""

    id: Identifier
    name: Text
    kind: RouteKind
    locality_id: Identifier | None = None
    open_24_7: bool = Field(default=False, strict=True)

    @field_validator("kind")
    @classmethod
    def _signposting_is_not_a_queue(cls, kind: RouteKind) -> RouteKind:
        if kind is RouteKind.SIGNPOST:
            raise ValueError("signpost is an outcome without a queue, not a queue kind")
        return kind


class LocalityConfig(StrictConfig):
    """A locality of the directory: the postcode districts it serves and its sites."""

    id: Identifier
    name: Text
    postcode_districts: list[PostcodeDistrict] = Field(min_length=1)
    community_base_queue_id: Identifier
    one_stop_shop_queue_id: Identifier


def directory_problems(queues: list[QueueConfig], localities: list[LocalityConfig]) -> list[str]:
    """What is wrong with the directory, each problem with its key path: duplicate ids, unknown
    localities, sites that are not a queue of the right kind, a district in two localities."""
    problems: list[str] = []
    queue_by_id: dict[str, QueueConfig] = {}
    for index, queue in enumerate(queues):
        if queue.id in queue_by_id:
            problems.append(f"queues.{index}.id: duplicate queue id {queue.id!r}")
        queue_by_id[queue.id] = queue
    locality_ids: set[str] = set()
    for index, locality in enumerate(localities):
        if locality.id in locality_ids:
            problems.append(f"localities.{index}.id: duplicate locality id {locality.id!r}")
        locality_ids.add(locality.id)
    for index, queue in enumerate(queues):
        if queue.locality_id is not None and queue.locality_id not in locality_ids:
            problems.append(f"queues.{index}.locality_id: unknown locality {queue.locality_id!r}")
    district_owner: dict[str, str] = {}
    for index, locality in enumerate(localities):
        for setting, kind in (
            ("community_base_queue_id", RouteKind.COMMUNITY_BASE),
            ("one_stop_shop_queue_id", RouteKind.ONE_STOP_SHOP),
        ):
            problem = queue_reference_problem(queue_by_id, getattr(locality, setting), kind)
            if problem:
                problems.append(f"localities.{index}.{setting}: {problem}")
        for position, district in enumerate(locality.postcode_districts):
            owner = district_owner.get(district)
            if owner is None:
                district_owner[district] = locality.id
            else:
                problems.append(
                    f"localities.{index}.postcode_districts.{position}: {district} is already "
                    f"in locality {owner!r}"
                )
    return problems


def queue_reference_problem(
    queue_by_id: dict[str, QueueConfig], queue_id: str, kind: RouteKind
) -> str | None:
    """Why ``queue_id`` cannot stand where a queue of ``kind`` is needed, or None."""
    queue = queue_by_id.get(queue_id)
    if queue is None:
        return f"unknown queue id {queue_id!r}"
    if queue.kind is not kind:
        return f"queue {queue_id!r} is a {queue.kind} queue, not a {kind} queue"
    return None
