"""Who is calling: staff (OAuth2 bearer JWT), referring systems (API key) or the public.

Staff tokens are checked for signature, expiry, issuer and audience: HS256 with a configured
secret (embedded default) or RS256 with keys from a JWKS URL (a production identity provider).
System keys look like ``fdk_<prefix>_<secret>``; only an argon2 hash is stored, found by prefix.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import anyio.to_thread
import jwt
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import Forbidden, Unauthenticated
from app.models import ApiClient

log = structlog.get_logger(__name__)


class Role(StrEnum):
    """Staff roles, carried in the token's ``role`` claim."""

    CALL_HANDLER = "call_handler"
    PRACTITIONER = "practitioner"
    DUTY_CLINICIAN = "duty_clinician"
    TEAM_LEAD = "team_lead"
    ADMIN = "admin"
    # Aggregate reports only, for every queue, small numbers suppressed; never a person, a
    # referral, a case, a queue's worklist or the audit trail (docs/domain/reporting.md).
    COMMISSIONER = "commissioner"


STAFF_ROLES = frozenset(Role)
# Roles that may see records about a young person (with the object-level rules in app/authz.py).
# Every route but the reports refuses the others at authentication (app/deps.py).
PERSON_LEVEL_ROLES = STAFF_ROLES - {Role.COMMISSIONER}
API_KEY_PREFIX = "fdk"
# A verified key is remembered (by its SHA-256) so argon2 runs once per key per process,
# not once per request; the client row, and so revocation, is still read on every request.
VERIFIED_KEY_CACHE_SECONDS = 300.0
# A verified bearer token is remembered this long at most (never past its own expiry), so a
# request does not pay the signature check again. The JWKS is re-read within this time too.
VERIFIED_TOKEN_CACHE_SECONDS = 60.0
VERIFIED_TOKEN_CACHE_MAX_ENTRIES = 10_000
# Generated keys are ~60 characters; anything much longer is refused before hashing.
API_KEY_MAX_CHARS = 128
# Bounded so a slow identity provider cannot hold requests for long.
JWKS_FETCH_TIMEOUT_SECONDS = 5.0
_ODS_CODE_RE = re.compile(r"^[A-Z0-9]{3,10}$")
_password_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller of one request.

    ``ods_code`` is the organisation the caller acts for: a referring system's own code, or for
    staff the token's ``org`` claim (else ``FRONTDOOR_SERVICE_ODS_CODE``). It is recorded in
    the audit trail and bounds what a referring system may read back.
    """

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


def max_token_lifetime(settings: Settings) -> timedelta:
    """The longest a staff token may live (``FRONTDOOR_JWT_MAX_LIFETIME_HOURS``)."""
    return timedelta(hours=settings.jwt_max_lifetime_hours)


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
    lifetime = lifetime or timedelta(minutes=settings.jwt_lifetime_minutes)
    if lifetime > max_token_lifetime(settings):
        raise ValueError(
            f"a token may live at most {settings.jwt_max_lifetime_hours} h "
            "(FRONTDOOR_JWT_MAX_LIFETIME_HOURS)"
        )
    expires = now + lifetime
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
    """Verifies staff bearer tokens against the configured keys.

    Only the configured algorithm is accepted, so an HS256 token signed with the identity
    provider's public key (algorithm confusion) fails when RS256 is configured.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jwks = (
            jwt.PyJWKClient(
                settings.jwt_jwks_url, cache_keys=True, timeout=JWKS_FETCH_TIMEOUT_SECONDS
            )
            if settings.jwt_algorithm == "RS256" and settings.jwt_jwks_url
            else None
        )
        # sha256(token) -> (actor, remembered until, seconds since the epoch)
        self._verified: dict[bytes, tuple[Actor, float]] = {}

    async def authenticate(self, token: str) -> Actor:
        """``verify``, remembered for a short while, and without blocking the event loop while
        the JWKS is fetched.

        Only a token that verified is remembered, keyed by its SHA-256 (not the token itself),
        until the earlier of ``VERIFIED_TOKEN_CACHE_SECONDS`` and the moment ``verify`` would
        refuse it as expired. A bad token is checked, and refused, every time.
        """
        digest = hashlib.sha256(token.encode()).digest()
        remembered = self._verified.get(digest)
        if remembered is not None and time.time() < remembered[1]:
            return remembered[0]
        if self._jwks is None:
            actor, expires_at = self._verify(token)
        else:
            actor, expires_at = await anyio.to_thread.run_sync(self._verify, token)
        self._remember(digest, actor, expires_at)
        return actor

    def _remember(self, digest: bytes, actor: Actor, expires_at: float) -> None:
        now = time.time()
        if len(self._verified) >= VERIFIED_TOKEN_CACHE_MAX_ENTRIES:
            self._verified = {k: v for k, v in self._verified.items() if now < v[1]}
            if len(self._verified) >= VERIFIED_TOKEN_CACHE_MAX_ENTRIES:
                self._verified.clear()
        until = min(
            expires_at + self._settings.jwt_leeway_seconds, now + VERIFIED_TOKEN_CACHE_SECONDS
        )
        self._verified[digest] = (actor, until)

    def verify(self, token: str) -> Actor:
        """The staff member a token names; 401 for any bad token, 403 for a token without a
        Front Door role. May fetch the JWKS (blocking): async callers use ``authenticate``."""
        return self._verify(token)[0]

    def _verify(self, token: str) -> tuple[Actor, float]:
        """``verify``, with the token's expiry (seconds since the epoch)."""
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
                leeway=settings.jwt_leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("The token has expired.", headers=_bearer_challenge()) from exc
        except jwt.PyJWKClientConnectionError as exc:
            # Logged so operators see an unreachable identity provider; the caller sees a 401.
            log.warning("jwks_unreachable", error_type=type(exc).__name__)
            raise Unauthenticated("The token is not valid.", headers=_bearer_challenge()) from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("The token is not valid.", headers=_bearer_challenge()) from exc
        # A token that lives longer than allowed is refused whatever else it says: a leaked
        # long-lived token would otherwise outlast the person's session and role by days.
        issued_at = claims.get("iat")
        starts = float(issued_at) if isinstance(issued_at, int | float) else time.time()
        max_seconds = max_token_lifetime(settings).total_seconds()
        if float(claims["exp"]) - starts > max_seconds + settings.jwt_leeway_seconds:
            raise Unauthenticated(
                f"The token lives longer than the {settings.jwt_max_lifetime_hours} hours this "
                "service accepts. Sign in again to get a shorter-lived token.",
                headers=_bearer_challenge(),
            )
        role = claims.get("role")
        if not isinstance(role, str) or role not in STAFF_ROLES:
            raise Forbidden("The token carries no Front Door staff role.")
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject or len(subject) > 128:
            raise Unauthenticated("The token's subject is malformed.", headers=_bearer_challenge())
        queues = claims.get("queues") or []
        if not isinstance(queues, list) or not all(isinstance(q, str) for q in queues):
            raise Unauthenticated(
                "The token's queues claim is malformed.", headers=_bearer_challenge()
            )
        org = claims.get("org")
        name = claims.get("name")
        actor = Actor(
            kind="staff",
            id=subject,
            role=role,
            name=name if isinstance(name, str) else None,
            queue_ids=frozenset(queues),
            ods_code=org
            if isinstance(org, str) and _ODS_CODE_RE.match(org)
            else settings.service_ods_code,
        )
        return actor, float(claims["exp"])


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
    """Checks system keys; remembers verified keys so argon2 is not paid on every request.

    The client row is read on every request, so a revoked key stops working at once. argon2
    runs in a worker thread: it is deliberately slow and would otherwise stall every request.
    """

    def __init__(self) -> None:
        self._verified: dict[tuple[uuid.UUID, str], float] = {}

    async def verify(self, session: AsyncSession, key: str) -> Actor:
        """The referring system a key belongs to; 401 for an unknown, wrong or revoked key."""
        parts = key.split("_", 2)
        if len(key) > API_KEY_MAX_CHARS or len(parts) != 3 or parts[0] != API_KEY_PREFIX:
            raise Unauthenticated("The API key is not valid.")
        client = await session.scalar(select(ApiClient).where(ApiClient.key_prefix == parts[1]))
        if client is None or client.revoked_at is not None:
            raise Unauthenticated("The API key is not valid.")
        digest = hashlib.sha256(key.encode()).hexdigest()
        cache_key = (client.id, digest)
        verified_at = self._verified.get(cache_key)
        if verified_at is None or time.monotonic() - verified_at > VERIFIED_KEY_CACHE_SECONDS:
            if not await anyio.to_thread.run_sync(_argon2_matches, client.key_hash, key):
                raise Unauthenticated("The API key is not valid.")
            self._verified[cache_key] = time.monotonic()
        return Actor(
            kind="system",
            id=f"client:{client.id}",
            name=client.name,
            client_id=client.id,
            ods_code=client.ods_code,
        )


def _argon2_matches(key_hash: str, key: str) -> bool:
    try:
        return _password_hasher.verify(key_hash, key)
    except (VerificationError, InvalidHashError):
        return False
