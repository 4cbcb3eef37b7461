"""What-if replay: past referrals re-decided under the active ruleset and a candidate one.

Every stored triage decision keeps the facts it was made on (``input_snapshot``, written by
``app.services.intake.facts_snapshot``). Replay rebuilds those facts exactly
(``facts_from_snapshot``), with the age counted on the referral's own received date, runs the
real engine (``app.triage.evaluate``) under both rulesets and counts what would change:
eligibility, urgency code, proposed THRIVE grouping and route (docs/domain/rule-replay.md).

Bounded memory and time, without changing the answer:

- Referrals are read in batches by keyset on ``referrals.id`` (each statement reads at most
  ``batch_size`` referrals, so none comes near the statement timeout), never all at once.
- The engine is a pure function of the facts. The four outcomes compared read no personal
  identifier directly: the date of birth and received date only through the age in whole years
  (and whether a date of birth was given), the postcode only through the locality serving its
  district. Each stage of the engine runs once per distinct value of what it reads (``_Side``)
  and serves every referral sharing it; each memo is bounded (``MEMO_LIMIT``) and cleared when
  full.
  ``tests/test_replay.py`` checks the fast path against a naive full evaluation.
- The report holds counters and at most ``EXAMPLES_PER_CHANGE`` referral ids per kind of
  change: ids only, never a person's details.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

import orjson
import structlog
from sqlalchemy import Text, and_, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Unprocessable
from app.models import Referral, TriageDecision
from app.security import Actor
from app.services import audit
from app.triage import ReferralFacts, RiskAnswers, Ruleset, evaluate
from app.triage.age import SERVICE_TIME_ZONE, age_on
from app.triage.decision import Decision, Eligibility, UrgencyCode
from app.triage.eligibility import assess_eligibility
from app.triage.facts import (
    AmhsThreshold,
    CamhsStatus,
    Channel,
    HarmToOthers,
    ReferrerType,
    RequestKind,
    SelfHarm,
    SettingPreference,
    Suicidal,
)
from app.triage.postcodes import postcode_district
from app.triage.routing import choose_route
from app.triage.subject import Subject
from app.triage.urgency import assess_urgency, propose_thrive

log = structlog.get_logger(__name__)

V = TypeVar("V")

DIMENSIONS = ("eligibility", "urgency", "thrive", "route")
"""What a replay compares, in this order everywhere (report, API, console)."""

EXAMPLES_PER_CHANGE = 20
"""At most this many example referral ids per kind of change (dimension, from, to)."""

DEFAULT_BATCH_SIZE = 5_000
"""Referrals read per statement."""

MEMO_LIMIT = 250_000
"""Distinct inputs remembered before the memo is cleared (bounds memory, not the answer)."""

SIGNPOSTED = "signposted"
"""The route value of a referral routed to no queue (closed with signposting)."""

# Which facts each stage's memo key takes as stored (the engine's stages read no others for the
# outcomes compared). The identifying facts are keyed only as what the engine derives from them.
# A fact added to ReferralFacts and not placed here fails
# tests/test_replay.py::test_every_fact_is_keyed_or_argued_out.
IDENTIFYING_FACTS = frozenset({"received_at", "date_of_birth", "postcode"})
ELIGIBILITY_FACTS = ("camhs_status", "camhs_transition_planned", "amhs_threshold", "send")
URGENCY_FACTS = ("risk", "request")
ROUTING_FACTS = ("channel", "site_id", "looked_after", "setting_preference")
# Read only for flags, codes and explanations, never for the four outcomes compared.
UNCOMPARED_FACTS = frozenset({"referrer_type", "contact_route", "from_record"})
RISK_KEYS = tuple(f.name for f in fields(RiskAnswers))


OutcomeTuple = tuple[str, str, str, str]
"""(eligibility, urgency, thrive, route), in ``DIMENSIONS`` order."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The four things a replay compares, as the values stored on ``triage_decisions``."""

    eligibility: str
    urgency: str
    thrive: str
    route: str
    """The queue id, or ``SIGNPOSTED`` when the referral goes to no queue."""

    def as_tuple(self) -> OutcomeTuple:
        return (self.eligibility, self.urgency, self.thrive, self.route)


