"""The month's Mental Health Services Data Set (MHSDS) shaped extract: CSV files named and coded
as MHSDS v6.0 tables (docs/domain/mhsds-extract.md).

    MHS000Header.csv                 the submitting provider and the reporting period
    MHS101Referral.csv               every referral open at some time in the month
    MHS102ServiceTypeReferredTo.csv  the team (type) each of those referrals' case is held by
    MHS201CareContact.csv            every contact recorded as taking place in the month
    MHS302MHDropInContact.csv        every drop-in received in the month
    manifest.json                    spec version, month, row counts, sha256 of each file

Streamed: one read-only transaction (a consistent snapshot), rows fetched in batches through a
server-side cursor and written as they come, so memory stays flat however large the month.
Files are written into a hidden working folder inside ``--out`` and moved into place only when
every one is complete; the manifest is written last. A failed run leaves the working folder
removed and no file that looks complete.

Privacy: a person appears as ``LocalPatientID``, an HMAC-SHA256 of their id under a secret key
(stable across runs with the same key, meaningless without it). The NHS number is written only
where the MHSDS table carries it (MHS302) and only when it is a verified one. No name, date of
birth, postcode, contact detail or free text is read from the database at all.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import re
import shutil
import tempfile
import uuid
from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TextIO

from sqlalchemy import (
    DateTime,
    Select,
    Uuid,
    and_,
    event,
    func,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.config import Settings
from app.exports import codes
from app.models import Case, CaseContact, Person, Queue, Referral, TriageDecision
from app.triage.age import SERVICE_TIME_ZONE

SPEC: Final = "MHSDS"
SPEC_VERSION: Final = "6.0"
PRIMARY_SYSTEM: Final = "FRONTDOOR"
# Rows fetched from the database per round trip.
BATCH_ROWS: Final = 5_000
# LocalPatientID: the first 20 hex characters (80 bits) of the HMAC.
LOCAL_PATIENT_ID_CHARS: Final = 20
# PostgreSQL's work_mem for the extract's transaction (one connection, one statement at a time).
EXPORT_WORK_MEM: Final = "64MB"

MONTH_PATTERN: Final = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

HEADER_FIELDS: Final = (
    "DatSetVer",
    "OrgIDProvider",
    "OrgIDSubmit",
    "PrimSystemInUse",
    "ReportingPeriodStartDate",
    "ReportingPeriodEndDate",
    "DateTimeDatSetCreate",
)
REFERRAL_FIELDS: Final = (
    "ServiceRequestID",
    "LocalPatientID",
    "OrgIDReferringOrg",
    "ReferralRequestReceivedDate",
    "ReferralRequestReceivedTime",
    "SourceOfReferralMH",
    "ClinRespPriorityType",
    "ServDischDate",
    "ServDischTime",
)
SERVICE_TYPE_FIELDS: Final = (
    "ServiceRequestID",
    "CareProfTeamLocalID",
    "ServTeamTypeRefToMH",
    "ReferClosureDate",
    "ReferClosureTime",
)
CARE_CONTACT_FIELDS: Final = (
    "CareContactID",
    "ServiceRequestID",
    "CareContDate",
    "CareContTime",
    "ConsMechanismMH",
    "AttendStatus",
)
DROP_IN_FIELDS: Final = (
    "MHDropInContactID",
    "LocalPatientID",
    "NHSNumber",
    "CareContactDateMHDropInContact",
    "StartTimeDropInContact",
    "ConsMechanismMH",
    "MHDropInContactServiceType",
)
TABLES: Final = {
    "MHS000Header": HEADER_FIELDS,
    "MHS101Referral": REFERRAL_FIELDS,
    "MHS102ServiceTypeReferredTo": SERVICE_TYPE_FIELDS,
    "MHS201CareContact": CARE_CONTACT_FIELDS,
    "MHS302MHDropInContact": DROP_IN_FIELDS,
}
MANIFEST: Final = "manifest.json"


class ExportError(Exception):
    """The extract cannot be made as asked; the message names what to change (no data)."""


@dataclass(frozen=True, slots=True)
class ReportingPeriod:
    """A calendar month on the Europe/London calendar, as UTC instants [start, end)."""

    month: str
    first_day: date
    last_day: date
    start: datetime
    end: datetime

    @classmethod
    def parse(cls, month: str) -> ReportingPeriod:
        match = MONTH_PATTERN.match(month.strip())
        if match is None:
            raise ValueError("--month must be a month as YYYY-MM, for example 2026-11")
        year, number = int(match.group(1)), int(match.group(2))
        if year < 2000:
            raise ValueError("--month must be a month as YYYY-MM, for example 2026-11")
        first = date(year, number, 1)
        following = date(year + number // 12, number % 12 + 1, 1)
        return cls(
            month=f"{year:04d}-{number:02d}",
            first_day=first,
            last_day=following - timedelta(days=1),
            start=_local_midnight(first),
            end=_local_midnight(following),
        )


def _local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=SERVICE_TIME_ZONE).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ExportOptions:
    provider_ods: str
    pseudonym_key: bytes
    batch_rows: int = BATCH_ROWS


@dataclass
class ExportResult:
    out_dir: Path
    period: ReportingPeriod
    rows: dict[str, int] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    generated_at: datetime | None = None


class Pseudonymiser:
    """LocalPatientID for a person id: HMAC-SHA256 under the export key, hex, truncated."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the pseudonymisation key is too short")
        self._key = key

    def __call__(self, person_id: uuid.UUID) -> str:
        digest = hmac.digest(self._key, person_id.bytes, "sha256").hex()
        return digest[:LOCAL_PATIENT_ID_CHARS].upper()


