"""Service directory and ruleset responses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class QueueSummary(BaseModel):
    id: str
    name: str
    kind: str
    locality_id: str | None
    open_24_7: bool


class LocalityRead(BaseModel):
    id: str
    name: str
    postcode_districts: list[str]
    community_base: QueueSummary
    one_stop_shop: QueueSummary


class ServicesRead(BaseModel):
    ruleset_version: str
    localities: list[LocalityRead]
    queues: list[QueueSummary]


class RulesetRead(BaseModel):
    version: str
    label: str
    content: dict[str, Any]
