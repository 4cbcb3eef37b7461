"""Aggregate reports: referrals, waits, the waiting list, triage agreement, CYP access.

The rules (what each measure counts, the dimensions, disclosure control) are in
docs/domain/reporting.md. Every figure is computed in the database with GROUP BY; Python only
orders, rounds and disclosure-controls the aggregate rows the database returns (one per group).

The stable entry points (the API, the console and the benchmark call these):

``async def run_report(session, name: ReportName, query: ReportQuery, scope: ReportScope, *,
now: datetime) -> ReportResult``
    Compute one report. ``query`` is what was asked (``parse_query`` builds and validates one
    from the public parameters: ``from``, ``to``, ``by``); ``scope`` is what the reader may see
    (``ReportScope.for_actor``: the queues, and whether small numbers are suppressed); ``now``
    is the moment "still waiting" and "breached" are judged at. Writes nothing.

``async def read_report(session, name, query, scope, *, actor, now, output="json")
-> ReportResult``
    ``run_report`` plus the audit row every report read must leave (who, which report, the
    parameters; no personal data). Pages and the API call this one.

``ReportResult.rows`` are dicts: each dimension in ``columns`` order, then each measure
(int or float, or None when suppressed or when there is nothing to measure), then
``suppressed`` (bool). ``result_csv(result)`` is the CSV form (``*`` for a suppressed cell).

Percentiles are the continuous percentile (linear interpolation between the two nearest ranks,
as PostgreSQL's ``percentile_cont``): on PostgreSQL by ``percentile_cont``, on SQLite (which has
none) by the same arithmetic over ROW_NUMBER and COUNT windows, so both give the same figures.
Waits are measured in whole seconds in the database and shown in days to one decimal place.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    Float,
    Integer,
    Table,
    and_,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app import authz
from app.config import Settings
from app.errors import Forbidden, Unprocessable
from app.models import Case, CaseContact, CaseUrgencyChange, Referral, TriageDecision
from app.models.case import CaseStatus, ContactAttendance
from app.security import Actor
from app.services import audit

REFERRALS = cast(Table, Referral.__table__)
DECISIONS = cast(Table, TriageDecision.__table__)
CASES = cast(Table, Case.__table__)
CONTACTS = cast(Table, CaseContact.__table__)
URGENCY_CHANGES = cast(Table, CaseUrgencyChange.__table__)

SECONDS_PER_DAY = 86_400
# PostgreSQL's work_mem for a report's transaction (see run_report).
REPORT_WORK_MEM = "64MB"
# The CYP access measures count young people under this age (on the referral's received date).
ACCESS_UNDER_AGE = 18
# Age bands for equity reporting (inclusive years); older is "26_and_over".
AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("0-4", 0, 4),
    ("5-10", 5, 10),
    ("11-15", 11, 15),
    ("16-17", 16, 17),
    ("18-25", 18, 25),
)
AGE_BAND_OVER = "26_and_over"


class ReportName(StrEnum):
    REFERRALS = "referrals"
    WAITS = "waits"
    WAITING_LIST = "waiting-list"
    TRIAGE_AGREEMENT = "triage-agreement"
    ACCESS = "access"


# Dimensions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Sources:
    """The tables one report's statement reads, and its dialect."""

    dialect: str
    now: datetime
    # The queue a row belongs to: the routed queue for referral counts, the case's current
    # queue for case measures.
    queue: ColumnElement[Any]
    # The received time months and weeks are of: the referral's, or the case's (the same
    # instant as its opening referral's, read from the case so its index serves).
    received: ColumnElement[Any] = REFERRALS.c.received_at
    # Where the age, locality and equity answers are read: the referral, or (case measures)
    # the case, which carries its opening referral's (copied when it opened).
    opening: Table = REFERRALS


def _utc(column: ColumnElement[Any], sources: _Sources) -> ColumnElement[Any]:
    return func.timezone("UTC", column) if sources.dialect == "postgresql" else column


def _month(s: _Sources) -> ColumnElement[Any]:
    if s.dialect == "postgresql":
        return func.to_char(_utc(s.received, s), "YYYY-MM")
    return func.strftime("%Y-%m", s.received)


