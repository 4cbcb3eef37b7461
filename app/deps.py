"""Request dependencies, as ``Annotated`` aliases routers can use directly."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import Clock
from app.config import Settings
from app.db import get_session
from app.errors import Forbidden, Unauthenticated, UnsupportedMediaType
from app.security import Actor, Role
from app.services.rulesets import LiveRuleset
from app.services.staff import StaffRegistry
from app.triage import Ruleset

# scope="function": the session's commit runs before the response is sent.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="Staff: OAuth2 bearer JWT")
_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Referring systems: client API key"
)


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def _ruleset(request: Request, session: SessionDep) -> Ruleset:
    """The live ruleset (``app.services.rulesets.LiveRuleset``): the database's active version,
    checked at most every ``FRONTDOOR_RULESET_CHECK_SECONDS`` on the request's own session.

    Resolved once per request (FastAPI caches dependencies), so one request decides, reads and
    renders with one ruleset throughout, even if a switch lands while it runs.
    """
    cached: Ruleset | None = getattr(request.state, "ruleset", None)
    if cached is not None:
        return cached
    live: LiveRuleset = request.app.state.live_ruleset
    ruleset = await live.for_request(session)
    request.state.ruleset = ruleset
    return ruleset


SettingsDep = Annotated[Settings, Depends(_settings)]
ClockDep = Annotated[Clock, Depends(_clock)]
RulesetDep = Annotated[Ruleset, Depends(_ruleset)]


COMMISSIONER_REFUSED = (
    "A commissioner's token opens the aggregate reports (/v1/reports) only, never a record "
    "about a person."
)


async def authenticate_staff(
    request: Request, token: str, *, reports_only_role: bool = False
) -> Actor:
    """The staff member a bearer token names (401/403 as ``StaffTokenVerifier``), recorded in
    the ``staff`` table when new or changed (``StaffRegistry``: not a write per request).

    A commissioner (aggregate reports only) is refused with 403 unless the caller passes
    ``reports_only_role=True``: only the report routes do, so every other route, the console
    included, refuses them by default (docs/domain/reporting.md)."""
    actor: Actor = await request.app.state.token_verifier.authenticate(token)
    if actor.role == Role.COMMISSIONER and not reports_only_role:
        raise Forbidden(COMMISSIONER_REFUSED)
    state = request.app.state
    registry: StaffRegistry | None = getattr(state, "staff_registry", None)
    if registry is None:
        registry = state.staff_registry = StaffRegistry()
    await registry.seen(state.session_factory, actor, state.clock.now())
    return actor


async def current_actor(
    request: Request,
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Actor:
    """A signed-in staff member or an authenticated referring system; anyone else is 401. A
    commissioner is 403 here (``report_reader`` admits them)."""
    return await _authenticate(request, session, bearer, api_key, reports_only_role=False)


async def report_reader(
    request: Request,
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Actor:
    """``current_actor`` for the aggregate reports: a commissioner is admitted too (which
    roles may read which reports is app/authz.py ``can_read_reports``)."""
    return await _authenticate(request, session, bearer, api_key, reports_only_role=True)


async def _authenticate(
    request: Request,
    session: AsyncSession,
    bearer: HTTPAuthorizationCredentials | None,
    api_key: str | None,
    *,
    reports_only_role: bool,
) -> Actor:
    if bearer is not None and api_key is not None:
        raise Unauthenticated("Send either a bearer token or an API key, not both.")
    if bearer is not None:
        actor = await authenticate_staff(
            request, bearer.credentials, reports_only_role=reports_only_role
        )
    elif api_key is not None:
        actor = await request.app.state.api_key_verifier.verify(session, api_key)
    else:
        raise Unauthenticated(
            "Sign in (bearer token) or send a client API key (X-API-Key).",
            headers={"WWW-Authenticate": 'Bearer realm="frontdoor"'},
        )
    request.state.actor = actor
    assert isinstance(actor, Actor)
    return actor


async def current_staff(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
    """Signed-in staff only: a referring system is 403."""
    if not actor.is_staff:
        raise Forbidden("Only signed-in staff can do this.")
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]
ReportReaderDep = Annotated[Actor, Depends(report_reader)]
StaffDep = Annotated[Actor, Depends(current_staff)]


def require_roles(*roles: Role) -> object:
    """A dependency that admits staff holding one of ``roles``."""

    async def _check(actor: StaffDep) -> Actor:
        if actor.role not in roles:
            raise Forbidden("Your role does not allow this.")
        return actor

    return Depends(_check)


async def require_json(request: Request) -> None:
    """JSON bodies only: anything else is a 415 rather than a confusing validation error."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            "Send the request body as JSON (Content-Type: application/json).",
            errors=[
                {
                    "field": "header:Content-Type",
                    "message": "must be application/json",
                    "type": "unsupported_media_type",
                }
            ],
        )


JsonBody = Depends(require_json)

# Admins only (the audit trail): every other role and every referring system is 403.
AdminDep = Annotated[Actor, require_roles(Role.ADMIN)]
