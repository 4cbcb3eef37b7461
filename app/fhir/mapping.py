"""A FHIR R4 referral message → the ``SystemReferralCreate`` body the JSON API takes.

This is the only place FHIR becomes a referral: the router hands the body to
``app.services.intake.submit_referral`` exactly as ``POST /v1/referrals`` does, so person
matching, idempotency, triage, the case, audit and the intake safety rules are the same.

The message follows the Booking and Referral Standard pattern (docs/domain/fhir-and-codes.md):
a ``Bundle`` of type ``message`` whose first entry is a ``MessageHeader`` (event
``servicerequest-request``, focus the ``ServiceRequest``); the ServiceRequest's ``subject`` is
the ``Patient`` and its ``requester`` the referring ``Organization`` (directly, or through a
``PractitionerRole``); an optional ``QuestionnaireResponse`` answers our Questionnaire.

Parsing and FHIR validation are fhir.resources' (its R4B models read R4 JSON). Every problem
is a ``FhirError`` whose expression names the element: 400 when the message is not a valid FHIR
Bundle, 422 when it is valid FHIR but not a referral we can take.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from app.equity import ETHNIC_CATEGORY, GENDER_IDENTITY
from app.fhir.outcome import FhirError, issue
from app.fhir.questionnaire import QUESTIONS_BY_LINK_ID, Question
from app.fhir.systems import (
    BARS_MESSAGE_EVENTS,
    FHIR_GENDER_IDENTITY,
    GENDER_IDENTITY_CODE,
    GENDER_IDENTITY_EXTENSION,
    NHS_NUMBER,
    ODS_ORGANIZATION_CODE,
    PATIENT_REFERRAL_SCTID,
    QUESTIONNAIRE_ID,
    QUESTIONNAIRE_URL,
    SERVICE_REQUEST_REQUEST_EVENT,
    SNOMED_CT,
    UKCORE_ETHNIC_CATEGORY_ENGLAND,
    UKCORE_ETHNIC_CATEGORY_EXTENSION,
    answer_system,
)
from app.schemas.referral import SystemReferralCreate

# What a referral message may hold. Practitioner and PractitionerRole say who referred;
# anything else is refused rather than silently dropped.
SUPPORTED_RESOURCE_TYPES = frozenset(
    {
        "MessageHeader",
        "ServiceRequest",
        "Patient",
        "Organization",
        "QuestionnaireResponse",
        "Practitioner",
        "PractitionerRole",
    }
)
# How many errors one answer lists at most (a broken message can have hundreds).
MAX_ISSUES = 20
# A QuestionnaireResponse that is still being filled in is not a referral's answers.
FINAL_RESPONSE_STATUSES = ("completed", "amended")
DEFAULT_REFERRER_TYPE = "gp"
# FHIR R4's gender-identity codes in the NHS Data Dictionary GENDER IDENTITY CODE, whose male and
# female include trans men and trans women (docs/domain/equity-data.md).
FHIR_GENDER_IDENTITY_CODES = {
    "male": "1",
    "female": "2",
    "transgender-male": "1",
    "transgender-female": "2",
    "non-binary": "3",
    "other": "4",
    "non-disclose": "Z",
}
# For each equity extension: the JSON field, and per code system we read, code → our code.
EQUITY_EXTENSIONS: dict[str, tuple[str, dict[str, dict[str, str]]]] = {
    GENDER_IDENTITY_EXTENSION: (
        "gender",
        {
            GENDER_IDENTITY_CODE: {code: code for code in GENDER_IDENTITY},
            FHIR_GENDER_IDENTITY: FHIR_GENDER_IDENTITY_CODES,
        },
    ),
    UKCORE_ETHNIC_CATEGORY_EXTENSION: (
        "ethnic_category",
        {UKCORE_ETHNIC_CATEGORY_ENGLAND: {code: code for code in ETHNIC_CATEGORY}},
    ),
}


@dataclass(slots=True)
class MappedReferral:
    """The JSON body and, for each JSON field path, the FHIR element it came from."""

    body: SystemReferralCreate
    expressions: dict[str, str] = field(default_factory=dict)

    def expression_for(self, json_field: str) -> str:
        """The FHIR element for a JSON field path (its nearest mapped parent, else Bundle)."""
        return expression_for(self.expressions, json_field)


def expression_for(expressions: dict[str, str], json_field: str) -> str:
    """The FHIR element a JSON field path came from: its own or its nearest mapped parent's."""
    path = json_field
    while path:
        if path in expressions:
            return expressions[path]
        path = path.rpartition(".")[0]
    return "Bundle"


