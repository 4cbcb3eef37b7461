"""The aggregate reports' JSON (docs/domain/reporting.md)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

# A row: each dimension (a code, a month, a week's Monday, a number of weeks; null for
# "not recorded"), each measure (a count or a wait in days; null when suppressed or when there
# is nothing to measure) and "suppressed".
ReportRow = dict[str, str | int | float | bool | None]


class DisclosureControl(BaseModel):
    """How this reader's figures were protected: counts from 1 to ``suppress_below - 1`` are
    null with ``suppressed: true`` (and so are the waits measured over so few), every other
    count is rounded to the nearest ``round_to``. Absent for readers who see exact figures."""

    suppress_below: int
    round_to: int


class ReportRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    report: str = Field(examples=["waits"])
    from_: date | None = Field(
        alias="from", description="first day counted (UTC); null: from the beginning"
    )
    to: date = Field(description="last day counted (UTC), inclusive")
    by: list[str] = Field(description="the dimensions grouped by, in order")
    columns: list[str] = Field(description="the row keys before the measures, in order")
    measures: list[str]
    disclosure_control: DisclosureControl | None = None
    rows: list[ReportRow]