def _week(s: _Sources) -> ColumnElement[Any]:
    """The Monday the ISO week of the received date starts on."""
    if s.dialect == "postgresql":
        return func.to_char(func.date_trunc("week", _utc(s.received, s)), "YYYY-MM-DD")
    return func.date(s.received, "weekday 0", "-6 days")


def _age_band(s: _Sources) -> ColumnElement[Any]:
    age = s.opening.c.age_years
    return case(
        *((age.between(low, high), literal(label)) for label, low, high in AGE_BANDS),
        (age > AGE_BANDS[-1][2], literal(AGE_BAND_OVER)),
        else_=None,
    )


def _weeks_waiting(s: _Sources) -> ColumnElement[Any]:
    """Whole weeks since the case's referral was received, at ``now``."""
    now = bindparam("report_now_weeks", s.now, type_=CASES.c.received_at.type)
    if s.dialect == "postgresql":
        seconds = func.date_part("epoch", now - CASES.c.received_at)
        return sql_cast(func.floor(seconds / (7 * SECONDS_PER_DAY)), Integer)
    days = func.julianday(now) - func.julianday(CASES.c.received_at)
    return sql_cast(days / 7, Integer)


def _column(column: ColumnElement[Any]) -> Callable[[_Sources], ColumnElement[Any]]:
    return lambda s: column


def _opening(name: str) -> Callable[[_Sources], ColumnElement[Any]]:
    """A column the referral records and a case carries from its opening referral."""
    return lambda s: s.opening.c[name]


# name -> (expression, needs the triage decision joined)
DIMENSIONS: dict[str, tuple[Callable[[_Sources], ColumnElement[Any]], bool]] = {
    "month": (_month, False),
    "week": (_week, False),
    "channel": (_column(REFERRALS.c.channel), False),
    "referrer_type": (_column(REFERRALS.c.referrer_type), False),
    "source_of_referral": (_column(REFERRALS.c.source_of_referral_code), False),
    "eligibility_outcome": (_column(DECISIONS.c.eligibility_outcome), True),
    "eligibility_rule": (_column(REFERRALS.c.eligibility_rule), False),
    "urgency": (_column(DECISIONS.c.urgency_code), True),
    "thrive_grouping": (_column(DECISIONS.c.thrive_grouping), True),
    "route_kind": (_column(DECISIONS.c.route_kind), True),
    "queue": (lambda s: s.queue, False),
    "locality": (_opening("locality_id"), False),
    "age_band": (_age_band, False),
    "gender": (_opening("gender_code"), False),
    "ethnic_category": (_opening("ethnic_category_code"), False),
    "weeks_waiting": (_weeks_waiting, False),
}
_COMMON = tuple(d for d in DIMENSIONS if d != "weeks_waiting")
_UNDATED = tuple(d for d in _COMMON if d not in ("month", "week"))


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """What a report allows and measures."""

    dimensions: tuple[str, ...]
    default_by: tuple[str, ...]
    measures: tuple[str, ...]
    # Measures that are counts (disclosure-controlled); the rest are waits in days.
    counts: tuple[str, ...]
    # False: the report is "now" (the waiting list); from/to only narrow it when given.
    dated: bool = True
    # Leading columns a report adds before the dimensions (the agreement matrices).
    lead_columns: tuple[str, ...] = ()
    trail_columns: tuple[str, ...] = ()


WAIT_MEASURES = (
    "first_contact_median_days",
    "first_contact_p90_days",
    "second_contact_median_days",
    "second_contact_p90_days",
)
SPECS: dict[ReportName, ReportSpec] = {
    ReportName.REFERRALS: ReportSpec(_COMMON, ("month",), ("referrals",), ("referrals",)),
    ReportName.WAITS: ReportSpec(
        _COMMON,
        ("month",),
        ("referrals", *WAIT_MEASURES, "breached", "waiting"),
        ("referrals", "breached", "waiting"),
    ),
    ReportName.WAITING_LIST: ReportSpec(
        (*_COMMON, "weeks_waiting"),
        ("queue", "age_band", "weeks_waiting"),
        ("waiting",),
        ("waiting",),
        dated=False,
    ),
    ReportName.TRIAGE_AGREEMENT: ReportSpec(
        _COMMON,
        (),
        ("cases",),
        ("cases",),
        lead_columns=("matrix",),
        trail_columns=("proposed", "decided"),
    ),
    ReportName.ACCESS: ReportSpec(
        _UNDATED, (), ("one_contact", "two_contacts"), ("one_contact", "two_contacts")
    ),
}