@dataclass(slots=True)
class _Entry:
    index: int
    resource_type: str
    resource: Any
    full_url: str | None


@dataclass(slots=True)
class _Message:
    entries: list[_Entry]
    by_reference: dict[str, _Entry]

    def resolve(self, reference: Any, expression: str, *expected: str) -> _Entry:
        """The entry a Reference points at, which must be one of ``expected`` types."""
        target = getattr(reference, "reference", None) if reference is not None else None
        if not target:
            raise FhirError(
                422,
                f"{expression} must reference the {' or '.join(expected)} in this Bundle.",
                code="required",
                expression=expression,
            )
        entry = self.by_reference.get(target) or self.by_reference.get(_relative(target))
        if entry is None:
            raise FhirError(
                422,
                f"{expression} references a resource that is not in this Bundle.",
                code="not-found",
                expression=f"{expression}.reference",
            )
        if entry.resource_type not in expected:
            raise FhirError(
                422,
                f"{expression} must reference a {' or '.join(expected)}, not a "
                f"{entry.resource_type}.",
                code="invalid",
                expression=f"{expression}.reference",
            )
        return entry

    def of_type(self, resource_type: str) -> list[_Entry]:
        return [entry for entry in self.entries if entry.resource_type == resource_type]


def warm_up() -> None:
    """Build fhir.resources' validators for what a message holds now, at start-up, rather than
    in the first referral's request (they are built lazily, about half a second in all)."""
    reference = {"reference": "urn:uuid:1"}
    coding = {"system": SNOMED_CT, "code": PATIENT_REFERRAL_SCTID}
    contact = [{"system": "phone", "value": "0"}]
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "MessageHeader",
            "eventCoding": coding,
            "source": {"endpoint": "urn:uuid:1"},
            "focus": [reference],
        },
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "category": [{"coding": [coding]}],
            "subject": reference,
            "requester": reference,
            "authoredOn": "2026-01-01T00:00:00Z",
            "reasonCode": [{"text": "-", "coding": [coding]}],
            "note": [{"text": "-"}],
        },
        {
            "resourceType": "Patient",
            "identifier": [{"system": NHS_NUMBER, "value": "0"}],
            "name": [{"use": "official", "given": ["-"], "family": "-"}],
            "birthDate": "2010-01-01",
            "address": [{"postalCode": "-"}],
            "telecom": contact,
        },
        {
            "resourceType": "Organization",
            "identifier": [{"system": ODS_ORGANIZATION_CODE, "value": "0"}],
            "name": "-",
            "telecom": contact,
        },
        {"resourceType": "Practitioner", "name": [{"prefix": ["-"], "family": "-"}]},
        {"resourceType": "PractitionerRole", "practitioner": reference, "organization": reference},
        {
            "resourceType": "QuestionnaireResponse",
            "questionnaire": QUESTIONNAIRE_URL,
            "status": "completed",
            "item": [
                {
                    "linkId": "-",
                    "answer": [
                        {"valueBoolean": True},
                        {"valueCoding": coding},
                        {"valueString": "-"},
                    ],
                }
            ],
        },
    ]
    Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "message",
            "entry": [{"fullUrl": "urn:uuid:1", "resource": resource} for resource in resources],
        }
    )


