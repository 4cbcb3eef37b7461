"""Load N synthetic people, with their referrals, triage decisions, cases and case timelines,
into a fresh PostgreSQL database, quickly (COPY), for the benchmarks.

    python bench/generate_data.py --dsn postgresql://postgres@127.0.0.1:5432/postgres \\
        --db frontdoor_bench --people 1000000
    python bench/generate_data.py --smoke --dsn "$PG_URL"   # 300 people, checked, dropped

The database is created (dropped first unless ``--keep``), migrated with the application's own
migrations, given the default service directory, then filled in chunks: worker processes build
each chunk's rows (the real triage engine decides every referral) in COPY text format, and the
main process COPYs them in. Foreign-key triggers are skipped during the load
(``session_replication_role = replica``): the rows are consistent by construction.
``VACUUM ANALYZE`` runs at the end.

Reusable from other benchmarks::

    from bench.generate_data import load_dataset
    summary = load_dataset("postgresql://postgres@127.0.0.1:5432/postgres", "frontdoor_q", 50_000)

Shape of the data (seeded, reproducible): people aged 0-25 (teenagers most often), 80% with an
NHS number from the 999 range (none were ever issued), 95% with a postcode in a served district
(3% of those out of area); 1-3 referrals each over the last three years by phone, system, web
and drop-in; a case for every referral that was not signposted, joined by later referrals while
open; cases close after about 60 days on average, so ~5% are open now (waiting, allocated,
contacted, active or on hold) with the most recent the most likely to be waiting.
"""

from __future__ import annotations

if __package__ in (None, ""):  # run as a script: make ``app`` and ``bench`` importable
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import io
import math
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import asyncpg
import orjson

from bench import harness, synth

REFERRALS_PER_PERSON = ((1, 82), (2, 13), (3, 5))  # (count, weight)
DB_CHANNELS = (("phone", 35), ("system", 35), ("web", 15), ("drop_in", 15))
REFERRAL_HISTORY_DAYS = 3 * 365
MEAN_CASE_DAYS = 60
KEY_WORKERS = 400
CLOSE_OUTCOMES = (
    "returned_to_thriving",
    "not_contactable",
    "moved_out_of_area",
    "declined",
)
# Contacts: how and with whom (weights), how often a young person misses one.
CONTACT_MECHANISMS = (
    ("face_to_face", 45),
    ("telephone", 30),
    ("video", 15),
    ("text", 5),
    ("email", 5),
)
CONTACT_WITH = (("young_person", 70), ("parent_carer", 25), ("professional", 5))
DID_NOT_ATTEND_BEFORE_FIRST = 0.18  # chance of a missed contact before the first attended one
SECOND_CONTACT = 0.85  # of the cases that got under way (active, on hold or closed after THRIVE)
MORE_CONTACTS = (0, 1, 2, 3)  # further attended contacts after the second, equally likely
# First contact after the urgency window times a factor drawn uniformly from this range, so about
# a quarter of first contacts come after the deadline (a code with no window: a share of the case).
WAIT_FACTOR = (0.15, 1.35)
REGRADED = 0.07  # of the cases a key worker held: a clinician re-graded the urgency by one code
REGRADABLE = ("C", "D", "E")  # never to or from A/B here: those move the case to the crisis queue
THRIVE_CHANGED = 0.12  # the key worker and young person chose a grouping other than the proposal
# Equity at intake (NHS Data Dictionary codes; NULL = not asked or not recorded).
GENDER_CODES = (("1", 41), ("2", 44), ("3", 2), ("4", 1), ("X", 2), ("Z", 4), (None, 6))
ETHNIC_CATEGORY_CODES = (
    ("A", 640),
    ("B", 10),
    ("C", 55),
    ("D", 14),
    ("E", 7),
    ("F", 12),
    ("G", 12),
    ("H", 24),
    ("J", 14),
    ("K", 8),
    ("L", 14),
    ("M", 10),
    ("N", 20),
    ("P", 5),
    ("R", 7),
    ("S", 14),
    ("Z", 50),
    ("99", 20),
    (None, 64),
)
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# An odd multiplier scrambles the referral counter into distinct, random-looking references.
_REFERENCE_MULTIPLIER = 0x9E3779B97F & ((1 << 40) - 1) | 1

_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_V4 = (0x4000 << 64) | (0x8000 << 48)