def outcome_of(decision: Decision) -> Outcome:
    return Outcome(
        eligibility=decision.eligibility.outcome.value,
        urgency=decision.urgency.code.value,
        thrive=decision.thrive_grouping.value,
        route=decision.route.queue_id or SIGNPOSTED,
    )


def facts_from_snapshot(snapshot: dict[str, Any], received_at: datetime) -> ReferralFacts:
    """The facts a decision was made on, rebuilt from its stored snapshot.

    The inverse of ``app.services.intake.facts_snapshot``; ``received_at`` is the referral's own
    (the snapshot holds the same instant). Facts older snapshots lack take the defaults intake
    used before they existed (``contact_route`` true, nothing from the record).
    """
    risk = snapshot.get("risk") or {}
    suicidal, self_harm, harm = (
        risk.get("suicidal"),
        risk.get("self_harm"),
        risk.get("harm_to_others"),
    )
    dob = snapshot.get("date_of_birth")
    preference = snapshot.get("setting_preference")
    return ReferralFacts(
        received_at=received_at,
        channel=Channel(snapshot["channel"]),
        referrer_type=ReferrerType(snapshot["referrer_type"]),
        date_of_birth=None if dob is None else date.fromisoformat(dob),
        postcode=snapshot.get("postcode"),
        site_id=snapshot.get("site_id"),
        camhs_status=CamhsStatus(snapshot.get("camhs_status", CamhsStatus.UNKNOWN.value)),
        camhs_transition_planned=bool(snapshot.get("camhs_transition_planned", False)),
        amhs_threshold=AmhsThreshold(snapshot.get("amhs_threshold", AmhsThreshold.UNKNOWN.value)),
        send=bool(snapshot.get("send", False)),
        looked_after=bool(snapshot.get("looked_after", False)),
        request=RequestKind(snapshot.get("request", RequestKind.HELP.value)),
        risk=RiskAnswers(
            immediate_danger=risk.get("immediate_danger"),
            suicidal=None if suicidal is None else Suicidal(suicidal),
            self_harm=None if self_harm is None else SelfHarm(self_harm),
            harm_to_others=None if harm is None else HarmToOthers(harm),
            safeguarding_concern=risk.get("safeguarding_concern"),
            supported=risk.get("supported"),
        ),
        setting_preference=None if preference is None else SettingPreference(preference),
        contact_route=bool(snapshot.get("contact_route", True)),
        from_record=tuple(snapshot.get("from_record") or ()),
    )


@dataclass(frozen=True, slots=True)
class ReplayWindow:
    """Referrals received from ``start`` to ``end``, both Europe/London dates, inclusive."""

    start: date | None = None
    end: date | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise Unprocessable("to must be on or after from", field="to")

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """[lower, upper) as aware instants: midnight in England starting each day."""
        lower = (
            None
            if self.start is None
            else datetime.combine(self.start, time(0), tzinfo=SERVICE_TIME_ZONE)
        )
        upper = (
            None
            if self.end is None
            else datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=SERVICE_TIME_ZONE)
        )
        return lower, upper


