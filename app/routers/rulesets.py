"""Stored rulesets (admins): publish a candidate, list the versions, activate one.

An activation is live on every process within ``FRONTDOOR_RULESET_CHECK_SECONDS`` without a
restart; activating an older version rolls back (docs/domain/changing-rules.md).
``GET /v1/rulesets/current`` (any staff) is in app/routers/directory.py.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from app.deps import AdminDep, ClockDep, SessionDep, SettingsDep
from app.errors import Unprocessable, UnsupportedMediaType
from app.models import RulesetActivation, RulesetRecord
from app.responses import errors_for
from app.schemas.rulesets import (
    RulesetActivated,
    RulesetActivationRead,
    RulesetPublished,
    RulesetsList,
    RulesetStoredRead,
    RulesetVersionRead,
)
from app.services import rulesets
from app.triage import RulesetError

router = APIRouter(prefix="/v1", tags=["rulesets"])

YAML_MEDIA_TYPES = frozenset(
    {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"}
)
_KEY_PATH = re.compile(r"^[A-Za-z0-9_.\-]+$")

Version = Annotated[
    str,
    Path(max_length=128, description="A stored version, e.g. norfolk-waveney-2026.1+eb612ab96dd8"),
]


def _activation_read(row: RulesetActivation) -> RulesetActivationRead:
    return RulesetActivationRead(
        seq=row.seq,
        from_version=row.from_version,
        to_version=row.to_version,
        activated_by=row.activated_by,
        activated_at=row.activated_at,
    )


def _problem_errors(exc: RulesetError) -> list[dict[str, str]]:
    """Each problem as a field error: the key path it names (``body`` when it names none)."""
    errors = []
    for problem in exc.problems:
        key, sep, message = problem.partition(": ")
        if sep and _KEY_PATH.match(key):
            errors.append({"field": key, "message": message, "type": "ruleset_invalid"})
        else:
            errors.append({"field": "body", "message": problem, "type": "ruleset_invalid"})
    return errors


async def _yaml_text(request: Request) -> str:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in YAML_MEDIA_TYPES:
        raise UnsupportedMediaType(
            "Send the ruleset as YAML (Content-Type: application/yaml).",
            errors=[
                {
                    "field": "header:Content-Type",
                    "message": "must be application/yaml",
                    "type": "unsupported_media_type",
                }
            ],
        )
    try:
        return (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise Unprocessable("The ruleset must be UTF-8 text.", field="body") from None


@router.get(
    "/rulesets",
    response_model=RulesetsList,
    responses=errors_for(401, 403),
    summary="Stored ruleset versions, the active one and the activation history",
)
async def list_rulesets(
    session: SessionDep, actor: AdminDep, settings: SettingsDep
) -> RulesetsList:
    versions, history = await rulesets.list_rulesets(session)
    return RulesetsList(
        active_version=history[0].to_version if history else None,
        check_seconds=settings.ruleset_check_seconds,
        versions=[
            RulesetVersionRead(
                version=v.record.version,
                label=v.record.label,
                active=v.active,
                published_at=v.record.first_loaded_at,
                published_by=v.record.published_by,
                last_activated_at=v.last_activated_at,
            )
            for v in versions
        ],
        activations=[_activation_read(row) for row in history],
    )


@router.post(
    "/rulesets",
    status_code=201,
    response_model=RulesetPublished,
    responses={
        200: {"model": RulesetPublished, "description": "The same content was already stored"},
        **errors_for(401, 403, 413, 415, 422),
    },
    summary="Validate and store a candidate ruleset (YAML body); not active until activated",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The ruleset file's text, exactly as `frontdoor rules check` reads it",
            "content": {"application/yaml": {"schema": {"type": "object"}}},
        }
    },
)
async def publish_ruleset(
    request: Request,
    response: Response,
    session: SessionDep,
    actor: AdminDep,
    clock: ClockDep,
    label: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
            description="Replaces the file's label (and so the version)",
        ),
    ] = None,
) -> RulesetPublished:
    text = await _yaml_text(request)
    now = clock.now()
    try:
        ruleset, created = await rulesets.publish_ruleset(
            session, text, label=label, actor_id=str(actor.id), now=now
        )
    except RulesetError as exc:
        raise Unprocessable(
            "The ruleset is not valid: " + "; ".join(exc.problems),
            errors=_problem_errors(exc),
        ) from None
    rulesets.audit_publication(session, actor, ruleset, created, now)
    record = await session.get(RulesetRecord, ruleset.version)
    assert record is not None
    active = await rulesets.active_version(session)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/v1/rulesets/{ruleset.version}"
    return RulesetPublished(
        version=ruleset.version,
        label=ruleset.label,
        created=created,
        active=active == ruleset.version,
        published_at=record.first_loaded_at,
        published_by=record.published_by,
    )


@router.get(
    "/rulesets/{version}",
    response_model=RulesetStoredRead,
    responses=errors_for(401, 403, 404, 422),
    summary="One stored ruleset version: its content and the YAML text as published",
)
async def read_ruleset(version: Version, session: SessionDep, actor: AdminDep) -> RulesetStoredRead:
    record = await session.get(RulesetRecord, version)
    if record is None:
        raise rulesets.RulesetNotFound(version)
    versions, _ = await rulesets.list_rulesets(session)
    listed = next(v for v in versions if v.record.version == version)
    return RulesetStoredRead(
        version=record.version,
        label=record.label,
        active=listed.active,
        published_at=record.first_loaded_at,
        published_by=record.published_by,
        last_activated_at=listed.last_activated_at,
        content=record.content,
        source_yaml=record.source_yaml,
    )


@router.post(
    "/rulesets/{version}/activate",
    response_model=RulesetActivated,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="Make a stored version live on every process (an older one rolls back)",
)
async def activate_ruleset(
    version: Version, session: SessionDep, actor: AdminDep, clock: ClockDep, settings: SettingsDep
) -> Any:
    now = clock.now()
    activation = await rulesets.activate_ruleset(session, version, actor_id=str(actor.id), now=now)
    rulesets.audit_activation(session, actor, activation, now)
    return RulesetActivated(
        version=activation.row.to_version,
        changed=activation.changed,
        activation=_activation_read(activation.row),
        check_seconds=settings.ruleset_check_seconds,
    )
