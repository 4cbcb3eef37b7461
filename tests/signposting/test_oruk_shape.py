"""The ORUK (HSDS 3.0) rendering of the directory: field names from the published schema,
no null optional fields, uuid ids, and the list page's header."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.signposting import load_signposting
from app.signposting.oruk import service_oruk, services_page

DIRECTORY = load_signposting()

# Field names of the HSDS 3.0 schema (openreferral/specification schema/*.json).
SERVICE_FIELDS = {
    "id", "organization_id", "program_id", "name", "alternate_name", "description", "url",
    "email", "status", "interpretation_services", "application_process", "fees_description",
    "accreditations", "eligibility_description", "minimum_age", "maximum_age", "assured_date",
    "assurer_email", "alert", "last_modified", "phones", "schedules", "service_areas",
    "service_at_locations", "languages", "organization", "funding", "cost_options", "program",
    "required_documents", "contacts", "attributes", "metadata",
}  # fmt: skip
PHONE_FIELDS = {"id", "service_id", "number", "extension", "type", "description"}
SCHEDULE_FIELDS = {"id", "service_id", "description", "freq", "byday", "opens_at", "closes_at"}
AREA_FIELDS = {"id", "service_id", "name", "description", "extent", "extent_type", "uri"}
ORGANIZATION_FIELDS = {"id", "name", "alternate_name", "description", "email", "website"}


def _no_nulls(value: Any) -> None:
    if isinstance(value, dict):
        for item in value.values():
            assert item is not None
            _no_nulls(item)
    elif isinstance(value, list):
        for item in value:
            _no_nulls(item)


@pytest.mark.parametrize("service", DIRECTORY.services, ids=lambda s: s.id)
def test_each_service_uses_hsds_3_field_names(service: Any) -> None:
    data = service_oruk(DIRECTORY, service)
    assert {"id", "organization_id", "name", "status"} <= set(data)  # required by ORUK
    assert set(data) <= SERVICE_FIELDS
    assert uuid.UUID(data["id"]) and uuid.UUID(data["organization_id"])
    assert data["organization"]["id"] == data["organization_id"]
    assert set(data["organization"]) <= ORGANIZATION_FIELDS
    for phone in data.get("phones", []):
        assert set(phone) <= PHONE_FIELDS and phone["type"] in ("voice", "text")
    for schedule in data.get("schedules", []):
        assert set(schedule) <= SCHEDULE_FIELDS
    for area in data["service_areas"]:
        assert set(area) <= AREA_FIELDS and area["extent_type"] == "text"
    _no_nulls(data)


def test_ids_are_stable_and_lookups_take_either_id() -> None:
    samaritans = DIRECTORY.service_by_id["samaritans"]
    assert DIRECTORY.service_by_id[samaritans.oruk_id] is samaritans
    assert load_signposting().service_by_id["samaritans"].oruk_id == samaritans.oruk_id


@pytest.mark.parametrize(
    ("page", "per_page", "size", "first", "last"),
    [
        (1, 5, 5, True, False),
        (4, 5, 4, False, True),
        (1, 100, 19, True, True),
        (9, 5, 0, False, True),
    ],
)
def test_the_page_header(page: int, per_page: int, size: int, first: bool, last: bool) -> None:
    total = len(DIRECTORY.services)
    assert total == 19  # the packaged directory; the table above counts on it
    body = services_page(DIRECTORY, page=page, per_page=per_page)
    assert body["total_items"] == total
    assert body["total_pages"] == -(-total // per_page)
    assert body["page_number"] == page
    assert body["size"] == size == len(body["contents"])
    assert body["first_page"] is first and body["last_page"] is last
    assert body["empty"] is (size == 0)