def map_message(raw: Any) -> MappedReferral:
    """Parse, validate and map a referral message; raises ``FhirError`` naming the element."""
    message = _parse(raw)
    header = message.entries[0] if message.entries else None
    if header is None or header.resource_type != "MessageHeader":
        raise FhirError(
            422,
            "A message Bundle's first entry must be its MessageHeader.",
            code="structure",
            expression="Bundle.entry[0]",
        )
    _check_event(header.resource)
    focus = header.resource.focus or []
    if len(focus) != 1:
        raise FhirError(
            422,
            "MessageHeader.focus must reference the one ServiceRequest being referred.",
            code="required" if not focus else "invalid",
            expression="MessageHeader.focus",
        )
    request_entry = message.resolve(focus[0], "MessageHeader.focus[0]", "ServiceRequest")
    service_request: ServiceRequest = request_entry.resource
    _check_service_request(service_request)
    patient: Patient = message.resolve(
        service_request.subject, "ServiceRequest.subject", "Patient"
    ).resource
    organization, practitioner = _requester(message, service_request)

    expressions: dict[str, str] = {}
    body: dict[str, Any] = {
        "channel": "system",
        "referrer": _referrer(organization, practitioner, expressions),
        "person": _person(patient, expressions),
    }
    reason = _reason(service_request, expressions)
    if reason:
        body["reason"] = reason
    responses = message.of_type("QuestionnaireResponse")
    if len(responses) > 1:
        raise FhirError(
            422,
            "Send at most one QuestionnaireResponse with a referral.",
            code="invalid",
            expression=f"Bundle.entry[{responses[1].index}]",
        )
    if responses:
        _apply_answers(responses[0].resource, body, expressions)
    body["referrer"].setdefault("type", DEFAULT_REFERRER_TYPE)
    try:
        validated = SystemReferralCreate.model_validate(body)
    except ValidationError as exc:
        raise FhirError(
            422,
            "The referral is not valid.",
            issues=[
                issue(
                    _message(error),
                    code="value",
                    expression=expression_for(expressions, _json_path(error["loc"])),
                )
                for error in exc.errors()[:MAX_ISSUES]
            ],
        ) from None
    return MappedReferral(body=validated, expressions=expressions)


# Parsing --------------------------------------------------------------------------------------


def _parse(raw: Any) -> _Message:
    if not isinstance(raw, dict) or raw.get("resourceType") != "Bundle":
        raise FhirError(
            400,
            "The request body must be a FHIR Bundle (resourceType Bundle) of type message.",
            code="structure",
            expression="Bundle",
        )
    if raw.get("type") != "message":
        raise FhirError(
            400,
            "$process-message takes a Bundle of type message.",
            code="value",
            expression="Bundle.type",
        )
    entries = raw.get("entry")
    if not isinstance(entries, list) or not entries:
        raise FhirError(
            400, "The message Bundle has no entries.", code="required", expression="Bundle.entry"
        )
    types: list[str] = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        resource_type = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(resource_type, str):
            raise FhirError(
                400,
                "Each entry must hold a resource with a resourceType.",
                code="structure",
                expression=f"Bundle.entry[{index}].resource",
            )
        if resource_type not in SUPPORTED_RESOURCE_TYPES:
            raise FhirError(
                422,
                f"A referral message cannot hold a {_type_name(resource_type)}; it may hold "
                f"{', '.join(sorted(SUPPORTED_RESOURCE_TYPES))}.",
                code="not-supported",
                expression=f"Bundle.entry[{index}].resource",
            )
        types.append(resource_type)
    try:
        bundle = Bundle.model_validate(raw)
    except ValidationError as exc:
        raise FhirError(
            400,
            "The message is not valid FHIR R4.",
            issues=[
                issue(_message(error), code=_issue_code(error), expression=_element(error, types))
                for error in exc.errors()[:MAX_ISSUES]
            ],
        ) from None
    except Exception as exc:
        # The library's own checks can fail with other errors (a number where a URL belongs is
        # an AttributeError inside fhir.resources): input it cannot read is the sender's error,
        # never a 500.
        raise FhirError(
            400,
            "The message is not valid FHIR R4: an element has a value of the wrong type "
            f"(the FHIR library's {type(exc).__name__}).",
            code="structure",
            expression="Bundle",
        ) from None
    parsed = [
        _Entry(index, types[index], entry.resource, entry.fullUrl)
        for index, entry in enumerate(bundle.entry or [])
    ]
    by_reference: dict[str, _Entry] = {}
    for entry in parsed:
        if entry.full_url:
            by_reference[entry.full_url] = entry
        resource_id = getattr(entry.resource, "id", None)
        if resource_id:
            by_reference.setdefault(f"{entry.resource_type}/{resource_id}", entry)
    return _Message(parsed, by_reference)


def _type_name(resource_type: str) -> str:
    """A resource type as the sender wrote it, if it looks like one (nothing else is echoed)."""
    return resource_type if re.fullmatch(r"[A-Z][A-Za-z]{1,63}", resource_type) else "resource"


def _relative(reference: str) -> str:
    """``https://host/fhir/Patient/1`` → ``Patient/1`` (a full URL to a resource in the Bundle)."""
    parts = reference.rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else reference