def _instant(value: datetime | None) -> datetime | None:
    """A timestamp as the driver returns it, made UTC-aware: the statements read them without
    the models' per-value conversion (``UTCDateTime``), so SQLite's naive UTC text comes back
    naive; PostgreSQL's are aware already."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _date_time(value: datetime | None) -> tuple[str, str]:
    """An instant's date and time on the Europe/London calendar, as MHSDS writes them
    (``YYYY-MM-DD`` and ``HH:MM:SS``); blank for none. One conversion gives both."""
    if value is None:
        return "", ""
    text = value.astimezone(SERVICE_TIME_ZONE).isoformat(" ", "seconds")
    return text[:10], text[11:19]


def _until(value: datetime | None, period: ReportingPeriod) -> datetime | None:
    """A closure as known at the end of the period (a later one is not yet known)."""
    return value if value is not None and value < period.end else None


class _HashingWriter:
    """A text file that hashes what is written to it (UTF-8), for the manifest."""

    def __init__(self, path: Path) -> None:
        self._file: TextIO = path.open("w", encoding="utf-8", newline="")
        self._hash = hashlib.sha256()
        self._buffer = io.StringIO()
        self.rows = 0
        self.csv = csv.writer(self._buffer, lineterminator="\r\n")

    def header(self, fields: Sequence[str]) -> None:
        self.csv.writerow(fields)
        self._drain()

    def row(self, values: Sequence[str]) -> None:
        self.csv.writerow(values)
        self.rows += 1
        if self._buffer.tell() > 1 << 16:
            self._drain()

    def _drain(self) -> None:
        text = self._buffer.getvalue()
        if text:
            self._file.write(text)
            self._hash.update(text.encode("utf-8"))
            self._buffer.seek(0)
            self._buffer.truncate()

    def close(self) -> str:
        self._drain()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._hash.hexdigest()

    def abandon(self) -> None:
        self._file.close()


def _raw_instant(column: Any) -> Any:
    """A timestamp column read as the driver gives it (``_instant`` makes it aware): the
    models' type converts every value to UTC in Python first, which the extract, converting to
    local time itself, would only repeat."""
    return type_coerce(column, DateTime(timezone=True)).label(column.key)


def _month_referral_columns() -> tuple[Any, ...]:
    """What the extract reads from a referral row: narrow columns, and the referring
    organisation from the normalised body (the row is read anyway, for its reference)."""
    return (
        Referral.id,
        Referral.reference,
        Referral.person_id,
        Referral.channel,
        Referral.received_at,
        Referral.site_id,
        Referral.source_of_referral_code,
        Referral.normalised["referrer"]["ods_code"].as_string().label("referrer_ods"),
    )


def _referral_statement(period: ReportingPeriod) -> Select[Any]:
    """Every referral open at some time in the period: received before its end and, if it has a
    case, the case not closed before its start; a signposted referral (no case) is closed when
    received, so it is open only in the month it came in.

    Driven from what is in the month, as two branches (UNION ALL, disjoint: a referral has a
    case or not): the referrals of the cases not closed before the start, and the signposted
    referrals received in the month (the received-date index). Only those referrals' decisions
    are read. The source of referral is the referral's own column (intake copies it from the
    same codes it records with the decision, and the reporting migration back-filled it from
    the decision); the decision's JSON is read for it only where the column is empty."""
    case_open = or_(Case.closed_at.is_(None), Case.closed_at >= period.start)
    of_open_cases = (
        select(*_month_referral_columns(), Case.queue_id, Case.closed_at)
        .join(Case, Case.id == Referral.case_id)
        .where(case_open, Referral.received_at < period.end)
    )
    signposted = select(
        *_month_referral_columns(),
        null().label("queue_id"),
        null().label("closed_at"),
    ).where(
        Referral.case_id.is_(None),
        Referral.received_at >= period.start,
        Referral.received_at < period.end,
    )
    month = union_all(of_open_cases, signposted).subquery("month")
    site = Queue.__table__.alias("site")
    team = Queue.__table__.alias("team")
    codes_doc = TriageDecision.output["codes"]
    return (
        select(
            month.c.reference,
            month.c.person_id,
            month.c.channel,
            _raw_instant(month.c.received_at),
            month.c.referrer_ods,
            func.coalesce(
                month.c.source_of_referral_code, codes_doc["source_of_referral"].as_string()
            ).label("source_of_referral"),
            codes_doc["clinical_response_priority_type"].as_string().label("priority"),
            month.c.queue_id,
            team.c.kind.label("team_kind"),
            _raw_instant(month.c.closed_at),
            site.c.kind.label("site_kind"),
            Person.nhs_number,
        )
        .select_from(month)
        .join(TriageDecision, TriageDecision.referral_id == month.c.id, isouter=True)
        .join(team, team.c.id == month.c.queue_id, isouter=True)
        .join(site, site.c.id == month.c.site_id, isouter=True)
        .join(Person, Person.id == month.c.person_id)
        .order_by(month.c.received_at, month.c.id)
    )


