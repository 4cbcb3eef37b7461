"""Stored rulesets, their activation history and the outcome of publishing or activating."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class RulesetVersionRead(BaseModel):
    version: str = Field(description="label + '+' + 12 hex digits of the content's sha256")
    label: str
    active: bool = Field(description="Whether this is the version every process uses now")
    published_at: datetime = Field(description="When this version was first stored")
    published_by: str | None = Field(
        description="Who stored it (a staff id, cli:<account> or system:startup); null for "
        "versions stored before rulesets were published"
    )
    last_activated_at: datetime | None = Field(
        description="The latest activation of this version among the history returned"
    )


class RulesetActivationRead(BaseModel):
    seq: int = Field(description="Position in the history; the highest is the active version")
    from_version: str | None
    to_version: str
    activated_by: str
    activated_at: datetime


class RulesetsList(BaseModel):
    active_version: str | None
    check_seconds: float = Field(
        description="How often each process checks which version is active: a new activation "
        "is live everywhere within about this long"
    )
    versions: list[RulesetVersionRead] = Field(description="Newest first")
    activations: list[RulesetActivationRead] = Field(description="Newest first (at most 50)")


class RulesetStoredRead(RulesetVersionRead):
    content: dict[str, Any] = Field(description="The parsed content the version hashes")
    source_yaml: str | None = Field(description="The YAML text as published")


class RulesetPublished(BaseModel):
    version: str
    label: str
    created: bool = Field(description="False when the same content was already stored")
    active: bool
    published_at: datetime
    published_by: str | None


class RulesetActivated(BaseModel):
    version: str
    changed: bool = Field(description="False when the version was already active")
    activation: RulesetActivationRead
    check_seconds: float = Field(description="Every process serves it within about this long")