# Query and scope ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """What was asked: received (or, for access, contact) dates ``start``..``end`` inclusive
    (``start`` None: from the beginning), and the dimensions to group by, in order."""

    start: date | None
    end: date
    by: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReportScope:
    """What a reader may see: ``queue_ids`` None is every queue; counts from 1 to
    ``suppress_below - 1`` are suppressed and the others rounded to ``round_to`` (1 and 1:
    figures exactly as counted)."""

    queue_ids: frozenset[str] | None = None
    suppress_below: int = 1
    round_to: int = 1

    @property
    def disclosure_controlled(self) -> bool:
        return self.suppress_below > 1 or self.round_to > 1

    @classmethod
    def for_actor(cls, actor: Actor, settings: Settings) -> ReportScope:
        """The reader's scope (app/authz.py); 403 for a role that reads no reports."""
        if not authz.can_read_reports(actor):
            raise Forbidden("Reports are for team leads, commissioners and admins.")
        if authz.reports_disclosure_controlled(actor):
            return cls(
                queue_ids=authz.report_queues(actor),
                suppress_below=settings.report_suppress_below,
                round_to=settings.report_round_to,
            )
        return cls(queue_ids=authz.report_queues(actor))


# Dates a report may name: a period must be computable (a year back, a day on) on both databases.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2999, 12, 31)


def default_start(end: date) -> date:
    """Twelve months ending on ``end``: the day after the same date a year earlier."""
    try:
        year_before = end.replace(year=end.year - 1)
    except ValueError:  # 29 February
        year_before = end.replace(year=end.year - 1, day=28)
    return year_before + timedelta(days=1)


def parse_query(
    name: ReportName, start: date | None, end: date | None, by: str | None, *, today: date
) -> ReportQuery:
    """Validate the public parameters: ``to`` defaults to today (UTC) and ``from`` to twelve
    months before it (the waiting list: no lower bound); ``from`` after ``to`` is a 422 naming
    ``from``; an unknown, repeated or empty ``by`` entry is a 422 naming ``by`` and
    listing the dimensions this report allows. ``by`` absent is the report's default; ``by=``
    (empty) is one row of totals."""
    spec = SPECS[name]
    for value, field_name in ((start, "from"), (end, "to")):
        if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
            raise Unprocessable(
                f"'{field_name}' must be a date from {EARLIEST_DATE.isoformat()} to "
                f"{LATEST_DATE.isoformat()}.",
                field=field_name,
            )
    end = end or today
    if start is None and spec.dated:
        start = default_start(end)
    if start is not None and start > end:
        raise Unprocessable("'from' must be on or before 'to'.", field="from")
    if by is None:
        dimensions = spec.default_by
    elif by.strip() == "":
        dimensions = ()
    else:
        dimensions = tuple(part.strip() for part in by.split(","))
        allowed = ", ".join(spec.dimensions)
        if any(d not in spec.dimensions for d in dimensions):
            raise Unprocessable(
                f"'by' lists dimensions separated by commas; the {name.value} report allows: "
                f"{allowed}.",
                field="by",
            )
        if len(set(dimensions)) != len(dimensions):
            raise Unprocessable("'by' names a dimension more than once.", field="by")
    return ReportQuery(start=start, end=end, by=dimensions)


# Results ------------------------------------------------------------------------------------


@dataclass(slots=True)
class ReportResult:
    report: ReportName
    start: date | None
    end: date
    by: tuple[str, ...]
    columns: tuple[str, ...]
    measures: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)
    disclosure_controlled: bool = False

    @property
    def any_suppressed(self) -> bool:
        return any(row["suppressed"] for row in self.rows)


