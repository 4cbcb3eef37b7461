"""Read the web forms into the API's request models, with errors a person can act on.

Each form is read in two steps: first what the form itself needs (answers that are required,
dates typed as day, month and year), then the same pydantic model the JSON API validates
(``SelfReferralCreate`` / ``PhoneReferralCreate``), so the web and the API accept exactly the
same referrals. Every error names the field id it belongs to, for the NHS error summary's links.
Messages never repeat what was typed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import FormData

from app.schemas.common import NAME_MAX_CHARS, REASON_MAX_CHARS, Name, NhsNumber, Postcode
from app.schemas.referral import LONDON, PhoneReferralCreate, SelfReferralCreate

ModelT = TypeVar("ModelT", bound=BaseModel)

# Fields never echoed back into a re-rendered form.
NOT_RETAINED = frozenset({"csrf_token", "website", "action"})
MULTI_VALUE_FIELDS = frozenset({"needs", "person_flags"})
# A generous cap per field: the body-size limit bounds the whole form anyway.
FIELD_MAX_CHARS = REASON_MAX_CHARS + 100

# Choices offered on the forms (value → label). Values are the API's enum values.
NEEDS: dict[str, str] = {
    "anxiety": "Feeling worried, anxious or panicky",
    "low_mood": "Feeling low, sad or empty",
    "self_harm": "Hurting yourself",
    "eating": "Eating or body image",
    "sleep": "Sleep",
    "anger": "Anger or feeling out of control",
    "relationships": "Family, friends or relationships",
    "school": "School, college or work",
    "bereavement": "Losing someone close",
    "trauma": "Something upsetting that happened to you",
    "other": "Something else",
}
YES_NO: dict[str, bool | None] = {"yes": True, "no": False, "not_sure": None}
SETTINGS = ("one_stop_shop", "community_base")
SELF_REFERRER_TYPES = ("self", "parent_carer")
STAFF_REFERRER_TYPES = (
    "self",
    "parent_carer",
    "gp",
    "camhs",
    "school",
    "social_care",
    "other_professional",
)
CAMHS_STATUSES = ("never", "open", "discharged", "unknown")
AMHS_THRESHOLDS = ("met", "not_met", "unknown")
REQUESTS = ("help", "advice")
SUICIDAL = ("none", "thoughts", "plan", "intent")
SELF_HARM = ("none", "past", "recent", "current")
HARM_TO_OTHERS = ("none", "thoughts", "threats", "imminent")
GILLICK_OUTCOMES = ("competent", "not_competent")

# Where a pydantic error (by its location in the body) is shown on the form.
FIELD_FOR_LOCATION: dict[tuple[str, ...], str] = {
    ("person", "given_name"): "given_name",
    ("person", "family_name"): "family_name",
    ("person", "date_of_birth"): "dob",
    ("person", "postcode"): "postcode",
    ("person", "nhs_number"): "nhs_number",
    ("person", "phone"): "phone",
    ("person", "email"): "email",
    ("referrer", "name"): "referrer_name",
    ("referrer", "organisation"): "referrer_organisation",
    ("referrer", "phone"): "referrer_phone",
    ("referrer", "email"): "referrer_email",
    ("reason",): "reason",
    ("needs",): "needs",
    ("consent", "gillick", "assessed_by"): "gillick_assessed_by",
    ("consent", "gillick", "assessed_on"): "gillick_date",
}
LABELS: dict[str, str] = {
    "given_name": "First name",
    "family_name": "Last name",
    "referrer_name": "Name",
    "referrer_organisation": "Organisation",
    "gillick_assessed_by": "Who assessed Gillick competence",
    "reason": "What has been happening",
}
FORMAT_MESSAGES: dict[str, str] = {
    "postcode": "Enter a full UK postcode, like NR1 3AB",
    "nhs_number": "Enter a 10 digit NHS number, like 999 000 0018, or leave it blank",
    "phone": "Enter a phone number, like 07700 900 982",
    "referrer_phone": "Enter a phone number, like 07700 900 982",
    "email": "Enter an email address in the correct format, like name@example.com",
    "referrer_email": "Enter an email address in the correct format, like name@example.com",
    "needs": "Choose from the list",
    "dob": "Date of birth must be a real date",
    "gillick_date": "The date of the Gillick assessment must be a real date",
}
# Where each error key's summary link points (the first input of a group).
ANCHORS: dict[str, str] = {"dob": "dob_day", "gillick_date": "gillick_day", "form": "maincontent"}


@dataclass
class ParsedForm(Generic[ModelT]):
    """The validated body (when there are no errors), the errors, and what was typed."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    body: ModelT | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def raw_payload(self) -> dict[str, Any]:
        """The body built from the form, as JSON-ready data (stored as the raw payload)."""
        payload: dict[str, Any] = orjson.loads(orjson.dumps(self.data))
        return payload

    @property
    def ok(self) -> bool:
        return self.body is not None and not self.errors

    def summary(self, order: Iterable[str]) -> list[dict[str, str]]:
        """The error summary's entries, in the order the fields appear on the page."""
        position = {key: index for index, key in enumerate(order)}
        keys = sorted(self.errors, key=lambda key: position.get(key, len(position)))
        return [{"href": "#" + ANCHORS.get(key, key), "text": self.errors[key]} for key in keys]


