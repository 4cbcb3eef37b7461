"""Read the web forms into the API's request models, with errors a person can act on.

Each form is read in two steps: first what the form itself needs (answers that are required,
dates typed as day, month and year), then the same pydantic model the JSON API validates
(``SelfReferralCreate`` / ``PhoneReferralCreate``), so the web and the API accept exactly the
same referrals. Every error names the field id it belongs to, for the NHS error summary's links.
Messages never repeat what was typed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import FormData

from app.equity import ETHNIC_CATEGORY, ETHNIC_NOT_STATED, GENDER_NOT_STATED
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
# Equity monitoring (docs/domain/equity-data.md): NHS Data Dictionary codes → the words on the
# forms. Optional: blank is "not recorded"; "Prefer not to say" is the code for not stated.
GENDER_OPTIONS: tuple[tuple[str, str], ...] = (
    ("2", "Female, including trans girls and trans women"),
    ("1", "Male, including trans boys and trans men"),
    ("3", "Non-binary"),
    ("4", "I describe my gender another way"),
    (GENDER_NOT_STATED, "Prefer not to say"),
)
# The console's lists start with "Not asked" (blank: not recorded), which can be chosen again.
STAFF_GENDER_OPTIONS: tuple[tuple[str, str], ...] = (
    ("", "Not asked"),
    ("2", "Female (including trans woman)"),
    ("1", "Male (including trans man)"),
    ("3", "Non-binary"),
    ("4", "Other (not listed)"),
    (GENDER_NOT_STATED, "Asked: prefers not to say"),
)
ETHNIC_OPTIONS: tuple[tuple[str, str], ...] = (
    *((code, words) for code, words in ETHNIC_CATEGORY.items() if len(code) == 1 and code != "Z"),
    (ETHNIC_NOT_STATED, "Prefer not to say"),
)
STAFF_ETHNIC_OPTIONS: tuple[tuple[str, str], ...] = (
    ("", "Not asked"),
    *ETHNIC_OPTIONS[:-1],
    (ETHNIC_NOT_STATED, "Asked: prefers not to say"),
)

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
    ("consent", "gillick", "outcome"): "gillick_outcome",
    ("consent", "gillick"): "gillick_outcome",
    ("consent", "to_referral"): "referral_agreed",
    ("consent", "to_share"): "consent_share",
    ("consent", "parent_carer_aware"): "parent_carer_aware",
    ("consent", "contact_by_text"): "contact_by_text",
    ("referrer", "type"): "referrer_type",
    ("person", "send"): "send",
    ("person", "looked_after"): "looked_after",
    ("camhs", "status"): "camhs_status",
    ("camhs", "transition_planned"): "camhs_transition",
    ("amhs_threshold",): "amhs_threshold",
    ("request",): "request",
    ("risk", "immediate_danger"): "immediate_danger",
    ("risk", "suicidal"): "suicidal",
    ("risk", "self_harm"): "self_harm",
    ("risk", "harm_to_others"): "harm_to_others",
    ("risk", "safeguarding_concern"): "safeguarding_concern",
    ("risk", "supported"): "supported",
    ("preferences", "setting"): "setting",
    ("person", "gender"): "gender",
    ("person", "ethnic_category"): "ethnic_category",
}
# The other way round: the API field path each form field fills in (``incomplete_fields``).
FIELD_PATHS: dict[str, tuple[str, ...]] = {
    key: (".".join(location),) for location, key in FIELD_FOR_LOCATION.items() if len(location) < 3
}
FIELD_PATHS.update(
    {
        "gillick_outcome": ("consent.gillick",),
        "gillick_assessed_by": ("consent.gillick",),
        "gillick_date": ("consent.gillick",),
        # "Give us a way to contact you": none of the contact details was given.
        "contact": ("person.phone", "person.email"),
    }
)
LABELS: dict[str, str] = {
    "given_name": "First name",
    "family_name": "Last name",
    "referrer_name": "Name",
    "referrer_organisation": "Organisation",
    "gillick_assessed_by": "Who assessed Gillick competence",
    "reason": "What has been happening",
}
# Said to the young person or their parent: what the number is and where to find it (nobody
# outside the NHS knows what a check digit is). Staff pages use STAFF_FORMAT_MESSAGES.
NHS_NUMBER_MESSAGE = (
    "Check your NHS number: it is 10 digits, on a letter from your GP or in the NHS App. "
    "Leave it blank if you do not know it."
)
STAFF_NHS_NUMBER_MESSAGE = (
    "Enter a 10 digit NHS number, like 999 000 0018, exactly as it is on the record "
    "(one digit typed wrongly makes it invalid)"
)
# For a question answered with an option the form does not offer (a tampered or stale form).
CHOICE_MESSAGES: dict[str, str] = {
    "referrer_type": "Select who is filling in this form",
    "request": "Select what you would like from us",
    "immediate_danger": "Tick the box only if you are in danger now, or have hurt yourself badly",
    "suicidal": "Select an answer about thoughts of ending your life",
    "self_harm": "Select an answer about hurting yourself",
    "harm_to_others": "Select an answer about hurting someone else",
    "safeguarding_concern": "Select yes if anyone is hurting you or making you feel unsafe",
    "supported": "Select whether there is someone who can support you",
    "consent_share": "Select yes or no, or leave this question blank",
    "contact_by_text": "Select yes or no, or leave this question blank",
    "referral_agreed": "Select yes, no or I'm not sure, or leave this question blank",
    "parent_carer_aware": "Select an answer, or leave this question blank",
    "send": "Select yes, no or I'm not sure, or leave this question blank",
    "looked_after": "Select yes or no, or leave this question blank",
    "camhs_status": "Select an answer about CAMHS, or leave this question blank",
    "camhs_transition": "Tick the box only if planning your move to adult services has started",
    "setting": "Select where you would like to be seen, or leave this question blank",
    "amhs_threshold": "Select whether the adult mental health services threshold is met",
    "gillick_outcome": "Select the outcome of the Gillick assessment",
    "gender": "Select an answer about gender from the list, or leave this question blank",
    "ethnic_category": "Select an ethnic group from the list, or leave this question blank",
}
# Text that holds a character the service cannot store (NUL, other control characters).
UNREADABLE_TEXT = "{label} has a character we cannot store: type it again instead of pasting it"
# A problem with an answer the page does not show (it cannot happen with the form as served).
FORM_MESSAGE = (
    "Some answers could not be read. Check your answers and select 'Send my referral' again."
)
FORMAT_MESSAGES: dict[str, str] = {
    "postcode": "Enter a full UK postcode, like NR1 3AB",
    "nhs_number": NHS_NUMBER_MESSAGE,
    "phone": "Enter a phone number, like 07700 900 982",
    "referrer_phone": "Enter a phone number, like 07700 900 982",
    "email": "Enter an email address in the correct format, like name@example.com",
    "referrer_email": "Enter an email address in the correct format, like name@example.com",
    "needs": "Choose from the list",
    "dob": "Date of birth must be a real date",
    "gillick_date": "The date of the Gillick assessment must be a real date",
}
STAFF_FORMAT_MESSAGES: dict[str, str] = {
    **FORMAT_MESSAGES,
    "nhs_number": STAFF_NHS_NUMBER_MESSAGE,
    "referrer_name": UNREADABLE_TEXT.format(label="Caller's name"),
}
STAFF_FORM_MESSAGE = "Some answers could not be read. Check the answers and submit again."
# The form's questions, as the confirmation page lists what was not answered or could not be
# used (the question only: what was typed is never shown back).
MISSING_LABELS: dict[str, str] = {
    "referrer_type": "Who is filling in this form",
    "referrer_name": "Your name",
    "referrer_phone": "Your phone number",
    "referrer_email": "Your email address",
    "given_name": "First name",
    "family_name": "Last name",
    "dob": "Date of birth",
    "postcode": "Postcode",
    "nhs_number": "NHS number",
    "phone": "Phone number",
    "email": "Email address",
    "contact": "A phone number or email address, so we can contact you",
    "needs": "What you would like support with",
    "reason": "What has been happening",
    "immediate_danger": "Are you safe right now?",
    "suicidal": "Have you had thoughts about ending your life?",
    "self_harm": "Have you hurt yourself on purpose?",
    "harm_to_others": "Have you had thoughts about hurting someone else?",
    "safeguarding_concern": "Is anyone hurting you, or making you feel unsafe?",
    "supported": "Is there someone you trust who can support you right now?",
    "request": "What would you like from us?",
    "setting": "Where would you like to be seen?",
    "consent_share": "Can we share your referral with other services that could help you?",
    "contact_by_text": "Can we send you a text message to say we have your referral?",
    "referral_agreed": "Does the young person know about this and agree to it?",
    "parent_carer_aware": "Does a parent or carer know you are asking for support?",
    "looked_after": "Are you in care, or have you been adopted?",
    "send": "Do you have special educational needs or a disability (SEND)?",
    "camhs_status": "Have you had help from CAMHS before?",
    "camhs_transition": "Moving to adult services",
    "gender": "What is your gender?",
    "ethnic_category": "What is your ethnic group?",
    "form": "Some other answers",
}
# Where each error key's summary link points (the first input of a group).
ANCHORS: dict[str, str] = {
    "dob": "dob_day",
    "gillick_date": "gillick_day",
    "contact": "phone",
    "form": "maincontent",
}


@dataclass
class ParsedForm(Generic[ModelT]):
    """The validated body (when there are no errors), the errors, and what was typed."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    body: ModelT | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # The API field paths pydantic refused (for ``incomplete_fields``; never their values).
    invalid_paths: set[str] = field(default_factory=set)
    # With errors: the body built from the valid answers only, and its data (see ``salvage``).
    partial: ModelT | None = None
    partial_data: dict[str, Any] = field(default_factory=dict)

    def raw_payload(self) -> dict[str, Any]:
        """The body built from the form, as JSON-ready data (stored as the raw payload)."""
        payload: dict[str, Any] = orjson.loads(orjson.dumps(self.data or self.partial_data))
        return payload

    def incomplete_fields(self) -> list[str]:
        """The API field paths left unanswered or not valid (``person.date_of_birth``…)."""
        paths = set(self.invalid_paths)
        for key in self.errors:
            paths.update(FIELD_PATHS.get(key, ()))
        return sorted(paths)

    def missing(self, order: Iterable[str]) -> list[str]:
        """The form fields with a problem, in page order (keys of ``MISSING_LABELS``)."""
        position = {key: index for index, key in enumerate(order)}
        return sorted(self.errors, key=lambda key: position.get(key, len(position)))

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


