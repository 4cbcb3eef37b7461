"""The NHS Data Dictionary codes the MHSDS extract writes, from the service's own vocabularies.

Each mapping is total over its vocabulary (``tests/test_mhsds_export.py`` checks it), so a new
value added to a vocabulary fails a test instead of silently reaching the national data set
blank. Which codes could be confirmed, and against which publication, is recorded in
docs/domain/mhsds-extract.md; the source of referral and clinical response priority type are not
here: they were recorded with each referral's triage decision by the ruleset's ``codes:``
section (docs/domain/fhir-and-codes.md).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from app.models.case import ContactAttendance, ContactMechanism

# CONSULTATION MECHANISM (MENTAL HEALTH), MHSDS ``ConsMechanismMH`` (NHS Data Dictionary, June
# 2026 release): 01 face to face, 02 telephone, 05 email, 09 text message (asynchronous),
# 11 video consultation.
CONSULTATION_MECHANISM: Final = MappingProxyType(
    {
        ContactMechanism.FACE_TO_FACE.value: "01",
        ContactMechanism.TELEPHONE.value: "02",
        ContactMechanism.EMAIL.value: "05",
        ContactMechanism.TEXT.value: "09",
        ContactMechanism.VIDEO.value: "11",
    }
)
# A drop-in is someone walking in: face to face.
DROP_IN_CONSULTATION_MECHANISM: Final = "01"

# ATTENDED OR DID NOT ATTEND (NHS Data Dictionary, June 2026 release), written to MHSDS v6's
# ``AttendStatus`` (ATTENDANCE STATUS, which replaces ATTENDED OR DID NOT ATTEND CODE):
# 5 attended on time (or seen), 3 did not attend without warning, 2 cancelled by or on behalf of
# the patient, 4 cancelled or postponed by the provider. We record no lateness, so 6 and 7 are
# never written.
ATTENDANCE_STATUS: Final = MappingProxyType(
    {
        ContactAttendance.ATTENDED.value: "5",
        ContactAttendance.DID_NOT_ATTEND.value: "3",
        ContactAttendance.CANCELLED_BY_PATIENT.value: "2",
        ContactAttendance.CANCELLED_BY_SERVICE.value: "4",
    }
)

# SERVICE OR TEAM TYPE REFERRED TO (MENTAL HEALTH), MHSDS ``ServTeamTypeRefToMH``, by the kind
# of queue (team) a case is held in. The codes are from the MHSDS v5/v6 list (A02 Crisis
# Resolution Team/Home Treatment Service, A06 Community Mental Health Team - Functional, A18
# Single Point of Access Service, C06 Looked After Children Service, F06 Mental Health and
# Wellbeing Hubs); which code fits which of our teams is this service's choice, set out in
# docs/domain/mhsds-extract.md for the provider's information team to confirm.
TEAM_TYPE_BY_QUEUE_KIND: Final = MappingProxyType(
    {
        "crisis": "A02",
        "duty": "A18",
        "access_hub": "A18",
        "looked_after": "C06",
        "community_base": "A06",
        "one_stop_shop": "F06",
    }
)
# The front door itself (a drop-in whose site is not a known team).
FRONT_DOOR_TEAM_TYPE: Final = "A18"


def consultation_mechanism(mechanism: str | None) -> str:
    """``ConsMechanismMH`` for a contact; blank for a contact recorded without a method."""
    return "" if mechanism is None else CONSULTATION_MECHANISM[mechanism]


def attendance_status(attendance: str) -> str:
    return ATTENDANCE_STATUS[attendance]


def team_type(queue_kind: str | None) -> str:
    """``ServTeamTypeRefToMH`` for a queue kind (the front door's own when there is none)."""
    return FRONT_DOOR_TEAM_TYPE if queue_kind is None else TEAM_TYPE_BY_QUEUE_KIND[queue_kind]
