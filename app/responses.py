"""OpenAPI descriptions of the error responses, so ``/openapi.json`` lists every status."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable ``type``/``code`` and the fields at fault."""

    type: str
    code: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
    request_id: str | None = None


_DESCRIPTIONS = {
    400: "Malformed JSON",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict with the current state",
    412: "Stale version (If-Match)",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Invalid input: the fields at fault are listed",
    428: "If-Match required",
    429: "Too many requests",
    500: "Unexpected error (nothing identifying is logged or shown)",
    503: "Service unavailable (the database cannot be reached): retry after Retry-After",
}

# Errors are sent as application/problem+json (RFC 9457), and documented as such.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {
        "model": Problem,
        "description": text,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    for code, text in _DESCRIPTIONS.items()
}


def errors_for(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: ERROR_RESPONSES[code] for code in codes}