def form_values(form: FormData) -> dict[str, Any]:
    """What the person typed, to fill the form again (never the CSRF token or the honeypot)."""
    values: dict[str, Any] = {}
    for key in form:
        if key in NOT_RETAINED:
            continue
        if key in MULTI_VALUE_FIELDS:
            values[key] = [str(v)[:FIELD_MAX_CHARS] for v in form.getlist(key)]
        else:
            values[key] = str(form.get(key, ""))[:FIELD_MAX_CHARS]
    return values


class _Reader:
    """Reads answers out of the form values, noting what is missing."""

    def __init__(self, values: dict[str, Any], *, required: bool) -> None:
        self.values = values
        self.required = required
        self.errors: dict[str, str] = {}

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if not isinstance(value, str) or not value.strip():
            return None
        return value

    def require_text(self, name: str, message: str) -> str | None:
        value = self.text(name)
        if value is None and self.required:
            self.errors.setdefault(name, message)
        return value

    def choice(self, name: str, allowed: Iterable[str], message: str | None = None) -> str | None:
        """One of ``allowed``; a tampered or missing answer counts as not answered."""
        value = self.text(name)
        if value not in tuple(allowed):
            value = None
        if value is None and message is not None and self.required:
            self.errors.setdefault(name, message)
        return value

    def flag(self, name: str) -> bool:
        """A single checkbox: ticked or not."""
        return self.text(name) == "yes"

    def yes_no(self, name: str, message: str | None = None) -> bool | None:
        answer = self.choice(name, YES_NO, message)
        return YES_NO[answer] if answer is not None else None

    def many(self, name: str, allowed: Iterable[str]) -> list[str]:
        chosen = self.values.get(name) or []
        allowed = tuple(allowed)
        return [value for value in chosen if value in allowed]

    def date(self, prefix: str, key: str, label: str, *, required: bool) -> date | None:
        """A date typed as day, month and year (the NHS date input)."""
        parts = {
            part: (self.text(f"{prefix}_{part}") or "").strip() for part in ("day", "month", "year")
        }
        if not any(parts.values()):
            if required and self.required:
                self.errors.setdefault(key, f"Enter {label.lower()}")
            return None
        missing = [part for part, value in parts.items() if not value]
        if missing:
            self.errors.setdefault(key, f"{label} must include a {missing[0]}")
            return None
        if not all(value.isdigit() for value in parts.values()):
            self.errors.setdefault(key, f"{label} must be a real date")
            return None
        if len(parts["year"]) != 4:
            self.errors.setdefault(key, "Year must include 4 numbers")
            return None
        try:
            typed = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
        except ValueError:
            self.errors.setdefault(key, f"{label} must be a real date")
            return None
        if typed > datetime.now(LONDON).date():
            self.errors.setdefault(key, f"{label} must be today or in the past")
            return None
        return typed


