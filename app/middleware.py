"""ASGI middleware: request ids and access logs without query strings, body size cap, headers,
and the last word on unexpected errors.

Written as plain ASGI (not BaseHTTPMiddleware) so it adds little to every request.
"""

from __future__ import annotations

import re
import time
import traceback
import uuid
from typing import Any

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("frontdoor.access")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cache-control", b"no-store"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    ),
]
HSTS_HEADER = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class RequestContextMiddleware:
    """Give each request an id, log it by route template, cap its body, add security headers.

    An exception no handler took is answered here with a plain 500 problem (security headers
    included) and logged by type and raising line only. It is not re-raised: the server would
    log its message and traceback, and a driver's message can quote submitted patient data.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, hsts: bool = False) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.headers = [*SECURITY_HEADERS, HSTS_HEADER] if hsts else SECURITY_HEADERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder = {"status": 500}

        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, send, request_id)
            status_holder["status"] = 413
            self._log(scope, 413, started)
            structlog.contextvars.clear_contextvars()
            return

        received = 0
        max_bytes = self.max_body_bytes
        response_started = {"started": False}

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _BodyTooLarge
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_started["started"] = True
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in self.headers if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, capped_receive, send_with_headers)
        except _BodyTooLarge:
            status_holder["status"] = 413
            await self._too_large(scope, send, request_id)
        except Exception as exc:
            status_holder["status"] = 500
            _log_unexpected(exc)
            if not response_started["started"]:
                await self._internal_error(send, request_id)
        finally:
            self._log(scope, status_holder["status"], started)
            structlog.contextvars.clear_contextvars()

    def _log(self, scope: Scope, status: int, started: float) -> None:
        route = scope.get("route")
        # The route template ("/v1/referrals/{referral_id}"), never the raw path or query.
        path = getattr(route, "path", None) or "unmatched"
        log.info(
            "request",
            method=scope.get("method"),
            route=path,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )

    async def _too_large(self, scope: Scope, send: Send, request_id: str) -> None:
        body = orjson.dumps(
            {
                "type": "payload_too_large",
                "code": "payload_too_large",
                "title": "Request body too large",
                "status": 413,
                "detail": f"The request body is larger than {self.max_body_bytes} bytes.",
                "errors": [{"field": "body", "message": "too large", "type": "too_large"}],
                "request_id": request_id,
            }
        )
        headers: list[Any] = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            (b"connection", b"close"),
            *self.headers,
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _internal_error(self, send: Send, request_id: str) -> None:
        body = orjson.dumps(
            {
                "type": "internal_error",
                "code": "internal_error",
                "title": "Internal error",
                "status": 500,
                # Not "nothing was stored": the failure may come after the commit.
                "detail": "Something went wrong on our side. Quote the request id if it "
                "happens again.",
                "request_id": request_id,
            }
        )
        headers: list[Any] = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            *self.headers,
        ]
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _log_unexpected(exc: Exception) -> None:
    """The exception's type and where it was raised; never its message (it may hold data)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None
    log.error("unhandled_error", error_type=type(exc).__name__, raised_at=where)


class _BodyTooLarge(Exception):
    pass


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None