# Column order of each COPY (the order rows are built in).
COLUMNS: dict[str, tuple[str, ...]] = {
    "persons": (
        "id",
        "nhs_number",
        "given_name",
        "family_name",
        "given_name_key",
        "family_name_key",
        "date_of_birth",
        "postcode",
        "postcode_district",
        "phone",
        "email",
        "send",
        "looked_after",
        "created_at",
        "updated_at",
    ),
    "cases": (
        "id",
        "person_id",
        "queue_id",
        "status",
        "urgency_code",
        "urgency_rank",
        "received_at",
        "respond_by_at",
        "first_contact_at",
        "first_contact_type",
        "second_contact_at",
        "did_not_attend_count",
        "key_worker_id",
        "allocated_at",
        "thrive_grouping_proposed",
        "thrive_grouping",
        "thrive_decided_by",
        "thrive_decided_at",
        "outcome",
        "closed_at",
        "version",
        "created_at",
        "updated_at",
    ),
    "referrals": (
        "id",
        "reference",
        "person_id",
        "case_id",
        "channel",
        "site_id",
        "referrer_type",
        "request",
        "received_at",
        "disposition",
        "submitted_by_kind",
        "submitted_by_id",
        "submitted_by_client_id",
        "raw_payload",
        "normalised",
        "reason",
        "created_at",
    ),
    "triage_decisions": (
        "id",
        "referral_id",
        "ruleset_version",
        "input_snapshot",
        "output",
        "eligibility_outcome",
        "urgency_code",
        "thrive_grouping",
        "route_kind",
        "queue_id",
        "respond_by_at",
        "decided_at",
    ),
    "case_events": (
        "id",
        "case_id",
        "seq",
        "type",
        "actor_kind",
        "actor_id",
        "actor_role",
        "from_status",
        "to_status",
        "reason",
        "data",
        "created_at",
    ),
    "case_contacts": (
        "id",
        "case_id",
        "occurred_at",
        "mechanism",
        "attendance",
        "with_whom",
        "contact_type",
        "recorded_by_id",
        "recorded_at",
    ),
    "case_urgency_changes": (
        "id",
        "case_id",
        "source",
        "engine_code",
        "from_code",
        "to_code",
        "from_respond_by_at",
        "to_respond_by_at",
        "from_queue_id",
        "to_queue_id",
        "reason",
        "changed_by_id",
        "changed_by_role",
        "changed_at",
    ),
}
TABLE_ORDER = tuple(COLUMNS)
# Referral columns of later migrations, loaded when the migrated schema has them (appended to the
# referral row in this order): equity at intake (d1a0b0c0a006) and what the reports group by,
# copied from the decision as intake does (d1a0b0c0a007).
EQUITY_COLUMNS = ("gender_code", "ethnic_category_code")
REPORTING_COLUMNS = ("age_years", "locality_id", "source_of_referral_code", "eligibility_rule")
OPTIONAL_REFERRAL_COLUMNS = EQUITY_COLUMNS + REPORTING_COLUMNS
# Case columns of later migrations, loaded when the schema has them (appended to the case row):
# what the case carries of its opening referral and its latest attended contact (d1a0b0c0a009).
OPTIONAL_CASE_COLUMNS = (
    "opening_urgency_code",
    "age_years",
    "locality_id",
    "gender_code",
    "ethnic_category_code",
    "last_contact_at",
)


@dataclass
class LoadSummary:
    database: str
    people: int
    rows: dict[str, int] = field(default_factory=dict)
    open_cases: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def people_for_referrals(referrals: int) -> int:
    """How many people to generate for about ``referrals`` referrals (each person has 1-3,
    ``REFERRALS_PER_PERSON``: 1.23 on average, so 813,008 people give about 1,000,000)."""
    total = sum(weight for _, weight in REFERRALS_PER_PERSON)
    mean = sum(count * weight for count, weight in REFERRALS_PER_PERSON) / total
    return max(1, round(referrals / mean))


def reference_for(counter: int) -> str:
    """A unique ``FD-XXXX-XXXX`` reference for the loader's ``counter``-th referral."""
    value = (counter * _REFERENCE_MULTIPLIER) & ((1 << 40) - 1)
    chars = "".join(REFERENCE_ALPHABET[(value >> (5 * i)) & 31] for i in range(8))
    return f"FD-{chars[:4]}-{chars[4:]}"


@lru_cache(maxsize=1)
def _loader_nhs_numbers() -> tuple[str, ...]:
    return tuple(synth.nhs_numbers(synth.LOADER_NHS_STEMS))


def nhs_number_for(index: int) -> str | None:
    """Four people in five have an NHS number (each a different one), while the range lasts."""
    if index % 5 == 0:
        return None
    numbers = _loader_nhs_numbers()
    position = index - index // 5 - 1
    return numbers[position] if position < len(numbers) else None


def _uuid(rng: random.Random) -> str:
    """A random (version 4) UUID from the seeded generator, as text."""
    h = f"{rng.getrandbits(128) & _UUID_CLEAR | _UUID_V4:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _field(value: Any) -> str:
    """One value in COPY's text format (JSON and names never hold tabs or newlines)."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    text = value if isinstance(value, str) else str(value)
    return text.replace("\\", "\\\\") if "\\" in text else text


class _Chunk:
    """Rows for one slice of people, in COPY text format per table."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {table: [] for table in TABLE_ORDER}
        self.open_cases = 0

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.lines[table].append("\t".join(map(_field, row)))

    def result(self) -> dict[str, Any]:
        return {
            "copy": {
                t: ("\n".join(rows) + "\n").encode() if rows else b""
                for t, rows in self.lines.items()
            },
            "counts": {t: len(rows) for t, rows in self.lines.items()},
            "open_cases": self.open_cases,
        }


