"""The reports dashboard in the console: for team leads (their own queues), commissioners (every
queue, small numbers suppressed) and admins.

One page per report (referrals, waits and breaches, the waiting list, triage agreement, access),
each a GET form of filters (dates, queue, dimension) so a URL can be shared, then charts drawn on
the server as SVG, each followed by the same figures as a table, and a "Download CSV" link per
table. Every figure comes from ``app.services.reports.read_report``, the function behind
``GET /v1/reports/…``, with the reader's ``ReportScope``: the page never counts anything itself,
so its figures are the API's. A page reading three groupings makes three audited reads.

A suppressed count is never drawn as a bar (so never as zero): the chart writes "fewer than 8"
where the bar would be and the table says the same. Rules: docs/domain/reports-dashboard.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import can_see_queue
from app.config import Settings
from app.deps import ClockDep, RulesetDep, SessionDep, SettingsDep, authenticate_staff
from app.equity import ETHNIC_CATEGORY, GENDER_IDENTITY
from app.errors import Forbidden, Unauthenticated, Unprocessable
from app.models import Queue
from app.routers.reports import csv_response
from app.security import Actor
from app.services import audit
from app.services.reports import (
    ReportName,
    ReportQuery,
    ReportResult,
    ReportScope,
    default_start,
    parse_query,
    read_report,
)
from app.triage import Ruleset
from app.web.console import SignInRequired, _page
from app.web.signing import STAFF_COOKIE
from app.web.templating import humanise

router = APIRouter(prefix="/console/reports", include_in_schema=False)

DATE_MAX_CHARS = 10
QUEUE_MAX_CHARS = 64


async def report_console_actor(request: Request) -> Actor:
    """The signed-in member of staff, as ``console_actor``, but a commissioner is admitted too
    (the reports are the one part of the console they may use); which roles read reports is
    decided by ``ReportScope.for_actor``."""
    token = request.cookies.get(STAFF_COOKIE)
    if not token:
        raise SignInRequired()
    try:
        actor = await authenticate_staff(request, token, reports_only_role=True)
    except (Unauthenticated, Forbidden) as exc:
        raise SignInRequired(exc.detail) from exc
    if not isinstance(actor, Actor) or not actor.is_staff:
        raise SignInRequired("Only Front Door staff can use the console.")
    request.state.actor = actor
    return actor


ReportConsoleActor = Annotated[Actor, Depends(report_console_actor)]


# The pages: which report, its title, the dimension the reader picks and what is shown ----------


@dataclass(frozen=True, slots=True)
class PageSpec:
    name: ReportName
    slug: str
    title: str
    summary: str
    # The dimensions a reader may choose on this page ("" = totals only), the default first.
    choices: tuple[str, ...]


# Dimensions offered in the filter (a subset of what the API allows: those a lead asks for).
_GROUPINGS = (
    "channel",
    "queue",
    "urgency",
    "referrer_type",
    "source_of_referral",
    "locality",
    "age_band",
    "gender",
    "ethnic_category",
    "eligibility_outcome",
    "route_kind",
    "thrive_grouping",
)
PAGES: dict[str, PageSpec] = {
    page.slug: page
    for page in (
        PageSpec(
            ReportName.REFERRALS,
            "referrals",
            "Referrals",
            "Referrals received in the period, by month and by what you choose.",
            _GROUPINGS,
        ),
        PageSpec(
            ReportName.WAITS,
            "waits",
            "Waits and breaches",
            "For cases opened in the period: days from referral to the first and second "
            "attended contact, how many were or are past their respond-by time without contact "
            "(breached), and how many are still waiting.",
            ("queue", "month", *(g for g in _GROUPINGS if g != "queue")),
        ),
        PageSpec(
            ReportName.WAITING_LIST,
            "waiting-list",
            "Waiting list",
            "Open cases no one has contacted yet, now: how many, and for how many whole weeks "
            "they have waited since the referral.",
            ("queue", *(g for g in _GROUPINGS if g != "queue")),
        ),
        PageSpec(
            ReportName.TRIAGE_AGREEMENT,
            "triage-agreement",
            "Triage agreement",
            "For cases opened in the period: the urgency the triage engine gave against the "
            "one a clinician re-graded to, and the THRIVE grouping proposed against the one "
            "decided with the young person.",
            ("",),
        ),
        PageSpec(
            ReportName.ACCESS,
            "access",
            "Access",
            "The children and young people's access measures for under 18s: young people with "
            "an attended contact in the period, and referrals whose second attended contact "
            "fell in it.",
            ("", *_GROUPINGS),
        ),
    )
}

DIMENSION_NAMES = {
    "": "No grouping (totals)",
    "month": "Month",
    "week": "Week",
    "channel": "Channel",
    "referrer_type": "Who referred",
    "source_of_referral": "Source of referral (MHSDS code)",
    "eligibility_outcome": "Eligibility",
    "eligibility_rule": "Eligibility rule",
    "urgency": "Urgency (engine)",
    "thrive_grouping": "THRIVE grouping (proposed)",
    "route_kind": "Route",
    "queue": "Queue",
    "locality": "Locality",
    "age_band": "Age band",
    "gender": "Gender",
    "ethnic_category": "Ethnic group",
    "weeks_waiting": "Weeks waiting",
}

MEASURE_NAMES = {
    "referrals": "Referrals",
    "first_contact_median_days": "Median days to first contact",
    "first_contact_p90_days": "90th percentile days to first contact",
    "second_contact_median_days": "Median days to second contact",
    "second_contact_p90_days": "90th percentile days to second contact",
    "breached": "Breached",
    "waiting": "Still waiting",
    "cases": "Cases",
    "one_contact": "Young people with one contact",
    "two_contacts": "Referrals with two contacts",
}

CHANNEL_NAMES = {"phone": "Phone", "web": "Web form", "drop_in": "Drop-in", "system": "System"}
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True, slots=True)
class Labels:
    """Display names for dimension values: queues and localities from the directory."""

    queues: dict[str, str]
    localities: dict[str, str]
    queue_kinds: dict[str, str] = field(default_factory=dict)

    def value(self, dimension: str, value: Any) -> str:
        if value is None:
            return "Not recorded"
        text = str(value)
        if dimension == "month" and len(text) == 7:
            return f"{MONTHS[int(text[5:]) - 1]} {text[:4]}"
        if dimension == "week":
            return f"Week of {date.fromisoformat(text):%-d %B %Y}"
        if dimension == "queue":
            return self.queues.get(text, text)
        if dimension == "locality":
            return self.localities.get(text, text)
        if dimension == "channel":
            return CHANNEL_NAMES.get(text, humanise(text))
        if dimension == "gender":
            return GENDER_IDENTITY.get(text, text)
        if dimension == "ethnic_category":
            return ETHNIC_CATEGORY.get(text, text)
        if dimension == "age_band":
            return "26 and over" if text == "26_and_over" else text.replace("-", " to ")
        if dimension == "weeks_waiting":
            weeks = int(value)
            return "Under 1 week" if weeks == 0 else f"{weeks} week" + ("" if weeks == 1 else "s")
        if dimension == "urgency":
            return f"Urgency {text}"
        if dimension == "source_of_referral":
            return text
        return humanise(text)


# Cells, tables and charts --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One figure as shown: ``value`` None when suppressed or when there is nothing to measure
    (``suppressed`` says which)."""

    value: int | float | None
    suppressed: bool
    text: str


