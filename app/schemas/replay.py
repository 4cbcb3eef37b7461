"""What-if replay: the request and the report (docs/domain/rule-replay.md)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.schemas.common import SingleLine

T = TypeVar("T")

RulesetVersion = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128), SingleLine
]


class ReplayRequest(BaseModel):
    """Replay the referrals received from ``from`` to ``to`` (Europe/London dates, both
    inclusive; either may be left out) under the active ruleset and ``candidate_version``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    candidate_version: RulesetVersion = Field(
        description="a stored ruleset's version (label+hash), as GET /v1/rulesets lists"
    )
    from_: date | None = Field(
        default=None, alias="from", description="first received date (YYYY-MM-DD)"
    )
    to: date | None = Field(default=None, description="last received date (YYYY-MM-DD)")


class Transition(BaseModel):
    """One cell of a from → to matrix: referrals with ``from`` under the active ruleset and
    ``to`` under the candidate (``from == to``: unchanged)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    count: int


class ChangeExamples(BaseModel):
    """Up to 20 referral ids (ids only) for one kind of change, the first met in id order."""

    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    referral_ids: list[str]


class QueueMonth(BaseModel):
    """Referrals one queue received in one month (Europe/London) under each ruleset.
    ``queue_id`` null: routed to no queue (closed with signposting)."""

    queue_id: str | None
    month: str = Field(description="YYYY-MM")
    active: int
    candidate: int
    difference: int = Field(description="candidate - active")


class ChangedCounts(BaseModel):
    eligibility: int
    urgency: int
    thrive: int
    route: int


class ByDimension(BaseModel, Generic[T]):
    eligibility: list[T]
    urgency: list[T]
    thrive: list[T]
    route: list[T]


class ReplayReport(BaseModel):
    """How the candidate would have decided the referrals in the window, compared with the
    active ruleset. Route values are queue ids, or ``signposted`` for no queue."""

    model_config = ConfigDict(populate_by_name=True)

    active_version: str
    candidate_version: str
    from_: date | None = Field(alias="from")
    to: date | None
    referrals: int = Field(description="referrals replayed (received in the window)")
    changed: ChangedCounts = Field(description="referrals whose outcome differs, per dimension")
    transitions: ByDimension[Transition] = Field(
        description="from → to matrix per dimension; counts sum to ``referrals``"
    )
    queues: list[QueueMonth]
    examples: ByDimension[ChangeExamples] = Field(
        description="per changed cell of each matrix, up to 20 referral ids"
    )
    stored_under_active: int = Field(
        description="referrals whose stored decision was made under the active version"
    )
    stored_disagreements: int = Field(
        description="of those, how many the active ruleset now decides differently from the "
        "stored decision: anything but 0 means the engine has changed since, and the report "
        "should not be relied on"
    )
    distinct_inputs: int = Field(description="distinct inputs evaluated (each under both)")