def build_chunk(
    chunk_index: int,
    start: int,
    count: int,
    people: int,
    seed: int,
    now_iso: str,
    referral_columns: tuple[str, ...] = (),
    case_columns: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Build the rows for people ``start`` .. ``start + count - 1`` (runs in a worker process);
    ``referral_columns``, ``case_columns``: the ``OPTIONAL_REFERRAL_COLUMNS`` and
    ``OPTIONAL_CASE_COLUMNS`` the schema has, filled in that order."""
    from app.services.persons import name_key
    from app.triage import evaluate
    from app.triage.decision import URGENCY_RANK, RouteKind
    from app.triage.postcodes import postcode_district

    ruleset = _ruleset()
    rng = random.Random(f"{seed}:{chunk_index}")
    now = datetime.fromisoformat(now_iso)
    today = now.date()
    chunk = _Chunk()
    counts, weights = zip(*REFERRALS_PER_PERSON, strict=True)
    channels = [channel for channel, _ in DB_CHANNELS]
    channel_weights = [weight for _, weight in DB_CHANNELS]
    genders, gender_weights = zip(*GENDER_CODES, strict=True)
    ethnicities, ethnicity_weights = zip(*ETHNIC_CATEGORY_CODES, strict=True)

    for index in range(start, start + count):
        who = synth.person(rng, today, nhs_number_for(index))
        dob = date.fromisoformat(who["date_of_birth"])
        born_at = datetime(dob.year, dob.month, dob.day, 12, tzinfo=UTC)
        earliest = max(now - timedelta(days=REFERRAL_HISTORY_DAYS), born_at + timedelta(days=30))
        span = max((now - earliest).total_seconds(), 3600.0)
        n_referrals = rng.choices(counts, weights)[0]
        received = sorted(
            earliest + timedelta(seconds=rng.random() * span) for _ in range(n_referrals)
        )
        person_id = _uuid(rng)
        # Asked once and given the same way on each of the person's referrals.
        equity = {
            "gender_code": rng.choices(genders, gender_weights)[0],
            "ethnic_category_code": rng.choices(ethnicities, ethnicity_weights)[0],
        }
        open_case: dict[str, Any] | None = None
        cases: list[dict[str, Any]] = []
        for k, received_at in enumerate(received):
            channel = rng.choices(channels, channel_weights)[0]
            body = synth.referral_body(
                rng, who, "phone" if channel == "web" else channel, received_at.date()
            )
            if channel == "web":
                del body["channel"]
                body["referrer"] = {"type": "self"}
            facts = _facts(body, channel, received_at)
            decision = evaluate(facts, ruleset)
            referral_id = _uuid(rng)
            if (
                open_case is not None
                and open_case["closed_at"] is not None
                and (open_case["closed_at"] <= received_at)
            ):
                open_case = None
            rank = URGENCY_RANK[decision.urgency.code]
            staff = channel in ("phone", "drop_in")
            submitted_by = f"staff-{rng.randrange(KEY_WORKERS)}" if staff else None
            if open_case is not None:
                disposition = "joined_case"
                if rank < open_case["urgency_rank"]:
                    _raise_on_join(open_case, decision, rank, received_at, submitted_by)
                open_case["events"].append(
                    (received_at, "referral_joined", None, {"referral_id": referral_id})
                )
            elif decision.route.kind is RouteKind.SIGNPOST or decision.route.queue_id is None:
                disposition = "signposted"
            else:
                disposition = "case_opened"
                open_case = _new_case(rng, person_id, decision, rank, received_at, now, equity)
                open_case["events"].append(
                    (received_at, "case_opened", "waiting", {"referral_id": referral_id})
                )
                cases.append(open_case)
            case_id = open_case["id"] if open_case is not None else None
            raw = _json(body)
            referrer_ods = body["referrer"].get("ods_code")
            chunk.add(
                "referrals",
                (
                    referral_id,
                    reference_for(index * 4 + k),
                    person_id,
                    case_id,
                    facts.channel.value,
                    facts.site_id,
                    facts.referrer_type.value,
                    facts.request.value,
                    _ts(received_at),
                    disposition,
                    "staff" if staff else ("system" if channel == "system" else "public"),
                    submitted_by,
                    None,
                    raw,
                    raw,
                    body.get("reason"),
                    _ts(received_at),
                    *_optional_values(
                        referral_columns, equity, decision, facts, referrer_ods, ruleset
                    ),
                ),
            )
            chunk.add(
                "triage_decisions",
                (
                    _uuid(rng),
                    referral_id,
                    decision.ruleset_version,
                    _json(facts),
                    _json(decision.to_dict()),
                    decision.eligibility.outcome.value,
                    decision.urgency.code.value,
                    decision.thrive_grouping.value,
                    decision.route.kind.value,
                    decision.route.queue_id,
                    _ts(decision.urgency.respond_by_at),
                    _ts(received_at),
                ),
            )
        postcode = who["postcode"]
        chunk.add(
            "persons",
            (
                person_id,
                who["nhs_number"],
                who["given_name"],
                who["family_name"],
                name_key(who["given_name"]),
                name_key(who["family_name"]),
                who["date_of_birth"],
                postcode,
                postcode_district(postcode) if postcode else None,
                who["phone"],
                who["email"],
                who["send"],
                who["looked_after"],
                _ts(received[0]),
                _ts(received[-1]),
            ),
        )
        for case in cases:
            _finish_case(rng, chunk, case, now, ruleset, case_columns)
    return chunk.result()


def _optional_values(
    columns: tuple[str, ...],
    equity: dict[str, str | None],
    decision: Any,
    facts: Any,
    referrer_ods_code: str | None,
    ruleset: Any,
) -> list[Any]:
    """The referral's values for the optional columns the schema has (as intake records them)."""
    values: list[Any] = []
    for column in columns:
        if column in equity:
            values.append(equity[column])
        elif column == "age_years":
            values.append(decision.age_years)
        elif column == "locality_id":
            values.append(decision.locality_id)
        elif column == "source_of_referral_code":
            values.append(
                ruleset.codes.source_of_referral_for(
                    channel=facts.channel.value,
                    referrer_type=facts.referrer_type.value,
                    referrer_ods_code=referrer_ods_code,
                )
            )
        elif column == "eligibility_rule":
            reasons = decision.eligibility.reasons
            values.append(reasons[0].rule if reasons else None)
        else:
            raise ValueError(f"no value for referrals.{column}")
    return values


def _optional_case_values(
    columns: tuple[str, ...],
    case: dict[str, Any],
    contacts: list[tuple[datetime, str, str | None]],
) -> list[Any]:
    """The case's values for the optional columns the schema has (as the application keeps
    them): the opening referral's, and the latest attended contact."""
    values: list[Any] = []
    for column in columns:
        if column == "opening_urgency_code":
            values.append(case["engine_code"])
        elif column == "last_contact_at":
            attended = [at for at, attendance, _ in contacts if attendance == "attended"]
            values.append(_ts(max(attended)) if attended else None)
        elif column in case["opening"]:
            values.append(case["opening"][column])
        else:
            raise ValueError(f"no value for cases.{column}")
    return values


@lru_cache(maxsize=1)
def _ruleset() -> Any:
    from app.triage import load_ruleset

    return load_ruleset()


def _facts(body: dict[str, Any], channel: str, received_at: datetime) -> Any:
    from app.triage import ReferralFacts, RiskAnswers
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

    who, risk, preference = body["person"], body["risk"], body["preferences"]["setting"]
    return ReferralFacts(
        received_at=received_at,
        channel=Channel(channel),
        referrer_type=ReferrerType(body["referrer"]["type"]),
        date_of_birth=date.fromisoformat(who["date_of_birth"]),
        postcode=who["postcode"],
        site_id=body.get("site_id"),
        camhs_status=CamhsStatus(body["camhs"]["status"]),
        camhs_transition_planned=body["camhs"]["transition_planned"],
        amhs_threshold=AmhsThreshold(body["amhs_threshold"]),
        send=who["send"],
        looked_after=who["looked_after"],
        request=RequestKind(body["request"]),
        risk=RiskAnswers(
            immediate_danger=risk["immediate_danger"],
            suicidal=Suicidal(risk["suicidal"]),
            self_harm=SelfHarm(risk["self_harm"]),
            harm_to_others=HarmToOthers(risk["harm_to_others"]),
            safeguarding_concern=risk["safeguarding_concern"],
            supported=risk["supported"],
        ),
        setting_preference=SettingPreference(preference) if preference else None,
    )


def _new_case(
    rng: random.Random,
    person_id: str,
    decision: Any,
    rank: int,
    received_at: datetime,
    now: datetime,
    equity: dict[str, str | None],
) -> dict[str, Any]:
    days_open = max(1.0, rng.expovariate(1 / MEAN_CASE_DAYS))
    closed_at = received_at + timedelta(days=days_open)
    return {
        "id": _uuid(rng),
        "person_id": person_id,
        "queue_id": decision.route.queue_id,
        "engine_code": decision.urgency.code.value,
        "urgency_code": decision.urgency.code.value,
        "urgency_rank": rank,
        "received_at": received_at,
        "respond_by_at": decision.urgency.respond_by_at,
        "thrive_grouping_proposed": decision.thrive_grouping.value,
        # As intake copies them from the opening referral.
        "opening": {
            "age_years": decision.age_years,
            "locality_id": decision.locality_id,
            **equity,
        },
        "closed_at": closed_at if closed_at <= now else None,
        "version": 1,
        "events": [],
        "urgency_changes": [],
    }


def _raise_on_join(
    case: dict[str, Any], decision: Any, rank: int, at: datetime, by: str | None
) -> None:
    """A further referral joined the open case at a more urgent code: the case's urgency rises
    and its deadline comes earlier, never later (as intake does), and the change is kept."""
    old_code, old_respond_by = case["urgency_code"], case["respond_by_at"]
    new_respond_by = decision.urgency.respond_by_at
    if new_respond_by is not None and (old_respond_by is None or new_respond_by < old_respond_by):
        case["respond_by_at"] = new_respond_by
    case["urgency_rank"] = rank
    case["urgency_code"] = decision.urgency.code.value
    case["version"] += 1
    case["urgency_changes"].append(
        {
            "source": "referral",
            "engine_code": decision.urgency.code.value,
            "from_code": old_code,
            "to_code": case["urgency_code"],
            "from_respond_by_at": old_respond_by,
            "to_respond_by_at": case["respond_by_at"],
            "reason": None,
            "changed_by_id": by,
            "changed_by_role": "call_handler" if by else None,
            "changed_at": at,
        }
    )


def _first_contact_wait(rng: random.Random, case: dict[str, Any], elapsed: timedelta) -> timedelta:
    """How long the young person waited for the first attended contact: the urgency window
    times a random factor (so some come after the deadline), within the case's life."""
    respond_by: datetime | None = case["respond_by_at"]
    if respond_by is None:
        wait = elapsed * rng.uniform(0.05, 0.3)
    else:
        window = respond_by - case["received_at"]
        if window <= timedelta(0):  # "immediately": within hours
            wait = timedelta(hours=rng.uniform(0.1, 3.0))
        else:
            wait = window * rng.uniform(*WAIT_FACTOR)
    return min(wait, elapsed * 0.6)


def _regrade(rng: random.Random, case: dict[str, Any], at: datetime, by: str, ruleset: Any) -> None:
    """A clinician re-grades the case by one code (C, D, E only), as ``change_urgency`` does:
    the deadline follows while the waiting clock runs."""
    from app.services.cases import regraded_respond_by, respond_within
    from app.triage.decision import URGENCY_RANK, UrgencyCode

    old = UrgencyCode(case["urgency_code"])
    position = REGRADABLE.index(old.value)
    choices = [REGRADABLE[i] for i in (position - 1, position + 1) if 0 <= i < len(REGRADABLE)]
    new = UrgencyCode(rng.choice(choices))
    old_respond_by = case["respond_by_at"]
    case["respond_by_at"] = regraded_respond_by(
        old_code=old,
        new_code=new,
        old_respond_by_at=old_respond_by,
        received_at=case["received_at"],
        window=respond_within(ruleset, new),
        now=at,
    )
    case["urgency_code"], case["urgency_rank"] = new.value, URGENCY_RANK[new]
    raised = URGENCY_RANK[new] < URGENCY_RANK[old]
    case["urgency_changes"].append(
        {
            "source": "regrade",
            "engine_code": case["engine_code"],
            "from_code": old.value,
            "to_code": new.value,
            "from_respond_by_at": old_respond_by,
            "to_respond_by_at": case["respond_by_at"],
            "reason": "Re-graded at clinical triage." if raised else "Lower need than referred.",
            "changed_by_id": by,
            "changed_by_role": "practitioner",
            "changed_at": at,
        }
    )
    case["events"].append(
        (
            at,
            "urgency_raised" if raised else "urgency_lowered",
            None,
            {"from_code": old.value, "to_code": new.value, "engine_code": case["engine_code"]},
        )
    )


def _finish_case(
    rng: random.Random,
    chunk: _Chunk,
    case: dict[str, Any],
    now: datetime,
    ruleset: Any,
    case_columns: tuple[str, ...] = (),
) -> None:
    """Give the case a status consistent with its age, its contacts (the first and second
    attended ones match ``cases.first_contact_at`` and ``second_contact_at``; missed ones are
    counted), perhaps a re-grade and a THRIVE decision, and write it with its timeline."""
    from app.triage.decision import ThriveGrouping

    received_at: datetime = case["received_at"]
    closed_at: datetime | None = case["closed_at"]
    end = closed_at or now
    elapsed = end - received_at
    key_worker = allocated_at = first_contact_at = second_contact_at = thrive_at = None
    thrive = None
    if closed_at is not None:
        status = "closed"
        stage = rng.choice([1, 2, 3, 3, 3])
    else:
        days = elapsed.total_seconds() / 86400
        stage = 0 if days < 3 else rng.choices([0, 1, 2, 3, 4], [30, 15, 15, 30, 10])[0]
        status = ("waiting", "allocated", "contacted", "active", "on_hold")[stage]
    wait = _first_contact_wait(rng, case, elapsed)
    contacts: list[tuple[datetime, str, str | None]] = []  # (when, attendance, contact type)
    if stage >= 1:
        key_worker = f"staff-{rng.randrange(KEY_WORKERS)}"
        allocated_at = received_at + wait * rng.uniform(0.1, 0.6)
        case["events"].append((allocated_at, "allocated", "allocated", {}))
        if case["urgency_code"] in REGRADABLE and rng.random() < REGRADED:
            _regrade(rng, case, allocated_at + (wait * 0.05), key_worker, ruleset)
        # Missed appointments before the first attended one (or instead of it, if none came).
        first_due = received_at + wait if stage >= 2 else end
        if rng.random() < (DID_NOT_ATTEND_BEFORE_FIRST if stage >= 2 else 0.3):
            contacts.append(
                (allocated_at + (first_due - allocated_at) * 0.5, "did_not_attend", None)
            )
    if stage >= 2:
        first_contact_at = received_at + wait
        contacts.append((first_contact_at, "attended", "assessment"))
    if stage >= 3:
        thrive_at = first_contact_at + (end - first_contact_at) * rng.uniform(0.02, 0.15)
        thrive = case["thrive_grouping_proposed"]
        if rng.random() < THRIVE_CHANGED:
            thrive = rng.choice([g.value for g in ThriveGrouping if g.value != thrive])
        case["events"].append((thrive_at, "thrive_confirmed", "active", {"grouping": thrive}))
        if rng.random() < SECOND_CONTACT:
            second_contact_at = first_contact_at + (end - first_contact_at) * rng.uniform(0.2, 0.5)
            contacts.append((second_contact_at, "attended", None))
            for _ in range(rng.choice(MORE_CONTACTS)):
                later = second_contact_at + (end - second_contact_at) * rng.random()
                attended = rng.random() < 0.9
                contacts.append((later, "attended" if attended else "did_not_attend", None))
    if closed_at is not None:
        case["events"].append((closed_at, "closed", "closed", {}))
    else:
        chunk.open_cases += 1
    mechanisms, mechanism_weights = zip(*CONTACT_MECHANISMS, strict=True)
    whoms, whom_weights = zip(*CONTACT_WITH, strict=True)
    did_not_attend = 0
    for at, attendance, contact_type in sorted(contacts, key=lambda c: c[0]):
        contact_id = _uuid(rng)
        mechanism = rng.choices(mechanisms, mechanism_weights)[0]
        with_whom = rng.choices(whoms, whom_weights)[0]
        did_not_attend += attendance == "did_not_attend"
        stopped = at == first_contact_at
        chunk.add(
            "case_contacts",
            (
                contact_id,
                case["id"],
                _ts(at),
                mechanism,
                attendance,
                with_whom,
                contact_type,
                key_worker,
                _ts(at + timedelta(minutes=rng.randrange(5, 240))),
            ),
        )
        case["events"].append(
            (
                at,
                "contact_recorded",
                "contacted" if stopped else None,
                {
                    "contact_id": contact_id,
                    "attendance": attendance,
                    "mechanism": mechanism,
                    "with": with_whom,
                    "stopped_clock": stopped,
                },
            )
        )
    for change in case["urgency_changes"]:
        chunk.add(
            "case_urgency_changes",
            (
                _uuid(rng),
                case["id"],
                change["source"],
                change["engine_code"],
                change["from_code"],
                change["to_code"],
                _ts(change["from_respond_by_at"]),
                _ts(change["to_respond_by_at"]),
                case["queue_id"],
                case["queue_id"],
                change["reason"],
                change["changed_by_id"],
                change["changed_by_role"],
                _ts(change["changed_at"]),
            ),
        )
    chunk.add(
        "cases",
        (
            case["id"],
            case["person_id"],
            case["queue_id"],
            status,
            case["urgency_code"],
            case["urgency_rank"],
            _ts(received_at),
            _ts(case["respond_by_at"]),
            _ts(first_contact_at),
            "assessment" if first_contact_at else None,
            _ts(second_contact_at),
            did_not_attend,
            key_worker,
            _ts(allocated_at),
            case["thrive_grouping_proposed"],
            thrive,
            key_worker if thrive else None,
            _ts(thrive_at),
            rng.choice(CLOSE_OUTCOMES) if closed_at else None,
            _ts(closed_at),
            case["version"] + len(case["events"]) - 1,
            _ts(received_at),
            _ts(end),
            *_optional_case_values(case_columns, case, contacts),
        ),
    )
    current = None
    for seq, (at, kind, to_status, data) in enumerate(
        sorted(case["events"], key=lambda e: e[0]), start=1
    ):
        to_status = to_status or current
        actor = None if kind in ("case_opened", "referral_joined") else key_worker
        chunk.add(
            "case_events",
            (
                _uuid(rng),
                case["id"],
                seq,
                kind,
                "staff" if actor else "system",
                actor,
                "practitioner" if actor else None,
                current,
                to_status,
                None,
                _json(data),
                _ts(at),
            ),
        )
        current = to_status


async def _copy_chunks(
    dsn: str,
    people: int,
    chunk_size: int,
    seed: int,
    jobs: int,
    summary: LoadSummary,
    progress: bool,
) -> None:
    now_iso = datetime.now(UTC).isoformat()
    conn = await asyncpg.connect(dsn)
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    try:
        optional = await optional_referral_columns(conn)
        optional_case = await optional_columns(conn, "cases", OPTIONAL_CASE_COLUMNS)
        columns = dict(COLUMNS)
        columns["referrals"] = COLUMNS["referrals"] + optional
        columns["cases"] = COLUMNS["cases"] + optional_case
        # Rows are consistent by construction: skip per-row foreign-key triggers.
        await conn.execute("SET session_replication_role = replica")
        n_chunks = math.ceil(people / chunk_size)
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            pending: list[asyncio.Future[dict[str, Any]]] = []
            next_chunk = 0
            done = 0
            while done < n_chunks:
                while next_chunk < n_chunks and len(pending) < jobs + 1:
                    start = next_chunk * chunk_size
                    pending.append(
                        loop.run_in_executor(
                            pool,
                            build_chunk,
                            next_chunk,
                            start,
                            min(chunk_size, people - start),
                            people,
                            seed,
                            now_iso,
                            optional,
                            optional_case,
                        )
                    )
                    next_chunk += 1
                result = await pending.pop(0)
                for table in TABLE_ORDER:
                    if result["counts"][table]:
                        await conn.copy_to_table(
                            table,
                            source=io.BytesIO(result["copy"][table]),
                            columns=list(columns[table]),
                            format="text",
                        )
                    summary.rows[table] = summary.rows.get(table, 0) + result["counts"][table]
                summary.open_cases += result["open_cases"]
                done += 1
                if progress:
                    loaded = min(done * chunk_size, people)
                    rate = loaded / (time.perf_counter() - started)
                    print(f"  {loaded:>9,} people loaded ({rate:,.0f}/s)", flush=True)
    finally:
        await conn.close()


async def optional_referral_columns(conn: asyncpg.Connection) -> tuple[str, ...]:
    """The ``OPTIONAL_REFERRAL_COLUMNS`` the migrated schema has, in that order."""
    return await optional_columns(conn, "referrals", OPTIONAL_REFERRAL_COLUMNS)


async def optional_columns(
    conn: asyncpg.Connection, table: str, candidates: tuple[str, ...]
) -> tuple[str, ...]:
    """Those of ``candidates`` the migrated schema's ``table`` has, in that order."""
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = $1 AND column_name = ANY($2::text[])",
        table,
        list(candidates),
    )
    present = {row["column_name"] for row in rows}
    return tuple(column for column in candidates if column in present)