def _validation_messages(
    exc: ValidationError, *, staff: bool = False
) -> tuple[dict[str, str], set[str]]:
    """Pydantic's errors as form messages keyed by field id (the first error per field), each
    saying what to do about that answer, and the API field paths that were not valid."""
    formats = STAFF_FORMAT_MESSAGES if staff else FORMAT_MESSAGES
    messages: dict[str, str] = {}
    paths: set[str] = set()
    for error in exc.errors():
        location = tuple(str(part) for part in error["loc"] if not isinstance(part, int))
        paths.add(".".join(location))
        key = FIELD_FOR_LOCATION.get(location)
        if key is None:
            # A field the form does not show: report it on the nearest thing the person can see.
            key = "form"
        if key in messages:
            continue
        kind = error.get("type", "")
        context = error.get("ctx") or {}
        message = str(error.get("msg", ""))
        label = LABELS.get(key, "This answer")
        if kind == "string_too_long" and "max_length" in context:
            messages[key] = f"{label} must be {context['max_length']} characters or fewer"
        elif key == "dob" and "future" in message:
            messages[key] = "Date of birth must be in the past"
        elif key == "dob" and "1900" in message:
            messages[key] = "Date of birth must be after 1 January 1900"
        elif key in formats:
            messages[key] = formats[key]
        elif key in LABELS:
            messages[key] = UNREADABLE_TEXT.format(label=label)
        elif key in CHOICE_MESSAGES:
            messages[key] = CHOICE_MESSAGES[key]
        else:
            messages[key] = STAFF_FORM_MESSAGE if staff else FORM_MESSAGE
    return messages, paths