def result_csv(result: ReportResult) -> str:
    """The result as CSV: a header of the columns then the measures; ``*`` for a suppressed
    cell, empty for nothing to measure (no contacts yet, say)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*result.columns, *result.measures])
    for row in result.rows:
        cells: list[Any] = ["" if row[c] is None else row[c] for c in result.columns]
        for measure in result.measures:
            value = row[measure]
            if value is None:
                cells.append("*" if measure in row.get("_suppressed_cells", ()) else "")
            else:
                cells.append(value)
        writer.writerow(cells)
    return out.getvalue()


def public_rows(result: ReportResult) -> list[dict[str, Any]]:
    """The rows without bookkeeping keys (what JSON shows)."""
    return [{k: v for k, v in row.items() if not k.startswith("_")} for row in result.rows]


# Running a report ---------------------------------------------------------------------------


async def run_report(
    session: AsyncSession,
    name: ReportName,
    query: ReportQuery,
    scope: ReportScope,
    *,
    now: datetime,
) -> ReportResult:
    """Compute one report (see the module docstring). Writes nothing."""
    spec = SPECS[name]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # Grouping and percentiles sort every row of the period; with the default 4 MB they
        # spill to disk at a few hundred thousand referrals. For this transaction only.
        await session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
        # Plan each statement for its own period: the driver prepares statements, and after a
        # few runs PostgreSQL may switch to a generic plan that cannot see how many rows the
        # dates select (a nested loop over every case: past the statement timeout at 1M).
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        # No JIT: a report runs for well under a second, and compiling its expressions (which
        # PostgreSQL's cost thresholds ask for at a million rows) took up to a quarter of that.
        await session.execute(text("SET LOCAL jit = off"))
    runner = _RUNNERS[name]
    groups = await runner(session, query, scope, dialect, now)
    result = ReportResult(
        report=name,
        start=query.start,
        end=query.end,
        by=query.by,
        columns=(*spec.lead_columns, *query.by, *spec.trail_columns),
        measures=spec.measures,
        disclosure_controlled=scope.disclosure_controlled,
    )
    for group in sorted(groups, key=lambda g: _sort_key(g, result.columns)):
        result.rows.append(_controlled(group, spec, scope))
    return result


async def read_report(
    session: AsyncSession,
    name: ReportName,
    query: ReportQuery,
    scope: ReportScope,
    *,
    actor: Actor,
    now: datetime,
    output: str = "json",
) -> ReportResult:
    """``run_report`` and its audit row: who read which report with which parameters (dates,
    dimensions, format, how many rows, whether any cell was suppressed). No personal data."""
    result = await run_report(session, name, query, scope, now=now)
    audit.record(
        session,
        actor=actor,
        action="read",
        resource_type="report",
        resource_id=name.value,
        now=now,
        details={
            "from": query.start.isoformat() if query.start else None,
            "to": query.end.isoformat(),
            "by": list(query.by),
            "format": output,
            "rows": len(result.rows),
            "queues": sorted(scope.queue_ids) if scope.queue_ids is not None else "all",
            "disclosure_controlled": scope.disclosure_controlled,
            "suppressed": result.any_suppressed,
        },
    )
    return result


def _sort_key(group: dict[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
    """The same order on both databases: by each column (numbers as numbers), unknown last."""
    key: list[tuple[int, float, str]] = []
    for column in columns:
        value = group.get(column)
        if value is None:
            key.append((1, 0, ""))
        elif isinstance(value, int | float):
            key.append((0, value, ""))
        else:
            key.append((0, 0, str(value)))
    return tuple(key)


def _round_count(value: int, round_to: int) -> int:
    if round_to <= 1:
        return value
    return int((Decimal(value) / round_to).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * round_to


def _days(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    days = Decimal(seconds) / SECONDS_PER_DAY
    return float(days.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _controlled(group: dict[str, Any], spec: ReportSpec, scope: ReportScope) -> dict[str, Any]:
    """One output row: waits in days; for a disclosure-controlled reader, each count from 1 to
    ``suppress_below - 1`` suppressed and each wait whose number of waits is, and every other
    count rounded."""
    row: dict[str, Any] = {
        k: v for k, v in group.items() if not k.startswith("_") and k not in spec.measures
    }
    suppressed_cells: list[str] = []

    def small(n: int) -> bool:
        return 0 < n < scope.suppress_below

    for measure in spec.measures:
        if measure in spec.counts:
            value = int(group.get(measure) or 0)
            if small(value):
                row[measure] = None
                suppressed_cells.append(measure)
            else:
                row[measure] = _round_count(value, scope.round_to)
        else:
            base = int(group.get(f"_n_{measure.split('_')[0]}", 0) or 0)
            if small(base):
                row[measure] = None
                suppressed_cells.append(measure)
            else:
                row[measure] = _days(group.get(f"_s_{measure}"))
    row["suppressed"] = bool(suppressed_cells)
    row["_suppressed_cells"] = tuple(suppressed_cells)
    return row


# The statements -----------------------------------------------------------------------------


def _bounds(query: ReportQuery) -> tuple[datetime | None, datetime]:
    start = datetime.combine(query.start, time(), UTC) if query.start else None
    return start, datetime.combine(query.end + timedelta(days=1), time(), UTC)


def _in_period(column: ColumnElement[Any], query: ReportQuery) -> ColumnElement[bool]:
    start, end = _bounds(query)
    if start is None:
        return column < end
    return and_(column >= start, column < end)


def _dimension_columns(
    query: ReportQuery, sources: _Sources
) -> tuple[list[ColumnElement[Any]], bool]:
    columns: list[ColumnElement[Any]] = [DIMENSIONS[d][0](sources).label(d) for d in query.by]
    needs_decision = any(DIMENSIONS[d][1] for d in query.by)
    return columns, needs_decision


def _in_scope(queue: ColumnElement[Any], scope: ReportScope) -> ColumnElement[bool] | None:
    if scope.queue_ids is None:
        return None
    return queue.in_(sorted(scope.queue_ids))


def _ordinals(count: int, first: int = 1) -> list[ColumnElement[Any]]:
    """GROUP BY the select list's positions: the dimension expressions carry bound constants
    (a date format, a time zone), and a repeated expression would bind them afresh, which
    PostgreSQL would not match to the select list."""
    return [literal_column(str(i)) for i in range(first, first + count)]


def _where(statement: Any, *conditions: ColumnElement[bool] | None) -> Any:
    for condition in conditions:
        if condition is not None:
            statement = statement.where(condition)
    return statement


async def _groups(session: AsyncSession, statement: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in (await session.execute(statement)).mappings()]


def _opening_referral() -> ColumnElement[bool]:
    """The referral that opened the case: the case's dimensions are its."""
    return and_(REFERRALS.c.case_id == CASES.c.id, REFERRALS.c.disposition == "case_opened")


