"""The published Questionnaire ``frontdoor-referral``: the questions a FHIR referral may answer.

Each item's ``linkId`` is the JSON API's field path (``risk.suicidal``), and a coded answer's
``code`` is the JSON enum value, so a QuestionnaireResponse answer becomes that field of the
same ``SystemReferralCreate`` body (``app.fhir.mapping``). A question left unanswered is
*not asked*, as in the JSON API: never *no*.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from app.fhir.systems import QUESTIONNAIRE_ID, QUESTIONNAIRE_URL, answer_system
from app.triage.facts import (
    AmhsThreshold,
    CamhsStatus,
    HarmToOthers,
    ReferrerType,
    RequestKind,
    SelfHarm,
    SettingPreference,
    Suicidal,
)

QUESTIONNAIRE_VERSION = "1"

# A referring system's referrer is a professional (SystemReferralCreate refuses self/carer).
PROFESSIONAL_REFERRERS = tuple(
    r.value for r in ReferrerType if r not in (ReferrerType.SELF, ReferrerType.PARENT_CARER)
)


@dataclass(frozen=True, slots=True)
class Question:
    link_id: str
    text: str
    kind: Literal["boolean", "choice", "open-choice"]
    options: tuple[str, ...] = ()
    repeats: bool = False


def _values(enum: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


QUESTIONS: tuple[Question, ...] = (
    Question(
        "referrer.type",
        "Who is referring? (left out: a general practice)",
        "choice",
        PROFESSIONAL_REFERRERS,
    ),
    Question("risk.immediate_danger", "Is the young person in immediate danger?", "boolean"),
    Question("risk.suicidal", "Suicidal thoughts, plans or intent", "choice", _values(Suicidal)),
    Question("risk.self_harm", "Self-harm", "choice", _values(SelfHarm)),
    Question("risk.harm_to_others", "Risk of harm to others", "choice", _values(HarmToOthers)),
    Question("risk.safeguarding_concern", "Is there a safeguarding concern?", "boolean"),
    Question("risk.supported", "Is there capable support around them?", "boolean"),
    Question("camhs.status", "Known to CAMHS?", "choice", _values(CamhsStatus)),
    Question(
        "camhs.transition_planned", "Is a move from CAMHS to adult services planned?", "boolean"
    ),
    Question(
        "amhs_threshold",
        "Aged 18 or over: are adult mental health services' criteria met?",
        "choice",
        _values(AmhsThreshold),
    ),
    Question("request", "Help, or advice only?", "choice", _values(RequestKind)),
    Question(
        "needs",
        "What do they need help with? (e.g. anxiety, low_mood, self_harm)",
        "open-choice",
        ("anxiety", "low_mood", "self_harm", "eating", "trauma", "neurodevelopmental"),
        repeats=True,
    ),
    Question("person.send", "Special educational needs and disability (SEND)?", "boolean"),
    Question("person.looked_after", "Looked-after or adopted?", "boolean"),
    Question(
        "preferences.setting",
        "Where would they prefer to be seen?",
        "choice",
        _values(SettingPreference),
    ),
    Question("consent.to_referral", "Has the young person agreed to the referral?", "boolean"),
    Question("consent.to_share", "Have they agreed to information being shared?", "boolean"),
    Question("consent.parent_carer_aware", "Is a parent or carer aware?", "boolean"),
)
QUESTIONS_BY_LINK_ID = {question.link_id: question for question in QUESTIONS}


def questionnaire_resource() -> dict[str, Any]:
    """The Questionnaire as served at ``GET /fhir/R4/Questionnaire/frontdoor-referral``."""
    return {
        "resourceType": "Questionnaire",
        "id": QUESTIONNAIRE_ID,
        "url": QUESTIONNAIRE_URL,
        "version": QUESTIONNAIRE_VERSION,
        "name": "FrontDoorReferral",
        "title": "Front Door referral: risk, CAMHS, needs and consent",
        "status": "active",
        "subjectType": ["Patient"],
        "description": (
            "Answers a referring system may send with a referral message. Each linkId is the "
            "Front Door JSON API field path; each coded answer's code is its JSON value. A "
            "question left unanswered is recorded as not asked, never as no."
        ),
        "item": [_item(question) for question in QUESTIONS],
    }


def _item(question: Question) -> dict[str, Any]:
    item: dict[str, Any] = {
        "linkId": question.link_id,
        "text": question.text,
        "type": question.kind,
        "required": False,
    }
    if question.repeats:
        item["repeats"] = True
    if question.options:
        item["answerOption"] = [
            {
                "valueCoding": {
                    "system": answer_system(question.link_id),
                    "code": option,
                    "display": option.replace("_", " "),
                }
            }
            for option in question.options
        ]
    return item