def _contact_statement(period: ReportingPeriod) -> Select[Any]:
    """Every contact that took place in the period, with the reference of its case's opening
    referral (the first received; every contact of a case belongs to that service request).

    The opening referrals are numbered once for the cases with a contact in the period (a window
    over those cases' referrals, joined back), not looked up once per contact."""
    in_period = and_(CaseContact.occurred_at >= period.start, CaseContact.occurred_at < period.end)
    cases_in_period = select(CaseContact.case_id).where(in_period)
    numbered = (
        select(
            Referral.case_id,
            Referral.reference,
            func.row_number()
            .over(partition_by=Referral.case_id, order_by=(Referral.received_at, Referral.id))
            .label("position"),
        )
        .where(Referral.case_id.in_(cases_in_period))
        .subquery("opening")
    )
    return (
        select(
            CaseContact.id,
            _raw_instant(CaseContact.occurred_at),
            CaseContact.mechanism,
            CaseContact.attendance,
            numbered.c.reference.label("service_request"),
        )
        .join(
            numbered,
            and_(numbered.c.case_id == CaseContact.case_id, numbered.c.position == 1),
            isouter=True,
        )
        .where(in_period)
        .order_by(CaseContact.occurred_at, CaseContact.id)
    )


async def _stream(
    conn: AsyncConnection, statement: Select[Any], batch_rows: int
) -> AsyncIterator[Sequence[Any]]:
    result = await conn.stream(statement.execution_options(yield_per=batch_rows))
    async for partition in result.partitions():
        yield partition