@dataclass
class _Change:
    count: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class ReplayReport:
    """Counters only: bounded whatever the number of referrals replayed."""

    active_version: str
    candidate_version: str
    window: ReplayWindow
    referrals: int = 0
    # Referrals decided under the active version whose replay under it differs from the stored
    # decision: nonzero means the report is not what the engine did (docs/domain/rule-replay.md).
    stored_disagreements: int = 0
    stored_under_active: int = 0
    evaluations: int = 0
    changed: Counter[str] = field(default_factory=Counter)
    # (dimension, from, to) → count and example ids (changed pairs), or count (unchanged).
    cells: dict[tuple[str, str, str], _Change] = field(default_factory=dict)
    # (queue or SIGNPOSTED, month) → [active count, candidate count]
    queue_months: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def add(
        self,
        referral_id: str,
        month: str,
        active: tuple[str, str, str, str],
        candidate: tuple[str, str, str, str],
    ) -> None:
        self.referrals += 1
        cells = self.cells
        for dimension, before, after in zip(DIMENSIONS, active, candidate, strict=True):
            cell_key = (dimension, before, after)
            cell = cells.get(cell_key)
            if cell is None:
                cell = cells[cell_key] = _Change()
            cell.count += 1
            if before != after:
                self.changed[dimension] += 1
                if len(cell.examples) < EXAMPLES_PER_CHANGE:
                    cell.examples.append(referral_id)
        months = self.queue_months
        for index, route in ((0, active[3]), (1, candidate[3])):
            slot = months.get((route, month))
            if slot is None:
                slot = months[(route, month)] = [0, 0]
            slot[index] += 1

    def to_dict(self) -> dict[str, Any]:
        """The report in the API's shape (``app/schemas/replay.py`` documents each field)."""
        transitions: dict[str, list[dict[str, Any]]] = {d: [] for d in DIMENSIONS}
        examples: dict[str, list[dict[str, Any]]] = {d: [] for d in DIMENSIONS}
        for (dimension, before, after), cell in sorted(self.cells.items()):
            transitions[dimension].append({"from": before, "to": after, "count": cell.count})
            if before != after:
                examples[dimension].append(
                    {"from": before, "to": after, "referral_ids": list(cell.examples)}
                )
        queues = [
            {
                "queue_id": None if route == SIGNPOSTED else route,
                "month": month,
                "active": counts[0],
                "candidate": counts[1],
                "difference": counts[1] - counts[0],
            }
            for (route, month), counts in sorted(
                self.queue_months.items(), key=lambda item: (item[0][0] == SIGNPOSTED, item[0])
            )
        ]
        return {
            "active_version": self.active_version,
            "candidate_version": self.candidate_version,
            "from": None if self.window.start is None else self.window.start.isoformat(),
            "to": None if self.window.end is None else self.window.end.isoformat(),
            "referrals": self.referrals,
            "changed": {d: self.changed[d] for d in DIMENSIONS},
            "transitions": transitions,
            "queues": queues,
            "examples": examples,
            "stored_under_active": self.stored_under_active,
            "stored_disagreements": self.stored_disagreements,
            "distinct_inputs": self.evaluations,
        }


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One referral as replay reads it: ids, the received instant, the stored decision."""

    referral_id: uuid.UUID
    received_at: datetime
    ruleset_version: str
    stored: tuple[str, str, str, str]
    snapshot: dict[str, Any]


class _Side:
    """One ruleset's stage-by-stage memo. Each stage is the engine's own function
    (``app.triage``), run once per distinct value of what that stage reads: eligibility (age,
    district, the CAMHS/AMHS/SEND facts), urgency (risk answers, request, eligibility outcome),
    the THRIVE proposal (urgency code) and routing (eligibility, code, channel, site, looked
    after, age, district, setting preference), in ``evaluate``'s order."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self.compiled = ruleset.compiled
        self.locality_by_district = ruleset.compiled.locality_by_district
        self.eligibility: dict[tuple[Any, ...], Eligibility] = {}
        self.urgency: dict[tuple[Any, ...], UrgencyCode] = {}
        self.thrive: dict[UrgencyCode, str] = {}
        self.route: dict[tuple[Any, ...], str] = {}

    def outcome(self, row: _Row) -> OutcomeTuple:
        snapshot = row.snapshot
        # The district is read only through the locality serving it (and whether it could be
        # read at all); every district of one locality decides alike, so the locality is keyed.
        district = row.district
        locality = None if district is None else self.locality_by_district.get(district)
        place = (district is not None, None if locality is None else locality.id)
        eligibility_key = (
            row.age,
            row.dob_given,
            place,
            snapshot.get("camhs_status"),
            snapshot.get("camhs_transition_planned"),
            snapshot.get("amhs_threshold"),
            snapshot.get("send"),
        )
        eligibility = self.eligibility.get(eligibility_key)
        if eligibility is None:
            eligibility, _ = assess_eligibility(self.subject(row), self.ruleset.eligibility)
            self.eligibility[eligibility_key] = _bounded(self.eligibility, eligibility)
        outcome = eligibility.outcome
        urgency_key = (row.risk, snapshot.get("request"), outcome)
        code = self.urgency.get(urgency_key)
        if code is None:
            facts = row.facts()
            urgency, _ = assess_urgency(
                facts.received_at,
                facts.risk,
                facts.request,
                eligibility,
                self.compiled,
                contact_route=facts.contact_route,
            )
            code = self.urgency[urgency_key] = _bounded(self.urgency, urgency.code)
        thrive = self.thrive.get(code)
        if thrive is None:
            thrive = self.thrive[code] = propose_thrive(code, self.compiled)[0].value
        route_key = (
            outcome,
            eligibility.reasons[0].rule,
            eligibility.transition_support,
            code,
            row.age,
            place,
            snapshot.get("channel"),
            snapshot.get("site_id"),
            snapshot.get("looked_after"),
            snapshot.get("setting_preference"),
        )
        route = self.route.get(route_key)
        if route is None:
            chosen, _ = choose_route(self.subject(row), eligibility, code, self.compiled)
            route = self.route[route_key] = _bounded(self.route, chosen.queue_id or SIGNPOSTED)
        return (outcome.value, code.value, thrive, route)

    def subject(self, row: _Row) -> Subject:
        """The engine's view of the referral, as ``evaluate`` builds it."""
        return Subject(
            facts=row.facts(),
            received_on=row.received_on,
            age_years=row.age,
            postcode_district=row.district,
            locality=(
                None
                if row.district is None
                else self.compiled.locality_by_district.get(row.district)
            ),
        )