async def _referrals(
    session: AsyncSession, query: ReportQuery, scope: ReportScope, dialect: str, now: datetime
) -> list[dict[str, Any]]:
    sources = _Sources(dialect, now, DECISIONS.c.queue_id)
    dims, needs_decision = _dimension_columns(query, sources)
    needs_decision = needs_decision or "queue" in query.by or scope.queue_ids is not None
    source: Any = REFERRALS
    if needs_decision:
        source = REFERRALS.join(DECISIONS, DECISIONS.c.referral_id == REFERRALS.c.id)
    statement = select(*dims, func.count().label("referrals")).select_from(source)
    statement = _where(
        statement,
        _in_period(REFERRALS.c.received_at, query),
        _in_scope(DECISIONS.c.queue_id, scope) if needs_decision else None,
    ).group_by(*_ordinals(len(dims)))
    return await _groups(session, statement)


# Dimensions a case measure reads from the case itself (its received time, its current queue,
# and what it carries of its opening referral): asked only these, a case report reads the cases
# alone.
_CASE_DIMENSIONS = frozenset(
    {"month", "week", "queue", "weeks_waiting", "age_band", "locality", "gender", "ethnic_category"}
)


def _case_sources(dialect: str, now: datetime) -> _Sources:
    """The sources of a case measure: the case's queue, received time and opening columns."""
    return _Sources(dialect, now, CASES.c.queue_id, CASES.c.received_at, CASES)


def _needs_referral(query: ReportQuery) -> bool:
    """Whether a case report must join each case's opening referral (a referral or decision
    dimension is asked for)."""
    return any(d not in _CASE_DIMENSIONS for d in query.by)


def _case_source(needs_referral: bool, needs_decision: bool) -> Any:
    """The cases, joined to their opening referral (and its decision) only when asked for.

    Every case has exactly one opening referral, received at the case's own ``received_at``
    (intake writes both from the same instant), so a case report that groups by case columns
    only counts the same cases without the join."""
    if not (needs_referral or needs_decision):
        return CASES
    source = CASES.join(REFERRALS, _opening_referral())
    if needs_decision:
        source = source.join(DECISIONS, DECISIONS.c.referral_id == REFERRALS.c.id)
    return source


