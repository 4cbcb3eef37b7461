"""Every FHIR API error is an OperationOutcome: an issue code, readable diagnostics, and the
element at fault as a FHIRPath ``expression`` (``Patient.identifier[0].value``) or, for an
HTTP header, a ``location`` (``http.X-Request-Id``).

``render_operation_outcome`` is registered with ``app.errors`` for paths under /fhir, so the
app's one error pipeline (handlers, middleware, 413, 503, 500) answers these paths in FHIR.
Submitted values are never echoed back.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from app.errors import FrontDoorError
from app.fhir.systems import FHIR_JSON

# OperationOutcome issue type (http://hl7.org/fhir/issue-type) by HTTP status.
_ISSUE_CODE_BY_STATUS = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    428: "required",
    429: "throttled",
    500: "exception",
    503: "transient",
}
_ISSUE_CODE_BY_TYPE = {
    "malformed_json": "structure",
    "idempotency_key_reused": "business-rule",
}


class FhirError(FrontDoorError):
    """An error answered as an OperationOutcome; each issue names its element."""

    type = "fhir_error"

    def __init__(
        self,
        status: int,
        diagnostics: str,
        *,
        code: str | None = None,
        expression: str | None = None,
        location: str | None = None,
        issues: list[dict[str, Any]] | None = None,
        title: str = "Request not processed",
        headers: dict[str, str] | None = None,
    ) -> None:
        if issues is None:
            issues = [issue(diagnostics, code=code, expression=expression, location=location)]
        super().__init__(diagnostics, errors=issues, headers=headers)
        self.status_code = status
        self.title = title


def issue(
    diagnostics: str,
    *,
    code: str | None = None,
    expression: str | None = None,
    location: str | None = None,
) -> dict[str, Any]:
    """One issue as carried in ``FhirError.errors`` (rendered by ``operation_outcome``)."""
    return {"message": diagnostics, "code": code, "expression": expression, "location": location}


def operation_outcome(
    *, status: int, type_: str, detail: str, errors: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """An OperationOutcome for an error: one issue per error, or one for the whole request."""
    default_code = _ISSUE_CODE_BY_TYPE.get(type_) or _ISSUE_CODE_BY_STATUS.get(status, "processing")
    issues = []
    for error in errors or [{}]:
        entry: dict[str, Any] = {
            "severity": "fatal" if status >= 500 else "error",
            "code": error.get("code") or default_code,
            "diagnostics": error.get("message") or detail,
        }
        expression, location = error.get("expression"), error.get("location")
        field = error.get("field")
        if isinstance(field, str) and expression is None and location is None:
            # An error from the shared code names a JSON field or a header: say which.
            if field.startswith("header:"):
                location = f"http.{field.removeprefix('header:')}"
            elif field != "body":
                entry["diagnostics"] = f"{field}: {entry['diagnostics']}"
        if expression:
            entry["expression"] = [expression]
        if location:
            entry["location"] = [location]
        issues.append(entry)
    return {"resourceType": "OperationOutcome", "issue": issues}


def render_operation_outcome(
    request: Request,
    *,
    status: int,
    type_: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None,
    headers: dict[str, str] | None,
) -> JSONResponse:
    """``app.errors.problem`` for /fhir paths: the same status and headers, in FHIR."""
    del request, title  # the request id is in the X-Request-Id response header
    body = operation_outcome(status=status, type_=type_, detail=detail, errors=errors)
    return JSONResponse(body, status_code=status, headers=headers, media_type=FHIR_JSON)
