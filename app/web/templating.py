"""Jinja2 templates for the web pages, and one ``render`` helper that adds what every page needs
(the CSRF token, the crisis contacts behind the "Get help now" link)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from app import __version__
from app.content import CRISIS_CONTACTS
from app.schemas.referral import CrisisContact
from app.web.signing import csrf_token, set_csrf_cookie

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
LONDON = ZoneInfo("Europe/London")

# Autoescaping on for every template: answers typed by the public are shown back to them.
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)

_CALL = re.compile(r"\bCall ([0-9][0-9 ]{2,})")
_TEXT = re.compile(r"\bText \w+ to ([0-9]{4,})")


def contact_href(contact: CrisisContact) -> str | None:
    """A ``tel:`` or ``sms:`` link for a crisis contact, read from its wording in app.content."""
    called = _CALL.search(contact.how)
    if called:
        return "tel:" + called.group(1).replace(" ", "")
    texted = _TEXT.search(contact.how)
    if texted:
        return "sms:" + texted.group(1)
    return None


def static_url(path: str) -> str:
    """A static file's URL, versioned so a new release is not served from a stale cache."""
    return f"/static/{path}?v={__version__}"


def london_datetime(value: datetime | str | None) -> str:
    """``12 March 2026 at 2:05pm`` in UK time (from a UTC time; an ISO string or a naive time,
    as SQLite gives back an aggregate over a UTC column, is read as UTC)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(LONDON)
    hour = local.hour % 12 or 12
    suffix = "am" if local.hour < 12 else "pm"
    return f"{local.day} {local:%B %Y} at {hour}:{local:%M}{suffix}"


def long_date(value: date | str | None) -> str:
    """``5 March 2009`` (from a date, or an ISO date as stored in a referral's body)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            return ""
    return f"{value.day} {value:%B %Y}"


def spaced_nhs_number(value: str | None) -> str:
    """``9990000018`` → ``999 000 0018``, the way it is printed on NHS letters."""
    if not value or len(value) != 10:
        return value or ""
    return f"{value[:3]} {value[3:6]} {value[6:]}"


def hours_text(hours: float | None) -> str:
    """A response window in words: ``4 hours``, ``3 days``, ``28 days``."""
    if hours is None:
        return ""
    if hours >= 48 and hours % 24 == 0:
        return f"{int(hours // 24)} days"
    whole = int(hours) if float(hours).is_integer() else hours
    return f"{whole} hour" if whole == 1 else f"{whole} hours"


FIELD_LABELS = {
    "nhs_number": "NHS number",
    "claimed_nhs_number": "the NHS number given on the form",
    "family_name": "last name",
    "given_name": "first name",
    "date_of_birth": "date of birth",
    "postcode": "postcode",
}


def field_label(value: str) -> str:
    """A person-search field's name as staff say it: ``nhs_number`` → ``NHS number``."""
    return FIELD_LABELS.get(value, value.replace("_", " "))


# Decision flags in plain words for staff (anything else is humanised).
FLAG_WORDS = {
    "immediate_danger": "In danger now",
    "suicidal_thoughts": "Suicidal thoughts",
    "suicidal_plan": "Suicidal thoughts with a plan",
    "suicidal_intent": "Suicidal thoughts with intent to act soon",
    "self_harm_past": "Self-harm in the past",
    "self_harm_recent": "Self-harm in the last few weeks",
    "self_harm_current": "Self-harming now",
    "harm_to_others_thoughts": "Thoughts of harming others",
    "harm_to_others_threats": "Threats to harm others",
    "harm_to_others_imminent": "May harm someone soon",
    "unsupported": "No capable support around them",
    "safeguarding": "Safeguarding concern",
    "transition_support": "Moving to adult services (transition support)",
    "risk_not_assessed": "Risk not assessed: no risk question was answered",
    "no_contact_route": "No way to contact anyone: no phone, email or address for the young "
    "person or the referrer",
}


def flag_words(value: str) -> str:
    """A decision flag as staff read it: ``risk_not_assessed`` → ``Risk not assessed: …``."""
    return FLAG_WORDS.get(value) or humanise(value)


_DIALLED = re.compile(r"[^0-9+]")


def tel_href(value: str | None) -> str:
    """A phone number as a ``tel:`` link target (digits and a leading +)."""
    return "tel:" + _DIALLED.sub("", value or "")


def humanise(value: str | None) -> str:
    """``getting_risk_support`` → ``Getting risk support``."""
    if not value:
        return ""
    text = value.replace("_", " ")
    return text[:1].upper() + text[1:]


templates.env.globals.update(
    crisis_contacts=CRISIS_CONTACTS,
    contact_href=contact_href,
    static_url=static_url,
)
templates.env.filters.update(
    london_datetime=london_datetime,
    long_date=long_date,
    nhs_number=spaced_nhs_number,
    humanise=humanise,
    hours_text=hours_text,
    field_label=field_label,
    flag_words=flag_words,
    tel_href=tel_href,
)


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    """Render a page with a CSRF token for its forms (setting the cookie on first visit)."""
    csrf = csrf_token(request)
    response = templates.TemplateResponse(
        request,
        name,
        {"csrf_token": csrf.token, **(context or {})},
        status_code=status_code,
    )
    set_csrf_cookie(request, response, csrf)
    return response
