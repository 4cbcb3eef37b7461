"""The URLs that name identifiers and codes in the FHIR API (docs/domain/fhir-and-codes.md)."""

from __future__ import annotations

FHIR_BASE_PATH = "/fhir/R4"
FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"

# NHS England (UK Core identifiers; the Booking and Referral Standard; the e-Referral Service).
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ODS_ORGANIZATION_CODE = "https://fhir.nhs.uk/Id/ods-organization-code"
BARS_MESSAGE_EVENTS = "https://fhir.nhs.uk/CodeSystem/message-events-bars"
SERVICE_REQUEST_REQUEST_EVENT = "servicerequest-request"
ERS_REFERRAL_STATE = "https://fhir.nhs.uk/CodeSystem/eRS-ReferralState"

# Equity monitoring on the Patient (docs/domain/equity-data.md). UK Core's ethnic category
# extension and its England code system (the NHS Data Dictionary ETHNIC CATEGORY); FHIR R4's
# own gender identity extension, read in the NHS Data Dictionary GENDER IDENTITY CODE (our URL
# for it: UK Core publishes none) or in FHIR's gender-identity codes.
UKCORE_ETHNIC_CATEGORY_EXTENSION = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
)
UKCORE_ETHNIC_CATEGORY_ENGLAND = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland"
GENDER_IDENTITY_EXTENSION = "http://hl7.org/fhir/StructureDefinition/patient-genderIdentity"
FHIR_GENDER_IDENTITY = "http://hl7.org/fhir/gender-identity"

# HL7 and SNOMED CT.
SNOMED_CT = "http://snomed.info/sct"
PATIENT_REFERRAL_SCTID = "3457005"  # Patient referral (procedure)
RESPONSE_CODES = "http://hl7.org/fhir/response-code"
PROCESS_MESSAGE_DEFINITION = "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"

# Our own: the canonical base of what this service defines. A deployment that publishes these
# under its own domain changes only this line.
CANONICAL_BASE = "https://frontdoor.example/fhir"
REFERRAL_REFERENCE = f"{CANONICAL_BASE}/Id/referral-reference"
PERSON_ID = f"{CANONICAL_BASE}/Id/person"
REFERRAL_STATUS = f"{CANONICAL_BASE}/CodeSystem/referral-status"
SOURCE_OF_REFERRAL_MH = f"{CANONICAL_BASE}/CodeSystem/source-of-referral-for-mental-health"
CLINICAL_RESPONSE_PRIORITY_TYPE = f"{CANONICAL_BASE}/CodeSystem/clinical-response-priority-type"
SOURCE_OF_REFERRAL_EXTENSION = f"{CANONICAL_BASE}/StructureDefinition/source-of-referral-mh"
PRIORITY_TYPE_EXTENSION = f"{CANONICAL_BASE}/StructureDefinition/clinical-response-priority-type"
GENDER_IDENTITY_CODE = f"{CANONICAL_BASE}/CodeSystem/gender-identity-code"
QUESTIONNAIRE_ID = "frontdoor-referral"
QUESTIONNAIRE_URL = f"{CANONICAL_BASE}/Questionnaire/{QUESTIONNAIRE_ID}"


def answer_system(link_id: str) -> str:
    """The code system of a Questionnaire item's coded answers (the JSON API's enum values)."""
    return f"{CANONICAL_BASE}/CodeSystem/{link_id}"