def cell(row: dict[str, Any], measure: str, scope: ReportScope) -> Cell:
    value = row.get(measure)
    suppressed = measure in row.get("_suppressed_cells", ())
    if suppressed:
        return Cell(None, True, suppressed_text(scope))
    if value is None:
        return Cell(None, False, "None yet")
    if isinstance(value, float):
        return Cell(value, False, f"{value:,.1f}")
    return Cell(value, False, f"{value:,}")


def suppressed_text(scope: ReportScope) -> str:
    return f"fewer than {scope.suppress_below}"


@dataclass(frozen=True, slots=True)
class Table:
    id: str
    caption: str
    headers: tuple[str, ...]  # the row header's column first
    numeric: tuple[bool, ...]
    rows: list[tuple[str, list[Cell]]]
    csv_href: str
    row_links: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    cell: Cell
    width: float  # percent of the chart's width (0 for a suppressed or missing value)
    y: int


@dataclass(frozen=True, slots=True)
class Chart:
    id: str
    title: str
    desc: str
    bars: list[Bar]
    height: int
    caption: str = ""  # shown above the chart: what its bars measure


BAR_ROW_HEIGHT = 46  # the label line and the bar beneath it
BAR_MAX_WIDTH = 72.0  # percent: room for the figure after the longest bar