def _validation_messages(exc: ValidationError) -> dict[str, str]:
    """Pydantic's errors as form messages keyed by field id (the first error per field)."""
    messages: dict[str, str] = {}
    for error in exc.errors():
        location = tuple(str(part) for part in error["loc"] if not isinstance(part, int))
        key = FIELD_FOR_LOCATION.get(location)
        if key is None:
            # A field the form does not show: report it on the nearest thing the person can see.
            key = "form"
        if key in messages:
            continue
        kind = error.get("type", "")
        context = error.get("ctx") or {}
        message = str(error.get("msg", ""))
        if kind == "string_too_long" and "max_length" in context:
            label = LABELS.get(key, "This answer")
            messages[key] = f"{label} must be {context['max_length']} characters or fewer"
        elif key == "dob" and "future" in message:
            messages[key] = "Date of birth must be in the past"
        elif key == "dob" and "1900" in message:
            messages[key] = "Date of birth must be after 1 January 1900"
        else:
            messages[key] = FORMAT_MESSAGES.get(key, "Check this answer")
    return messages


def _validate(model: type[ModelT], data: dict[str, Any], parsed: ParsedForm[ModelT]) -> None:
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        for key, message in _validation_messages(exc).items():
            parsed.errors.setdefault(key, message)
        return
    parsed.data = data
    if not parsed.errors:
        parsed.body = body


def _person(reader: _Reader, *, required: bool) -> dict[str, Any]:
    return {
        "nhs_number": reader.text("nhs_number"),
        "given_name": reader.require_text("given_name", "Enter a first name")
        if required
        else reader.text("given_name"),
        "family_name": reader.require_text("family_name", "Enter a last name")
        if required
        else reader.text("family_name"),
        "date_of_birth": reader.date("dob", "dob", "Date of birth", required=required),
        "postcode": reader.text("postcode"),
        "phone": reader.text("phone"),
        "email": reader.text("email"),
    }


def _risk(reader: _Reader, *, kind: str) -> dict[str, Any]:
    """The risk answers; on the public form each question must be answered (never assumed)."""
    you = kind == "self"
    return {
        "immediate_danger": reader.flag("immediate_danger"),
        "suicidal": reader.choice(
            "suicidal",
            SUICIDAL,
            "Select an answer about thoughts of ending your life"
            if you
            else "Select an answer about suicidal thoughts",
        )
        or "none",
        "self_harm": reader.choice(
            "self_harm",
            SELF_HARM,
            "Select an answer about hurting yourself"
            if you
            else "Select an answer about self-harm",
        )
        or "none",
        "harm_to_others": reader.choice(
            "harm_to_others",
            HARM_TO_OTHERS,
            "Select an answer about hurting someone else"
            if you
            else "Select an answer about harm to others",
        )
        or "none",
        "safeguarding_concern": reader.yes_no(
            "safeguarding_concern", "Select yes if anyone is hurting you or making you feel unsafe"
        )
        if you
        else reader.flag("safeguarding_concern"),
        "supported": reader.yes_no(
            "supported",
            "Select whether there is someone who can support you"
            if you
            else "Select whether they have support around them",
        ),
    }


