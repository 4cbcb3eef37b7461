"""Our FHIR resources: the ServiceRequest and Task of a referral, the Bundles that carry them,
and the CapabilityStatement (docs/domain/fhir-and-codes.md).

Built as plain JSON from stored records; tests validate every one with fhir.resources. They
carry identifiers and codes, never the free text or contact details a referrer sent.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from app import __version__
from app.fhir.questionnaire import QUESTIONNAIRE_VERSION
from app.fhir.status import TaskState
from app.fhir.systems import (
    BARS_MESSAGE_EVENTS,
    CLINICAL_RESPONSE_PRIORITY_TYPE,
    FHIR_BASE_PATH,
    FHIR_JSON,
    FHIR_VERSION,
    NHS_NUMBER,
    ODS_ORGANIZATION_CODE,
    PATIENT_REFERRAL_SCTID,
    PERSON_ID,
    PRIORITY_TYPE_EXTENSION,
    PROCESS_MESSAGE_DEFINITION,
    QUESTIONNAIRE_URL,
    REFERRAL_REFERENCE,
    SERVICE_REQUEST_REQUEST_EVENT,
    SNOMED_CT,
    SOURCE_OF_REFERRAL_EXTENSION,
    SOURCE_OF_REFERRAL_MH,
)
from app.models import Referral

# ServiceRequest.priority by UK Mental Health Triage Scale code (docs/domain/fhir-and-codes.md).
PRIORITY_BY_URGENCY = {
    "A": "stat",
    "B": "asap",
    "C": "urgent",
    "D": "urgent",
    "E": "routine",
    "F": "routine",
    "G": "routine",
}
PRIORITY_TYPE_DISPLAY = {
    "1": "Emergency",
    "2": "Urgent/serious",
    "3": "Routine",
    "4": "Very urgent",
}


def fhir_instant(moment: datetime) -> str:
    """An instant with its offset, as FHIR requires (stored times are UTC)."""
    return moment.isoformat().replace("+00:00", "Z") if moment.tzinfo else f"{moment.isoformat()}Z"


def service_request_resource(
    referral: Referral,
    *,
    urgency_code: str,
    codes: dict[str, str] | None,
    state: TaskState,
) -> dict[str, Any]:
    """The referral as a ServiceRequest: our id and reference, priority, status, codes."""
    extensions = []
    if codes:
        source = codes["source_of_referral"]
        priority_type = codes["clinical_response_priority_type"]
        extensions = [
            {
                "url": SOURCE_OF_REFERRAL_EXTENSION,
                "valueCoding": {"system": SOURCE_OF_REFERRAL_MH, "code": source},
            },
            {
                "url": PRIORITY_TYPE_EXTENSION,
                "valueCoding": {
                    "system": CLINICAL_RESPONSE_PRIORITY_TYPE,
                    "code": priority_type,
                    "display": PRIORITY_TYPE_DISPLAY[priority_type],
                },
            },
        ]
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": str(referral.id),
        "identifier": [{"system": REFERRAL_REFERENCE, "value": referral.reference}],
        "status": "completed" if state.status == "completed" else "active",
        "intent": "order",
        "category": [
            {
                "coding": [
                    {
                        "system": SNOMED_CT,
                        "code": PATIENT_REFERRAL_SCTID,
                        "display": "Patient referral",
                    }
                ]
            }
        ],
        "priority": PRIORITY_BY_URGENCY[urgency_code],
        "subject": subject_reference(referral),
        "authoredOn": fhir_instant(referral.received_at),
    }
    if extensions:
        resource["extension"] = extensions
    requester = requester_reference(referral)
    if requester is not None:
        resource["requester"] = requester
    return resource


def task_resource(
    referral: Referral, state: TaskState, *, last_modified: datetime
) -> dict[str, Any]:
    """The referral's Task: where it is (status, businessStatus) and who holds it."""
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": str(referral.id),
        "identifier": [{"system": REFERRAL_REFERENCE, "value": referral.reference}],
        "status": state.status,
        "businessStatus": state.business_status(),
        "intent": "order",
        "focus": {"reference": f"ServiceRequest/{referral.id}"},
        "for": subject_reference(referral),
        "authoredOn": fhir_instant(referral.received_at),
        "lastModified": fhir_instant(last_modified),
    }
    requester = requester_reference(referral)
    if requester is not None:
        resource["requester"] = requester
    if state.owner:
        resource["owner"] = {"display": state.owner}
    return resource