def _element(error: Any, types: Sequence[str]) -> str:
    """A pydantic error location in the Bundle as a FHIRPath expression."""
    loc = list(error.get("loc", ()))
    if len(loc) >= 3 and loc[0] == "entry" and isinstance(loc[1], int) and loc[2] == "resource":
        index = loc[1]
        root = types[index] if index < len(types) else "Bundle"
        return root + _path(loc[3:])
    return "Bundle" + _path(loc)


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            # An element name the sender made up is echoed only if it looks like one.
            name = str(part)
            out += f".{name}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name) else ".*"
    return out


def _issue_code(error: Any) -> str:
    kind = str(error.get("type", ""))
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "structure"
    return "value"


def _message(error: Any) -> str:
    message = str(error.get("msg", "Invalid value"))
    return message.removeprefix("Value error, ")


def _json_path(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc if not isinstance(part, int))


# The message's parts ----------------------------------------------------------------------------


def _check_event(header: Any) -> None:
    event = header.eventCoding
    if event is None or event.system != BARS_MESSAGE_EVENTS:
        raise FhirError(
            422,
            f"MessageHeader.eventCoding must be {SERVICE_REQUEST_REQUEST_EVENT} from "
            f"{BARS_MESSAGE_EVENTS}.",
            code="not-supported",
            expression="MessageHeader.eventCoding",
        )
    if event.code != SERVICE_REQUEST_REQUEST_EVENT:
        raise FhirError(
            422,
            f"This endpoint takes referrals: MessageHeader.eventCoding.code must be "
            f"{SERVICE_REQUEST_REQUEST_EVENT}.",
            code="not-supported",
            expression="MessageHeader.eventCoding.code",
        )


def _check_service_request(service_request: ServiceRequest) -> None:
    if service_request.status != "active":
        raise FhirError(
            422,
            "A referral's ServiceRequest.status must be active.",
            code="value",
            expression="ServiceRequest.status",
        )
    categories = service_request.category or []
    is_referral = any(
        coding.system == SNOMED_CT and coding.code == PATIENT_REFERRAL_SCTID
        for category in categories
        for coding in category.coding or []
    )
    if not is_referral:
        raise FhirError(
            422,
            f"ServiceRequest.category must include SNOMED CT {PATIENT_REFERRAL_SCTID} "
            "(Patient referral).",
            code="value",
            expression="ServiceRequest.category",
        )


def _requester(message: _Message, service_request: ServiceRequest) -> tuple[_Entry, _Entry | None]:
    """The referring Organization and, when the requester is a PractitionerRole, the
    Practitioner it names."""
    entry = message.resolve(
        service_request.requester, "ServiceRequest.requester", "Organization", "PractitionerRole"
    )
    if entry.resource_type == "Organization":
        return entry, None
    role = entry.resource
    organization = message.resolve(
        role.organization, "PractitionerRole.organization", "Organization"
    )
    practitioner = (
        message.resolve(role.practitioner, "PractitionerRole.practitioner", "Practitioner")
        if role.practitioner is not None
        else None
    )
    return organization, practitioner


def _referrer(
    organization_entry: _Entry, practitioner_entry: _Entry | None, expressions: dict[str, str]
) -> dict[str, Any]:
    organization: Organization = organization_entry.resource
    referrer: dict[str, Any] = {}
    ods = _identifier(organization.identifier, ODS_ORGANIZATION_CODE, "Organization")
    if ods is None:
        raise FhirError(
            422,
            f"The referring Organization must carry its ODS code (identifier system "
            f"{ODS_ORGANIZATION_CODE}).",
            code="required",
            expression="Organization.identifier",
        )
    referrer["ods_code"], expressions["referrer.ods_code"] = ods
    expressions["referrer"] = "Organization"
    if organization.name:
        referrer["organisation"] = organization.name
        expressions["referrer.organisation"] = "Organization.name"
    contact_sources: list[tuple[str, Any]] = []
    if practitioner_entry is not None:
        practitioner = practitioner_entry.resource
        name = _human_name(practitioner.name, "Practitioner", expressions, "referrer.name")
        if name is not None:
            referrer["name"] = name
        contact_sources.append(("Practitioner", practitioner.telecom))
    contact_sources.append(("Organization", organization.telecom))
    for root, telecom in contact_sources:
        _contact(telecom, root, referrer, "referrer", expressions)
    return referrer