def parse_self_referral(form: FormData) -> ParsedForm[SelfReferralCreate]:
    """The public form → ``SelfReferralCreate`` (the body ``POST /v1/self-referrals`` takes)."""
    values = form_values(form)
    reader = _Reader(values, required=True)
    referrer_type = reader.choice(
        "referrer_type", SELF_REFERRER_TYPES, "Select who is filling in this form"
    )
    by_parent = referrer_type == "parent_carer"
    referrer: dict[str, Any] = {"type": referrer_type or "self"}
    if by_parent:
        referrer.update(
            name=reader.text("referrer_name"),
            phone=reader.text("referrer_phone"),
            email=reader.text("referrer_email"),
        )
    person = _person(reader, required=True)
    if not (person["phone"] or person["email"] or referrer.get("phone") or referrer.get("email")):
        reader.errors.setdefault(
            "phone", "Enter a phone number or an email address so we can contact you"
        )
    person["send"] = reader.yes_no("send") is True
    person["looked_after"] = reader.yes_no("looked_after") is True
    camhs_status = reader.choice("camhs_status", CAMHS_STATUSES) or "unknown"
    request_kind = reader.choice("request", REQUESTS, "Select what you would like from us")
    risk = _risk(reader, kind="self")
    setting = reader.choice("setting", SETTINGS)
    to_share = reader.yes_no("consent_share", "Select yes if we can share your referral")
    data: dict[str, Any] = {
        "referrer": referrer,
        "person": person,
        "camhs": {
            "status": camhs_status,
            "transition_planned": camhs_status == "open" and reader.flag("camhs_transition"),
        },
        "request": request_kind or "help",
        "needs": reader.many("needs", NEEDS),
        "reason": reader.text("reason"),
        "risk": risk,
        "preferences": {"setting": setting},
        "consent": {
            # A young person referring themselves consents by doing so; a parent or carer tells
            # us whether the young person agrees. Recorded, never a reason to refuse.
            "to_referral": True if not by_parent else reader.yes_no("referral_agreed"),
            "to_share": to_share,
            "parent_carer_aware": True if by_parent else reader.yes_no("parent_carer_aware"),
        },
    }
    parsed: ParsedForm[SelfReferralCreate] = ParsedForm(values=values, errors=reader.errors)
    _validate(SelfReferralCreate, data, parsed)
    return parsed


def parse_phone_referral(form: FormData, *, required: bool) -> ParsedForm[PhoneReferralCreate]:
    """The call handler's form → ``PhoneReferralCreate`` (the body ``POST /v1/referrals`` takes).

    With ``required=False`` (the decision preview) unanswered questions take the API defaults,
    so the preview can update while the call is still going.
    """
    values = form_values(form)
    reader = _Reader(values, required=required)
    referrer_type = reader.choice(
        "referrer_type", STAFF_REFERRER_TYPES, "Select who is making the referral"
    )
    person = _person(reader, required=False)
    if required and not (person["given_name"] or person["family_name"] or person["nhs_number"]):
        reader.errors.setdefault("given_name", "Enter the young person's name or NHS number")
    flags = reader.many("person_flags", ("send", "looked_after"))
    person["send"] = "send" in flags
    person["looked_after"] = "looked_after" in flags
    camhs_status = reader.choice("camhs_status", CAMHS_STATUSES) or "unknown"
    gillick: dict[str, Any] | None = None
    gillick_outcome = reader.choice("gillick_outcome", GILLICK_OUTCOMES)
    if gillick_outcome is not None:
        gillick = {
            "outcome": gillick_outcome,
            "assessed_by": reader.require_text(
                "gillick_assessed_by", "Enter who assessed Gillick competence"
            ),
            "assessed_on": reader.date(
                "gillick", "gillick_date", "The date of the Gillick assessment", required=True
            ),
        }
        if not required and (gillick["assessed_by"] is None or gillick["assessed_on"] is None):
            gillick = None  # a half-typed assessment does not stop the preview
    data: dict[str, Any] = {
        "channel": "phone",
        "referrer": {
            "type": referrer_type or "self",
            "name": reader.text("referrer_name"),
            "organisation": reader.text("referrer_organisation"),
            "phone": reader.text("referrer_phone"),
            "email": reader.text("referrer_email"),
        },
        "person": person,
        "camhs": {
            "status": camhs_status,
            "transition_planned": camhs_status in ("open", "discharged")
            and reader.flag("camhs_transition"),
        },
        "amhs_threshold": reader.choice("amhs_threshold", AMHS_THRESHOLDS) or "unknown",
        "request": reader.choice("request", REQUESTS, "Select help or advice") or "help",
        "needs": reader.many("needs", NEEDS),
        "reason": reader.text("reason"),
        "risk": _risk(reader, kind="staff"),
        "preferences": {"setting": reader.choice("setting", SETTINGS)},
        "consent": {
            "to_referral": reader.yes_no("consent_referral"),
            "to_share": reader.yes_no("consent_share"),
            "parent_carer_aware": reader.yes_no("parent_carer_aware"),
            "gillick": gillick,
        },
    }
    parsed: ParsedForm[PhoneReferralCreate] = ParsedForm(values=values, errors=reader.errors)
    _validate(PhoneReferralCreate, data, parsed)
    return parsed