async def _each_batch(
    conn: AsyncConnection,
    statement: Select[Any],
    batch_rows: int,
    handle: Callable[[Sequence[Any]], None],
) -> None:
    """Call ``handle`` with the statement's rows, a batch at a time, in the statement's order.

    On PostgreSQL (asyncpg) the rows come through ``COPY (statement) TO STDOUT``: PostgreSQL
    never runs a query in parallel for a cursor it must be able to suspend (a server-side
    cursor's fetch), and the month's joins take about three times as long in one process; a
    COPY is planned like a plain query and streamed with back-pressure (the driver stops
    reading while ``handle`` runs), so memory stays as flat as a cursor's. Elsewhere, a
    server-side cursor (SQLite's stepped cursor)."""
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "asyncpg":
        await _copy_batches(conn, statement, handle)
        return
    async for batch in _stream(conn, statement, batch_rows):
        handle(batch)


# COPY's text format: NULL is \N; backslash, tab, newline and other control characters are
# backslash-escaped.
_COPY_NULL: Final = "\\N"
_COPY_ESCAPE: Final = re.compile(r"\\(.)")
_COPY_ESCAPES: Final = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _copy_text(value: str) -> str:
    return _COPY_ESCAPE.sub(lambda m: _COPY_ESCAPES.get(m.group(1), m.group(1)), value)


def _copy_converter(column: Any) -> Callable[[str], Any]:
    """How a COPY text field becomes the value the driver would have given for the column."""
    affinity = column.type._type_affinity
    if affinity is not None and issubclass(affinity, DateTime):
        return datetime.fromisoformat
    if affinity is not None and issubclass(affinity, Uuid):
        return uuid.UUID
    return str


async def _copy_batches(
    conn: AsyncConnection, statement: Select[Any], handle: Callable[[Sequence[Any]], None]
) -> None:
    """``COPY (statement) TO STDOUT`` in text format, each chunk's complete lines handed on as
    rows with the statement's column names. The statement's literals are the period's bounds
    and constant JSON keys (no outside input), rendered inline."""
    columns = list(statement.selected_columns)
    row_type = namedtuple("Row", [column.key for column in columns])  # type: ignore[misc]
    converters = [_copy_converter(column) for column in columns]
    sql = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    carry = b""

    def row(line: bytes) -> Any:
        values: list[Any] = []
        for text, convert in zip(line.decode("utf-8").split("\t"), converters, strict=True):
            if text == _COPY_NULL:
                values.append(None)
            else:
                values.append(convert(_copy_text(text) if "\\" in text else text))
        return row_type(*values)

    failure: BaseException | None = None

    async def sink(chunk: bytes) -> None:
        # An error while writing is kept, not raised here: raised inside the driver's COPY it
        # leaves the connection waiting on a COPY the server has already finished. The rest of
        # the COPY is read and dropped, then the error is raised.
        nonlocal carry, failure
        if failure is not None:
            return
        lines = (carry + chunk).split(b"\n")
        carry = lines.pop()
        try:
            handle([row(line) for line in lines])
        except Exception as exc:
            failure = exc

    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_from_query(sql, output=sink, format="text")
    if failure is not None:
        raise failure
    if carry:
        handle([row(carry)])


