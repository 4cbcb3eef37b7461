"""Who is calling: staff (OAuth2 bearer JWT), referring systems (API key) or the public.

Staff tokens are checked for signature, expiry, issuer and audience: HS256 with a configured
secret (embedded default) or RS256 with keys from a JWKS URL (a production identity provider).
System keys look like ``fdk_<prefix>_<secret>``; only an argon2 hash is stored, found by prefix.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import Forbidden, Unauthenticated
from app.models import ApiClient


class Role(StrEnum):
    CALL_HANDLER = "call_handler"
    PRACTITIONER = "practitioner"
    DUTY_CLINICIAN = "duty_clinician"
    TEAM_LEAD = "team_lead"
    ADMIN = "admin"


STAFF_ROLES = frozenset(Role)
API_KEY_PREFIX = "fdk"
# A verified key is remembered (by its SHA-256) so argon2 runs once per key per process,
# not once per request; the client row, and so revocation, is still read on every request.
VERIFIED_KEY_CACHE_SECONDS = 300.0
_password_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller of one request."""

    kind: str  # "staff" | "system" | "public"
    id: str | None
    role: str | None = None
    name: str | None = None
    queue_ids: frozenset[str] = field(default_factory=frozenset)
    client_id: uuid.UUID | None = None
    ods_code: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    @property
    def is_system(self) -> bool:
        return self.kind == "system"

    @property
    def idempotency_scope(self) -> str:
        if self.client_id is not None:
            return f"client:{self.client_id}"
        return f"{self.kind}:{self.id}"

    def has_role(self, *roles: Role) -> bool:
        return self.is_staff and self.role in roles


PUBLIC = Actor(kind="public", id=None)


# Staff tokens --------------------------------------------------------------------------------


def issue_staff_token(
    settings: Settings,
    *,
    subject: str,
    role: Role,
    queue_ids: list[str] | None = None,
    name: str | None = None,
    now: datetime,
    lifetime: timedelta | None = None,
) -> str:
    """A signed HS256 staff token (local use and tests; production tokens come from the IdP)."""
    if settings.jwt_algorithm != "HS256":
        raise ValueError("local tokens can only be issued with HS256")
    expires = now + (lifetime or timedelta(minutes=settings.jwt_lifetime_minutes))
    claims: dict[str, Any] = {
        "sub": subject,
        "role": role.value,
        "queues": sorted(queue_ids or []),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int(expires.timestamp()),
    }
    if name:
        claims["name"] = name
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


class StaffTokenVerifier:
    """Verifies staff bearer tokens against the configured keys."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jwks = (
            jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True)
            if settings.jwt_algorithm == "RS256" and settings.jwt_jwks_url
            else None
        )

    def verify(self, token: str) -> Actor:
        settings = self._settings
        try:
            if self._jwks is not None:
                key: Any = self._jwks.get_signing_key_from_jwt(token).key
            else:
                key = settings.jwt_secret.get_secret_value()
            claims = jwt.decode(
                token,
                key,
                algorithms=[settings.jwt_algorithm],
                audience=settings.jwt_audience,
                issuer=settings.jwt_issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("The token has expired.", headers=_bearer_challenge()) from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("The token is not valid.", headers=_bearer_challenge()) from exc
        role = claims.get("role")
        if role not in STAFF_ROLES:
            raise Forbidden("The token carries no Front Door staff role.")
        queues = claims.get("queues") or []
        if not isinstance(queues, list) or not all(isinstance(q, str) for q in queues):
            raise Unauthenticated("The token's queues claim is malformed.")
        return Actor(
            kind="staff",
            id=str(claims["sub"]),
            role=role,
            name=claims.get("name") if isinstance(claims.get("name"), str) else None,
            queue_ids=frozenset(queues),
        )


def _bearer_challenge() -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer realm="frontdoor"'}


# System API keys ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key: str
    prefix: str
    key_hash: str


def generate_api_key() -> NewApiKey:
    """A new key: shown once to the person who created it, stored only as an argon2 hash."""
    prefix = secrets.token_hex(6)
    key = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(key=key, prefix=prefix, key_hash=_password_hasher.hash(key))


class ApiKeyVerifier:
    """Checks system keys; remembers verified keys so argon2 is not paid on every request."""

    def __init__(self) -> None:
        self._verified: dict[tuple[uuid.UUID, str], float] = {}

    async def verify(self, session: AsyncSession, key: str) -> Actor:
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
            raise Unauthenticated("The API key is not valid.")
        client = await session.scalar(select(ApiClient).where(ApiClient.key_prefix == parts[1]))
        if client is None or client.revoked_at is not None:
            raise Unauthenticated("The API key is not valid.")
        digest = hashlib.sha256(key.encode()).hexdigest()
        cache_key = (client.id, digest)
        verified_at = self._verified.get(cache_key)
        if verified_at is None or time.monotonic() - verified_at > VERIFIED_KEY_CACHE_SECONDS:
            try:
                _password_hasher.verify(client.key_hash, key)
            except (VerificationError, InvalidHashError) as exc:
                raise Unauthenticated("The API key is not valid.") from exc
            self._verified[cache_key] = time.monotonic()
        return Actor(
            kind="system",
            id=f"client:{client.id}",
            name=client.name,
            client_id=client.id,
            ods_code=client.ods_code,
        )
