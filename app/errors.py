"""Domain errors carry their HTTP status; one set of handlers renders every error the same way.

Bodies follow RFC 9457 problem details: ``type`` (stable, machine-readable), ``title``,
``status``, ``detail`` and, for validation errors, ``errors`` with the offending field path.
Submitted values are never echoed back: they may be patient data.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
import traceback
from typing import Any, Protocol

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
# How long a client is asked to wait before retrying when the database is unavailable.
RETRY_AFTER_SECONDS = 5


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


class UnsupportedMediaType(FrontDoorError):
    status_code = 415
    type = "unsupported_media_type"
    title = "Unsupported media type"


class TooManyRequests(FrontDoorError):
    status_code = 429
    type = "rate_limited"
    title = "Too many requests"


class ProblemRenderer(Protocol):
    def __call__(
        self,
        request: Request,
        *,
        status: int,
        type_: str,
        title: str,
        detail: str,
        errors: list[dict[str, Any]] | None,
        headers: dict[str, str] | None,
    ) -> Response: ...


# Paths whose errors are answered in another format (the FHIR API: OperationOutcome), by prefix.
_PATH_RENDERERS: dict[str, ProblemRenderer] = {}


def render_problems_under(path_prefix: str, renderer: ProblemRenderer) -> None:
    """Answer every error under ``path_prefix`` with ``renderer`` instead of problem JSON
    (the same statuses and details; handlers, middleware and 413/503/500 included)."""
    _PATH_RENDERERS[path_prefix] = renderer


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
) -> Response:
    for prefix, render in _PATH_RENDERERS.items():
        if request.url.path.startswith(prefix):
            return render(
                request,
                status=status,
                type_=type_,
                title=title,
                detail=detail,
                errors=errors,
                headers=headers,
            )
    return problem_json(
        request,
        status=status,
        type_=type_,
        title=title,
        detail=detail,
        errors=errors,
        headers=headers,
        extra=extra,
    )


def problem_json(
    request: Request,
    *,
    status: int,
    type_: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """The problem JSON body itself (RFC 9457), whatever the path."""
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


def _sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE of a driver error (asyncpg, or psycopg's ``pgcode``), if any."""
    sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return sqlstate if isinstance(sqlstate, str) else None


def _is_data_exception(exc: DBAPIError) -> bool:
    """SQLSTATE class 22 ("data exception": bad encoding, out of range, ...), on any driver."""
    if isinstance(exc, DataError):
        return True
    sqlstate = _sqlstate(exc.orig) if exc.orig is not None else None
    return sqlstate is not None and sqlstate.startswith("22")


# SQLSTATEs that mean "the database cannot do this now", not "this request is wrong": class 08
# connection exceptions, 53 insufficient resources (too many connections, disk full), 57P01-03
# admin/crash shutdown and "cannot connect now" (starting up, recovering), 57014 a statement
# cancelled by statement_timeout, 55P03 a lock_timeout, 40001/40P01 a serialization failure or
# deadlock that escaped, 25006 a write sent to a read-only server (a failover in progress).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53")
_UNAVAILABLE_SQLSTATES = frozenset(
    {"57P01", "57P02", "57P03", "57014", "55P03", "40001", "40P01", "25006"}
)
# Raised as they are (not wrapped by SQLAlchemy): refused, reset and timed-out sockets
# (asyncio.TimeoutError is TimeoutError), a host name that does not resolve, the pool waiting
# too long for a connection, and the drivers' own connection and lock errors.
_UNAVAILABLE_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    PoolTimeoutError,
    DisconnectionError,
    OperationalError,
    InterfaceError,
    asyncpg.InterfaceError,
    sqlite3.OperationalError,
)


_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EPIPE,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
    }
)