def _case_period(query: ReportQuery, joined: bool) -> tuple[ColumnElement[bool], ...]:
    """The period on the case's received time, and (when joined) on the opening referral's:
    the same instant, so the planner can range-scan either index."""
    if not joined:
        return (_in_period(CASES.c.received_at, query),)
    return (_in_period(CASES.c.received_at, query), _in_period(REFERRALS.c.received_at, query))


def _seconds(later: ColumnElement[Any], earlier: ColumnElement[Any], dialect: str) -> Any:
    """Whole seconds from ``earlier`` to ``later`` (NULL when ``later`` is)."""
    if dialect == "postgresql":
        return sql_cast(func.round(func.date_part("epoch", later - earlier)), Float)
    return func.round((func.julianday(later) - func.julianday(earlier)) * SECONDS_PER_DAY)


async def _waits(
    session: AsyncSession, query: ReportQuery, scope: ReportScope, dialect: str, now: datetime
) -> list[dict[str, Any]]:
    sources = _case_sources(dialect, now)
    dims, needs_decision = _dimension_columns(query, sources)
    c = CASES.c
    at_now = bindparam("report_now", now, type_=c.respond_by_at.type)
    breached = and_(
        c.respond_by_at.is_not(None),
        or_(
            and_(c.first_contact_at.is_not(None), c.first_contact_at > c.respond_by_at),
            and_(
                c.first_contact_at.is_(None),
                c.status != CaseStatus.CLOSED.value,
                c.respond_by_at < at_now,
            ),
            and_(
                c.first_contact_at.is_(None),
                c.status == CaseStatus.CLOSED.value,
                c.closed_at > c.respond_by_at,
            ),
        ),
    )
    waiting = and_(c.status != CaseStatus.CLOSED.value, c.first_contact_at.is_(None))
    first = _seconds(c.first_contact_at, c.received_at, dialect)
    second = _seconds(c.second_contact_at, c.received_at, dialect)
    joined = needs_decision or _needs_referral(query)
    conditions = (*_case_period(query, joined), _in_scope(c.queue_id, scope))
    source = _case_source(joined, needs_decision)
    if dialect == "postgresql":
        statement = select(
            *dims,
            func.count().label("referrals"),
            func.sum(case((breached, 1), else_=0)).label("breached"),
            func.sum(case((waiting, 1), else_=0)).label("waiting"),
            func.count(first).label("_n_first"),
            func.count(second).label("_n_second"),
            *(
                func.percentile_cont(literal_column(repr(p)))
                .within_group(wait.asc())
                .label(f"_s_{label}")
                for label, wait, p in _PERCENTILES(first, second)
            ),
        ).select_from(source)
        return await _groups(
            session, _where(statement, *conditions).group_by(*_ordinals(len(dims)))
        )
    # SQLite: the same percentile from ranks within each group.
    inner_dims = [d.element.label(d.name) for d in dims]
    partition = [d.element for d in dims]
    ranked = _where(
        select(
            *inner_dims,
            first.label("w_first"),
            second.label("w_second"),
            case((breached, 1), else_=0).label("is_breached"),
            case((waiting, 1), else_=0).label("is_waiting"),
            func.row_number()
            .over(partition_by=[*partition, first.is_(None)], order_by=first)
            .label("rn_first"),
            func.count(first).over(partition_by=partition or None).label("n_first"),
            func.row_number()
            .over(partition_by=[*partition, second.is_(None)], order_by=second)
            .label("rn_second"),
            func.count(second).over(partition_by=partition or None).label("n_second"),
        ).select_from(source),
        *conditions,
    ).subquery("ranked")
    outer_dims = [ranked.c[d.name] for d in dims]  # GROUP BY plain columns here
    statement = select(
        *outer_dims,
        func.count().label("referrals"),
        func.sum(ranked.c.is_breached).label("breached"),
        func.sum(ranked.c.is_waiting).label("waiting"),
        func.max(ranked.c.n_first).label("_n_first"),
        func.max(ranked.c.n_second).label("_n_second"),
        *(
            _ranked_percentile(
                ranked.c[f"w_{which}"], ranked.c[f"rn_{which}"], ranked.c[f"n_{which}"], p
            ).label(f"_s_{label}")
            for label, which, p in _SQLITE_PERCENTILES
        ),
    ).group_by(*outer_dims)
    return await _groups(session, statement)