def subject_reference(referral: Referral) -> dict[str, Any]:
    """The young person by the NHS number the referral gave, else by our person id."""
    nhs_number = (referral.normalised.get("person") or {}).get("nhs_number")
    if nhs_number:
        return {"identifier": {"system": NHS_NUMBER, "value": nhs_number}}
    return {"identifier": {"system": PERSON_ID, "value": str(referral.person_id)}}


def requester_reference(referral: Referral) -> dict[str, Any] | None:
    ods_code = (referral.normalised.get("referrer") or {}).get("ods_code")
    if not ods_code:
        return None
    return {"identifier": {"system": ODS_ORGANIZATION_CODE, "value": ods_code}}


def entry(resource: dict[str, Any], base_url: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{base_url}{FHIR_BASE_PATH}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
    }


def response_message(
    *,
    request_message_id: str | None,
    service_request: dict[str, Any],
    task: dict[str, Any],
    base_url: str,
    now: datetime,
) -> dict[str, Any]:
    """The response Bundle to $process-message: a MessageHeader (response ok) focused on
    our ServiceRequest and its Task."""
    header_id = str(uuid.uuid4())
    header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": header_id,
        "eventCoding": {"system": BARS_MESSAGE_EVENTS, "code": SERVICE_REQUEST_REQUEST_EVENT},
        "source": {
            "name": "Front Door",
            "software": "frontdoor",
            "version": __version__,
            "endpoint": f"{base_url}{FHIR_BASE_PATH}/$process-message",
        },
        "response": {
            "identifier": request_message_id or header_id,
            "code": "ok",
        },
        "focus": [
            {"reference": f"ServiceRequest/{service_request['id']}"},
            {"reference": f"Task/{task['id']}"},
        ],
    }
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "message",
        "timestamp": fhir_instant(now),
        "entry": [
            {"fullUrl": f"urn:uuid:{header_id}", "resource": header},
            entry(service_request, base_url),
            entry(task, base_url),
        ],
    }


def searchset(resources: list[dict[str, Any]], base_url: str, now: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "timestamp": fhir_instant(now),
        "total": len(resources),
        "entry": [
            {**entry(resource, base_url), "search": {"mode": "match"}} for resource in resources
        ],
    }


def capability_statement(base_url: str, *, published_at: datetime) -> dict[str, Any]:
    """Exactly what this FHIR API supports."""
    return {
        "resourceType": "CapabilityStatement",
        "id": "frontdoor",
        "status": "active",
        "date": fhir_instant(published_at),
        "publisher": "Front Door",
        "kind": "instance",
        "software": {"name": "Front Door", "version": __version__},
        "implementation": {
            "description": "Front Door: referrals to children and young people's mental health",
            "url": f"{base_url}{FHIR_BASE_PATH}",
        },
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Referring systems authenticate with their X-API-Key; staff with an OAuth2 "
                    "bearer token. Referral reads are for the submitting organisation and staff."
                ),
                "security": {
                    "cors": False,
                    "description": (
                        "X-API-Key (referring systems) or Authorization: Bearer (staff). "
                        "metadata and the Questionnaire are public."
                    ),
                },
                "resource": [
                    {
                        "type": "ServiceRequest",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {
                                "name": "identifier",
                                "type": "token",
                                "documentation": (
                                    f"Our reference ({REFERRAL_REFERENCE}|FD-XXXX-XXXX)"
                                ),
                            }
                        ],
                    },
                    {
                        "type": "Task",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [
                            {
                                "name": "focus",
                                "type": "reference",
                                "documentation": "ServiceRequest/{id}: the referral's Task",
                            }
                        ],
                    },
                    {
                        "type": "Questionnaire",
                        "interaction": [{"code": "read"}],
                        "documentation": f"{QUESTIONNAIRE_URL} version {QUESTIONNAIRE_VERSION}",
                    },
                ],
                "operation": [
                    {
                        "name": "process-message",
                        "definition": PROCESS_MESSAGE_DEFINITION,
                        "documentation": (
                            "A referral as a Bundle of type message (event "
                            f"{SERVICE_REQUEST_REQUEST_EVENT}); X-Request-Id required."
                        ),
                    }
                ],
            }
        ],
    }