def bar_chart(chart_id: str, title: str, rows: Sequence[tuple[str, Cell]], unit: str) -> Chart:
    """A horizontal bar chart: one bar per row, scaled to the largest shown value. A suppressed
    or missing value gets no bar, only its words, so it can never read as zero."""
    shown = [c.value for _, c in rows if c.value is not None]
    top = max(shown, default=0) or 1
    bars = [
        Bar(
            label=label,
            cell=c,
            width=0.0 if c.value is None else round(BAR_MAX_WIDTH * c.value / top, 2),
            y=index * BAR_ROW_HEIGHT,
        )
        for index, (label, c) in enumerate(rows)
    ]
    suppressed = sum(1 for _, c in rows if c.suppressed)
    desc = f"{len(rows)} bars, {unit}; the largest is {_figure(top)}."
    if suppressed:
        desc += f" {suppressed} suppressed, drawn without a bar. The table below has every figure."
    else:
        desc += " The table below has every figure."
    return Chart(chart_id, title, desc, bars, max(len(bars), 1) * BAR_ROW_HEIGHT + 8)


def _figure(value: float) -> str:
    return f"{value:,.1f}" if isinstance(value, float) and not value.is_integer() else f"{value:,}"


# Filters -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Filters:
    start: date | None
    end: date | None
    queue: str
    by: str
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)


def _date(text: str, name: str, label: str, errors: dict[str, str]) -> date | None:
    text = text.strip()
    if not text:
        return None
    if len(text) > DATE_MAX_CHARS:
        errors[name] = f"Enter the {label} as a date, for example 2026-04-01"
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[name] = f"Enter the {label} as a real date, for example 2026-04-01"
        return None


def read_filters(request: Request, page: PageSpec, queues: dict[str, str]) -> Filters:
    """The GET form's answers: a bad date, an unknown queue or grouping is an error on the form
    (never a 5xx, never echoed back unescaped)."""
    params = request.query_params
    values = {
        "from": params.get("from", "")[:40],
        "to": params.get("to", "")[:40],
        "queue": params.get("queue", "")[: QUEUE_MAX_CHARS + 1],
        "by": params.get("by", page.choices[0])[:40],
    }
    errors: dict[str, str] = {}
    start = _date(values["from"], "from", "start date", errors)
    end = _date(values["to"], "to", "end date", errors)
    if start and end and start > end:
        errors["from"] = "The start date must be on or before the end date"
    queue = values["queue"]
    if queue and queue not in queues:
        errors["queue"] = "Choose a queue from the list"
        queue = ""
    by = values["by"]
    if by not in page.choices:
        errors["by"] = "Choose a grouping from the list"
        by = page.choices[0]
    return Filters(start, end, queue, by, values, errors)


def narrowed(scope: ReportScope, queue: str) -> ReportScope:
    """The reader's scope narrowed to one queue (never widened: a team lead's other queues are
    not theirs to pick)."""
    if not queue:
        return scope
    allowed = scope.queue_ids
    queue_ids = frozenset({queue}) if allowed is None or queue in allowed else frozenset()
    return ReportScope(
        queue_ids=queue_ids, suppress_below=scope.suppress_below, round_to=scope.round_to
    )


async def _queues(session: AsyncSession, ruleset: Ruleset) -> dict[str, tuple[str, str]]:
    """Every queue (retired ones too: old cases name them) as id -> (name, kind), in the
    directory's order."""
    order = {queue.id: index for index, queue in enumerate(ruleset.queues)}
    queues = (await session.execute(select(Queue.id, Queue.name, Queue.kind))).all()
    ordered = sorted(queues, key=lambda q: (order.get(q.id, len(order)), q.name))
    return {q.id: (q.name, q.kind) for q in ordered}


# The routes ----------------------------------------------------------------------------------


@router.get("")
async def reports_home(actor: ReportConsoleActor) -> Response:
    """The first report: referrals."""
    return RedirectResponse("/console/reports/referrals", status_code=303)


def _refused(request: Request, actor: Actor) -> Response:
    return _page(
        request,
        "console/problem.html",
        actor,
        {
            "title": "You cannot see reports",
            "message": "Reports are for team leads, commissioners and admins.",
        },
        status_code=403,
    )


