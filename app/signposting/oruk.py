"""The directory as an Open Referral UK feed (HSDS 3.0): services with their organisation,
phones, schedules and service areas, and the ORUK list page.

Field names follow the published HSDS 3.0 schema (openreferral/specification ``schema/``:
service, organization, phone, schedule, service_area; the OpenAPI ``Page``). As ORUK asks,
optional fields without a value are left out rather than sent as null. Ids are uuids, stable
for each configured id (uuid5). Pure: no FastAPI, no I/O.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from app.signposting.directory import (
    ORUK_ID_NAMESPACE,
    OrganizationConfig,
    ServiceConfig,
    SignpostingDirectory,
)

HSDS_VERSION = "3.0"
ORUK_PROFILE_URL = "https://openreferraluk.org"


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(ORUK_ID_NAMESPACE, ":".join(parts)))


def _present(data: dict[str, Any]) -> dict[str, Any]:
    """Without the optional fields that have no value (ORUK: omit, never null)."""
    return {key: value for key, value in data.items() if value is not None and value != []}


def eligibility_description(service: ServiceConfig) -> str:
    low, high = service.minimum_age, service.maximum_age
    if low is None and high is None:
        ages = "People of any age"
    elif low is None:
        ages = f"People aged {high} or under"
    elif high is None:
        ages = f"People aged {low} or over"
    else:
        ages = f"People aged {low} to {high}"
    where = (
        "anywhere in England"
        if service.is_national
        else "living in postcode districts or areas " + ", ".join(service.areas)
    )
    extra = (
        " whose home area is outside this service's directory" if service.out_of_area_only else ""
    )
    return f"{ages}, {where}{extra}."


def organization_oruk(organization: OrganizationConfig) -> dict[str, Any]:
    return _present(
        {
            "id": _uuid("organization", organization.id),
            "name": organization.name,
            "description": organization.description,
            "website": organization.website,
            "email": organization.email,
        }
    )


def service_oruk(directory: SignpostingDirectory, service: ServiceConfig) -> dict[str, Any]:
    """One service, with all its related records (``GET /services/{id}``)."""
    service_id = service.oruk_id
    organization = directory.organization(service)
    return _present(
        {
            "id": service_id,
            "organization_id": _uuid("organization", organization.id),
            "name": service.name,
            "description": service.description,
            "url": service.url,
            "email": service.email,
            "status": service.status,
            "eligibility_description": eligibility_description(service),
            "minimum_age": service.minimum_age,
            "maximum_age": service.maximum_age,
            "organization": organization_oruk(organization),
            "phones": [
                _present(
                    {
                        "id": _uuid("phone", service.id, str(index)),
                        "service_id": service_id,
                        "number": phone.number,
                        "type": phone.type,
                        "description": phone.description,
                    }
                )
                for index, phone in enumerate(service.phones)
            ],
            "schedules": [
                _present(
                    {
                        "id": _uuid("schedule", service.id, str(index)),
                        "service_id": service_id,
                        "description": schedule.description,
                        "freq": schedule.freq,
                        "byday": schedule.byday,
                        "opens_at": schedule.opens_at,
                        "closes_at": schedule.closes_at,
                    }
                )
                for index, schedule in enumerate(service.schedules)
            ],
            "service_areas": [
                {
                    "id": _uuid("service_area", service.id),
                    "service_id": service_id,
                    "name": "England" if service.is_national else "Postcode districts and areas",
                    "description": eligibility_description(service),
                    "extent": "national" if service.is_national else ", ".join(service.areas),
                    "extent_type": "text",
                }
            ],
            "attributes": [
                {
                    "id": _uuid("attribute", service.id, need),
                    "link_id": service_id,
                    "link_type": "service",
                    "value": need,
                }
                for need in service.needs
            ],
        }
    )


def services_page(directory: SignpostingDirectory, *, page: int, per_page: int) -> dict[str, Any]:
    """An ORUK list page: the ``Page`` header fields and ``contents``."""
    services = [s for s in directory.services]
    total = len(services)
    total_pages = max(1, math.ceil(total / per_page))
    start = (page - 1) * per_page
    contents = [service_oruk(directory, s) for s in services[start : start + per_page]]
    return {
        "total_items": total,
        "total_pages": total_pages,
        "page_number": page,
        "size": len(contents),
        "first_page": page == 1,
        "last_page": page >= total_pages,
        "empty": not contents,
        "contents": contents,
    }
