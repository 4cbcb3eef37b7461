"""Cookies the web pages rely on: CSRF tokens, the signed confirmation, the staff sign-in.

CSRF uses the signed double-submit pattern: a random value in an HttpOnly, SameSite=Strict
cookie, and in each form (or the ``X-CSRF-Token`` header) an HMAC of that value. A forged
request cannot read the cookie, so it cannot produce the matching token.

Keys are derived from the staff-token secret with a purpose label, so a value signed for one
use (a confirmation) is never accepted for another (a CSRF token).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from fastapi import Request, Response

from app.config import Settings

CSRF_COOKIE = "fd_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
CONFIRMATION_COOKIE = "fd_confirmation"
STAFF_COOKIE = "fd_staff"
STAFF_COOKIE_PATH = "/console"
CSRF_COOKIE_BYTES = 32


def _key(settings: Settings, purpose: str) -> bytes:
    secret = settings.signing_secret.get_secret_value().encode()
    return hmac.new(secret, f"frontdoor-web:{purpose}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(settings: Settings, purpose: str, message: bytes) -> str:
    return _b64(hmac.new(_key(settings, purpose), message, hashlib.sha256).digest())


def sign(settings: Settings, purpose: str, payload: dict[str, Any]) -> str:
    """``payload`` as ``<base64 JSON>.<base64 HMAC>`` (readable by the holder, not forgeable)."""
    body = _b64(orjson.dumps(payload))
    return f"{body}.{_mac(settings, purpose, body.encode())}"


def unsign(settings: Settings, purpose: str, value: str | None) -> dict[str, Any] | None:
    """The payload of a value made by ``sign`` for the same purpose, or None if tampered."""
    if not value or value.count(".") != 1:
        return None
    body, mac = value.split(".")
    if not hmac.compare_digest(mac, _mac(settings, purpose, body.encode())):
        return None
    try:
        payload = orjson.loads(_unb64(body))
    except (ValueError, binascii.Error):
        return None
    return payload if isinstance(payload, dict) else None


def cookie_options(settings: Settings, *, path: str = "/") -> dict[str, Any]:
    """HttpOnly, SameSite=Strict, and Secure wherever the service runs in production."""
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": settings.is_production,
        "path": path,
    }


@dataclass(frozen=True, slots=True)
class CsrfToken:
    """The token for this response's forms; ``new_cookie`` is set when the browser had none."""

    token: str
    new_cookie: str | None


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _csrf_token_for(settings: Settings, cookie_value: str) -> str:
    return _mac(settings, "csrf", cookie_value.encode())


def csrf_token(request: Request) -> CsrfToken:
    """The CSRF token for the forms on this page (a new cookie if the browser has none)."""
    settings = _settings(request)
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and len(existing) >= CSRF_COOKIE_BYTES:
        return CsrfToken(_csrf_token_for(settings, existing), None)
    fresh = secrets.token_urlsafe(CSRF_COOKIE_BYTES)
    return CsrfToken(_csrf_token_for(settings, fresh), fresh)


def set_csrf_cookie(request: Request, response: Response, csrf: CsrfToken) -> None:
    if csrf.new_cookie is not None:
        response.set_cookie(CSRF_COOKIE, csrf.new_cookie, **cookie_options(_settings(request)))


def csrf_valid(request: Request, submitted: str | None) -> bool:
    """Whether ``submitted`` (form field or header) matches the browser's CSRF cookie."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(submitted, _csrf_token_for(_settings(request), cookie))


def confirmation_cookie(
    settings: Settings,
    *,
    reference: str,
    urgency: str,
    route: str,
    now: datetime,
    missing: Sequence[str] = (),
    contact_route: bool = True,
    signposting: Sequence[str] = (),
) -> str:
    """What the confirmation page shows, signed, so the reference never appears in a URL.

    ``missing`` names the form's questions left unanswered or not valid (never their values);
    ``contact_route`` is False when the referral gave no way to contact anyone;
    ``signposting`` the ids of the services the referral was pointed to.
    """
    return sign(
        settings,
        "confirmation",
        {
            "reference": reference,
            "urgency": urgency,
            "route": route,
            "at": int(now.timestamp()),
            "missing": list(missing),
            "contact_route": contact_route,
            "signposting": list(signposting),
        },
    )
