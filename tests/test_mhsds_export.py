"""``frontdoor export mhsds``: the MHSDS v6.0 shaped extract (docs/domain/mhsds-extract.md).

A database of its own (the export reads through its own engine, so it must see committed rows),
filled once with known people, referrals on every channel, cases and contacts either side of the
month's boundaries; each test runs the command and reads the files back.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from app.config import Settings, get_settings
from app.db import create_engine, create_session_factory
from app.exports import codes
from app.exports.mhsds import TABLES, Pseudonymiser, ReportingPeriod
from app.migrate import upgrade
from app.models import Case, CaseContact, Person, Referral, TriageDecision
from app.models.case import ContactAttendance, ContactMechanism
from app.models.directory import QUEUE_KINDS
from app.services.directory import sync_directory
from app.triage import load_ruleset
from tests.conftest import TEST_JWT_SECRET, _create_pg_database, _drop_pg_database
from tests.factories import valid_test_nhs_numbers

KEY = "mhsds-test-key-" + "k" * 40
ODS = "RMY"
NHS = valid_test_nhs_numbers(4, start=4242)
DOB = "2010-03-14"
POSTCODE = "NR1 3SR"
FAMILY_NAME = "Exportington"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


PEOPLE: dict[str, dict[str, Any]] = {
    # A GP referral in the month, a case in a community base, three contacts in the month (one
    # with a parent), a further referral that joined the case, and a closure after the month.
    "gp": {"nhs_number": NHS[0]},
    # A drop-in at a One Stop Shop into the crisis team, closed within the month.
    "drop_in": {"nhs_number": NHS[1]},
    # A web self-referral, signposted, received in the last second of the month.
    "web_last_second": {},
    # Received in October, case still open in November: carried into the month.
    "carried": {"nhs_number": NHS[2]},
    # Received the first instant of December: not this month's.
    "december": {"nhs_number": NHS[3]},
    # Case closed in October: not in November's extract.
    "closed_before": {},
    # Signposted the last second of October.
    "october_signposted": {},
    # An unverified drop-in who gave an NHS number: it is only "claimed", never exported.
    "unverified_drop_in": {"verified": False, "claimed_nhs_number": NHS[0]},
}


class Fixture:
    def __init__(self) -> None:
        self.person_ids: dict[str, uuid.UUID] = {}
        self.contact_ids: dict[str, uuid.UUID] = {}


async def _fill(url: str) -> Fixture:
    fixture = Fixture()
    settings = Settings(environment="test", database_url=url)
    engine = create_engine(settings)
    ruleset = load_ruleset(None)
    try:
        async with create_session_factory(engine)() as session:
            await sync_directory(session, ruleset, at("2026-09-01T00:00:00"))
            for key, extra in PEOPLE.items():
                person = Person(
                    given_name="Alex",
                    family_name=FAMILY_NAME,
                    given_name_key="alex",
                    family_name_key=FAMILY_NAME.lower(),
                    date_of_birth=datetime.fromisoformat(DOB).date(),
                    postcode=POSTCODE,
                    postcode_district="NR1",
                    phone="07700900123",
                    created_at=at("2026-09-01T00:00:00"),
                    updated_at=at("2026-09-01T00:00:00"),
                    **extra,
                )
                session.add(person)
                await session.flush()
                fixture.person_ids[key] = person.id

            def case(key: str, queue: str, received: str, closed: str | None) -> Case:
                row = Case(
                    person_id=fixture.person_ids[key],
                    queue_id=queue,
                    status="closed" if closed else "allocated",
                    urgency_code="D",
                    urgency_rank=3,
                    received_at=at(received),
                    respond_by_at=None,
                    key_worker_id="user-kw",
                    allocated_at=at(received),
                    thrive_grouping_proposed="getting_more_help",
                    closed_at=at(closed) if closed else None,
                    outcome="returned_to_thriving" if closed else None,
                    version=1,
                    created_at=at(received),
                    updated_at=at(received),
                )
                session.add(row)
                return row

            cases = {
                "gp": case("gp", "cb-norwich", "2026-11-03T10:15:00", "2026-12-03T09:00:00"),
                "drop_in": case("drop_in", "crisis", "2026-11-20T14:00:00", "2026-11-25T16:30:00"),
                "carried": case("carried", "looked-after", "2026-10-10T08:00:00", None),
                "december": case("december", "cb-norwich", "2026-12-01T00:00:00", None),
                "closed_before": case(
                    "closed_before", "duty", "2026-09-01T09:00:00", "2026-10-15T12:00:00"
                ),
            }
            await session.flush()

            def referral(
                key: str,
                reference: str,
                channel: str,
                referrer: str,
                received: str,
                *,
                case_key: str | None,
                source: str,
                priority: str,
                ods: str | None = None,
                site: str | None = None,
            ) -> None:
                normalised = {"referrer": {"type": referrer, "ods_code": ods}}
                row = Referral(
                    id=uuid.uuid4(),
                    reference=reference,
                    person_id=fixture.person_ids[key],
                    case_id=cases[case_key].id if case_key else None,
                    channel=channel,
                    site_id=site,
                    referrer_type=referrer,
                    request="referral",
                    received_at=at(received),
                    disposition="case_opened" if case_key else "signposted",
                    submitted_by_kind="staff",
                    raw_payload={"person": {"family_name": FAMILY_NAME, "postcode": POSTCODE}},
                    normalised=normalised,
                    reason="worried about low mood",
                    created_at=at(received),
                )
                session.add(row)
                session.add(
                    TriageDecision(
                        referral_id=row.id,
                        ruleset_version=ruleset.version,
                        input_snapshot={"postcode": POSTCODE},
                        output={
                            "codes": {
                                "source_of_referral": source,
                                "clinical_response_priority_type": priority,
                            }
                        },
                        eligibility_outcome="eligible",
                        urgency_code="D",
                        thrive_grouping="getting_more_help",
                        route_kind="community_base" if case_key else "signpost",
                        queue_id=cases[case_key].queue_id if case_key else None,
                        respond_by_at=None,
                        decided_at=at(received),
                    )
                )

            referral(
                "gp", "FD-GP01-0001", "system", "gp", "2026-11-03T10:15:00",
                case_key="gp", source="A1", priority="3", ods="D82001",
            )  # fmt: skip
            referral(
                "gp", "FD-GP01-0002", "phone", "school", "2026-11-15T09:00:00",
                case_key="gp", source="C2", priority="2",
            )  # fmt: skip
            referral(
                "drop_in", "FD-DROP-0001", "drop_in", "self", "2026-11-20T14:00:00",
                case_key="drop_in", source="Q1", priority="1", site="oss-norwich",
            )  # fmt: skip
            referral(
                "web_last_second", "FD-WEB0-0001", "web", "self", "2026-11-30T23:59:59",
                case_key=None, source="B1", priority="3",
            )  # fmt: skip
            referral(
                "carried", "FD-CARR-0001", "phone", "social_care", "2026-10-10T08:00:00",
                case_key="carried", source="C1", priority="4",
            )  # fmt: skip
            referral(
                "december", "FD-DECE-0001", "drop_in", "self", "2026-12-01T00:00:00",
                case_key="december", source="Q1", priority="3", site="cb-norwich",
            )  # fmt: skip
            referral(
                "closed_before", "FD-CLOS-0001", "phone", "gp", "2026-09-01T09:00:00",
                case_key="closed_before", source="A1", priority="3",
            )  # fmt: skip
            referral(
                "october_signposted", "FD-OCTO-0001", "web", "self", "2026-10-31T23:59:59",
                case_key=None, source="B1", priority="3",
            )  # fmt: skip
            referral(
                "unverified_drop_in", "FD-UNVE-0001", "drop_in", "self", "2026-11-08T11:00:00",
                case_key=None, source="Q1", priority="3",
            )  # fmt: skip

            def contact(
                name: str,
                case_key: str,
                when: str,
                mechanism: ContactMechanism | None,
                attendance: ContactAttendance,
                with_whom: str = "young_person",
            ) -> None:
                row = CaseContact(
                    case_id=cases[case_key].id,
                    occurred_at=at(when),
                    mechanism=mechanism.value if mechanism else None,
                    attendance=attendance.value,
                    with_whom=with_whom,
                    contact_type=None,
                    recorded_by_id="user-kw",
                    recorded_at=at(when),
                )
                session.add(row)
                await_later.append((name, row))

            await_later: list[tuple[str, CaseContact]] = []
            m, a = ContactMechanism, ContactAttendance
            contact("gp_face", "gp", "2026-11-05T09:30:00", m.FACE_TO_FACE, a.ATTENDED)
            contact("gp_dna", "gp", "2026-11-10T15:00:00", m.TELEPHONE, a.DID_NOT_ATTEND)
            contact("gp_parent", "gp", "2026-11-12T16:45:00", m.VIDEO, a.ATTENDED, "parent_carer")
            contact("gp_december", "gp", "2026-12-01T00:00:00", m.TELEPHONE, a.ATTENDED)
            contact("drop_text", "drop_in", "2026-11-21T10:00:00", m.TEXT, a.CANCELLED_BY_PATIENT)
            contact("drop_email", "drop_in", "2026-11-22T10:00:00", m.EMAIL, a.CANCELLED_BY_SERVICE)
            contact("carried_october", "carried", "2026-10-12T10:00:00", m.TELEPHONE, a.ATTENDED)
            contact("carried_unknown_method", "carried", "2026-11-01T00:00:00", None, a.ATTENDED)
            contact("closed_october", "closed_before", "2026-10-01T10:00:00", m.VIDEO, a.ATTENDED)
            await session.commit()
            fixture.contact_ids = {name: row.id for name, row in await_later}
    finally:
        await engine.dispose()
    return fixture


@pytest.fixture(scope="module")
def export_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Fixture]]:
    choice = os.environ.get("FRONTDOOR_TEST_DATABASE", "sqlite").strip() or "sqlite"
    if choice == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('mhsds') / 'export.db'}"
        upgrade(Settings(environment="test", database_url=url))
        yield url, asyncio.run(_fill(url))
        return
    try:
        url = asyncio.run(_create_pg_database(choice))
    except Exception as exc:
        pytest.skip(f"PostgreSQL unreachable: {type(exc).__name__}")
    try:
        upgrade(Settings(environment="test", database_url=url))
        yield url, asyncio.run(_fill(url))
    finally:
        asyncio.run(_drop_pg_database(choice, url))


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, export_database: tuple[str, Fixture]
) -> Iterator[Fixture]:
    monkeypatch.setenv("FRONTDOOR_ENVIRONMENT", "test")
    monkeypatch.setenv("FRONTDOOR_DATABASE_URL", export_database[0])
    monkeypatch.setenv("FRONTDOOR_JWT_SECRET", TEST_JWT_SECRET)
    monkeypatch.setenv("FRONTDOOR_MHSDS_PSEUDONYM_KEY", KEY)
    monkeypatch.setenv("FRONTDOOR_PROVIDER_ODS", ODS)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield export_database[1]
    get_settings.cache_clear()


def export(capsys: pytest.CaptureFixture[str], out: Path, month: str = "2026-11") -> int:
    capsys.readouterr()
    return main(["export", "mhsds", "--month", month, "--out", str(out)])


def read(out: Path, table: str) -> list[dict[str, str]]:
    with (out / f"{table}.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == TABLES[table]
        return list(reader)


def lpi(fixture: Fixture, key: str) -> str:
    return Pseudonymiser(KEY.encode())(fixture.person_ids[key])


def test_every_file_has_exactly_the_mhsds_field_names(cli_env, capsys, tmp_path):
    assert export(capsys, tmp_path) == 0
    expected = {f"{table}.csv" for table in TABLES} | {"manifest.json"}
    assert {p.name for p in tmp_path.iterdir()} == expected  # no working files left behind
    for table, fields in TABLES.items():
        with (tmp_path / f"{table}.csv").open(encoding="utf-8", newline="") as handle:
            assert tuple(next(csv.reader(handle))) == fields
    assert TABLES["MHS101Referral"][:2] == ("ServiceRequestID", "LocalPatientID")
    assert "SourceOfReferralMH" in TABLES["MHS101Referral"]
    assert "ClinRespPriorityType" in TABLES["MHS101Referral"]
    assert "ServTeamTypeRefToMH" in TABLES["MHS102ServiceTypeReferredTo"]
    assert {"ConsMechanismMH", "AttendStatus"} <= set(TABLES["MHS201CareContact"])


def test_header_names_the_provider_and_the_period(cli_env, capsys, tmp_path):
    assert export(capsys, tmp_path) == 0
    (header,) = read(tmp_path, "MHS000Header")
    assert header["DatSetVer"] == "6.0"
    assert header["OrgIDProvider"] == header["OrgIDSubmit"] == ODS
    assert header["ReportingPeriodStartDate"] == "2026-11-01"
    assert header["ReportingPeriodEndDate"] == "2026-11-30"


def test_referrals_open_in_the_month_with_their_codes(cli_env, capsys, tmp_path):
    fixture = cli_env
    assert export(capsys, tmp_path) == 0
    rows = read(tmp_path, "MHS101Referral")

    def row(ref, key, org, date, time, source, priority, disch_date="", disch_time=""):
        return {
            "ServiceRequestID": ref,
            "LocalPatientID": lpi(fixture, key),
            "OrgIDReferringOrg": org,
            "ReferralRequestReceivedDate": date,
            "ReferralRequestReceivedTime": time,
            "SourceOfReferralMH": source,
            "ClinRespPriorityType": priority,
            "ServDischDate": disch_date,
            "ServDischTime": disch_time,
        }

    assert rows == [
        # Carried over from October (its case is still open); ordered by receipt.
        row("FD-CARR-0001", "carried", "", "2026-10-10", "09:00:00", "C1", "4"),
        # The GP referral: its case closes in December, so no discharge is known in November.
        row("FD-GP01-0001", "gp", "D82001", "2026-11-03", "10:15:00", "A1", "3"),
        row("FD-UNVE-0001", "unverified_drop_in", "", "2026-11-08", "11:00:00", "Q1", "3",
            "2026-11-08", "11:00:00"),
        row("FD-GP01-0002", "gp", "", "2026-11-15", "09:00:00", "C2", "2"),
        row("FD-DROP-0001", "drop_in", "", "2026-11-20", "14:00:00", "Q1", "1",
            "2026-11-25", "16:30:00"),
        # Signposted in the last second of the month: in, and ended when decided.
        row("FD-WEB0-0001", "web_last_second", "", "2026-11-30", "23:59:59", "B1", "3",
            "2026-11-30", "23:59:59"),
    ]  # fmt: skip
    # October 10th is British Summer Time: 08:00 UTC is 09:00 on the local clock.


def test_service_type_is_the_team_holding_each_referral(cli_env, capsys, tmp_path):
    assert export(capsys, tmp_path) == 0
    rows = read(tmp_path, "MHS102ServiceTypeReferredTo")
    assert rows == [
        {"ServiceRequestID": "FD-CARR-0001", "CareProfTeamLocalID": "looked-after",
         "ServTeamTypeRefToMH": "C06", "ReferClosureDate": "", "ReferClosureTime": ""},
        {"ServiceRequestID": "FD-GP01-0001", "CareProfTeamLocalID": "cb-norwich",
         "ServTeamTypeRefToMH": "A06", "ReferClosureDate": "", "ReferClosureTime": ""},
        {"ServiceRequestID": "FD-GP01-0002", "CareProfTeamLocalID": "cb-norwich",
         "ServTeamTypeRefToMH": "A06", "ReferClosureDate": "", "ReferClosureTime": ""},
        {"ServiceRequestID": "FD-DROP-0001", "CareProfTeamLocalID": "crisis",
         "ServTeamTypeRefToMH": "A02", "ReferClosureDate": "2026-11-25",
         "ReferClosureTime": "16:30:00"},
    ]  # fmt: skip


def test_care_contacts_in_the_month_with_mechanism_and_attendance(cli_env, capsys, tmp_path):
    ids = cli_env.contact_ids
    assert export(capsys, tmp_path) == 0
    rows = read(tmp_path, "MHS201CareContact")

    def row(name, ref, date, time, mechanism, attendance):
        return {
            "CareContactID": ids[name].hex.upper(),
            "ServiceRequestID": ref,
            "CareContDate": date,
            "CareContTime": time,
            "ConsMechanismMH": mechanism,
            "AttendStatus": attendance,
        }

    assert rows == [
        # Recorded without a method (the older first-contact action): mechanism left blank.
        row("carried_unknown_method", "FD-CARR-0001", "2026-11-01", "00:00:00", "", "5"),
        row("gp_face", "FD-GP01-0001", "2026-11-05", "09:30:00", "01", "5"),
        row("gp_dna", "FD-GP01-0001", "2026-11-10", "15:00:00", "02", "3"),
        # With a parent, by video; every contact of a case belongs to its opening referral.
        row("gp_parent", "FD-GP01-0001", "2026-11-12", "16:45:00", "11", "5"),
        row("drop_text", "FD-DROP-0001", "2026-11-21", "10:00:00", "09", "2"),
        row("drop_email", "FD-DROP-0001", "2026-11-22", "10:00:00", "05", "4"),
    ]


def test_drop_ins_received_in_the_month_carry_a_verified_nhs_number_only(cli_env, capsys, tmp_path):
    fixture = cli_env
    assert export(capsys, tmp_path) == 0
    assert read(tmp_path, "MHS302MHDropInContact") == [
        {"MHDropInContactID": "FD-UNVE-0001", "LocalPatientID": lpi(fixture, "unverified_drop_in"),
         "NHSNumber": "", "CareContactDateMHDropInContact": "2026-11-08",
         "StartTimeDropInContact": "11:00:00", "ConsMechanismMH": "01",
         "MHDropInContactServiceType": "A18"},
        {"MHDropInContactID": "FD-DROP-0001", "LocalPatientID": lpi(fixture, "drop_in"),
         "NHSNumber": NHS[1], "CareContactDateMHDropInContact": "2026-11-20",
         "StartTimeDropInContact": "14:00:00", "ConsMechanismMH": "01",
         "MHDropInContactServiceType": "F06"},
    ]  # fmt: skip


def test_no_personal_data_outside_the_tables_that_carry_it(cli_env, capsys, tmp_path):
    fixture = cli_env
    assert export(capsys, tmp_path) == 0
    forbidden = [FAMILY_NAME, "Alex", DOB, "14/03/2010", POSTCODE, "NR1", "07700900123", "low mood"]
    forbidden += [str(person_id) for person_id in fixture.person_ids.values()]
    forbidden += [person_id.hex for person_id in fixture.person_ids.values()]
    for path in tmp_path.iterdir():
        text = path.read_text(encoding="utf-8")
        for value in forbidden:
            assert value.lower() not in text.lower(), (path.name, value)
        if path.name != "MHS302MHDropInContact.csv":
            for number in NHS:
                assert number not in text, path.name
    # The drop-in table carries the NHS number (MHSDS has it there), verified numbers only.
    drop_ins = (tmp_path / "MHS302MHDropInContact.csv").read_text(encoding="utf-8")
    assert NHS[1] in drop_ins and NHS[0] not in drop_ins
    # The command prints counts and the manifest's path, nothing from a row.
    printed = capsys.readouterr()
    for value in [*NHS, FAMILY_NAME, "FD-GP01"]:
        assert value not in printed.out + printed.err


def test_local_patient_id_is_stable_and_reveals_nothing(cli_env, capsys, tmp_path):
    fixture = cli_env
    assert export(capsys, tmp_path / "first") == 0
    assert export(capsys, tmp_path / "second") == 0
    first = read(tmp_path / "first", "MHS101Referral")
    assert first == read(tmp_path / "second", "MHS101Referral")
    ids = {row["LocalPatientID"] for row in first}
    assert len(ids) == 5  # five people, the GP patient's two referrals share one id
    assert {r["LocalPatientID"] for r in first if r["ServiceRequestID"].startswith("FD-GP01")} == {
        lpi(fixture, "gp")
    }
    for value in ids:
        assert len(value) == 20
        assert value not in NHS
        assert all(
            value.lower() not in str(p).replace("-", "") for p in fixture.person_ids.values()
        )
    # Another key, other ids: without the key the id cannot be recomputed from a person id.
    other = Pseudonymiser(b"another-key-" + b"z" * 30)
    assert other(fixture.person_ids["gp"]) != lpi(fixture, "gp")


def test_manifest_counts_and_checksums_every_file(cli_env, capsys, tmp_path):
    assert export(capsys, tmp_path) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["spec_version"] == "6.0"
    assert manifest["data_set"] == "MHSDS"
    assert manifest["month"] == "2026-11"
    assert manifest["provider_ods"] == ODS
    assert manifest["period_complete"] is True
    assert set(manifest["files"]) == {f"{table}.csv" for table in TABLES}
    expected_rows = {
        "MHS000Header.csv": 1,
        "MHS101Referral.csv": 6,
        "MHS102ServiceTypeReferredTo.csv": 4,
        "MHS201CareContact.csv": 6,
        "MHS302MHDropInContact.csv": 2,
    }
    for name, entry in manifest["files"].items():
        assert entry["rows"] == expected_rows[name]
        digest = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert entry["sha256"] == digest


def test_the_month_before_has_its_own_rows(cli_env, capsys, tmp_path):
    assert export(capsys, tmp_path, "2026-10") == 0
    references = {row["ServiceRequestID"] for row in read(tmp_path, "MHS101Referral")}
    # Open in October: the carried case, the case closed on the 15th, the signposted last second.
    assert references == {"FD-CARR-0001", "FD-CLOS-0001", "FD-OCTO-0001"}
    contacts = read(tmp_path, "MHS201CareContact")
    assert [c["CareContDate"] for c in contacts] == ["2026-10-01", "2026-10-12"]


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "November", "", "1999-12", "2026-11-01"])
def test_a_bad_month_is_exit_2_naming_the_option(cli_env, capsys, tmp_path, month):
    assert export(capsys, tmp_path / "out", month) == 2
    assert "--month" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_unwritable_folder_fails_cleanly(cli_env, capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    assert export(capsys, blocker / "out") == 1
    assert "cannot write to --out" in capsys.readouterr().err


def test_a_failed_run_leaves_no_file_that_looks_complete(cli_env, capsys, tmp_path, monkeypatch):
    from app.exports import mhsds

    def fail(*_: Any) -> str:
        raise RuntimeError("the database went away half way through the contacts")

    monkeypatch.setattr(mhsds.codes, "attendance_status", fail)
    with pytest.raises(RuntimeError):
        export(capsys, tmp_path)
    assert list(tmp_path.iterdir()) == []  # the working folder is removed, nothing moved in


def test_missing_provider_or_production_key_is_exit_2(cli_env, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("FRONTDOOR_PROVIDER_ODS")
    get_settings.cache_clear()
    assert export(capsys, tmp_path) == 2
    assert "FRONTDOOR_PROVIDER_ODS" in capsys.readouterr().err
    monkeypatch.setenv("FRONTDOOR_PROVIDER_ODS", ODS)
    monkeypatch.delenv("FRONTDOOR_MHSDS_PSEUDONYM_KEY")
    monkeypatch.setenv("FRONTDOOR_ENVIRONMENT", "production")
    monkeypatch.setenv("FRONTDOOR_JWT_SECRET", "p" * 40)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    assert export(capsys, tmp_path) == 2
    assert "FRONTDOOR_MHSDS_PSEUDONYM_KEY" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_short_production_key_is_refused_at_start_up():
    with pytest.raises(ValueError, match="FRONTDOOR_MHSDS_PSEUDONYM_KEY"):
        Settings(
            environment="production",
            database_url="postgresql://db/frontdoor",
            jwt_secret="p" * 40,  # type: ignore[arg-type]
            mhsds_pseudonym_key="short",  # type: ignore[arg-type]
        )


def test_reporting_period_follows_the_uk_calendar():
    summer = ReportingPeriod.parse("2026-07")
    assert summer.start == at("2026-06-30T23:00:00")
    assert summer.end == at("2026-07-31T23:00:00")
    december = ReportingPeriod.parse("2026-12")
    assert (december.first_day.isoformat(), december.last_day.isoformat()) == (
        "2026-12-01",
        "2026-12-31",
    )
    assert december.end == at("2027-01-01T00:00:00")


def test_every_vocabulary_value_has_a_code():
    assert set(codes.CONSULTATION_MECHANISM) == {m.value for m in ContactMechanism}
    assert set(codes.ATTENDANCE_STATUS) == {a.value for a in ContactAttendance}
    assert set(codes.TEAM_TYPE_BY_QUEUE_KIND) == set(QUEUE_KINDS)
    # ConsMechanismMH is an2, AttendStatus an1, ServTeamTypeRefToMH an3.
    assert all(len(code) == 2 for code in codes.CONSULTATION_MECHANISM.values())
    assert all(len(code) == 1 for code in codes.ATTENDANCE_STATUS.values())
    assert all(len(code) == 3 for code in codes.TEAM_TYPE_BY_QUEUE_KIND.values())