def _bounded(memo: dict[Any, Any], value: V) -> V:
    """Clear a memo that has reached ``MEMO_LIMIT`` before it takes one more entry."""
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    return value


class _Row:
    """One referral's snapshot with what the engine derives from its identifying facts."""

    __slots__ = (
        "_facts",
        "age",
        "district",
        "dob_given",
        "received_at",
        "received_on",
        "risk",
        "snapshot",
    )

    def __init__(self, snapshot: dict[str, Any], received_at: datetime, received_on: date) -> None:
        self.snapshot = snapshot
        self.received_at = received_at
        self.received_on = received_on
        dob_text = snapshot.get("date_of_birth")
        self.dob_given = dob_text is not None
        age: int | None = None
        if dob_text is not None:
            # As the engine: a date of birth after the received date gives no age.
            dob = date.fromisoformat(dob_text)
            age = age_on(dob, received_on) if dob <= received_on else None
        self.age = age
        postcode = snapshot.get("postcode")
        self.district = postcode_district(postcode) if postcode else None
        risk = snapshot.get("risk") or {}
        self.risk = tuple(risk.get(name) for name in RISK_KEYS)
        self._facts: ReferralFacts | None = None

    def facts(self) -> ReferralFacts:
        if self._facts is None:
            self._facts = facts_from_snapshot(self.snapshot, self.received_at)
        return self._facts


class Replayer:
    """Replays referrals under two rulesets into one report (one replay run)."""

    def __init__(self, active: Ruleset, candidate: Ruleset, window: ReplayWindow) -> None:
        self.active = _Side(active)
        self.candidate = _Side(candidate)
        self.report = ReplayReport(
            active_version=active.version, candidate_version=candidate.version, window=window
        )

    def add(
        self,
        referral_id: uuid.UUID,
        received_at: datetime,
        ruleset_version: str,
        stored: OutcomeTuple,
        snapshot: dict[str, Any],
    ) -> None:
        """Replay one referral (the hot loop: no pydantic; dict lookups for inputs seen before)."""
        local = received_at.astimezone(SERVICE_TIME_ZONE)
        row = _Row(snapshot, received_at, local.date())
        active = self.active.outcome(row)
        candidate = self.candidate.outcome(row)
        report = self.report
        if row._facts is not None:
            report.evaluations += 1
        if ruleset_version == report.active_version:
            report.stored_under_active += 1
            if active != stored:
                report.stored_disagreements += 1
        report.add(str(referral_id), f"{local.year:04d}-{local.month:02d}", active, candidate)