def _validate(
    model: type[ModelT], data: dict[str, Any], parsed: ParsedForm[ModelT], *, staff: bool = False
) -> None:
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        messages, paths = _validation_messages(exc, staff=staff)
        for key, message in messages.items():
            parsed.errors.setdefault(key, message)
        parsed.invalid_paths.update(paths)
        return
    parsed.data = data
    if not parsed.errors:
        parsed.body = body


# Enough passes to drop every invalid answer (each pass reports every error it finds).
SALVAGE_PASSES = 3


def _drop(data: dict[str, Any], location: tuple[Any, ...]) -> bool:
    """Remove the answer at ``location`` (a whole list if the error is in one of its items)."""
    parts = [part for part in location if not isinstance(part, int)]
    node: Any = data
    for part in parts[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            return False
        node = node[part]
    if not parts or not isinstance(node, dict) or parts[-1] not in node:
        return False
    del node[parts[-1]]
    return True


def salvage(model: type[ModelT], parsed: ParsedForm[ModelT], data: dict[str, Any]) -> None:
    """Keep what is valid, drop what is not: the body the valid answers make on their own.

    Used when answers that must not be lost (urgency C or above) come with other answers
    missing or invalid. Sets ``parsed.partial`` (None if the valid parts still do not make a
    body) and ``parsed.partial_data``.
    """
    remaining = copy.deepcopy(data)
    for _ in range(SALVAGE_PASSES):
        try:
            parsed.partial = model.model_validate(remaining)
        except ValidationError as exc:
            dropped = [_drop(remaining, tuple(error["loc"])) for error in exc.errors()]
            if not any(dropped):
                return
            continue
        parsed.partial_data = remaining
        return


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
        # Optional, never asked for again: blank is not recorded. Passed as given, so an answer
        # the form does not offer is refused by the API's own model (and named on the form).
        "gender": reader.text("gender"),
        "ethnic_category": reader.text("ethnic_category"),
    }