def _person(patient: Patient, expressions: dict[str, str]) -> dict[str, Any]:
    person: dict[str, Any] = {}
    expressions["person"] = "Patient"
    nhs = _identifier(patient.identifier, NHS_NUMBER, "Patient")
    if nhs is not None:
        person["nhs_number"], expressions["person.nhs_number"] = nhs
    names = patient.name or []
    if names:
        index, name = _preferred_name(names)
        if name.given:
            person["given_name"] = name.given[0]
            expressions["person.given_name"] = f"Patient.name[{index}].given[0]"
        if name.family:
            person["family_name"] = name.family
            expressions["person.family_name"] = f"Patient.name[{index}].family"
    if patient.birthDate is not None:
        person["date_of_birth"] = patient.birthDate.isoformat()
        expressions["person.date_of_birth"] = "Patient.birthDate"
    for index, address in enumerate(patient.address or []):
        if address.postalCode:
            person["postcode"] = address.postalCode
            expressions["person.postcode"] = f"Patient.address[{index}].postalCode"
            break
    _contact(patient.telecom, "Patient", person, "person", expressions)
    _equity(patient, person, expressions)
    return person


def _equity(patient: Patient, person: dict[str, Any], expressions: dict[str, str]) -> None:
    """Gender identity and ethnic category from the Patient's extensions, if sent.

    ``Patient.gender`` is administrative gender (for record keeping), not the gender the young
    person identifies with, so it is never read as gender identity. A coding in a system we read
    with a code that system does not have is refused, naming it; codings only in systems we do
    not read leave the answer not recorded (an optional answer never blocks a referral).
    """
    for index, extension in enumerate(patient.extension or []):
        known = EQUITY_EXTENSIONS.get(extension.url or "")
        if known is None:
            continue
        json_field, systems = known
        where = f"Patient.extension[{index}]"
        concept = extension.valueCodeableConcept
        if concept is None:
            raise FhirError(
                422,
                f"{where} must carry a valueCodeableConcept.",
                code="required",
                expression=f"{where}.valueCodeableConcept",
            )
        if json_field in person:
            raise FhirError(
                422,
                f"{where} repeats an extension already given: send it once.",
                code="invalid",
                expression=where,
            )
        for coding_index, coding in enumerate(concept.coding or []):
            codes = systems.get(coding.system or "")
            if codes is None:
                continue
            path = f"{where}.valueCodeableConcept.coding[{coding_index}].code"
            code = codes.get(coding.code or "")
            if code is None:
                raise FhirError(
                    422,
                    f"{path} is not a code of {coding.system}.",
                    code="code-invalid",
                    expression=path,
                )
            person[json_field] = code
            expressions[f"person.{json_field}"] = path
            break


def _identifier(identifiers: Any, system: str, root: str) -> tuple[str, str] | None:
    """The value of the first identifier in ``system`` and its expression."""
    for index, identifier in enumerate(identifiers or []):
        if identifier.system == system:
            if not identifier.value:
                raise FhirError(
                    422,
                    f"{root}.identifier[{index}] has the system {system} but no value.",
                    code="required",
                    expression=f"{root}.identifier[{index}].value",
                )
            return identifier.value, f"{root}.identifier[{index}].value"
    return None


def _preferred_name(names: Sequence[Any]) -> tuple[int, Any]:
    for use in ("official", "usual"):
        for index, name in enumerate(names):
            if name.use == use:
                return index, name
    return 0, names[0]


def _human_name(names: Any, root: str, expressions: dict[str, str], json_field: str) -> str | None:
    if not names:
        return None
    index, name = _preferred_name(names)
    # A list of FHIR strings may hold nulls (values carried only as extensions).
    parts = [*(name.prefix or []), *(name.given or []), name.family]
    text = name.text or " ".join(part for part in parts if part)
    text = " ".join(text.split())
    if not text:
        return None
    expressions[json_field] = f"{root}.name[{index}]"
    return text


def _contact(
    telecom: Any, root: str, target: dict[str, Any], prefix: str, expressions: dict[str, str]
) -> None:
    """The first phone and email of ``telecom`` into ``target`` (unless already set)."""
    for index, point in enumerate(telecom or []):
        key = {"phone": "phone", "sms": "phone", "email": "email"}.get(point.system or "")
        if key is not None and point.value and key not in target:
            target[key] = point.value
            expressions[f"{prefix}.{key}"] = f"{root}.telecom[{index}].value"