async def _vacuum(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for table in TABLE_ORDER:
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()


def load_dataset(
    admin_dsn: str,
    db: str,
    people: int,
    *,
    seed: int = 7,
    jobs: int | None = None,
    chunk_size: int = 20_000,
    recreate: bool = True,
    progress: bool = False,
) -> LoadSummary:
    """Create ``db`` (dropping it first if ``recreate``), migrate it, load ``people`` people.

    ``admin_dsn`` is a DSN to any database on the server (to run CREATE DATABASE). Returns row
    counts and timings. Call from synchronous code.
    """
    import os

    jobs = jobs or os.cpu_count() or 1
    summary = LoadSummary(database=db, people=people)
    dsn = harness.database_dsn(admin_dsn, db)
    t0 = time.perf_counter()
    asyncio.run(harness.create_database(admin_dsn, db, recreate=recreate))
    harness.migrate(dsn)
    summary.seconds["create_and_migrate"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    asyncio.run(_copy_chunks(dsn, people, chunk_size, seed, jobs, summary, progress))
    summary.seconds["copy"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    asyncio.run(_vacuum(dsn))
    summary.seconds["vacuum_analyze"] = time.perf_counter() - t2
    summary.seconds["total"] = time.perf_counter() - t0
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    harness.add_dsn_argument(parser)
    parser.add_argument("--db", default="frontdoor_bench", help="database to create and fill")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--people", type=int, default=None, help="people to load (default 1,000,000)")
    size.add_argument(
        "--referrals",
        type=int,
        default=None,
        help="about this many referrals: loads people_for_referrals(N) people "
        "(1,000,000 referrals: 813,008 people); the exact count is reported",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--jobs", type=int, default=None, help="row-building processes (default: CPU count)"
    )
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument(
        "--keep", action="store_true", help="do not drop an existing database of that name (append)"
    )
    harness.add_smoke_argument(parser)
    args = parser.parse_args(argv)
    if args.referrals is not None:
        args.people = people_for_referrals(args.referrals)
    elif args.people is None:
        args.people = 1_000_000
    if args.smoke:  # 300 people in three chunks, into a database of its own, dropped afterwards
        args.db, args.people, args.chunk_size, args.keep = (
            harness.smoke_database("data"),
            300,
            100,
            False,
        )
    print(f"loading {args.people:,} people into {args.db} ...", flush=True)
    with harness.database_dropped_afterwards(args.dsn, args.db, enabled=args.smoke):
        summary = load_dataset(
            args.dsn,
            args.db,
            args.people,
            seed=args.seed,
            jobs=args.jobs,
            chunk_size=args.chunk_size,
            recreate=not args.keep,
            progress=True,
        )
        print(orjson.dumps(asdict(summary), option=orjson.OPT_INDENT_2).decode())
        if args.smoke:
            return check_loaded(harness.database_dsn(args.dsn, args.db), summary)
    return 0


# Cases whose first and second attended contacts and did-not-attend count are not what their
# contact rows say (the case service keeps them in step; so must the loader).
CONTACT_MISMATCH = """
WITH attended AS (
    SELECT case_id, occurred_at,
           row_number() OVER (PARTITION BY case_id ORDER BY occurred_at) AS n
    FROM case_contacts WHERE attendance = 'attended'
), per_case AS (
    SELECT c.id, c.first_contact_at, c.second_contact_at, c.last_contact_at,
           c.did_not_attend_count,
           (SELECT a.occurred_at FROM attended a WHERE a.case_id = c.id AND a.n = 1) AS first_at,
           (SELECT a.occurred_at FROM attended a WHERE a.case_id = c.id AND a.n = 2) AS second_at,
           (SELECT max(a.occurred_at) FROM attended a WHERE a.case_id = c.id) AS last_at,
           (SELECT count(*) FROM case_contacts k
             WHERE k.case_id = c.id AND k.attendance = 'did_not_attend') AS missed
    FROM cases c
)
SELECT count(*) FROM per_case
WHERE first_contact_at IS DISTINCT FROM first_at
   OR second_contact_at IS DISTINCT FROM second_at
   OR last_contact_at IS DISTINCT FROM last_at
   OR did_not_attend_count <> missed
"""
# Cases whose copied report columns differ from their opening referral's (d1a0b0c0a009).
OPENING_MISMATCH = """
SELECT count(*) FROM cases c JOIN referrals r
  ON r.case_id = c.id AND r.disposition = 'case_opened'
  JOIN triage_decisions d ON d.referral_id = r.id
WHERE (c.age_years, c.locality_id, c.gender_code, c.ethnic_category_code, c.opening_urgency_code)
      IS DISTINCT FROM
      (r.age_years, r.locality_id, r.gender_code, r.ethnic_category_code, d.urgency_code)
"""


def check_loaded(dsn: str, summary: LoadSummary) -> int:
    """What a loaded database must hold: every table's rows as reported, every person, some
    open cases, and referrals that point at existing people and cases."""

    async def counts() -> dict[str, int]:
        conn = await asyncpg.connect(dsn)
        try:
            found = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLE_ORDER}
            found["contacts not matching their case"] = await conn.fetchval(CONTACT_MISMATCH)
            found["cases not matching their opening referral"] = await conn.fetchval(
                OPENING_MISMATCH
            )
            found["cases with contacts"] = await conn.fetchval(
                "SELECT count(DISTINCT case_id) FROM case_contacts"
            )
            found["orphan referrals"] = await conn.fetchval(
                "SELECT count(*) FROM referrals r LEFT JOIN persons p ON p.id = r.person_id "
                "LEFT JOIN cases c ON c.id = r.case_id "
                "WHERE p.id IS NULL OR (r.case_id IS NOT NULL AND c.id IS NULL)"
            )
            return found
        finally:
            await conn.close()

    found = asyncio.run(counts())
    problems = [
        f"{table}: {found[table]} rows, reported {rows}"
        for table, rows in summary.rows.items()
        if found[table] != rows
    ]
    if found["persons"] != summary.people:
        problems.append(f"{found['persons']} people, not {summary.people}")
    if not summary.open_cases:
        problems.append("no open cases")
    if not found["cases with contacts"]:
        problems.append("no contacts")
    if found["contacts not matching their case"]:
        problems.append(
            f"{found['contacts not matching their case']} cases whose first, second or latest "
            "contact or did-not-attend count differs from their contact records"
        )
    if found["cases not matching their opening referral"]:
        problems.append(
            f"{found['cases not matching their opening referral']} cases whose age, locality, "
            "equity answers or engine's urgency differ from their opening referral's"
        )
    if found["orphan referrals"]:
        problems.append(f"{found['orphan referrals']} referrals without their person or case")
    for problem in problems:
        print(f"FAILED {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