def _is_network_os_error(exc: BaseException) -> bool:
    """A socket failure; not a missing file or a permission (those are faults: 500). asyncio
    reports a connection refused on every address of a host as one OSError without errno."""
    if not isinstance(exc, OSError):
        return False
    return exc.errno is None or exc.errno in _NETWORK_ERRNOS


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached or could not serve the request
    in time, so that a retry may succeed (503), rather than a fault in the service (500).

    Looks through SQLAlchemy's wrapper (``orig``), explicit causes (``raise ... from``) and
    exception groups (all of whose members must be unavailability).
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, BaseExceptionGroup):
            return all(is_database_unavailable(inner) for inner in current.exceptions)
        if isinstance(current, _UNAVAILABLE_TYPES) or _is_network_os_error(current):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        sqlstate = _sqlstate(current)
        if sqlstate is not None and (
            sqlstate in _UNAVAILABLE_SQLSTATES or sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES
        ):
            return True
        for inner in (getattr(current, "orig", None), current.__cause__):
            if isinstance(inner, BaseException):
                pending.append(inner)
    return False


def _error_types(exc: BaseException) -> str:
    """``DBAPIError<ConnectionResetError>``: the classes involved, never their messages."""
    names = [type(exc).__name__]
    inner = getattr(exc, "orig", None) or exc.__cause__
    if isinstance(inner, BaseException) and inner is not exc:
        names.append(type(inner).__name__)
        deeper = inner.__cause__
        if isinstance(deeper, BaseException):
            names.append(type(deeper).__name__)
    return "<".join(names)


def database_unavailable_response(request: Request, exc: BaseException) -> Response:
    """503 with ``Retry-After``: the database could not be reached or did not answer in time."""
    inner = getattr(exc, "orig", None) or exc.__cause__
    log.error(
        "database_unavailable",
        error_type=_error_types(exc),
        sqlstate=_sqlstate(inner) if inner is not None else _sqlstate(exc),
    )
    return problem(
        request,
        status=503,
        type_="database_unavailable",
        title="Service temporarily unavailable",
        detail="Our database is unavailable just now, so this request was not completed. "
        "Please retry shortly; a retry with the same Idempotency-Key is safe.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def internal_error_response(request: Request, exc: BaseException) -> Response:
    """500 for a fault in the service; logged by type and raising line, never its message."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None
    # Log the exception class only: messages from drivers can contain submitted values.
    log.error("unhandled_error", error_type=_error_types(exc), raised_at=where)
    return problem(
        request,
        status=500,
        type_="internal_error",
        title="Internal error",
        # Not "nothing was stored": the failure may come after the commit.
        detail="Something went wrong on our side. Quote the request id if it happens again.",
    )


def payload_too_large_response(request: Request, max_body_bytes: int | None) -> Response:
    """413; the connection is closed, as the rest of the body is left unread."""
    limit = f" ({max_body_bytes} bytes)" if max_body_bytes else ""
    return problem(
        request,
        status=413,
        type_="payload_too_large",
        title="Request body too large",
        detail=f"The request body is larger than this service accepts{limit}.",
        errors=[{"field": "body", "message": "too large", "type": "too_large"}],
        headers={"Connection": "close"},
    )


def http_error_response(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 413:
        return payload_too_large_response(request, getattr(exc, "max_body_bytes", None))
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


def response_for_exception(request: Request, exc: Exception) -> Response:
    """The one place an exception becomes a response (handlers and the outer middleware)."""
    if isinstance(exc, FrontDoorError):
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
    if isinstance(exc, StarletteHTTPException):
        return http_error_response(request, exc)
    if isinstance(exc, DBAPIError) and _is_data_exception(exc):
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
    if is_database_unavailable(exc):
        return database_unavailable_response(request, exc)
    return internal_error_response(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as problem JSON; never a stack trace.

    Errors the routes raise on purpose, validation, HTTP and database errors are answered here
    (inside the middleware stack, so CORS and security headers apply). Anything else propagates
    to ``RequestContextMiddleware``, which answers through the same ``response_for_exception``.
    """

    @app.exception_handler(FrontDoorError)
    @app.exception_handler(StarletteHTTPException)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeoutError)
    @app.exception_handler(DisconnectionError)
    @app.exception_handler(OSError)
    async def _known_error(request: Request, exc: Exception) -> Response:
        return response_for_exception(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
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