def naive_report(
    rows: Iterable[StoredRow], active: Ruleset, candidate: Ruleset, window: ReplayWindow
) -> ReplayReport:
    """The same report by a full evaluation of every referral (no memo): the reference the
    fast path is tested against."""
    report = ReplayReport(
        active_version=active.version, candidate_version=candidate.version, window=window
    )
    for row in rows:
        facts = facts_from_snapshot(row.snapshot, row.received_at)
        before = outcome_of(evaluate(facts, active)).as_tuple()
        after = outcome_of(evaluate(facts, candidate)).as_tuple()
        report.evaluations += 1
        if row.ruleset_version == active.version:
            report.stored_under_active += 1
            if before != row.stored:
                report.stored_disagreements += 1
        local = row.received_at.astimezone(SERVICE_TIME_ZONE)
        report.add(str(row.referral_id), f"{local.year:04d}-{local.month:02d}", before, after)
    return report


def _batch_statement(after: uuid.UUID | None, window: ReplayWindow, batch_size: int) -> Any:
    """The next ``batch_size`` referrals by id (whatever their date, so a statement reads a
    bounded number of rows), with the decision columns only for those in the window."""
    page = select(Referral.id, Referral.received_at).order_by(Referral.id).limit(batch_size)
    if after is not None:
        page = page.where(Referral.id > after)
    page_sq = page.subquery()
    lower, upper = window.bounds()
    in_window = [TriageDecision.referral_id == page_sq.c.id]
    if lower is not None:
        in_window.append(page_sq.c.received_at >= lower)
    if upper is not None:
        in_window.append(page_sq.c.received_at < upper)
    return (
        select(
            page_sq.c.id,
            page_sq.c.received_at,
            TriageDecision.ruleset_version,
            TriageDecision.eligibility_outcome,
            TriageDecision.urgency_code,
            TriageDecision.thrive_grouping,
            TriageDecision.queue_id,
            # As text, parsed here with orjson: faster than the JSON type's per-row decoding.
            cast(TriageDecision.input_snapshot, Text),
        )
        .select_from(page_sq)
        .outerjoin(TriageDecision, and_(*in_window))
        .order_by(page_sq.c.id)
    )


# PostgreSQL reads each batch straight through the driver: the same statement as
# ``_batch_statement``, without the per-row result processing (half the read cost, measured in
# bench/RESULTS.md). Two texts, so the planner always sees a plain range on the primary key.
_PG_BATCH = """
SELECT r.id, r.received_at, d.ruleset_version, d.eligibility_outcome, d.urgency_code,
       d.thrive_grouping, d.queue_id, d.input_snapshot::text
FROM (SELECT id, received_at FROM referrals {after} ORDER BY id LIMIT $1) AS r
LEFT JOIN triage_decisions AS d
  ON d.referral_id = r.id
 AND ($2::timestamptz IS NULL OR r.received_at >= $2)
 AND ($3::timestamptz IS NULL OR r.received_at < $3)
ORDER BY r.id
"""
_PG_FIRST = _PG_BATCH.format(after="")
_PG_NEXT = _PG_BATCH.format(after="WHERE id > $4")


