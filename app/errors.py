"""Domain errors carry their HTTP status; one set of handlers renders every error the same way.

Bodies follow RFC 9457 problem details: ``type`` (stable, machine-readable), ``title``,
``status``, ``detail`` and, for validation errors, ``errors`` with the offending field path.
Submitted values are never echoed back: they may be patient data.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class FrontDoorError(Exception):
    """Base for errors the API reports deliberately."""

    status_code = 400
    type = "bad_request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.extra = extra


class NotFound(FrontDoorError):
    status_code = 404
    type = "not_found"
    title = "Not found"


class Conflict(FrontDoorError):
    status_code = 409
    type = "conflict"
    title = "Conflict"


class PreconditionFailed(FrontDoorError):
    status_code = 412
    type = "precondition_failed"
    title = "Precondition failed"


class PreconditionRequired(FrontDoorError):
    status_code = 428
    type = "precondition_required"
    title = "Precondition required"


class Unprocessable(FrontDoorError):
    status_code = 422
    type = "validation_error"
    title = "Invalid request"

    def __init__(self, detail: str, *, field: str | None = None, **kwargs: Any) -> None:
        if field is not None and "errors" not in kwargs:
            kwargs["errors"] = [{"field": field, "message": detail, "type": "value_error"}]
        super().__init__(detail, **kwargs)


class IdempotencyKeyReused(FrontDoorError):
    status_code = 422
    type = "idempotency_key_reused"
    title = "Idempotency key reused with a different request"


class Unauthenticated(FrontDoorError):
    status_code = 401
    type = "unauthenticated"
    title = "Authentication required"


class Forbidden(FrontDoorError):
    status_code = 403
    type = "forbidden"
    title = "Forbidden"


class PayloadTooLarge(FrontDoorError):
    status_code = 413
    type = "payload_too_large"
    title = "Request body too large"


class UnsupportedMediaType(FrontDoorError):
    status_code = 415
    type = "unsupported_media_type"
    title = "Unsupported media type"


class TooManyRequests(FrontDoorError):
    status_code = 429
    type = "rate_limited"
    title = "Too many requests"


class ServiceUnavailable(FrontDoorError):
    status_code = 503
    type = "service_unavailable"
    title = "Service unavailable"


def problem(
    request: Request,
    *,
    status: int,
    type_: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_,
        "code": type_,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "person", "nhs_number")`` → ``person.nhs_number``; list indices as ``[i]``."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        source = parts.pop(0)
        if not parts:
            return str(source)
        if source != "body":
            parts[0] = f"{source}:{parts[0]}" if source == "header" else parts[0]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("phone", "drop_in", "system") and path == "":
            # The discriminated union's tag adds nothing a client can act on.
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as ``{field, message, type}``, without the submitted input."""
    out = []
    for err in exc.errors():
        message = str(err.get("msg", "Invalid value"))
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        kind = str(err.get("type", "value_error"))
        field = _field_path(err.get("loc", ()))
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            # The discriminator ("channel") is missing or unknown.
            field = f"{field}.channel" if field != "body" else "channel"
        out.append({"field": field, "message": message, "type": kind})
    return out


def _is_data_exception(exc: DBAPIError) -> bool:
    """SQLSTATE class 22 ("data exception": bad encoding, out of range, ...), on any driver."""
    if isinstance(exc, DataError):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return isinstance(sqlstate, str) and sqlstate.startswith("22")


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as problem JSON; never a stack trace."""

    @app.exception_handler(FrontDoorError)
    async def _frontdoor_error(request: Request, exc: FrontDoorError) -> JSONResponse:
        return problem(
            request,
            status=exc.status_code,
            type_=exc.type,
            title=exc.title,
            detail=exc.detail,
            errors=exc.errors,
            headers=exc.headers,
            extra=exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            return problem(
                request,
                status=400,
                type_="malformed_json",
                title="Malformed JSON",
                detail="The request body is not valid JSON.",
                errors=[{"field": "body", "message": "Malformed JSON", "type": "json_invalid"}],
            )
        fields = ", ".join(sorted({e["field"] for e in errors}))
        return problem(
            request,
            status=422,
            type_="validation_error",
            title="Invalid request",
            detail=f"Invalid or missing fields: {fields}",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = {
            404: "not_found",
            405: "method_not_allowed",
            401: "unauthenticated",
            403: "forbidden",
        }.get(exc.status_code, "http_error")
        return problem(
            request,
            status=exc.status_code,
            type_=type_,
            title=str(exc.detail),
            detail=str(exc.detail),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if not _is_data_exception(exc):
            return await _unexpected(request, exc)
        # Input the database cannot store (validation should have caught it): a 4xx, not a 5xx.
        log.warning("database_rejected_input", error_type=type(exc.orig).__name__)
        return problem(
            request,
            status=422,
            type_="validation_error",
            title="Invalid request",
            detail="The request contains text or values that cannot be stored.",
            errors=[{"field": "body", "message": "cannot be stored", "type": "invalid_characters"}],
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The database could not be reached or could not commit: nothing was stored, and a
        # retry (with the same Idempotency-Key) is safe.
        log.error("database_unavailable", error_type=type(exc).__name__)
        return problem(
            request,
            status=503,
            type_="database_unavailable",
            title="Service temporarily unavailable",
            detail="We could not store this just now. Nothing was saved; please retry.",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Log the exception class only: messages from drivers can contain submitted values.
        log.error("unhandled_error", error_type=type(exc).__name__)
        return problem(
            request,
            status=500,
            type_="internal_error",
            title="Internal error",
            detail="Something went wrong on our side. Nothing was stored.",
        )
