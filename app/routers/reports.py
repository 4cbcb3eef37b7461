"""Aggregate reports for team leads, commissioners and admins (docs/domain/reporting.md).

``GET /v1/reports/{referrals | waits | waiting-list | triage-agreement | access}`` with
``from``, ``to`` (YYYY-MM-DD, UTC, inclusive) and ``by`` (dimensions, comma-separated). JSON
by default; CSV with ``Accept: text/csv``. Every read is audited; a refused one too.
"""

# No ``from __future__ import annotations``: the query parameters' descriptions are built per
# report inside ``_endpoint``, so the annotations must be evaluated where they are written.
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from app.deps import ClockDep, ReportReaderDep, SessionDep, SettingsDep
from app.errors import Forbidden
from app.responses import errors_for
from app.schemas.reports import DisclosureControl, ReportRead
from app.services import audit, reports
from app.services.reports import ReportName, ReportResult, ReportScope

router = APIRouter(prefix="/v1/reports", tags=["reports"])

CSV_MEDIA_TYPE = "text/csv"
BY_MAX_CHARS = 400

_SUMMARIES = {
    ReportName.REFERRALS: "Referrals received, counted by the dimensions asked for",
    ReportName.WAITS: "Waits from referral to first and second attended contact (median, 90th "
    "percentile, in days), breaches and cases still waiting",
    ReportName.WAITING_LIST: "Open cases not yet contacted now, by queue, age band and weeks "
    "waiting",
    ReportName.TRIAGE_AGREEMENT: "Engine urgency against the clinician's, and THRIVE proposed "
    "against decided, as matrices",
    ReportName.ACCESS: "The CYP access measures: young people with one attended contact, "
    "referrals with two",
}


def wants_csv(request: Request) -> bool:
    """``Accept: text/csv`` (alone or preferred over JSON) asks for CSV."""
    accept = request.headers.get("accept", "").lower()
    offered = [part.split(";", 1)[0].strip() for part in accept.split(",")]
    if CSV_MEDIA_TYPE not in offered:
        return False
    json_at = next((i for i, m in enumerate(offered) if m == "application/json"), None)
    return json_at is None or offered.index(CSV_MEDIA_TYPE) < json_at


def present(result: ReportResult, scope: ReportScope) -> ReportRead:
    return ReportRead(
        report=result.report.value,
        from_=result.start,
        to=result.end,
        by=list(result.by),
        columns=list(result.columns),
        measures=list(result.measures),
        disclosure_control=DisclosureControl(
            suppress_below=scope.suppress_below, round_to=scope.round_to
        )
        if scope.disclosure_controlled
        else None,
        rows=reports.public_rows(result),
    )


def csv_response(result: ReportResult) -> Response:
    start = result.start.isoformat() if result.start else "start"
    filename = f"frontdoor-{result.report.value}-{start}-to-{result.end.isoformat()}.csv"
    return Response(
        content=reports.result_csv(result),
        media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _endpoint(name: ReportName) -> Callable[..., Awaitable[Any]]:
    async def read(
        request: Request,
        session: SessionDep,
        actor: ReportReaderDep,
        clock: ClockDep,
        settings: SettingsDep,
        start: Annotated[
            date | None,
            Query(
                alias="from",
                description="first day (YYYY-MM-DD, UTC); default twelve months before 'to' "
                "(the waiting list: no lower bound)",
            ),
        ] = None,
        end: Annotated[
            date | None,
            Query(alias="to", description="last day, inclusive (YYYY-MM-DD, UTC); default today"),
        ] = None,
        by: Annotated[
            str | None,
            Query(
                max_length=BY_MAX_CHARS,
                description="dimensions, comma-separated: "
                + ", ".join(reports.SPECS[name].dimensions)
                + "; absent: "
                + (",".join(reports.SPECS[name].default_by) or "(none)")
                + "; empty: one row of totals",
            ),
        ] = None,
    ) -> Any:
        now = clock.now()
        try:
            scope = ReportScope.for_actor(actor, settings)
        except Forbidden:
            await audit.record_refusal(
                session,
                actor=actor,
                action="read",
                resource_type="report",
                resource_id=name.value,
                now=now,
            )
            raise
        query = reports.parse_query(name, start, end, by, today=now.date())
        as_csv = wants_csv(request)
        result = await reports.read_report(
            session, name, query, scope, actor=actor, now=now, output="csv" if as_csv else "json"
        )
        if as_csv:
            return csv_response(result)
        response = present(result, scope)
        return Response(
            content=response.model_dump_json(by_alias=True),
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    read.__name__ = f"report_{name.value.replace('-', '_')}"
    return read


for _name in ReportName:
    router.add_api_route(
        f"/{_name.value}",
        _endpoint(_name),
        methods=["GET"],
        response_model=ReportRead,
        responses={
            200: {"content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}}},
            **errors_for(401, 403, 422),
        },
        summary=_SUMMARIES[_name] + " (team leads: their queues; commissioners, admins: all)",
    )