async def _open(
    slug: str,
    request: Request,
    actor: Actor,
    session: AsyncSession,
    settings: Settings,
    now: datetime,
) -> tuple[PageSpec, ReportScope] | Response:
    """The report a page or download names and the reader's scope for it, or the page that
    says why not: 404 for no such report, 403 (audited as a refusal) for a role without reports."""
    page = PAGES.get(slug)
    if page is None:
        return _not_found(request, actor)
    try:
        return page, ReportScope.for_actor(actor, settings)
    except Forbidden:
        await audit.record_refusal(
            session,
            actor=actor,
            action="read",
            resource_type="report",
            resource_id=page.name.value,
            now=now,
        )
        return _refused(request, actor)


def _query_string(filters: Filters, by: str, **extra: str) -> str:
    params = {
        "from": filters.start.isoformat() if filters.start else "",
        "to": filters.end.isoformat() if filters.end else "",
        "queue": filters.queue,
        "by": by,
        **extra,
    }
    return urlencode({k: v for k, v in params.items() if v or k == "by"})


@router.get("/{slug}.csv")
async def report_csv(
    slug: str,
    request: Request,
    actor: ReportConsoleActor,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    ruleset: RulesetDep,
) -> Response:
    """The CSV of one grouping, as ``GET /v1/reports/{report}`` with ``Accept: text/csv``
    (``by`` here is exactly the API's: dimensions separated by commas)."""
    now = clock.now()
    opened = await _open(slug, request, actor, session, settings, now)
    if isinstance(opened, Response):
        return opened
    page, scope = opened
    queues = await _queues(session, ruleset)
    params = request.query_params
    errors: dict[str, str] = {}
    start = _date(params.get("from", "")[:40], "from", "start date", errors)
    end = _date(params.get("to", "")[:40], "to", "end date", errors)
    queue = params.get("queue", "")
    if queue and queue not in queues:
        errors["queue"] = "Choose a queue from the list"
    try:
        if errors:
            raise Unprocessable(next(iter(errors.values())), field=f"query:{next(iter(errors))}")
        query = parse_query(page.name, start, end, params.get("by"), today=now.date())
    except Unprocessable as exc:
        return _page(
            request,
            "console/problem.html",
            actor,
            {"title": "This download could not be made", "message": exc.detail},
            status_code=422,
        )
    result = await read_report(
        session, page.name, query, narrowed(scope, queue), actor=actor, now=now, output="csv"
    )
    return csv_response(result)


def _not_found(request: Request, actor: Actor) -> Response:
    return _page(
        request,
        "console/problem.html",
        actor,
        {"title": "Report not found", "message": "There is no report at this address."},
        status_code=404,
    )


@router.get("/{slug}")
async def report_page(
    slug: str,
    request: Request,
    actor: ReportConsoleActor,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    ruleset: RulesetDep,
) -> Response:
    """One report's page: the filters, then its charts and tables."""
    now = clock.now()
    opened = await _open(slug, request, actor, session, settings, now)
    if isinstance(opened, Response):
        return opened
    page, scope = opened
    queues = await _queues(session, ruleset)
    queue_names = {queue_id: name for queue_id, (name, _) in queues.items()}
    # The queues the reader may pick: a team lead's own, everyone else's all.
    pickable = (
        queue_names
        if scope.queue_ids is None
        else {q: n for q, n in queue_names.items() if q in scope.queue_ids}
    )
    filters = read_filters(request, page, pickable)
    labels = Labels(
        queues=queue_names,
        localities={locality.id: locality.name for locality in ruleset.localities},
        queue_kinds={queue_id: kind for queue_id, (_, kind) in queues.items()},
    )
    context: dict[str, Any] = {
        "nav": "reports",
        "pages": list(PAGES.values()),
        "page": page,
        "filters": filters,
        "dimension_names": DIMENSION_NAMES,
        "queue_choices": pickable,
        "scope": scope,
        "suppressed_words": suppressed_text(scope),
        "lead_queues": [queue_names.get(q, q) for q in sorted(scope.queue_ids)]
        if scope.queue_ids is not None
        else None,
        "error_summary": [
            {"href": f"#{name}", "text": message} for name, message in filters.errors.items()
        ],
        "sections": [],
    }
    if filters.errors:
        return _page(
            request, "console/reports.html", actor, context | {"period": None}, status_code=422
        )
    reader = _Reader(session, page, filters, narrowed(scope, filters.queue), actor, now, labels)
    period_query = parse_query(page.name, filters.start, filters.end, "", today=now.date())
    context["period"] = (period_query.start, period_query.end)
    context["default_start"] = default_start(period_query.end)
    if page.name is ReportName.TRIAGE_AGREEMENT:
        context["sections"] = await reader.agreement()
    else:
        context["sections"] = await reader.sections()
    context["empty"] = all(section.empty for section in context["sections"])
    return _page(request, "console/reports.html", actor, context)


