"""ASGI middleware: request ids and access logs without query strings, body size cap, headers,
and the last word on unexpected errors.

Written as plain ASGI (not BaseHTTPMiddleware) so it adds little to every request.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import payload_too_large_response, response_for_exception

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

    An exception no handler took is answered here through ``app.errors.response_for_exception``
    (the renderer every handler uses: 503 when the database is unavailable, else 500), logged by
    type and raising line only. It is not re-raised: the server would log its message and
    traceback, and a driver's message can quote submitted patient data.
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

        received = 0
        max_bytes = self.max_body_bytes
        response_started = {"started": False}

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # An HTTPException, so that FastAPI's body reading passes it on as it is
                    # (it turns any other exception into a 400) and the 413 handler answers.
                    raise _BodyTooLarge(max_bytes)
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
            declared = _header(scope, b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                response = payload_too_large_response(Request(scope), max_bytes)
                await response(scope, receive, send_with_headers)
                return
            await self.app(scope, capped_receive, send_with_headers)
        except Exception as exc:
            response = response_for_exception(Request(scope), exc)
            if response_started["started"]:
                status_holder["status"] = 500  # logged above; the response is already broken
            else:
                await response(scope, receive, send_with_headers)
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


class _BodyTooLarge(HTTPException):
    def __init__(self, max_body_bytes: int) -> None:
        super().__init__(status_code=413, detail="Request body too large")
        self.max_body_bytes = max_body_bytes


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None