def _PERCENTILES(first: Any, second: Any) -> tuple[tuple[str, Any, float], ...]:
    return (
        ("first_contact_median_days", first, 0.5),
        ("first_contact_p90_days", first, 0.9),
        ("second_contact_median_days", second, 0.5),
        ("second_contact_p90_days", second, 0.9),
    )


_SQLITE_PERCENTILES = (
    ("first_contact_median_days", "first", 0.5),
    ("first_contact_p90_days", "first", 0.9),
    ("second_contact_median_days", "second", 0.5),
    ("second_contact_p90_days", "second", 0.9),
)


def _ranked_percentile(value: Any, rank: Any, count: Any, p: float) -> ColumnElement[Any]:
    """``percentile_cont(p)`` over a group's non-null ``value``s from their ranks (1-based,
    ascending) and their number: position h = (n - 1) * p; the value at rank floor(h) + 1, plus
    the fraction of h times the step to the next rank (PostgreSQL's arithmetic exactly)."""
    position = (count - 1) * literal(p, Float)
    low_rank = sql_cast(position, Integer) + 1  # h >= 0, so the cast is floor
    group_position = (func.max(count) - 1) * literal(p, Float)
    fraction = group_position - sql_cast(group_position, Integer)
    low = func.max(case((and_(value.is_not(None), rank == low_rank), value)))
    high = func.max(case((and_(value.is_not(None), rank == low_rank + 1), value)))
    return case(
        (func.max(count) > 0, low + fraction * (func.coalesce(high, low) - low)), else_=None
    )


async def _waiting_list(
    session: AsyncSession, query: ReportQuery, scope: ReportScope, dialect: str, now: datetime
) -> list[dict[str, Any]]:
    sources = _case_sources(dialect, now)
    dims, needs_decision = _dimension_columns(query, sources)
    c = CASES.c
    joined = needs_decision or _needs_referral(query)
    statement = select(*dims, func.count().label("waiting")).select_from(
        _case_source(joined, needs_decision)
    )
    # Not the period on the opening referral here: with no lower bound it would invite a scan
    # of every referral; the waiting cases are few, and each finds its opening referral by
    # ``ix_referrals_opening``.
    statement = _where(
        statement,
        c.status != CaseStatus.CLOSED.value,
        c.first_contact_at.is_(None),
        _in_period(CASES.c.received_at, query),
        _in_scope(c.queue_id, scope),
    ).group_by(*_ordinals(len(dims)))
    return await _groups(session, statement)


async def _triage_agreement(
    session: AsyncSession, query: ReportQuery, scope: ReportScope, dialect: str, now: datetime
) -> list[dict[str, Any]]:
    sources = _case_sources(dialect, now)
    dims, needs_decision = _dimension_columns(query, sources)
    c = CASES.c
    u = URGENCY_CHANGES.c
    # The engine's urgency: the case's opening_urgency_code, copied from its opening decision.
    # The clinician's: the latest re-grade's to_code per case (none: never re-graded; a raise
    # by a later referral is the engine's again). Re-grades are few: ranked once and hashed.
    ranked = select(
        u.case_id,
        u.to_code,
        func.row_number()
        .over(partition_by=u.case_id, order_by=(u.changed_at.desc(), u.id.desc()))
        .label("latest"),
    ).where(u.source == "regrade")
    regrades = ranked.subquery("regrades")
    regraded = (
        select(regrades.c.case_id, regrades.c.to_code)
        .where(regrades.c.latest == 1)
        .subquery("regraded")
    )
    joined = needs_decision or _needs_referral(query)
    period = (*_case_period(query, joined), _in_scope(c.queue_id, scope))
    urgency = _where(
        select(
            *dims,
            c.opening_urgency_code.label("proposed"),
            regraded.c.to_code.label("decided"),
            func.count().label("cases"),
        ).select_from(
            _case_source(joined, needs_decision).outerjoin(regraded, regraded.c.case_id == c.id)
        ),
        *period,
    ).group_by(*_ordinals(len(dims) + 2))
    # THRIVE: the case's proposed and decided groupings.
    thrive = _where(
        select(
            *dims,
            c.thrive_grouping_proposed.label("proposed"),
            c.thrive_grouping.label("decided"),
            func.count().label("cases"),
        ).select_from(_case_source(joined, needs_decision)),
        *period,
    ).group_by(*_ordinals(len(dims) + 2))
    rows: list[dict[str, Any]] = []
    for matrix, statement in (("urgency", urgency), ("thrive", thrive)):
        for group in await _groups(session, statement):
            rows.append({"matrix": matrix, **group, "cases": int(group["cases"])})
    return rows