def _reason(service_request: ServiceRequest, expressions: dict[str, str]) -> str | None:
    """The reason for referral: reasonCode texts (or displays), then the notes."""
    parts: list[str] = []
    for index, concept in enumerate(service_request.reasonCode or []):
        text = concept.text or next(
            (coding.display for coding in concept.coding or [] if coding.display), None
        )
        if text:
            parts.append(text)
            expressions.setdefault("reason", f"ServiceRequest.reasonCode[{index}]")
    for index, note in enumerate(service_request.note or []):
        if note.text:
            parts.append(note.text)
            expressions.setdefault("reason", f"ServiceRequest.note[{index}].text")
    return "\n\n".join(parts) if parts else None


# QuestionnaireResponse ------------------------------------------------------------------------


def _apply_answers(
    response: QuestionnaireResponse, body: dict[str, Any], expressions: dict[str, str]
) -> None:
    """Each answered item becomes the JSON field its linkId names."""
    canonical = (response.questionnaire or "").split("|", 1)[0]
    if canonical not in (QUESTIONNAIRE_URL, f"Questionnaire/{QUESTIONNAIRE_ID}"):
        raise FhirError(
            422,
            f"QuestionnaireResponse.questionnaire must be {QUESTIONNAIRE_URL} "
            f"(GET /fhir/R4/Questionnaire/{QUESTIONNAIRE_ID}).",
            code="value",
            expression="QuestionnaireResponse.questionnaire",
        )
    if response.status not in FINAL_RESPONSE_STATUSES:
        raise FhirError(
            422,
            "A referral's QuestionnaireResponse.status must be completed or amended.",
            code="value",
            expression="QuestionnaireResponse.status",
        )
    seen: set[str] = set()
    for index, item in enumerate(response.item or []):
        where = f"QuestionnaireResponse.item[{index}]"
        question = QUESTIONS_BY_LINK_ID.get(item.linkId or "")
        if question is None:
            raise FhirError(
                422,
                f"{where}: linkId is not a question of {QUESTIONNAIRE_ID} "
                "(see its items for the linkIds).",
                code="value",
                expression=f"{where}.linkId",
            )
        if item.item:
            raise FhirError(
                422,
                f"{where} ({item.linkId}) must not have nested items.",
                code="structure",
                expression=f"{where}.item",
            )
        if question.link_id in seen:
            raise FhirError(
                422,
                f"{where}: {question.link_id} is answered twice.",
                code="duplicate",
                expression=where,
            )
        seen.add(question.link_id)
        answers = item.answer or []
        if not answers:
            continue  # left unanswered: not asked
        if len(answers) > 1 and not question.repeats:
            raise FhirError(
                422,
                f"{where} ({question.link_id}) takes one answer.",
                code="value",
                expression=f"{where}.answer",
            )
        values = [
            _answer_value(question, answer, f"{where}.answer[{position}]")
            for position, answer in enumerate(answers)
        ]
        _set(body, question.link_id, values if question.repeats else values[0])
        expressions[question.link_id] = where


def _answer_value(question: Question, answer: Any, where: str) -> Any:
    if question.kind == "boolean":
        if answer.valueBoolean is None:
            raise FhirError(
                422,
                f"{where}: {question.link_id} is answered with valueBoolean.",
                code="value",
                expression=where,
            )
        return answer.valueBoolean
    if question.kind == "open-choice" and answer.valueString is not None:
        return answer.valueString
    coding = answer.valueCoding
    if coding is None or not coding.code:
        raise FhirError(
            422,
            f"{where}: {question.link_id} is answered with a valueCoding whose code is one of "
            f"{', '.join(question.options)}.",
            code="value",
            expression=where,
        )
    if coding.system is not None and coding.system != answer_system(question.link_id):
        raise FhirError(
            422,
            f"{where}: valueCoding.system must be {answer_system(question.link_id)} (or left out).",
            code="value",
            expression=f"{where}.valueCoding.system",
        )
    if question.kind == "choice" and coding.code not in question.options:
        raise FhirError(
            422,
            f"{where}: {question.link_id} must be one of {', '.join(question.options)}.",
            code="value",
            expression=f"{where}.valueCoding.code",
        )
    return coding.code


def _set(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    target = body
    for parent in parents:
        target = target.setdefault(parent, {})
    target[leaf] = value