def _referral_rows(
    row: Any, period: ReportingPeriod, local_patient_id: Callable[[uuid.UUID], str]
) -> tuple[list[str], list[str] | None, list[str] | None]:
    """One referral's MHS101 row, its MHS102 row (when it has a case) and its MHS302 row (a
    drop-in received in the period)."""
    patient = local_patient_id(row.person_id)
    received = _instant(row.received_at)
    assert received is not None
    received_date, received_time = _date_time(received)
    closed_date, closed_time = _date_time(_until(_instant(row.closed_at), period))
    if row.queue_id is None:
        # Signposted: no service was provided; the referral ended when it was decided.
        discharged_date, discharged_time = received_date, received_time
    else:
        discharged_date, discharged_time = closed_date, closed_time
    referral = [
        row.reference,
        patient,
        row.referrer_ods or "",
        received_date,
        received_time,
        row.source_of_referral or "",
        row.priority or "",
        discharged_date,
        discharged_time,
    ]
    service = None
    if row.queue_id is not None:
        service = [
            row.reference,
            row.queue_id,
            codes.team_type(row.team_kind),
            closed_date,
            closed_time,
        ]
    drop_in = None
    if row.channel == "drop_in" and received >= period.start:
        drop_in = [
            row.reference,
            patient,
            row.nhs_number or "",  # verified numbers only: unverified people never hold one
            received_date,
            received_time,
            codes.DROP_IN_CONSULTATION_MECHANISM,
            codes.team_type(row.site_kind),
        ]
    return referral, service, drop_in


async def export_month(
    engine: AsyncEngine,
    period: ReportingPeriod,
    out_dir: Path,
    options: ExportOptions,
    *,
    now: datetime | None = None,
) -> ExportResult:
    """Write the period's extract into ``out_dir``; raise ``ExportError`` (nothing left behind
    that looks complete) when the folder cannot be written."""
    generated_at = (now or datetime.now(UTC)).astimezone(UTC)
    local_patient_id = Pseudonymiser(options.pseudonym_key)
    work = _work_folder(out_dir, period)
    writers: dict[str, _HashingWriter] = {}
    result = ExportResult(out_dir=out_dir, period=period, generated_at=generated_at)
    try:
        for table, fields in TABLES.items():
            writers[table] = _HashingWriter(work / f"{table}.csv")
            writers[table].header(fields)
        writers["MHS000Header"].row(
            [
                SPEC_VERSION,
                options.provider_ods,
                options.provider_ods,
                PRIMARY_SYSTEM,
                period.first_day.isoformat(),
                period.last_day.isoformat(),
                generated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            ]
        )
        async with engine.connect() as conn:
            await _begin_snapshot(conn)
            referrals, services, drop_ins = (
                writers["MHS101Referral"],
                writers["MHS102ServiceTypeReferredTo"],
                writers["MHS302MHDropInContact"],
            )
            contacts = writers["MHS201CareContact"]

            def write_referrals(batch: Sequence[Any]) -> None:
                for row in batch:
                    referral, service, drop_in = _referral_rows(row, period, local_patient_id)
                    referrals.row(referral)
                    if service is not None:
                        services.row(service)
                    if drop_in is not None:
                        drop_ins.row(drop_in)

            def write_contacts(batch: Sequence[Any]) -> None:
                for row in batch:
                    contact_date, contact_time = _date_time(_instant(row.occurred_at))
                    contacts.row(
                        [
                            row.id.hex.upper(),
                            row.service_request or "",
                            contact_date,
                            contact_time,
                            codes.consultation_mechanism(row.mechanism),
                            codes.attendance_status(row.attendance),
                        ]
                    )

            batch_rows = options.batch_rows
            await _each_batch(conn, _referral_statement(period), batch_rows, write_referrals)
            await _each_batch(conn, _contact_statement(period), batch_rows, write_contacts)
            await conn.rollback()  # read only: nothing to keep
        for table, writer in writers.items():
            result.sha256[f"{table}.csv"] = writer.close()
            result.rows[f"{table}.csv"] = writer.rows
        writers.clear()
        _write_manifest(work / MANIFEST, result, options)
        _move_into_place(work, out_dir)
    except OSError as exc:
        raise ExportError(f"cannot write to --out: {exc.strerror or type(exc).__name__}") from exc
    finally:
        for writer in writers.values():
            writer.abandon()
        shutil.rmtree(work, ignore_errors=True)
    return result