async def stored_rows(
    session: AsyncSession,
    window: ReplayWindow,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Any:
    """Yield batches of (referral id, received at, ruleset version, eligibility, urgency,
    THRIVE, queue id, snapshot text) for the referrals in ``window``, ``batch_size`` referrals
    read per statement, in id order."""
    connection = await session.connection()
    driver: Any = None
    if connection.dialect.name == "postgresql":
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
    lower, upper = window.bounds()
    after: uuid.UUID | None = None
    while True:
        rows: Sequence[Any]
        if driver is not None:
            if after is None:
                rows = await driver.fetch(_PG_FIRST, batch_size, lower, upper)
            else:
                rows = await driver.fetch(_PG_NEXT, batch_size, lower, upper, after)
        else:
            rows = (await session.execute(_batch_statement(after, window, batch_size))).all()
        if not rows:
            return
        after = rows[-1][0]
        yield [row for row in rows if row[7] is not None]
        if len(rows) < batch_size:
            return


async def replay(
    session: AsyncSession,
    *,
    active: Ruleset,
    candidate: Ruleset,
    window: ReplayWindow,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ReplayReport:
    """Replay every referral received in ``window`` under ``active`` and ``candidate``.

    Reads only; the caller audits the run. Time grows with the number of referrals stored
    (every one is read by id to find those in the window): about 50 s of CPU per million,
    client and server together (bench/RESULTS.md, "What-if replay").
    """
    replayer = Replayer(active, candidate, window)
    loads = orjson.loads
    add = replayer.add
    async for batch in stored_rows(session, window, batch_size=batch_size):
        for (
            referral_id,
            received_at,
            version,
            eligibility,
            urgency,
            thrive,
            queue_id,
            text,
        ) in batch:
            add(
                referral_id,
                received_at,
                version,
                (eligibility, urgency, thrive, queue_id or SIGNPOSTED),
                loads(text),
            )
    report = replayer.report
    log.info(
        "ruleset_replayed",
        active_version=report.active_version,
        candidate_version=report.candidate_version,
        referrals=report.referrals,
        distinct_inputs=report.evaluations,
        stored_disagreements=report.stored_disagreements,
    )
    return report


async def audited_replay(
    session: AsyncSession,
    *,
    actor: Actor,
    active: Ruleset,
    candidate: Ruleset,
    window: ReplayWindow,
    now: datetime,
) -> ReplayReport:
    """``replay``, recorded in the audit trail with both versions, the window and the count
    (ids and dates only): the one path the API, the console and the CLI take."""
    report = await replay(session, active=active, candidate=candidate, window=window)
    audit.record(
        session,
        actor=actor,
        action="ruleset.replay",
        resource_type="ruleset",
        resource_id=candidate.version,
        now=now,
        details={
            "active_version": active.version,
            "from": None if window.start is None else window.start.isoformat(),
            "to": None if window.end is None else window.end.isoformat(),
            "referrals": report.referrals,
        },
    )
    return report


def queue_totals(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's per-queue-and-month rows summed over the window, per queue (queue id order,
    signposted last): what the console's chart and the CLI's bars show."""
    totals: dict[str | None, list[int]] = {}
    for row in summary["queues"]:
        slot = totals.setdefault(row["queue_id"], [0, 0])
        slot[0] += row["active"]
        slot[1] += row["candidate"]
    return [
        {"queue_id": queue_id, "active": a, "candidate": c, "difference": c - a}
        for queue_id, (a, c) in sorted(totals.items(), key=lambda i: (i[0] is None, i[0] or ""))
    ]


def render_text(summary: dict[str, Any], *, width: int = 30) -> str:
    """The report for a terminal: counts, the changed cells of each matrix, and a bar per
    queue for the difference the candidate makes (ids and codes only)."""
    lines = [
        f"active     {summary['active_version']}",
        f"candidate  {summary['candidate_version']}",
        f"window     {summary['from'] or 'start'} .. {summary['to'] or 'now'}",
        f"referrals  {summary['referrals']:,}",
    ]
    if summary["stored_disagreements"]:
        lines.append(
            f"WARNING    {summary['stored_disagreements']:,} stored decisions differ from what "
            "the active ruleset decides now: the engine has changed; do not rely on this report"
        )
    lines += ["", f"{'changed':<12}{'referrals':>10}"]
    lines += [f"{name:<12}{count:>10,}" for name, count in summary["changed"].items()]
    for dimension, cells in summary["transitions"].items():
        moved = [cell for cell in cells if cell["from"] != cell["to"]]
        if moved:
            lines += ["", f"{dimension}: from -> to"]
            lines += [f"  {c['from']} -> {c['to']}: {c['count']:,}" for c in moved]
    totals = queue_totals(summary)
    biggest = max((abs(t["difference"]) for t in totals), default=0) or 1
    lines += ["", f"{'queue':<24}{'active':>9}{'candidate':>10}{'change':>8}"]
    for total in totals:
        bar = "#" * round(abs(total["difference"]) / biggest * width)
        sign = "+" if total["difference"] > 0 else "-" if total["difference"] < 0 else " "
        lines.append(
            f"{total['queue_id'] or SIGNPOSTED:<24}{total['active']:>9,}{total['candidate']:>10,}"
            f"{total['difference']:>+8,} {sign}{bar}"
        )
    return "\n".join(lines)