# The order fields appear in on each page (the error summary follows it).
SELF_REFERRAL_ORDER = (
    "referrer_type",
    "referrer_name",
    "referrer_phone",
    "referrer_email",
    "given_name",
    "family_name",
    "dob",
    "postcode",
    "nhs_number",
    "phone",
    "email",
    "request",
    "needs",
    "reason",
    "immediate_danger",
    "suicidal",
    "self_harm",
    "harm_to_others",
    "safeguarding_concern",
    "supported",
    "consent_share",
    "form",
)
PHONE_REFERRAL_ORDER = (
    "referrer_type",
    "referrer_name",
    "referrer_organisation",
    "referrer_phone",
    "referrer_email",
    "nhs_number",
    "given_name",
    "family_name",
    "dob",
    "postcode",
    "phone",
    "email",
    "request",
    "needs",
    "reason",
    "suicidal",
    "self_harm",
    "harm_to_others",
    "supported",
    "gillick_assessed_by",
    "gillick_date",
    "form",
)


@dataclass
class PersonSearch:
    """The console's person search: by NHS number, or by last name and date of birth."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    nhs_number: str | None = None
    family_name: str | None = None
    given_name: str | None = None
    date_of_birth: date | None = None
    postcode: str | None = None

    def criteria(self) -> list[str]:
        """The names of the criteria searched with (never their values), for the audit trail."""
        return [
            name
            for name in ("nhs_number", "family_name", "given_name", "date_of_birth", "postcode")
            if getattr(self, name)
        ]

    def summary(self) -> list[dict[str, str]]:
        return ParsedForm(values=self.values, errors=self.errors).summary(SEARCH_ORDER)


SEARCH_ORDER = ("nhs_number", "family_name", "given_name", "dob", "postcode")


def parse_person_search(form: FormData) -> PersonSearch:
    """Check the search fields with the same types ``GET /v1/persons`` uses."""
    values = form_values(form)
    reader = _Reader(values, required=True)
    search = PersonSearch(values=values, errors=reader.errors)
    checks: list[tuple[str, Any]] = [
        ("nhs_number", TypeAdapter(NhsNumber | None)),
        ("family_name", TypeAdapter(Name | None)),
        ("given_name", TypeAdapter(Name | None)),
        ("postcode", TypeAdapter(Postcode | None)),
    ]
    for name, adapter in checks:
        try:
            setattr(search, name, adapter.validate_python(reader.text(name)))
        except ValidationError:
            message = FORMAT_MESSAGES.get(name, f"{LABELS.get(name, 'This answer')} is too long")
            if name in LABELS:
                message = f"{LABELS[name]} must be {NAME_MAX_CHARS} characters or fewer"
            reader.errors.setdefault(name, message)
    search.date_of_birth = reader.date("dob", "dob", "Date of birth", required=False)
    if search.nhs_number is None and "nhs_number" not in reader.errors:
        if search.family_name is None and search.date_of_birth is None and not reader.errors:
            reader.errors["nhs_number"] = "Enter an NHS number, or a last name and date of birth"
        elif search.family_name is None and "family_name" not in reader.errors:
            reader.errors["family_name"] = "Enter a last name to search with the date of birth"
        elif search.date_of_birth is None and "dob" not in reader.errors:
            reader.errors["dob"] = "Enter a date of birth to search with the last name"
    return search