def _work_folder(out_dir: Path, period: ReportingPeriod) -> Path:
    """A hidden folder inside ``out_dir`` (same file system, so the final moves are renames)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".mhsds-{period.month}-", dir=out_dir))
    except OSError as exc:
        raise ExportError(f"cannot write to --out: {exc.strerror or type(exc).__name__}") from exc


def _move_into_place(work: Path, out_dir: Path) -> None:
    """Every table first, the manifest last: a manifest means every file beside it is whole."""
    (out_dir / MANIFEST).unlink(missing_ok=True)  # an earlier extract's no longer vouches
    for table in TABLES:
        os.replace(work / f"{table}.csv", out_dir / f"{table}.csv")
    os.replace(work / MANIFEST, out_dir / MANIFEST)


async def _begin_snapshot(conn: AsyncConnection) -> None:
    """One consistent, read-only snapshot for every table of the extract. On PostgreSQL a
    REPEATABLE READ READ ONLY transaction without the service's per-statement timeout (a month
    of rows takes longer than a request), with room to hash and sort the month in memory
    (``EXPORT_WORK_MEM``: at the default 4MB the joins and the sort spill to disk) and no JIT
    (compiling the referral statement took seconds and saved none: its time is in reading
    rows); on SQLite a deferred read transaction (the export engine's BEGIN), which in WAL mode
    never blocks the service's writers."""
    if conn.dialect.name == "postgresql":
        await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        await conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
        await conn.exec_driver_sql(f"SET LOCAL work_mem = '{EXPORT_WORK_MEM}'")
        await conn.exec_driver_sql("SET LOCAL jit = off")
        # The text the COPY path parses (_copy_batches): ISO dates.
        await conn.exec_driver_sql("SET LOCAL DateStyle = 'ISO, YMD'")


def create_export_engine(settings: Settings) -> AsyncEngine:
    """The engine the extract reads through: the service's on PostgreSQL; on SQLite one whose
    transactions are plain deferred BEGINs (the service's take the write lock up front, which a
    long read must not)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite":
        from app.db import asyncpg_connect_args, create_engine

        overrides: dict[str, Any] = {"pool_size": 1, "max_overflow": 0}
        if url.get_dialect().driver == "asyncpg":
            # No client-side limit per fetch either: the first batch of a month waits for the
            # whole sort. Connecting keeps the service's timeout.
            overrides["connect_args"] = {**asyncpg_connect_args(settings), "command_timeout": None}
        return create_engine(settings, **overrides)
    engine = create_async_engine(url)
    busy_ms = round(settings.database_statement_timeout_seconds * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


def _write_manifest(path: Path, result: ExportResult, options: ExportOptions) -> None:
    period = result.period
    assert result.generated_at is not None
    manifest = {
        "data_set": SPEC,
        "spec_version": SPEC_VERSION,
        "month": period.month,
        "reporting_period_start": period.first_day.isoformat(),
        "reporting_period_end": period.last_day.isoformat(),
        "period_complete": result.generated_at >= period.end,
        "provider_ods": options.provider_ods,
        "generated_at": result.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": {
            name: {"rows": result.rows[name], "sha256": result.sha256[name]}
            for name in sorted(result.rows)
        },
    }
    with path.open("w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def row_counts_line(result: ExportResult) -> str:
    """What the CLI reports: counts only, never a row."""
    counts = ", ".join(f"{name.removesuffix('.csv')} {n}" for name, n in result.rows.items())
    return f"MHSDS {SPEC_VERSION} extract for {result.period.month}: {counts}"
