"""The console's rules page for admins: the stored rulesets, and a what-if replay of a candidate.

The replay is the API's (``app.routers.ruleset_replay.run_replay``: same figures, same audit
row); the page shows its counts, the from → to matrices as tables and the change per queue as a
bar chart drawn on the server (SVG) followed by the same figures as a table. Synchronous, like
the API: the page says how long to expect. Rules: docs/domain/rule-replay.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.deps import ClockDep, SessionDep
from app.errors import NotFound, Unprocessable
from app.routers.ruleset_replay import run_replay
from app.security import Actor, Role
from app.services.replay import DIMENSIONS, SIGNPOSTED, ReplayWindow, queue_totals
from app.services.rulesets import active_ruleset, list_rulesets
from app.web.console import ConsoleActor, _page
from app.web.signing import CSRF_FIELD, csrf_valid

router = APIRouter(prefix="/console/rules", include_in_schema=False)

VERSION_MAX_CHARS = 128
DATE_MAX_CHARS = 10

DIMENSION_TITLES = {
    "eligibility": "Eligibility",
    "urgency": "Urgency code",
    "thrive": "THRIVE grouping (proposed)",
    "route": "Route (queue)",
}


def _admin_only(request: Request, actor: Actor) -> Response | None:
    if actor.has_role(Role.ADMIN):
        return None
    return _page(
        request,
        "console/problem.html",
        actor,
        {"title": "Only admins can see the rules", "message": "Ask an admin to run a what-if."},
        status_code=403,
    )


async def _versions(session: SessionDep) -> list[dict[str, Any]]:
    stored, _ = await list_rulesets(session)
    return [
        {
            "version": item.record.version,
            "label": item.record.label,
            "active": item.active,
            "stored_at": item.record.first_loaded_at,
        }
        for item in stored
    ]


@dataclass
class _Form:
    values: dict[str, str]
    errors: dict[str, str]
    window: ReplayWindow | None = None


def _parse(form: Any) -> _Form:
    values = {
        "candidate_version": str(form.get("candidate_version", ""))[:VERSION_MAX_CHARS].strip(),
        "from": str(form.get("from", ""))[:DATE_MAX_CHARS].strip(),
        "to": str(form.get("to", ""))[:DATE_MAX_CHARS].strip(),
    }
    errors: dict[str, str] = {}
    if not values["candidate_version"]:
        errors["candidate_version"] = "Choose the candidate ruleset"
    dates: dict[str, date | None] = {}
    for name, words in (("from", "first"), ("to", "last")):
        try:
            dates[name] = date.fromisoformat(values[name]) if values[name] else None
        except ValueError:
            errors[name] = f"Enter the {words} day as a real date, for example 2026-04-01"
            dates[name] = None
    window = None
    if not errors:
        try:
            window = ReplayWindow(start=dates["from"], end=dates["to"])
        except Unprocessable:
            errors["to"] = "The last day must be the same as or after the first day"
    return _Form(values, errors, window)


async def _render(
    request: Request,
    actor: Actor,
    session: SessionDep,
    form: _Form,
    report: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    versions = await _versions(session)
    active = await active_ruleset(session)
    names = {q.id: q.name for q in active.queues}
    context: dict[str, Any] = {
        "nav": "rules",
        "versions": versions,
        "values": form.values,
        "errors": form.errors,
        "error_summary": [
            {"text": text, "href": f"#{field.replace('_', '-')}"}
            for field, text in form.errors.items()
        ],
        "report": report,
    }
    if report is not None:
        context.update(_report_view(report, names))
    return _page(request, "console/rules_replay.html", actor, context, status_code=status_code)


def _report_view(report: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The matrices as rows by columns, and the per-queue chart's geometry."""
    matrices = []
    for dimension in DIMENSIONS:
        cells = report["transitions"][dimension]
        befores = sorted({c["from"] for c in cells})
        afters = sorted({c["to"] for c in cells})
        counts = {(c["from"], c["to"]): c["count"] for c in cells}
        matrices.append(
            {
                "dimension": dimension,
                "title": DIMENSION_TITLES[dimension],
                # Routes have too many values for a readable grid: the changed cells as a list.
                "changes": [c for c in cells if c["from"] != c["to"]],
                "unchanged": sum(c["count"] for c in cells if c["from"] == c["to"]),
                "columns": afters,
                "rows": [
                    {"value": before, "counts": [counts.get((before, a), 0) for a in afters]}
                    for before in befores
                ],
            }
        )
    totals = queue_totals(report)
    for total in totals:
        queue_id = total["queue_id"]
        total["name"] = (
            "Signposted (no queue)" if queue_id is None else names.get(queue_id, queue_id)
        )
    return {
        "matrices": matrices,
        "totals": totals,
        "chart": _chart(totals),
        "label": lambda value: (
            "Signposted (no queue)" if value == SIGNPOSTED else names.get(value, value)
        ),
    }


def _chart(totals: list[dict[str, Any]]) -> dict[str, Any]:
    """A diverging horizontal bar per queue: fewer cases to the left of zero, more to the
    right. Pixel geometry only; the labels and numbers are drawn from the same rows."""
    label_width, bar_half, row_height, value_width = 260, 180, 28, 70
    biggest = max((abs(t["difference"]) for t in totals), default=0) or 1
    zero = label_width + bar_half
    bars = []
    for index, total in enumerate(totals):
        length = round(abs(total["difference"]) / biggest * bar_half)
        x = zero if total["difference"] >= 0 else zero - length
        bars.append(
            {
                "y": index * row_height,
                "x": x,
                "width": max(length, 1 if total["difference"] else 0),
                "more": total["difference"] > 0,
                "name": total["name"],
                "difference": total["difference"],
            }
        )
    return {
        "bars": bars,
        "zero": zero,
        "row_height": row_height,
        "width": zero + bar_half + value_width,
        "height": max(1, len(totals)) * row_height + 24,
        "value_x": zero + bar_half + 8,
    }


@router.get("")
async def rules_page(request: Request, actor: ConsoleActor, session: SessionDep) -> Response:
    """The stored rulesets and the what-if form."""
    refused = _admin_only(request, actor)
    if refused is not None:
        return refused
    return await _render(request, actor, session, _Form({"candidate_version": ""}, {}))


@router.post("/replay")
async def replay_page(
    request: Request, actor: ConsoleActor, session: SessionDep, clock: ClockDep
) -> Response:
    """Run the what-if and show its report (a POST: it writes an audit row)."""
    refused = _admin_only(request, actor)
    if refused is not None:
        return refused
    form_data = await request.form()
    if not csrf_valid(request, str(form_data.get(CSRF_FIELD, ""))):
        return _page(
            request,
            "console/problem.html",
            actor,
            {
                "title": "Your form could not be sent safely",
                "message": "Go back, reload the page and try again.",
            },
            status_code=403,
        )
    form = _parse(form_data)
    if form.errors or form.window is None:
        return await _render(request, actor, session, form, status_code=422)
    try:
        report = await run_replay(
            session,
            actor,
            candidate_version=form.values["candidate_version"],
            window=form.window,
            now=clock.now(),
        )
    except NotFound:
        form.errors["candidate_version"] = "Choose a ruleset from the list: that one is not stored"
        return await _render(request, actor, session, form, status_code=422)
    return await _render(request, actor, session, form, report)