def _risk(reader: _Reader, *, kind: str) -> dict[str, Any]:
    """The risk answers; each question must be answered (never assumed).

    A question left unanswered is left out of the body, so intake records it as *not asked*
    (never as "no"); the form still asks for the answer unless the referral is urgent.
    """
    you = kind == "self"
    answers: dict[str, Any] = {
        # A single tick box everyone is shown: not ticking it is the answer "no".
        "immediate_danger": reader.flag("immediate_danger"),
        "suicidal": reader.choice(
            "suicidal",
            SUICIDAL,
            CHOICE_MESSAGES["suicidal"] if you else "Select an answer about suicidal thoughts",
        ),
        "self_harm": reader.choice(
            "self_harm",
            SELF_HARM,
            CHOICE_MESSAGES["self_harm"] if you else "Select an answer about self-harm",
        ),
        "harm_to_others": reader.choice(
            "harm_to_others",
            HARM_TO_OTHERS,
            CHOICE_MESSAGES["harm_to_others"] if you else "Select an answer about harm to others",
        ),
        "safeguarding_concern": reader.yes_no(
            "safeguarding_concern", CHOICE_MESSAGES["safeguarding_concern"]
        )
        if you
        else reader.flag("safeguarding_concern"),
        "supported": reader.yes_no(
            "supported",
            CHOICE_MESSAGES["supported"] if you else "Select whether they have support around them",
        ),
    }
    # "I'm not sure" about support is an answer (unknown), kept as None like an unanswered one.
    return {
        question: answer
        for question, answer in answers.items()
        if answer is not None or question == "supported"
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
            "contact", "Enter a phone number or an email address so we can contact you"
        )
    # Optional questions: unanswered (or "I'm not sure") is not said, never "no".
    person["send"] = reader.yes_no("send")
    person["looked_after"] = reader.yes_no("looked_after")
    camhs_status = reader.choice("camhs_status", CAMHS_STATUSES) or "unknown"
    request_kind = reader.choice("request", REQUESTS, "Select what you would like from us")
    risk = _risk(reader, kind="self")
    setting = reader.choice("setting", SETTINGS)
    # Optional: a blank answer means "ask me first", never a reason to hold a referral back.
    to_share = reader.yes_no("consent_share")
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
            # Texts only with a yes: nothing clinical is ever sent by text.
            "contact_by_text": reader.yes_no("contact_by_text"),
        },
    }
    parsed: ParsedForm[SelfReferralCreate] = ParsedForm(values=values, errors=reader.errors)
    _validate(SelfReferralCreate, data, parsed)
    if parsed.errors:
        salvage(SelfReferralCreate, parsed, data)
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
    # Ticked: said. Not ticked: not said (for a known person, triage reads their record).
    person["send"] = True if "send" in flags else None
    person["looked_after"] = True if "looked_after" in flags else None
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
    _validate(PhoneReferralCreate, data, parsed, staff=True)
    return parsed


# The order fields appear in on each page (the error summary follows it).
SELF_REFERRAL_ORDER = (
    "referrer_type",
    "referrer_name",
    "referrer_phone",
    "referrer_email",
    "referral_agreed",
    "parent_carer_aware",
    "given_name",
    "family_name",
    "dob",
    "postcode",
    "nhs_number",
    "looked_after",
    "send",
    "camhs_status",
    "camhs_transition",
    "phone",
    "contact",
    "email",
    "contact_by_text",
    "needs",
    "reason",
    "immediate_danger",
    "suicidal",
    "self_harm",
    "harm_to_others",
    "safeguarding_concern",
    "supported",
    "request",
    "setting",
    "gender",
    "ethnic_category",
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
    "gender",
    "ethnic_category",
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
            message = STAFF_FORMAT_MESSAGES.get(
                name, f"{LABELS.get(name, 'This answer')} is too long"
            )
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