@dataclass(slots=True)
class Section:
    """A heading, its chart(s) and the table with the same figures."""

    id: str
    heading: str
    charts: list[Chart]
    table: Table
    empty: bool


class _Reader:
    """Reads the page's groupings through ``read_report`` and lays them out."""

    def __init__(
        self,
        session: AsyncSession,
        page: PageSpec,
        filters: Filters,
        scope: ReportScope,
        actor: Actor,
        now: datetime,
        labels: Labels,
    ) -> None:
        self.session, self.page, self.filters, self.scope = session, page, filters, scope
        self.actor, self.now, self.labels = actor, now, labels

    async def read(self, by: str) -> ReportResult:
        query: ReportQuery = parse_query(
            self.page.name, self.filters.start, self.filters.end, by, today=self.now.date()
        )
        return await read_report(
            self.session, self.page.name, query, self.scope, actor=self.actor, now=self.now
        )

    def csv_href(self, by: str) -> str:
        return f"/console/reports/{self.page.slug}.csv?{_query_string(self.filters, by)}"

    def table(self, result: ReportResult, table_id: str, caption: str, by: str) -> Table:
        """The result as a table: one row per group (its dimensions' names joined), one column
        per measure."""
        dims = [c for c in result.columns]
        rows: list[tuple[str, list[Cell]]] = []
        links: dict[str, str] = {}
        for row in result.rows:
            label = ", ".join(self.labels.value(d, row.get(d)) for d in dims) or "All"
            rows.append((label, [cell(row, m, self.scope) for m in result.measures]))
            queue_id = row.get("queue")
            kind = self.labels.queue_kinds.get(str(queue_id))
            if dims == ["queue"] and kind and can_see_queue(self.actor, str(queue_id), kind):
                links[label] = f"/console/queues/{queue_id}"
        heading = " and ".join(DIMENSION_NAMES.get(d, humanise(d)) for d in dims) or "Period"
        return Table(
            id=table_id,
            caption=caption,
            headers=(heading, *(MEASURE_NAMES.get(m, humanise(m)) for m in result.measures)),
            numeric=(False, *(True for _ in result.measures)),
            rows=rows,
            csv_href=self.csv_href(by),
            row_links=links,
        )

    def chart(self, result: ReportResult, chart_id: str, title: str, measure: str) -> Chart:
        dims = list(result.columns)
        rows = [
            (
                ", ".join(self.labels.value(d, row.get(d)) for d in dims) or "All",
                cell(row, measure, self.scope),
            )
            for row in result.rows
        ]
        unit = MEASURE_NAMES.get(measure, measure).lower()
        chart = bar_chart(chart_id, title, rows, unit)
        return replace(chart, caption=f"Chart: {MEASURE_NAMES.get(measure, measure)}")

    async def sections(self) -> list[Section]:
        name, by = self.page.name, self.filters.by
        by_name = DIMENSION_NAMES.get(by, by).lower()
        sections: list[Section] = []
        if name is ReportName.REFERRALS:
            monthly = await self.read("month")
            sections.append(
                self._section(
                    monthly, "by-month", "Referrals by month", "month", [("referrals", "")]
                )
            )
            grouped = await self.read(by)
            sections.append(
                self._section(
                    grouped, f"by-{by}", f"Referrals by {by_name}", by, [("referrals", "")]
                )
            )
            both = await self.read(f"month,{by}")
            sections.append(
                Section(
                    id="by-month-and",
                    heading=f"Referrals by month and {by_name}",
                    charts=[],
                    table=self._pivot(both, "month", by, "referrals"),
                    empty=not both.rows,
                )
            )
        elif name is ReportName.WAITS:
            grouped = await self.read(by)
            sections.append(
                self._section(
                    grouped,
                    f"waits-by-{by}",
                    f"Waits by {by_name}",
                    by,
                    [
                        ("first_contact_median_days", "Median days to first contact"),
                        ("breached", "Breached"),
                        ("waiting", "Still waiting"),
                    ],
                )
            )
        elif name is ReportName.WAITING_LIST:
            grouped = await self.read(by)
            sections.append(
                self._section(
                    grouped,
                    f"waiting-by-{by}",
                    f"Waiting now by {by_name}",
                    by,
                    [("waiting", "")],
                )
            )
            weeks = await self.read("weeks_waiting")
            sections.append(
                self._section(
                    weeks,
                    "waiting-by-weeks",
                    "Waiting now by weeks waited",
                    "weeks_waiting",
                    [("waiting", "")],
                )
            )
        else:  # access
            grouped = await self.read(by)
            heading = f"Access by {by_name}" if by else "Access in the period"
            sections.append(
                self._section(
                    grouped,
                    f"access-by-{by or 'total'}",
                    heading,
                    by,
                    [("one_contact", "Young people with one contact"), ("two_contacts", "")],
                )
            )
        return sections

    def _section(
        self,
        result: ReportResult,
        section_id: str,
        heading: str,
        by: str,
        charted: list[tuple[str, str]],
    ) -> Section:
        charts = [
            self.chart(
                result,
                f"{section_id}-{measure}-chart",
                f"{heading}: {(title or MEASURE_NAMES[measure]).lower()}",
                measure,
            )
            for measure, title in charted
        ]
        empty = not any(
            row.get(m) or m in row.get("_suppressed_cells", ())
            for row in result.rows
            for m in result.measures
        )
        table = self.table(result, f"{section_id}-table", heading, by)
        return Section(section_id, heading, [] if empty else charts, table, empty)

    def _pivot(self, result: ReportResult, row_dim: str, col_dim: str, measure: str) -> Table:
        """``row_dim`` down, ``col_dim`` across: the month-by-channel table."""
        columns: list[Any] = []
        for row in result.rows:
            if row.get(col_dim) not in columns:
                columns.append(row.get(col_dim))
        grid: dict[Any, dict[Any, Cell]] = {}
        for row in result.rows:
            grid.setdefault(row.get(row_dim), {})[row.get(col_dim)] = cell(row, measure, self.scope)
        zero = Cell(0, False, "0")
        return Table(
            id="by-month-and-table",
            caption=f"{MEASURE_NAMES[measure]} by {DIMENSION_NAMES[row_dim].lower()} and "
            f"{DIMENSION_NAMES.get(col_dim, col_dim).lower()}",
            headers=(
                DIMENSION_NAMES[row_dim],
                *(self.labels.value(col_dim, c) for c in columns),
            ),
            numeric=(False, *(True for _ in columns)),
            rows=[
                (self.labels.value(row_dim, r), [cells.get(c, zero) for c in columns])
                for r, cells in grid.items()
            ],
            csv_href=self.csv_href(f"{row_dim},{col_dim}"),
        )

    async def agreement(self) -> list[Section]:
        """The two matrices of the triage agreement report as cross tables."""
        result = await self.read("")
        sections: list[Section] = []
        names = {
            "urgency": (
                "Urgency: engine against clinician",
                "Engine's urgency",
                "Not re-graded",
            ),
            "thrive": (
                "THRIVE: proposed against decided",
                "Proposed grouping",
                "Not decided yet",
            ),
        }
        for matrix, (heading, row_header, missing) in names.items():
            rows = [row for row in result.rows if row.get("matrix") == matrix]
            decided: list[Any] = []
            for row in rows:
                if row.get("decided") not in decided:
                    decided.append(row.get("decided"))
            decided.sort(key=lambda v: (v is None, str(v)))
            grid: dict[Any, dict[Any, Cell]] = {}
            for row in rows:
                grid.setdefault(row.get("proposed"), {})[row.get("decided")] = cell(
                    row, "cases", self.scope
                )

            def label(value: Any, matrix: str = matrix, missing: str = missing) -> str:
                if value is None:
                    return missing
                return f"Urgency {value}" if matrix == "urgency" else humanise(str(value))

            zero = Cell(0, False, "0")
            table = Table(
                id=f"agreement-{matrix}-table",
                caption=f"{heading}: cases, the engine's or proposed down, the decision across",
                headers=(row_header, *(label(d) for d in decided)),
                numeric=(False, *(True for _ in decided)),
                rows=[
                    (label(p), [cells.get(d, zero) for d in decided])
                    for p, cells in sorted(grid.items(), key=lambda i: (i[0] is None, str(i[0])))
                ],
                csv_href=self.csv_href(""),
            )
            sections.append(Section(f"agreement-{matrix}", heading, [], table, not rows))
        return sections


__all__ = ["PAGES", "report_console_actor", "router"]