def _contacted_in(query: ReportQuery) -> tuple[ColumnElement[bool], ...]:
    """The cases with an attended contact dated in the period, as disjoint conditions on the
    case's first and latest attended contacts: its first or latest is in the period; or (the
    few with contacts either side of it, none of those two in it) one of its contact records
    is. Separate statements, so each ranges over ``ix_cases_last_contact_at`` by itself (in
    one OR the planner costs the contact look-up for every case and leaves the index)."""
    start, end = _bounds(query)
    c = CASES.c
    if start is None:
        return (c.first_contact_at < end,)
    in_period = (
        select(literal(1))
        .select_from(CONTACTS)
        .where(
            CONTACTS.c.case_id == c.id,
            CONTACTS.c.attendance == ContactAttendance.ATTENDED.value,
            CONTACTS.c.occurred_at >= start,
            CONTACTS.c.occurred_at < end,
        )
        .exists()
    )
    first_or_latest = and_(
        c.last_contact_at >= start,
        c.first_contact_at < end,
        or_(c.first_contact_at >= start, c.last_contact_at < end),
    )
    either_side = and_(c.last_contact_at >= end, c.first_contact_at < start, in_period)
    return first_or_latest, either_side


async def _access(
    session: AsyncSession, query: ReportQuery, scope: ReportScope, dialect: str, now: datetime
) -> list[dict[str, Any]]:
    sources = _case_sources(dialect, now)
    dims, needs_decision = _dimension_columns(query, sources)
    c = CASES.c
    young = c.age_years < ACCESS_UNDER_AGE
    joined = needs_decision or _needs_referral(query)
    source = _case_source(joined, needs_decision)
    # One contact (MHS95): young people with an attended contact in the period, each once per
    # group (a person may have had more than one case, in either part).
    parts = [
        _where(
            select(*dims, c.person_id.label("person_id")).select_from(source),
            contacted,
            young,
            _in_scope(c.queue_id, scope),
        )
        for contacted in _contacted_in(query)
    ]
    either: Any = parts[0] if len(parts) == 1 else union_all(*parts)
    contacted_cases = either.subquery("contacted")
    keys = [contacted_cases.c[d] for d in query.by]
    one = select(
        *keys, func.count(func.distinct(contacted_cases.c.person_id)).label("one_contact")
    ).group_by(*keys)
    # Two contacts (MHS69): referrals whose second attended contact fell in the period.
    two = select(*dims, func.count().label("two_contacts")).select_from(source)
    two = _where(
        two,
        c.second_contact_at.is_not(None),
        _in_period(c.second_contact_at, query),
        young,
        _in_scope(c.queue_id, scope),
    ).group_by(*_ordinals(len(dims)))
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for statement, measure in ((one, "one_contact"), (two, "two_contacts")):
        for group in await _groups(session, statement):
            key = tuple(group[d] for d in query.by)
            row = merged.setdefault(
                key, {**{d: group[d] for d in query.by}, "one_contact": 0, "two_contacts": 0}
            )
            row[measure] = group[measure]
    return list(merged.values())


_Runner = Callable[[AsyncSession, ReportQuery, ReportScope, str, datetime], Any]
_RUNNERS: dict[ReportName, _Runner] = {
    ReportName.REFERRALS: _referrals,
    ReportName.WAITS: _waits,
    ReportName.WAITING_LIST: _waiting_list,
    ReportName.TRIAGE_AGREEMENT: _triage_agreement,
    ReportName.ACCESS: _access,
}
